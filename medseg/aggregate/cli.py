"""`medseg aggregate`: the results trees into tables, TIS, the paper's tables and figures."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from medseg.argtypes import non_negative_int, positive_int
from medseg.errors import MedsegError
from medseg.names import EXTERNAL_PREFIX, MODEL_NAMES
from medseg.paper import CHECKPOINTS, SEEDS

if TYPE_CHECKING:
    import pandas as pd

    from medseg.aggregate.collect import Grid

log = logging.getLogger(__name__)

STEPS = ("all", "collect", "tis", "tables", "figures", "summary")
PAPER_DATASETS = ("acdc", "covidqu", "idrid")
DEFAULT_BOOTSTRAP = 1000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "aggregate",
        help="this project's runs into TIS tables, the paper's tables and figures (any time, also mid-grid)",
        description="Read whatever runs exist under --results (the hive trees of the workflow) and write, under "
        "--out: tables/{scores,robustness,rankme,pretraining,downstream_history,online,progress}.parquet "
        "(collect), tables/tis.parquet and rank.parquet (tis: TIS, paper Eq. 1, of every indicator, and the "
        "Spearman/Kendall correlation of every label-free score with mean Dice), the paper's Tables 1-6 and "
        "B-shaped tables as Markdown and Parquet (tables), and the paper's figures as PNG and SVG in figures/ "
        "(figures). STEP runs one step (each reads what the previous ones wrote); the default runs all four "
        "and prints a summary. The grid options say what the workflow's config runs (default: the paper's "
        "grid): cells with runs missing are marked incomplete, and a file whose keys are not in the grid "
        "stops the command before anything is written.",
    )
    parser.add_argument("step", nargs="?", choices=STEPS, default="all", help="step to run (default: all)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: results)")
    parser.add_argument("--out", type=Path, default=None, help="folder for tables/ and figures/ (default: --results)")
    grid = parser.add_argument_group("the configured grid (the config's keys in brackets)")
    grid.add_argument(
        "--datasets",
        nargs="+",
        default=list(PAPER_DATASETS),
        metavar="NAME",
        help=f"dataset names [datasets] (default: {' '.join(PAPER_DATASETS)})",
    )
    grid.add_argument(
        "--models",
        nargs="+",
        choices=MODEL_NAMES,
        default=list(MODEL_NAMES),
        metavar="MODEL",
        help=f"models [models.names] (default: {' '.join(MODEL_NAMES)})",
    )
    grid.add_argument(
        "--checkpoints",
        type=positive_int,
        nargs="+",
        default=list(CHECKPOINTS),
        metavar="EPOCH",
        help=f"pretraining checkpoints [pretraining.checkpoints] (default: {' '.join(map(str, CHECKPOINTS))})",
    )
    grid.add_argument(
        "--seeds",
        type=non_negative_int,
        nargs="+",
        default=list(SEEDS),
        metavar="SEED",
        help=f"downstream seeds [downstream.seeds] (default: {' '.join(map(str, SEEDS))})",
    )
    grid.add_argument(
        "--external",
        nargs="*",
        default=[],
        metavar="NAME",
        help=f"external encoder names [robustness.external] (scheme {EXTERNAL_PREFIX}NAME; default: none)",
    )
    parser.add_argument(
        "--bootstrap",
        type=non_negative_int,
        default=DEFAULT_BOOTSTRAP,
        help=f"resamples of each cell's seeds for the TIS intervals (default: {DEFAULT_BOOTSTRAP}; 0: none)",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the bootstrap (default: 0)")
    parser.set_defaults(run=run)


def grid_of(args: argparse.Namespace) -> Grid:
    from medseg.aggregate.collect import Grid

    return Grid(
        datasets=tuple(dict.fromkeys(args.datasets)),
        models=tuple(dict.fromkeys(args.models)),
        checkpoints=tuple(sorted(set(args.checkpoints))),
        seeds=tuple(sorted(set(args.seeds))),
        external=tuple(dict.fromkeys(args.external)),
    )


def _write_parquet(table: pd.DataFrame, path: Path) -> None:
    from medseg.atomic import atomic_file

    with atomic_file(path) as tmp:
        table.to_parquet(tmp, index=False)


def _collected(tables: Path, name: str) -> Path:
    """The path of a table an earlier step wrote; MedsegError when that step has not run."""
    path = tables / f"{name}.parquet"
    if not path.is_file():
        raise MedsegError(f"{path}: no such file; run `medseg aggregate collect` (and tis) first, or no step")
    return path


def _read(tables: Path, name: str) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(_collected(tables, name))


def run_collect(args: argparse.Namespace, tables: Path) -> None:
    from medseg.aggregate.collect import collect

    collected = collect(args.results, grid_of(args))  # everything read and checked before any write
    for name, table in collected.items():
        _write_parquet(table, tables / f"{name}.parquet")
    for stage, expected, done in collected["progress"].itertuples(index=False):
        log.info("%s: %d of %d files", stage, done, expected)


def run_tis(args: argparse.Namespace, tables: Path) -> None:
    from medseg.aggregate.indicators import indicator_tables

    grid = grid_of(args)
    tis, rank = indicator_tables(
        {name: _read(tables, name) for name in ("scores", "robustness", "rankme", "pretraining")},
        grid,
        bootstrap=args.bootstrap,
        seed=args.seed,
    )
    _write_parquet(tis, tables / "tis.parquet")
    _write_parquet(rank, tables / "rank.parquet")
    log.info("tis: %d rows, %d of them complete -> %s", len(tis), int(tis["complete"].sum()), tables / "tis.parquet")


def run_tables(args: argparse.Namespace, tables: Path) -> None:
    from medseg.aggregate.summary import summary_markdown
    from medseg.aggregate.tables import html, write_tables

    inputs = {name: _read(tables, name) for name in ("tis", "scores", "pretraining")}
    _collected(tables, "progress")  # the summary page's runs done: collected first
    written = write_tables(inputs, tables)
    text = summary_markdown(tables)
    _write_text(text, tables / "summary.md")
    _write_text(html(text), tables / "summary.html")
    log.info("tables: %d files -> %s", len(written) + 2, tables)


def _write_text(text: str, path: Path) -> None:
    from medseg.atomic import atomic_file

    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def run_figures(args: argparse.Namespace, tables: Path, figures: Path) -> None:
    from medseg.aggregate.figures import write_figures

    inputs = {name: _read(tables, name) for name in ("scores", "robustness", "pretraining", "tis")}
    written = write_figures(inputs, figures)
    log.info("figures: %d files -> %s", len(written), figures)


def run(args: argparse.Namespace) -> None:
    from medseg.aggregate.summary import summary

    out = args.results if args.out is None else args.out
    tables, figures = out / "tables", out / "figures"
    for path in (out, tables, figures):
        if path.exists() and not path.is_dir():
            raise MedsegError(f"{path}: exists and is not a folder; give another --out")
    steps = ("collect", "tis", "tables", "figures") if args.step == "all" else (args.step,)
    for step in steps:
        if step == "collect":
            run_collect(args, tables)
        elif step == "tis":
            run_tis(args, tables)
        elif step == "tables":
            run_tables(args, tables)
        elif step == "figures":
            run_figures(args, tables, figures)
    if args.step in ("all", "summary"):
        print(summary(out))
