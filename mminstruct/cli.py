"""The `mminstruct` command: a thin layer over `load_config` and `pipeline.run`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from mminstruct import __version__
from mminstruct.errors import ConfigError, MminstructError
from mminstruct.output import StopRequested
from mminstruct.redact import install_log_redaction, redact_text

MAIN_EXAMPLES = """\
examples:
  mminstruct build configs/demo.yaml
      build the demo dataset (bundled sample, rule-based generator) into out/demo
  mminstruct build configs/coco.yaml --set sources.0.images=/data/coco/val2017 --set output.dir=out/coco
      build from your own COCO files
  mminstruct build demo --limit 4 --set output.dir=/tmp/try
      a shipped config by name, on the first 4 images only
  torchrun --nproc-per-node 8 -m mminstruct build configs/coco.yaml
      eight processes share the work (also under Slurm: srun mminstruct build ...)
  mminstruct finalize out/coco
      merge a multi-process build by hand (the last process to finish does it itself)
  mminstruct preview demo --image-id 3
      one image through the build's code path: context, prompts, completions, preview.png/.html
  mminstruct card out/coco; mminstruct stats out/coco
      rewrite the dataset card; recount the statistics from the shards and check stats.json
  mminstruct export out/coco --format llava --dest llava/
      LLaVA's training JSON (one record per instruction) and the image files

Run `mminstruct build --help` (or preview, export ... --help) for the options.
"""

BUILD_EXAMPLES = """\
examples:
  mminstruct build configs/demo.yaml
  mminstruct build configs/coco.yaml --set sources.0.images=/data/coco/val2017 \\
      --set sources.0.instances=/data/coco/annotations/instances_val2017.json \\
      --set sources.0.captions=/data/coco/annotations/captions_val2017.json \\
      --set output.dir=out/coco
  mminstruct build configs/coco.yaml --limit 100 --set generator.seed=7 --set tasks.reasoning.enabled=false

--set KEY=VALUE takes any config key by its dotted path (list items by number, e.g.
sources.0.images); values are read as YAML and type-checked against the config.

Rerunning the same command resumes: finished shards are kept, the rest are built. Rank and
world size come from torchrun/accelerate (RANK, WORLD_SIZE) or Slurm (SLURM_PROCID,
SLURM_NTASKS, SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT), or from --rank/--world-size.
"""


def _shipped_configs_text() -> str:
    """The shipped configs, by name, as found in this installation."""
    from mminstruct.resources import shipped_configs, shipped_dir

    try:
        names = ", ".join(path.stem for path in shipped_configs())
        folder = shipped_dir("configs")
    except FileNotFoundError:  # an installation without its configs: nothing to list
        return ""
    return f"\nShipped configs (give the name, or copy one from {folder} and edit it):\n  {names}\n"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="mminstruct",
        description="Build multimodal instruction-tuning datasets (LLaVA format, webdataset shards).",
        epilog=MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mminstruct {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    build = commands.add_parser(
        "build",
        help="build a dataset from a YAML config",
        description="Build a dataset: read the sources, generate instructions, write shards.",
        epilog=BUILD_EXAMPLES + _shipped_configs_text(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument(
        "config", help="path to a YAML config, or a shipped config name (demo, coco)"
    )
    build.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable), e.g. --set output.dir=out/x",
    )
    build.add_argument("--limit", type=int, metavar="N", help="build from the first N images only")
    build.add_argument("--rank", type=int, help="this process's rank (default: from the launcher)")
    build.add_argument("--world-size", type=int, help="how many processes share the job")
    build.add_argument(
        "--force",
        action="store_true",
        help="rebuild shards that an earlier run made from a different config",
    )
    build.add_argument("-q", "--quiet", action="store_true", help="only print warnings and errors")
    final = commands.add_parser(
        "finalize",
        help="merge a finished multi-process build (stats, manifest, index, card)",
        description="Merge the shard stats of a finished build into stats.json, rejects.jsonl, "
        "manifest.json, shards.wids.json and README.md. Refuses while shards are missing.",
        epilog="example:\n  mminstruct finalize out/coco",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    final.add_argument("output_dir", help="the output.dir of the build")
    _add_preview(commands)
    _add_publishing(commands)
    return parser


PREVIEW_EXAMPLES = """\
examples:
  mminstruct preview demo --image-id 3
  mminstruct preview configs/coco.yaml --image-id 397133 --set generator.backend=hf \\
      --set generator.model=Qwen/Qwen2.5-0.5B-Instruct
  mminstruct preview demo --image photo.jpg --annotations photo.json
  mminstruct preview configs/coco_vlm.yaml --image photo.jpg      # a VLM reads the pixels alone

The annotations JSON of a bare image (every key optional; boxes in pixels, COCO order):
  {"captions": ["A dog on a sofa."],
   "objects": [{"category": "dog", "bbox": [x, y, width, height]}],
   "relations": [{"subject": 0, "predicate": "on", "object": 1}]}
"""


def _add_preview(commands: argparse._SubParsersAction) -> None:
    preview = commands.add_parser(
        "preview",
        help="show what build does with one image (context, prompts, completions, pictures)",
        description="Run one image through the same code as `build` and show the context, the "
        "exact messages sent to the model with token counts, each raw completion, the parsed "
        "instructions and every rejection; write preview.png and preview.html.",
        epilog=PREVIEW_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    preview.add_argument("config", help="path to a YAML config, or a shipped config name")
    which = preview.add_mutually_exclusive_group(required=True)
    which.add_argument("--image-id", metavar="ID", help="an image of the configured sources")
    which.add_argument("--image", metavar="PATH", help="a bare image file")
    preview.add_argument(
        "--annotations", metavar="FILE", help="with --image: captions, boxes and relations (JSON)"
    )
    preview.add_argument("--source", metavar="NAME", help="with --image-id: only this source")
    preview.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable)",
    )
    preview.add_argument("--out", default="preview", metavar="DIR", help="where the files go")
    preview.add_argument("-q", "--quiet", action="store_true", help="only print warnings, errors")


def _add_publishing(commands: argparse._SubParsersAction) -> None:
    card = commands.add_parser(
        "card",
        help="rewrite a build's dataset card (README.md and plots/)",
        description="Write README.md (a Hugging Face dataset card) and its plots in OUT again, "
        "from config.yaml, stats.json and the shards. Nothing is sent to the Hub.",
        epilog="example:\n  mminstruct card out/coco",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    card.add_argument("output_dir", help="the output.dir of a finished build")
    stats = commands.add_parser(
        "stats",
        help="recount the statistics from the shards and check stats.json",
        description="Read every shard, recount samples, instructions, turns, lengths, image "
        "formats and shard sizes/hashes, and report where stats.json or the wids index "
        "disagree with them (exit status 1 if they do).",
        epilog="example:\n  mminstruct stats out/coco",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    stats.add_argument("output_dir", help="the output.dir of a finished build")
    export = commands.add_parser(
        "export",
        help="export for LLaVA's train.py (JSON or JSONL) or TRL's DPOTrainer, with the images",
        description="Write one LLaVA record ({id, image, conversations}) per instruction to "
        "DEST/llava.json (--format llava) or DEST/llava.jsonl (--format jsonl), or one "
        "preference pair per line to DEST/dpo.jsonl (--format dpo: images, prompt, chosen, "
        "rejected, as TRL's DPOTrainer reads them for vision models), and the images to "
        "DEST/images/.",
        epilog="examples:\n  mminstruct export out/coco --format llava --dest llava/\n"
        "  then train with --data_path llava/llava.json --image_folder llava/images\n"
        "  mminstruct export out/coco --format jsonl --dest jsonl/   (for datasets, one per line)\n"
        "  mminstruct export out/coco --format dpo --dest dpo/   (a build with "
        "tasks.preference.enabled)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    export.add_argument("output_dir", help="the output.dir of a finished build")
    export.add_argument(
        "--format",
        choices=("llava", "jsonl", "dpo"),
        default="llava",
        help="llava: DEST/llava.json (default); jsonl: DEST/llava.jsonl; dpo: DEST/dpo.jsonl",
    )
    export.add_argument("--dest", required=True, metavar="DIR", help="folder to write into")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mminstruct` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    install_log_redaction()  # no registered secret, whole or in part, reaches a log line
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return 2
    except StopRequested as exc:
        print(
            f"{exc}; rerun the same command to resume (finished shards are kept)", file=sys.stderr
        )
        return 143
    except MminstructError as exc:
        print(f"error: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted; rerun the same command to resume (finished shards are kept)",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:  # the reader stopped early (`| head`): it has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # a read-only or vanished folder under finalize, card, export...
        where = f" {exc.filename}" if exc.filename else ""
        print(
            f"error: cannot write or read{where}: {exc.strerror or exc}; check that the folder "
            "exists and is writable, then rerun",
            file=sys.stderr,
        )
        return 1


def _build(args: argparse.Namespace) -> int:
    from mminstruct.config import load_config
    from mminstruct.launch import detect_launch
    from mminstruct.pipeline import run

    overrides = list(args.overrides)
    if args.limit is not None:
        overrides.append(f"limit={args.limit}")
    config = load_config(args.config, overrides)
    launch = detect_launch(args.rank, args.world_size)
    stats = run(config, launch, force=args.force)
    out = config.output.dir
    if stats is None:
        print(f"{launch.prefix}done; the last process to finish merges the results in {out}")
        return 0
    print(_summary(stats, out))
    return 0 if stats["images_written"] else _nothing_written(stats)


def _nothing_written(stats: dict) -> int:
    """A build that wrote no sample is a failure: say why, by the commonest reasons."""
    reasons = sorted(stats.get("rejects", {}).items(), key=lambda kv: -kv[1])[:3]
    shown = ", ".join(f"{reason} ({n})" for reason, n in reasons) or "no images in the sources"
    print(
        f"error: no sample was written; the commonest reasons: {shown}. See rejects.jsonl, "
        "check the paths in your config, and try one image with `mminstruct preview`",
        file=sys.stderr,
    )
    return 1


def _finalize(args: argparse.Namespace) -> int:
    from mminstruct.publish import finalize

    print(_summary(finalize(args.output_dir), args.output_dir))
    return 0


def _preview(args: argparse.Namespace) -> int:
    from mminstruct.config import load_config
    from mminstruct.preview import (
        bare_record,
        find_record,
        format_preview,
        preview,
        print_for_reader,
        write_preview,
    )

    if args.annotations and not args.image:
        raise MminstructError("--annotations goes with --image (a bare image file)")
    config = load_config(args.config, list(args.overrides))
    if args.image:
        record = bare_record(args.image, args.annotations)
    else:
        record = find_record(config, args.image_id, args.source)
    result = preview(config, record)
    png, html = write_preview(result, args.out)
    return print_for_reader(f"{format_preview(result)}\n\nwrote {png}\nwrote {html}")


def _card(args: argparse.Namespace) -> int:
    from mminstruct.publish import regenerate_card

    print(f"wrote {regenerate_card(args.output_dir)}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mminstruct.config import load_config
    from mminstruct.output import config_disagreements, read_bookkeeping
    from mminstruct.publish import (
        consumer_disagreements,
        disagreements,
        index_disagreements,
        recount,
    )

    out = Path(args.output_dir)
    counted = recount(out)
    print(
        f"{out}: {counted['samples']:,} samples in {len(counted['shards'])} shard(s), "
        f"{counted['instructions_total']:,} instructions "
        f"({', '.join(f'{t} {n:,}' for t, n in counted['instructions'].items())}), "
        f"{counted['turns']:,} turns, images {counted['image_formats']}"
    )
    path = out / "stats.json"
    if not path.is_file():
        print(f"{path} is missing: nothing to check against (run `mminstruct finalize {out}`)")
        return 1
    problems = disagreements(counted, read_bookkeeping(path))
    problems += index_disagreements(out, counted)
    if (out / "config.yaml").is_file():  # shards copied without it are checked all the same
        problems += config_disagreements(out, load_config(out / "config.yaml"))
    problems += consumer_disagreements(out)
    if problems:
        print(f"{len(problems)} disagreement(s) with the shards:")
        print("\n".join(f"  - {p}" for p in problems))
        return 1
    print(
        "stats.json, shards.wids.json and config.yaml agree with the shards, and webdataset "
        "reads every sample"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    from mminstruct.publish import export

    done = export(args.output_dir, args.dest, args.format)
    print(
        f"wrote {done.records:,} records to {done.records_path} and {done.images:,} images to "
        f"{done.images_dir}"
    )
    if done.skipped:
        reasons = ", ".join(f"{n} {reason}" for reason, n in done.skipped.most_common())
        print(f"skipped shard members that are not a sample's file: {reasons}", file=sys.stderr)
    print(done.usage())
    return 0


def _summary(stats: dict, out: str) -> str:
    return (
        f"wrote {stats['images_written']} samples with {stats['instructions_total']} instructions "
        f"in {len(stats['shards'])} shard(s) to {out}; {stats['images_rejected']} of "
        f"{stats['images_in']} images rejected (reasons in {out}/rejects.jsonl)"
    )


COMMANDS = {
    "build": _build,
    "finalize": _finalize,
    "preview": _preview,
    "card": _card,
    "stats": _stats,
    "export": _export,
}


if __name__ == "__main__":
    sys.exit(main())
