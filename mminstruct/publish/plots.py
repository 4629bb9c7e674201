"""The dataset card's plots, drawn from the merged stats with matplotlib (Agg, no display).

Each function takes `stats.json` content and returns PNG bytes, or None when there is
nothing to draw. matplotlib is imported here only, when a card is written. The PNGs carry
no software or date metadata, so the same stats always give the same bytes. Labels are
names cut to `NAME_LIMIT` characters and drawn as plain text (a `$` never starts math).
"""

from __future__ import annotations

import io
from typing import Any

from mminstruct.publish.markdown import shorten

TASK_COLORS = {"conversation": "#4C72B0", "detail": "#55A868", "reasoning": "#C44E52"}
TOP = 20  # bars in the categories and rejects plots
FAMILY_COLORS = ("#4C72B0", "#55A868", "#C44E52", "#8172B2", "#CCB974", "#64B5CD", "#DD8452")


def length_histograms(stats: dict[str, Any]) -> bytes | None:
    """One row per task: answer lengths in words, and completion tokens where recorded."""
    lengths = {t: kinds for t, kinds in stats.get("lengths", {}).items() if kinds.get("words")}
    if not lengths:
        return None
    kinds = ["words", "tokens"] if any(k.get("tokens") for k in lengths.values()) else ["words"]
    width, height = 4.2 * len(kinds) + 1, 2.2 * len(lengths) + 0.6
    figure = _figure(width, height)
    axes = figure.subplots(len(lengths), len(kinds), squeeze=False)
    figure.subplots_adjust(
        left=0.8 / width,
        right=1 - 0.2 / width,
        bottom=0.35 / height,
        top=1 - 0.65 / height,
        hspace=0.55,
        wspace=0.3,
    )  # fixed margins: constrained layout costs half a second a plot
    for row, (task, histograms) in enumerate(sorted(lengths.items())):
        for column, kind in enumerate(kinds):
            axis = axes[row][column]
            counts = {int(k): n for k, n in histograms.get(kind, {}).items()}
            if counts:
                values, weights = zip(*sorted(counts.items()), strict=True)
                color = TASK_COLORS.get(task, "#8172B2")
                axis.hist(values, bins=min(30, len(values)), weights=weights, color=color)
            axis.set_title(f"{task}: {'answer words' if kind == 'words' else 'completion tokens'}")
            axis.set_ylabel("instructions")
    figure.suptitle("Length per instruction")
    return _png(figure)


def top_categories(stats: dict[str, Any]) -> bytes | None:
    """The most frequent object categories of the written images (boxes counted)."""
    return _bars(stats.get("categories", {}), "Top object categories", "boxes", "#4C72B0")


def rejects_by_reason(stats: dict[str, Any]) -> bytes | None:
    """Rejections by reason (images, tasks and annotation records together)."""
    return _bars(stats.get("rejects", {}), "Rejections by reason", "rejections", "#C44E52")


def family_mix(stats: dict[str, Any]) -> bytes | None:
    """Turns per task family and question type, one bar each, coloured by family (families
    in the order of `stats["instructions"]`, types most frequent first)."""
    mix = stats.get("question_types", {})
    bars = [
        (f"{family}: {kind}", n, FAMILY_COLORS[i % len(FAMILY_COLORS)])
        for i, family in enumerate(f for f in stats.get("instructions", {}) if mix.get(f))
        for kind, n in sorted(mix[family].items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    if not bars:
        return None
    names, values, colors = zip(*reversed(bars), strict=True)
    figure, axis = _bar_axis([label(name) for name in names])
    drawn = axis.barh(range(len(bars)), values, color=colors)
    axis.bar_label(drawn, labels=[f"{v:,}" for v in values], padding=3, fontsize=8)
    axis.set_xlabel("question/answer turns")
    axis.set_title("Task families and question types")
    axis.margins(x=0.12)
    return _png(figure)


def _bar_axis(labels: list[str]) -> tuple[Any, Any]:
    """A figure sized for one horizontal bar per label, and its axis with those labels."""
    width, height = 7.0, 0.32 * len(labels) + 1.2
    figure = _figure(width, height)
    axis = figure.subplots()
    left = min((0.3 + 0.065 * max(len(shown) for shown in labels)) / width, 0.5)
    figure.subplots_adjust(left=left, right=0.97, bottom=0.6 / height, top=1 - 0.45 / height)
    axis.set_yticks(range(len(labels)), labels=labels, fontsize=8)
    return figure, axis


PLOTS = {  # file name under plots/ -> (function, alt text)
    "families.png": (family_mix, "Turns per task family and question type"),
    "lengths.png": (length_histograms, "Answer lengths per task"),
    "categories.png": (top_categories, "Top object categories"),
    "rejects.png": (rejects_by_reason, "Rejections by reason"),
}


def _bars(counts: dict[str, int], title: str, unit: str, color: str) -> bytes | None:
    if not counts:
        return None
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]
    names, values = zip(*reversed(top), strict=True)
    labels = [label(name) for name in names]
    width, height = 7.0, 0.32 * len(top) + 1.2
    figure = _figure(width, height)
    axis = figure.subplots()
    labels_inches = 0.3 + 0.065 * max(len(shown) for shown in labels)
    left = min(labels_inches / width, 0.5)
    figure.subplots_adjust(left=left, right=0.97, bottom=0.6 / height, top=1 - 0.45 / height)
    bars = axis.barh(range(len(top)), values, color=color)
    axis.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontsize=8)
    axis.set_yticks(range(len(top)), labels=labels, fontsize=8)
    axis.set_xlabel(unit)
    axis.set_title(title if len(counts) <= TOP else f"{title} (top {TOP} of {len(counts)})")
    axis.margins(x=0.12)
    return _png(figure)


def label(name: str) -> str:
    """A name as a plot label: cut to `NAME_LIMIT` characters, `$` escaped (not mathtext)."""
    return shorten(name).replace("$", r"\$")


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)  # Agg: no display, no global pyplot state
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
