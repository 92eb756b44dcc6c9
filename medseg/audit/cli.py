"""`medseg paper-audit`: the authors' published results through the TIS module, beside the printed tables."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from medseg.argtypes import int_at_least, positive_int
from medseg.audit import DEFAULT_ACCURACY, DEFAULT_DOWNSTREAM, DEFAULT_PRINTED, DEFAULT_ROBUSTNESS

OUTPUTS = """\
written under OUT (other files there are left alone; each file is replaced atomically):
  tis.parquet      one row per (alignment, dataset, model, scheme, mode, indicator, variant):
                   chosen and best checkpoint, their mean Dice, TIS with its bootstrap interval,
                   complete, notes
  rank.parquet     Spearman and Kendall correlation of each score with mean Dice, per cell
  comparison.csv   every printed value beside its recomputation under each alignment
  audit.md         the report: matching cells per table, what the results support, the paper's
                   summary claims recomputed, the pretraining the online rule needs

The defaults are the files in the repository's paper/ folder (found beside the medseg package,
so they exist in a clone or an editable install).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "paper-audit",
        help="recompute the paper's TIS tables from the authors' published results",
        description="Compute TIS (Eq. 1) from the authors' published per-run results under two "
        "alignments (paper_text: checkpoints aligned by pretraining length; authors: the advanced "
        "scheme paired by position, as their evaluation did) and compare with the printed tables.",
        epilog=OUTPUTS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--downstream-csv",
        type=Path,
        default=DEFAULT_DOWNSTREAM,
        help="the authors' downstream_scores.csv (default: paper/results/downstream_scores.csv)",
    )
    parser.add_argument(
        "--robustness-csv",
        type=Path,
        default=DEFAULT_ROBUSTNESS,
        help="the authors' robustness_scores.csv (default: paper/results/robustness_scores.csv)",
    )
    parser.add_argument(
        "--accuracy-csv",
        type=Path,
        default=DEFAULT_ACCURACY,
        help="ImageNet top-1 per checkpoint (default: paper/results/imagenet_accuracy.csv)",
    )
    parser.add_argument(
        "--printed",
        type=Path,
        default=DEFAULT_PRINTED,
        help="the transcribed printed tables (default: paper/printed_tables.csv)",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs (created if missing)")
    parser.add_argument(
        "--bootstrap",
        type=positive_int,
        default=400,
        help="bootstrap resamples for the TIS intervals (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int_at_least(0), default=0, help="non-negative seed of the bootstrap (default: %(default)s)"
    )
    parser.set_defaults(run=run)


def _shown(path: Path, default: Path) -> str | None:
    return None if Path(path).resolve() == default.resolve() else str(path)


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run, with only the options that differ from the defaults."""
    parts = ["medseg", "paper-audit"]
    for option, value, default in (
        ("--downstream-csv", args.downstream_csv, DEFAULT_DOWNSTREAM),
        ("--robustness-csv", args.robustness_csv, DEFAULT_ROBUSTNESS),
        ("--accuracy-csv", args.accuracy_csv, DEFAULT_ACCURACY),
        ("--printed", args.printed, DEFAULT_PRINTED),
    ):
        if _shown(value, default):
            parts += [option, str(value)]
    parts += ["--out", str(args.out)]
    if args.bootstrap != 400:
        parts += ["--bootstrap", str(args.bootstrap)]
    if args.seed != 0:
        parts += ["--seed", str(args.seed)]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> None:
    from medseg.atomic import atomic_file, check_dir_target
    from medseg.audit.report import render
    from medseg.audit.run import run_audit

    out = Path(args.out)
    check_dir_target(out)
    audit = run_audit(
        args.downstream_csv,
        args.robustness_csv,
        args.accuracy_csv,
        args.printed,
        bootstrap=args.bootstrap,
        seed=args.seed,
    )
    writers = {
        "tis.parquet": lambda tmp: audit.tis.to_parquet(tmp, index=False),
        "rank.parquet": lambda tmp: audit.rank.to_parquet(tmp, index=False),
        "comparison.csv": lambda tmp: audit.comparison.drop(columns="printed").to_csv(
            tmp, index=False, float_format="%.6f"
        ),
        "audit.md": lambda tmp: tmp.write_text(render(audit, command_line(args)) + "\n", encoding="utf-8"),
    }
    for name, write in writers.items():
        with atomic_file(out / name) as tmp:
            write(tmp)
    counts = audit.comparison.groupby("table", sort=False)[["match_paper_text", "match_authors"]].sum()
    sizes = audit.comparison.groupby("table", sort=False).size()
    print(f"wrote {out}/tis.parquet, rank.parquet, comparison.csv, audit.md")
    print(
        "matching printed cells (paper_text, authors): "
        + ", ".join(f"{t} {int(r.match_paper_text)}/{int(r.match_authors)} of {sizes[t]}" for t, r in counts.iterrows())
    )
