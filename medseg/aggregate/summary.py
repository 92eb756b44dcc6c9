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


def summary(out: Path) -> str:
    """The summary of the aggregated tables under `out` (tables/, figures/), or why there is none yet."""
    import pandas as pd

    from medseg.aggregate.saving import saving_headline

    tables, figures = Path(out) / "tables", Path(out) / "figures"
    needed = [tables / f"{name}.parquet" for name in ("progress", "tis", "online_saving")]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        return f"medseg aggregate: no summary yet ({', '.join(missing)} missing); run `medseg aggregate`"
    progress = pd.read_parquet(needed[0])
    tis = pd.read_parquet(needed[1])
    done = ", ".join(
        f"{STAGE_NAMES.get(stage, stage)} {done} of {expected}"
        for stage, expected, done in progress.itertuples(index=False)
    )
    lines = [f"Runs of the grid done: {done}.", "TIS (paper Eq. 1) over the complete cells, main variants:"]
    width = max(len(name) for name in INDICATOR_ORDER)
    lines.append(f"  {'indicator':<{width}}   mean  worst  complete cells")
    for indicator, mean, worst, complete, cells in indicator_summary(tis).itertuples(index=False):
        lines.append(f"  {indicator:<{width}}  {_number(mean)}  {_number(worst)}  {complete} of {cells}")
    cells = main_rows(tis)[["dataset", "model", "scheme", "mode"]].drop_duplicates()
    incomplete = tis[~tis["complete"].fillna(False).astype(bool)][["dataset", "model", "scheme", "mode"]]
    incomplete = incomplete.drop_duplicates()
    lines.append(
        f"Incomplete cells: {len(incomplete)} of {len(cells)} (runs or scores missing; `notes` in {tables / 'tis.parquet'})."
    )
    lines.append(f"Online method: {saving_headline(pd.read_parquet(needed[2]))}")
    lines.append(f"Tables: {tables}/*.md and *.parquet; figures: {figures}/*.png and *.svg.")
    lines.append("Report: snakemake --report results/report.html (add the --configfile of this run).")
    return "\n".join(lines)
