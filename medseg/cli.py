"""The `medseg` command: one subcommand per pipeline stage.

Each stage module exposes `register(subparsers)`, which adds its parser and sets `run`.
Stage modules import torch and other heavy libraries inside their `run` functions only,
so `medseg --help` and the Snakefile stay fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from medseg.aggregate import cli as aggregate_cli
from medseg.audit import cli as audit_cli
from medseg.data import cli as prepare_cli
from medseg.downstream import cli as downstream_cli
from medseg.errors import MedsegError
from medseg.models import cli as models_cli
from medseg.pretrain import cli as pretrain_cli
from medseg.robustness import cli as robustness_cli
from medseg.synth import cli as synth_cli

STAGES = (
    synth_cli,
    prepare_cli,
    models_cli,
    pretrain_cli,
    robustness_cli,
    downstream_cli,
    aggregate_cli,
    audit_cli,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medseg",
        description="Robustness of ImageNet checkpoints as a transferability indicator "
        "for medical image segmentation. One subcommand per pipeline stage.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(title="stages", metavar="STAGE", required=True)
    for stage in STAGES:
        stage.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        args.run(args)
    except MedsegError as error:
        print(f"medseg: error: {error}", file=sys.stderr)
        return getattr(error, "exit_code", 2)
    return 0


def run() -> None:
    """The `medseg` command: `main`, then a quick exit once every output is written."""
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Interpreter shutdown after torch and timm spends 1.5-3 s tearing down modules; over a DAG of
    # hundreds of short jobs that is minutes. Outputs are renamed into place and closed by now, so
    # skip it -- unless child processes (data loader workers) are still to be reaped.
    import multiprocessing

    if not multiprocessing.active_children():
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
