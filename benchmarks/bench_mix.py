"""The rule-based instruction mix: how varied, balanced and grounded it is, before and after.

Over coco_mini, tiny_coco (val2017 and train2017) and the Visual Genome excerpt in
../shared/realdata, with every task family of `tasks` enabled, the rule-based generator's
output is measured for: the share of each family and question type, the yes/no share and
the yes rate, distinct-2 and distinct-3 of answers at a fixed 1,500-word budget (answers
shuffled, mean over 5 shuffles), mean words per family, answers with a sentence repeated
within them, and grounding findings. Question types are read back from the wording file
(each `*.question` pool becomes a pattern).

"before" is `git archive HEAD` of the package laid out in a temp folder, "after" the working
tree; each is measured in its own child process in the same run.

    python benchmarks/bench_mix.py [--before REV] [--seeds 2]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"
BUDGET = 1500  # words of answers per distinct-n sample
MARKER = "BENCH-MIX "


# --------------------------------------------------------------------------- inputs


def _coco_sources() -> list[dict]:
    tiny = REALDATA / "coco" / "tiny_coco"
    mini = REALDATA / "coco" / "coco_mini"
    sources = [
        {"kind": "coco", "name": "tinycoco", "images": str(tiny / "images" / split),
         "instances": str(tiny / "annotations" / f"instances_{split}.json")}
        for split in ("val2017", "train2017")
    ]  # fmt: skip
    ann = mini / "annotations"
    sources.append(
        {"kind": "coco", "name": "cocomini", "images": str(mini / "val2017"),
         "instances": str(ann / "instances_val2017.json"),
         "captions": str(ann / "captions_val2017.json")}
    )  # fmt: skip
    return sources


def _vg_source(folder: Path) -> dict:
    """The VG excerpt; image sizes, which it lacks, are the extent of its boxes."""
    vg = REALDATA / "visual_genome" / "garima16_subset_data"
    entries = json.loads((vg / "relationships.json").read_text())
    sizes = []
    for entry in entries:
        boxes = [b for r in entry["relationships"] for b in (r["subject"], r["object"])]
        if entry.get("image_id") is None or not boxes:
            continue
        width = max(b["x"] + b["w"] for b in boxes)
        height = max(b["y"] + b["h"] for b in boxes)
        sizes.append({"image_id": entry["image_id"], "width": width, "height": height})
    (folder / "image_data.json").write_text(json.dumps(sizes))
    return {"kind": "visual_genome", "name": "vg", "images": str(folder),
            "image_data": str(folder / "image_data.json"),
            "relationships": str(vg / "relationships.json"), "objects": str(vg / "objects.json")}  # fmt: skip


def _records(sources: list[dict]) -> dict[str, list]:
    from mminstruct.converters import READERS

    from mminstruct.config import config_from_dict
    from mminstruct.records import ImageRecord

    out: dict[str, list] = {}
    for source in sources:
        config = config_from_dict({"sources": [source]}).sources[0]
        name = "vg" if source["kind"] == "visual_genome" else source["name"]
        items = READERS[config.kind](config)
        out.setdefault(name, []).extend(r for r in items if isinstance(r, ImageRecord))
    return out


# --------------------------------------------------------------------------- measuring


def _config(seed: int):
    """Every task family that has an `enabled` switch, turned on."""
    from mminstruct.config import TasksConfig, config_from_dict

    tasks = {
        name: {"enabled": True}
        for name in TasksConfig.__dataclass_fields__
        if name != "preference" and hasattr(getattr(TasksConfig(), name), "enabled")
    }
    return config_from_dict(
        {
            "sources": [{"kind": "coco", "images": ".", "instances": "i.json"}],
            "generator": {"seed": seed},
            "context": {"derive_relations": "missing"},
            "tasks": tasks,
        }
    )


def _question_patterns(phrasings) -> list[tuple[str, re.Pattern]]:
    patterns = []
    for key, texts in phrasings.pools.items():
        if not key.endswith("question"):
            continue
        kind = key.removesuffix(".question")
        for text in texts:
            parts = re.split(r"\{[A-Za-z_][A-Za-z0-9_]*\}", text)
            body = ".+?".join(re.escape(p) for p in parts)
            patterns.append((kind, re.compile("^" + body + r"\s*$", re.IGNORECASE | re.DOTALL)))
    return patterns


def _kind(question: str, task: str, patterns) -> str:
    """The pool of the matching phrasing with the most fixed text; `<task>.other` for a
    question no pool of the wording file asks (a family with wording of its own)."""
    text = question.replace("<image>", "").strip()
    found = [(len(p.pattern), k) for k, p in patterns if k.startswith(task) and p.search(text)]
    return max(found)[1] if found else f"{task}.other"


def _yes_no(answer: str) -> str | None:
    first = re.match(r"\s*(\w+)", answer)
    word = first.group(1).lower() if first else ""
    return word if word in ("yes", "no") else None


def _repeated(answer: str) -> bool:
    parts = re.split(r"(?<=[.!?])\s+", answer.strip())
    seen = [" ".join(re.findall(r"[a-z0-9']+", p.lower())) for p in parts if p.strip()]
    return len(seen) != len(set(seen))


def _distinct(answers: list[str], n: int, shuffles: int = 5) -> float:
    """Distinct n-grams over all n-grams of the first BUDGET words of shuffled answers."""
    scores = []
    for k in range(shuffles):
        order = list(answers)
        random.Random(k).shuffle(order)
        words: list[str] = []
        for answer in order:
            words += re.findall(r"[a-z0-9']+", answer.lower())
            if len(words) >= BUDGET:
                break
        words = words[:BUDGET]
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        scores.append(len(set(grams)) / max(1, len(grams)))
    return round(sum(scores) / len(scores), 3)


def measure(records: list, seeds: int) -> dict:
    """Every measure over the generator's output for `records` under `seeds` seeds."""
    from mminstruct.checks.grounding import check_instruction
    from mminstruct.generate.rule_based import RuleBasedGenerator

    families, kinds, words = Counter(), Counter(), Counter()
    answers, yes_no, repeated, findings, turns = [], Counter(), 0, 0, 0
    by_family: dict[str, list[str]] = {}
    talk: Counter = Counter()  # conversation turns: by question type, and yes / no
    for seed in range(seeds):
        generator = RuleBasedGenerator(_config(seed))
        patterns = _question_patterns(generator.phrasings)
        for record, output in zip(records, generator.generate(records), strict=True):
            for instruction in output.instructions:
                families[instruction.task] += 1
                findings += len(check_instruction(record, instruction))
                for question, answer in instruction.turns:
                    turns += 1
                    kinds[_kind(question, instruction.task, patterns)] += 1
                    words[instruction.task] += len(answer.split())
                    answers.append(answer)
                    by_family.setdefault(instruction.task, []).append(answer)
                    repeated += _repeated(answer)
                    yes_no[_yes_no(answer)] += 1
                    if instruction.task == "conversation":
                        talk[_kind(question, "conversation", patterns)] += 1
                        talk[f"<{_yes_no(answer)}>"] += 1
    result = _summary(families, kinds, words, answers, yes_no, repeated, findings, turns)
    return result | _per_family(by_family, talk)


def _per_family(by_family: dict[str, list[str]], talk: Counter) -> dict:
    """Distinct-2 per family (the rule-based three together too), and the conversation's
    own balance: yes/no share, yes rate, largest question type share."""
    rule_based = [a for f in ("conversation", "detail", "reasoning") for a in by_family.get(f, [])]
    distinct = {f: _distinct(a, 2) for f, a in by_family.items()}
    distinct["conversation+detail+reasoning"] = _distinct(rule_based, 2)
    turns = sum(v for k, v in talk.items() if not k.startswith("<"))
    polar = talk["<yes>"] + talk["<no>"]
    types = {k: v for k, v in talk.items() if not k.startswith("<")}
    top = max(types.items(), key=lambda kv: kv[1]) if types else ("-", 0)
    return {
        "distinct_2_by_family": distinct,
        "conversation_yes_no_share": round(polar / max(1, turns), 3),
        "conversation_yes_rate": round(talk["<yes>"] / max(1, polar), 3),
        "conversation_top_type": f"{top[0]} {top[1] / max(1, turns):.3f}",
    }


def _summary(families, kinds, words, answers, yes_no, repeated, findings, turns) -> dict:
    polar = yes_no["yes"] + yes_no["no"]
    return {
        "instructions": sum(families.values()),
        "turns": turns,
        "family_share": {k: round(v / sum(families.values()), 3) for k, v in families.items()},
        "type_share": {k: round(v / turns, 3) for k, v in kinds.most_common()},
        "yes_no_share": round(polar / max(1, turns), 3),
        "yes_rate": round(yes_no["yes"] / max(1, polar), 3),
        "distinct_2": _distinct(answers, 2),
        "distinct_3": _distinct(answers, 3),
        "mean_words": {k: round(words[k] / _turns_of(k, kinds), 1) for k in families},
        "repeated_sentences": repeated,
        "grounding_findings": findings,
    }


def _turns_of(task: str, kinds: Counter) -> int:
    return max(1, sum(v for k, v in kinds.items() if k.split(".")[0] == task))


def _child(seeds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        by_set = _records([*_coco_sources(), _vg_source(Path(tmp))])
    result = {name: measure(records, seeds) for name, records in by_set.items()}
    result["all"] = measure([r for rs in by_set.values() for r in rs], seeds)
    print(MARKER + json.dumps(result))


# --------------------------------------------------------------------------- before / after


def _tree_at(rev: str, folder: Path) -> Path:
    """The package at `rev`, laid out as installed (converters and templates inside)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "mminstruct", "converters", "templates"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    shutil.move(str(folder / "converters"), str(folder / "mminstruct" / "converters"))
    return folder


def _run(tree: Path | None, seeds: int) -> dict:
    env_path = f"PYTHONPATH={tree}" if tree else None
    command = [sys.executable, __file__, "--child", "--seeds", str(seeds)]
    env = dict(__import__("os").environ)
    if env_path:
        env["PYTHONPATH"] = str(tree)
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tree or REPO)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    raise RuntimeError(proc.stderr[-3000:])


def _table(before: dict, after: dict) -> str:
    rows = ["| measure | set | before | after |", "|---|---|---:|---:|"]
    scalar = ("instructions", "turns", "yes_no_share", "yes_rate", "distinct_2", "distinct_3")
    scalar += ("repeated_sentences", "grounding_findings", "conversation_yes_no_share")
    scalar += ("conversation_yes_rate", "conversation_top_type")
    for name in after:
        for key in scalar:
            rows.append(f"| {key} | {name} | {before[name][key]} | {after[name][key]} |")
        b, a = before[name]["distinct_2_by_family"], after[name]["distinct_2_by_family"]
        for family in sorted(set(b) | set(a)):
            rows.append(
                f"| distinct-2: {family} | {name} | {b.get(family, '-')} | {a.get(family, '-')} |"
            )
        for family in sorted(set(before[name]["mean_words"]) | set(after[name]["mean_words"])):
            b = before[name]["mean_words"].get(family, "-")
            a = after[name]["mean_words"].get(family, "-")
            rows.append(f"| mean words: {family} | {name} | {b} | {a} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="HEAD", help="git revision measured as 'before'")
    parser.add_argument("--seeds", type=int, default=2, help="generator seeds per image")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.seeds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        before = _run(_tree_at(args.before, Path(tmp)), args.seeds)
    after = _run(None, args.seeds)
    print(_table(before, after))
    for label, result in (("before", before), ("after", after)):
        print(f"\n{label} (all sets): families {result['all']['family_share']}")
        print(f"{label} (all sets): question types {result['all']['type_share']}")
    out = REPO / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_mix.json").write_text(json.dumps({"before": before, "after": after}, indent=1))


if __name__ == "__main__":
    main()
