"""The `mminstruct` command: a thin layer over `load_config` and `pipeline.run`."""

from __future__ import annotations

import argparse
import logging
import sys

from mminstruct import __version__
from mminstruct.errors import ConfigError, MminstructError
from mminstruct.resume import StopRequested

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

Run `mminstruct build --help` for the build options.
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
        epilog=BUILD_EXAMPLES,
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
    return parser


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
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StopRequested as exc:
        print(
            f"{exc}; rerun the same command to resume (finished shards are kept)", file=sys.stderr
        )
        return 143
    except MminstructError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "interrupted; rerun the same command to resume (finished shards are kept)",
            file=sys.stderr,
        )
        return 130


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
    return 0


def _finalize(args: argparse.Namespace) -> int:
    from mminstruct.finalize import finalize

    print(_summary(finalize(args.output_dir), args.output_dir))
    return 0


def _summary(stats: dict, out: str) -> str:
    return (
        f"wrote {stats['images_written']} samples with {stats['instructions_total']} instructions "
        f"in {len(stats['shards'])} shard(s) to {out}; {stats['images_rejected']} of "
        f"{stats['images_in']} images rejected (reasons in {out}/rejects.jsonl)"
    )


COMMANDS = {"build": _build, "finalize": _finalize}


if __name__ == "__main__":
    sys.exit(main())
