"""The `tis` step: this project's collected tables through the TIS module (`tis.py`), for the configured grid.

Indicators: `robustness_offline`/`_online` for every robustness variant, `rankme_offline`/`_online`
for every RankMe level, `imagenet_accuracy` (the validation top-1 of this project's pretraining at
each checkpoint) and `no_pretraining`. Every (dataset, model, scheme, mode) cell of the grid gets
its rows, with or without runs; the external encoder files are scored and trained but are not
checkpoints of a pretraining chain, so they take no part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medseg.aggregate import tis
from medseg.aggregate.collect import Grid
from medseg.names import MODES, PRETRAIN_SCHEMES, SCRATCH

if TYPE_CHECKING:
    import pandas as pd


def _of_chains(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of the scratch encoder and the pretraining schemes (not the external files)."""
    return table[table["scheme"].isin([SCRATCH, *PRETRAIN_SCHEMES])]


def checkpoint_accuracy(pretraining: pd.DataFrame) -> pd.DataFrame:
    """ImageNet validation top-1 at each checkpoint: the history row of the checkpoint's own epoch."""
    at_checkpoint = pretraining[pretraining["train_epoch"] == pretraining["epoch"]]
    return at_checkpoint[tis.ACCURACY_COLUMNS].astype({"model": object, "scheme": object}).reset_index(drop=True)


def _plain(table: pd.DataFrame) -> pd.DataFrame:
    """String key columns as plain objects (the TIS module compares and merges them as Python values)."""
    return table.astype({column: object for column in table.columns if str(table[column].dtype) == "string"})


def indicator_tables(
    tables: dict[str, pd.DataFrame], grid: Grid, *, bootstrap: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tis, rank) from the collected `scores`, `robustness`, `rankme` and `pretraining` tables."""
    runs = _plain(_of_chains(tis.dice_runs(tables["scores"])))
    robustness = _plain(_of_chains(tables["robustness"]))
    rankme = _plain(_of_chains(tables["rankme"]))
    accuracy = checkpoint_accuracy(_plain(tables["pretraining"]))
    cells = [
        (dataset, model, scheme, mode)
        for dataset in grid.datasets
        for model in grid.models
        for scheme in PRETRAIN_SCHEMES
        for mode in MODES
    ]
    epochs = grid.epochs()
    tis_table = tis.tis_table(
        runs,
        robustness,
        accuracy,
        rankme,
        epochs=epochs,
        seeds=grid.seeds,
        cells=cells,
        bootstrap=bootstrap,
        seed=seed,
    )
    rank_table = tis.rank_table(runs, robustness, accuracy, rankme, epochs=epochs, cells=cells)
    return tis_table, rank_table
