"""The dataset card shows what came from input or config as text: rendered by a real CommonMark
renderer, hostile license names and URLs, a hostile title, category names, captions and file
names give no live HTML, no script link and no broken table; names of 10 MB are cut, fast;
the bundled demo is described as drawn scenes; the wids index says which package reads it."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from bad_inputs.files import Scene, jpeg, png

from mminstruct.cli import main
from mminstruct.config import config_to_dict, load_config
from mminstruct.publish.card import render_body, write_plots
from mminstruct.publish.card_sections import sources_section
from mminstruct.publish.markdown import NAME_LIMIT

REPO = Path(__file__).resolve().parents[2]
XSS = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
TITLE = f"{IMG}\n---\n# [click](javascript:alert(2)) | `x` {XSS}"
HOSTILE_FILE = "a`<img src=x onerror=alert(7)>`|x.jpg"


class Page(HTMLParser):
    """Every tag, attribute and table row (as its cell count) of rendered HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []
        self.tables: list[list[int]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)
        self.attrs += [(name, value or "") for name, value in attrs]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append(0)
        elif tag in ("td", "th"):
            self.tables[-1][-1] += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def render(markdown: str) -> Page:
    """Markdown -> HTML with markdown-it-py's CommonMark (raw HTML on, tables on), its own
    link check off: a renderer that trusts the card, as a naive one would."""
    markdown_it = pytest.importorskip("markdown_it", reason="pip install markdown-it-py")
    renderer = markdown_it.MarkdownIt("commonmark").enable("table")
    renderer.validateLink = lambda url: True
    html = renderer.render(markdown)
    assert "<script" not in html.lower()
    page = Page()
    page.feed(html)
    return page


def assert_harmless(page: Page) -> None:
    assert "script" not in page.tags and "iframe" not in page.tags
    assert not [(n, v) for n, v in page.attrs if n.startswith("on")], "an event handler"
    links = [v for n, v in page.attrs if n == "href"]
    assert all(v.startswith(("https://", "http://")) for v in links), links
    assert all(v.startswith("plots/") for n, v in page.attrs if n == "src")
    for rows in page.tables:  # a pipe in a name never adds a column
        assert len(set(rows)) == 1, rows


def hostile_scene(folder: Path) -> Path:
    scene = Scene()
    scene.categories = [{"id": 1, "name": f"dog {XSS}"}, {"id": 2, "name": f"cat {IMG}"}]
    scene.captions[0]["caption"] = f"A dog {IMG} and ```\n{XSS}\n``` [x](javascript:alert(3))."
    scene.images[1]["file_name"] = HOSTILE_FILE
    scene.files = {"a.jpg": jpeg(), HOSTILE_FILE: png()}
    job = scene.write(folder)
    instances = json.loads((folder / "instances.json").read_text())
    instances["licenses"] = [
        {"id": 1, "name": XSS, "url": "javascript:alert(1)"},
        {"id": 2, "name": "[a](javascript:alert(4)) | b", "url": "https://example.org/l"},
    ]
    instances["images"][1]["license"] = 2
    (folder / "instances.json").write_text(json.dumps(instances))
    job["output"] = {
        "dir": str(folder / "out"),
        "pretty_name": TITLE,
        "license": "other",
        "license_name": XSS,
        "license_link": "javascript:alert(5)",
    }
    path = folder / "job.yaml"
    path.write_text(json.dumps(job))
    return path


def test_hostile_names_render_as_text_not_html(tmp_path):
    """Before: the license row rendered a live `<script>`, the title a live `<img onerror>`."""
    job = hostile_scene(tmp_path)
    assert main(["build", str(job), "-q"]) == 0
    lines = (tmp_path / "out" / "README.md").read_text(encoding="utf-8").split("\n")
    end = lines.index("---", 1)  # the line that closes the YAML header
    header, body = "\n".join(lines[1:end]), "\n".join(lines[end + 1 :])
    page = render(body)
    assert_harmless(page)
    shown = "".join(page.text)
    assert XSS in shown and IMG in shown  # shown as text, not lost
    assert "[a](javascript:alert(4)) | b" in shown
    # The YAML header is still valid YAML, and holds the title exactly.
    data = yaml.safe_load(header)
    assert data["pretty_name"] == TITLE and data["license_name"] == XSS
    from huggingface_hub import DatasetCard

    assert DatasetCard.load(tmp_path / "out" / "README.md").data.pretty_name == TITLE


@pytest.fixture
def within() -> Iterator[None]:
    def late(*_) -> None:
        raise TimeoutError("the card took over 60 s")

    previous = signal.signal(signal.SIGALRM, late)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def long_name_stats() -> tuple[dict, dict]:
    config = config_to_dict(load_config("demo"))
    huge = "x" * 10_000_000
    stats = {
        "images_in": 2,
        "images_written": 2,
        "images_rejected": 0,
        "instructions": {"detail": 2},
        "instructions_total": 2,
        "turns": 2,
        "rejects": {},
        "shards": [],
        "samples": 2,
        "bytes": 10240,
        "categories": {huge: 3, "dog": 1},
        "image_licenses": {"demo": {f"{huge} <https://example.org/>": 2}},
    }
    return config, stats


def test_names_of_10_mb_are_cut_in_the_card_and_plots(tmp_path, within):
    """Before: the category plot alone ran for minutes (14 s for a 100 kB name)."""
    config, stats = long_name_stats()
    started = time.monotonic()
    drawn = write_plots(tmp_path, stats)
    body = render_body(config, stats, plots=drawn)
    assert time.monotonic() - started < 30
    assert ("categories.png", "Top object categories") in drawn
    cut = "x" * (NAME_LIMIT - 1) + "…"
    assert f"[{cut}](https://example.org/)" in body and "x" * NAME_LIMIT not in body
    assert len(body) < 100_000
    assert f"Names longer than {NAME_LIMIT} characters" in body
    stats["categories"] = {"dog": 1}
    stats["image_licenses"] = {"demo": {"CC0 <https://example.org/>": 2}}
    assert "Names longer than" not in render_body(config, stats)


def test_a_dollar_in_a_category_name_is_drawn_as_text():
    """Before: matplotlib read `$...$` in a name as math and raised (a traceback at the end
    of a build)."""
    from mminstruct.publish.plots import top_categories

    png = top_categories({"categories": {"a $\\frac{$ b": 2, "$x^{$": 1}})
    assert png and png.startswith(b"\x89PNG")


def test_the_demo_is_described_as_drawn_scenes_not_flickr_photos():
    config = config_to_dict(load_config("demo"))
    section = sources_section(config, {})
    assert "drawn" in section and "not photographs" in section and "Flickr" not in section
    config["sources"][0].update(images="data/images", instances=["data/instances.json"])
    assert "Flickr photos" in sources_section(config, {})  # real COCO keeps its terms


def test_the_card_and_readme_name_the_package_that_reads_the_wids_index(tmp_path):
    out = tmp_path / "out"
    assert main(["build", "demo", "-q", "--limit", "2", "--set", f"output.dir={out}"]) == 0
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "pip install wids" in card and "wids.ShardListDataset(" in card
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    writes = readme.split("What a build writes", 1)[1].split("\n## ", 1)[0]
    assert "pip install wids" in writes
