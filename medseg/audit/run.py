"""The paper audit's computation: the authors' results through `medseg.aggregate.tis`, under both alignments.

- `paper_text`: the checkpoints aligned by pretraining length, as the paper describes the method.
- `authors`: the advanced scheme's Dice values paired with the checkpoints by position, as the
  authors' evaluation did (`authors.align_authors`); the simple scheme is unaffected.

Besides the two alignments, three checks that are not alignments: COVID-QU scored with IDRiD's
robustness, the pooling inverted (both with the authors' alignment: explanations tried for
the printed COVID-QU values), and the paper-text computation with the release's copied epoch-0
robustness (ACDC, IDRiD) treated as unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medseg.aggregate import tis as tis_module
from medseg.audit import ALIGNMENTS, authors
from medseg.audit import printed as printed_module
from medseg.names import SCRATCH_EPOCH

if TYPE_CHECKING:
    import pandas as pd

# Checks beyond the two alignments: name -> (alignment, what is changed), in report order.
CHECKS = {
    "authors_idrid_robustness": ("authors", "COVID-QU scored with IDRiD's robustness values"),
    "authors_inverted_pooling": (
        "authors",
        "pooling inverted: pooled robustness for full training, unpooled for decoder-only",
    ),
}
UNCOPIED = "paper_text_uncopied"


@dataclass
class Audit:
    """Everything the report shows."""

    inputs: dict[str, Path]
    runs: pd.DataFrame
    robustness: pd.DataFrame
    epochs: list[int]
    seeds: list[int]
    copied: list[str]  # datasets whose epoch-0 robustness copies the last checkpoint's
    tis: pd.DataFrame  # both alignments, column `alignment`
    rank: pd.DataFrame  # both alignments, column `alignment`
    comparison: pd.DataFrame  # one row per printed cell
    uncopied: pd.DataFrame  # paper_text TIS with the copied epoch-0 robustness left out
    bootstrap: int
    seed: int


def run_audit(
    downstream: Path, robustness: Path, accuracy: Path, printed: Path, *, bootstrap: int = 400, seed: int = 0
) -> Audit:
    import pandas as pd

    runs = authors.read_downstream(downstream)
    rob = authors.read_robustness(robustness)
    acc = authors.read_accuracy(accuracy)
    table = printed_module.read_printed(printed)
    epochs = sorted(set(runs["epoch"]) | set(rob["epoch"]) | {SCRATCH_EPOCH})
    seeds = sorted(runs["seed"].unique().tolist())
    aligned = {"paper_text": runs, "authors": authors.align_authors(runs, epochs)}

    def tis(alignment_runs, robustness_table, n=0):
        return tis_module.tis_table(
            alignment_runs, robustness_table, acc, epochs=epochs, seeds=seeds, bootstrap=n, seed=seed
        )

    tis_tables, rank_tables = [], []
    comparison = table[["table", "row", "column", "value", "printed"]].copy()
    for alignment in ALIGNMENTS:
        result = tis(aligned[alignment], rob, bootstrap)
        tis_tables.append(result.assign(alignment=alignment))
        rank_tables.append(
            tis_module.rank_table(aligned[alignment], rob, acc, epochs=epochs).assign(alignment=alignment)
        )
        comparison[alignment] = printed_module.recompute(table, result)
        comparison[f"match_{alignment}"] = printed_module.matches(comparison[alignment], comparison["printed"])

    idrid = rob[rob["dataset"] == "idrid"]
    variants = {
        "authors_idrid_robustness": pd.concat([rob[rob["dataset"] != "covidqu"], idrid.assign(dataset="covidqu")]),
        "authors_inverted_pooling": rob.assign(pooled=~rob["pooled"].astype(bool)),
    }
    for name, (alignment, _) in CHECKS.items():
        recomputed = printed_module.recompute(table, tis(aligned[alignment], variants[name]))
        comparison[name] = recomputed
        comparison[f"match_{name}"] = printed_module.matches(recomputed, comparison["printed"])

    copied = authors.copied_scratch_robustness(rob)
    kept = rob[~((rob["epoch"] == SCRATCH_EPOCH) & rob["dataset"].isin(copied))]
    uncopied = tis(runs, kept)

    tis_all = pd.concat(tis_tables, ignore_index=True)
    tis_all = _note_copies(tis_all, copied)
    return Audit(
        inputs={
            "downstream": Path(downstream),
            "robustness": Path(robustness),
            "accuracy": Path(accuracy),
            "printed": Path(printed),
        },
        runs=runs,
        robustness=rob,
        epochs=epochs,
        seeds=seeds,
        copied=copied,
        tis=tis_all[["alignment", *tis_module.COLUMNS]],
        rank=pd.concat(rank_tables, ignore_index=True)[["alignment", *tis_module.RANK_COLUMNS]],
        comparison=comparison,
        uncopied=uncopied,
        bootstrap=bootstrap,
        seed=seed,
    )


def _note_copies(table: pd.DataFrame, copied: list[str]) -> pd.DataFrame:
    """Say in `notes` where the offline rule read a copied epoch-0 robustness (it stays `complete`)."""
    affected = (table["indicator"] == "robustness_offline") & table["dataset"].isin(copied)
    note = "epoch-0 robustness in the release is a copy of the last checkpoint's"
    table.loc[affected, "notes"] = table.loc[affected, "notes"].map(lambda n: f"{n}; {note}" if n else note)
    return table
