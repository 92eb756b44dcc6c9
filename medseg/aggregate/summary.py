"""The few lines a finished run ends with: runs done, TIS per indicator, incomplete cells, where things are."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

STAGE_NAMES = {
    "scores": "downstream runs",
    "downstream_history": "downstream histories",
    "robustness": "robustness files",
    "rankme": "RankMe files",
    "pretraining": "pretraining segments",
    "online": "online choices",
}
INDICATOR_ORDER = (
    "robustness_offline",
    "robustness_online",
    "rankme_offline",
    "rankme_online",
    "imagenet_accuracy",
    "no_pretraining",
)


def main_rows(tis: pd.DataFrame) -> pd.DataFrame:
    """One row per cell and indicator: robustness and RankMe at their main variant, the baselines as they are."""
    return tis[tis["main"].fillna(True).astype(bool)]


def indicator_summary(tis: pd.DataFrame) -> pd.DataFrame:
    """Per indicator (main variants): mean and worst TIS over the complete cells, and how many cells are complete."""
    import pandas as pd

    rows = []
    for indicator, group in main_rows(tis).groupby("indicator", sort=False):
        complete = group[group["complete"].fillna(False).astype(bool)]
        rows.append((indicator, complete["tis"].mean(), complete["tis"].min(), len(complete), len(group)))
    table = pd.DataFrame(rows, columns=["indicator", "mean_tis", "worst_tis", "complete_cells", "cells"])
    order = {name: position for position, name in enumerate(INDICATOR_ORDER)}
    return table.sort_values("indicator", key=lambda names: names.map(order)).reset_index(drop=True)


def _number(value: float) -> str:
    return "  n/a" if value != value else f"{value:.3f}"


SUMMARY_INPUTS = ("progress", "tis", "online_saving")


def _parts(tables: Path) -> dict | None:
    """What a summary says, from the tables under `tables`; None when one of `SUMMARY_INPUTS` is missing."""
    import pandas as pd

    from medseg.aggregate.saving import saving_headline

    paths = {name: tables / f"{name}.parquet" for name in SUMMARY_INPUTS}
    if not all(path.is_file() for path in paths.values()):
        return None
    progress, tis = pd.read_parquet(paths["progress"]), pd.read_parquet(paths["tis"])
    cells = main_rows(tis)[["dataset", "model", "scheme", "mode"]].drop_duplicates()
    incomplete = tis[~tis["complete"].fillna(False).astype(bool)][["dataset", "model", "scheme", "mode"]]
    return {
        "done": [
            (STAGE_NAMES.get(stage, stage), done, expected)
            for stage, expected, done in progress.itertuples(index=False)
        ],
        "indicators": indicator_summary(tis),
        "incomplete": len(incomplete.drop_duplicates()),
        "cells": len(cells),
        "online": saving_headline(pd.read_parquet(paths["online_saving"])),
    }


def summary(out: Path) -> str:
    """The summary of the aggregated tables under `out` (tables/, figures/), or why there is none yet."""
    tables, figures = Path(out) / "tables", Path(out) / "figures"
    parts = _parts(tables)
    if parts is None:
        missing = ", ".join(str(tables / f"{name}.parquet") for name in SUMMARY_INPUTS)
        return f"medseg aggregate: no summary yet (it reads {missing}); run `medseg aggregate`"
    done = ", ".join(f"{stage} {done} of {expected}" for stage, done, expected in parts["done"])
    lines = [f"Runs of the grid done: {done}.", "TIS (paper Eq. 1) over the complete cells, main variants:"]
    width = max(len(name) for name in INDICATOR_ORDER)
    lines.append(f"  {'indicator':<{width}}   mean  worst  complete cells")
    for indicator, mean, worst, complete, cells in parts["indicators"].itertuples(index=False):
        lines.append(f"  {indicator:<{width}}  {_number(mean)}  {_number(worst)}  {complete} of {cells}")
    lines.append(
        f"Incomplete cells: {parts['incomplete']} of {parts['cells']} (runs or scores missing; `notes` in "
        f"{tables / 'tis.parquet'})."
    )
    lines.append(f"Online method: {parts['online']}")
    lines.append(f"Tables: {tables}/*.md and *.parquet; figures: {figures}/*.png and *.svg.")
    lines.append("Report: snakemake --report results/report.html (add the --configfile of this run).")
    return "\n".join(lines)


def summary_markdown(tables: Path) -> str:
    """The summary as a Markdown page for the report: runs done, TIS per indicator, the online saving."""
    parts = _parts(Path(tables))
    if parts is None:
        return "# Summary\n\nNo aggregated tables yet.\n"
    lines = ["# Summary", "", "## Runs of the grid done", "", "| files | done | of |", "|---|---|---|"]
    lines += [f"| {stage} | {done} | {expected} |" for stage, done, expected in parts["done"]]
    lines += ["", "## TIS (paper Eq. 1) over the complete cells, main variants", ""]
    lines += ["| indicator | mean | worst | complete cells |", "|---|---|---|---|"]
    for indicator, mean, worst, complete, cells in parts["indicators"].itertuples(index=False):
        lines.append(f"| {indicator} | {_number(mean).strip()} | {_number(worst).strip()} | {complete} of {cells} |")
    lines += [
        "",
        f"Incomplete cells: {parts['incomplete']} of {parts['cells']} (runs or scores missing; `notes` in tis.parquet).",
        "",
        f"Online method: {parts['online']}",
        "",
    ]
    return "\n".join(lines)
