"""The online method's saving: per cell, where the online walk stopped and the pretraining it spared.

`online_saving` reads the main-variant `robustness_online` rows of the TIS table
(`medseg.aggregate.tis`) and the collected pretraining histories (`medseg.aggregate.collect`),
and gives per (dataset, model, scheme, mode) the chosen checkpoint, the pretraining epochs the
walk needed against the planned schedule, and their wall time; `saving_headline` sums it into
the one sentence the Markdown table and the run summary start with. `medseg.aggregate.tables`
writes it as the `online_saving` stem. Only the standard library and the vocabulary modules are
imported at module level (pandas inside the functions).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medseg.aggregate.frames import CELL, checked, missing, plain, sorted_keys, typed

if TYPE_CHECKING:
    import pandas as pd

SCHEMA = {
    **dict.fromkeys(CELL, "string"),
    **dict.fromkeys(["chosen_epoch", "pretrained_epochs", "planned_epochs"], "Int64"),
    **dict.fromkeys(["pretrained_seconds", "planned_seconds", "saved_seconds", "saved_fraction"], "float64"),
    "complete": "bool",
    "notes": "string",
}
"""The columns of `online_saving`, with their types (fixed, so an empty table has the same schema)."""
PRETRAINING_COLUMNS = ["model", "scheme", "epoch", "train_epoch", "seconds"]


def _epoch_seconds(pretraining: pd.DataFrame) -> dict[tuple, dict[int, float]]:
    """(model, scheme) -> {train_epoch: seconds}; a train epoch in two segments counts once (the earlier)."""
    known = pretraining[pretraining["seconds"].notna()].sort_values(["model", "scheme", "train_epoch", "epoch"])
    seconds: dict[tuple, dict[int, float]] = {}
    for model, scheme, train_epoch, value in known[["model", "scheme", "train_epoch", "seconds"]].itertuples(
        index=False
    ):
        seconds.setdefault((model, scheme), {}).setdefault(int(train_epoch), float(value))
    return seconds


def online_saving(tis: pd.DataFrame, pretraining: pd.DataFrame, *, planned_epochs: int | None = None) -> pd.DataFrame:
    """Per (dataset, model, scheme, mode): where the online walk (main variant) stopped and what that saved.

    From the TIS table's `robustness_online` rows with `main` true: `chosen_epoch`, and
    `pretrained_epochs` (the last checkpoint the walk read). `planned_epochs`: the full schedule,
    by default the last checkpoint of the TIS table (what the offline indicators pretrained).
    Seconds are the pretraining history's wall time per epoch (`pretraining`: `seconds` per
    `train_epoch` of each (model, scheme) chain): `pretrained_seconds` sums train epochs
    1..pretrained_epochs, `planned_seconds` 1..planned_epochs, `saved_seconds` is the difference.
    A train epoch the history lacks (a chain still running, or stopped early) counts at the mean
    of the chain's known epochs, and the row is incomplete with a note; with no history at all the
    seconds are unknown. `complete` also requires the TIS row to be complete (a walk still waiting
    for a checkpoint is).

    A (model, scheme) chain is pretrained once for every dataset and mode, so these savings are
    per cell: what each cell's user, who needs only that (dataset, mode), would have saved by
    stopping the chain where the cell's walk stopped. Summed over cells (`saving_headline`) they
    add up those users' savings, not the saving of one shared pretraining, which stops at the
    latest stop among the chain's cells (the Markdown's per-chain table).
    """
    from medseg.aggregate.tis import COLUMNS

    tis = checked(tis, COLUMNS, "tis")
    pretraining = checked(pretraining, PRETRAINING_COLUMNS, "pretraining")
    main = tis["main"].astype("boolean").fillna(False).astype(bool)
    online = tis[(tis["indicator"] == "robustness_online") & main]
    if planned_epochs is None:
        planned_epochs = int(tis["pretrained_epochs"].max()) if len(tis) else 0
    seconds = _epoch_seconds(pretraining)
    by_cell = {tuple(plain(row[c]) for c in CELL): row for row in online.to_dict("records")}
    rows = [
        _saving_row(key, by_cell[key], planned_epochs, seconds.get((key[1], key[2]), {}))
        for key in sorted_keys(by_cell, CELL)
    ]
    return typed(rows, SCHEMA)


def _spent(known: dict[int, float], epochs: int) -> tuple[float, list[int]]:
    """Seconds of train epochs 1..epochs and the epochs the history lacks (counted at the known mean)."""
    lacking = [e for e in range(1, epochs + 1) if e not in known]
    if not known:
        return (0.0 if epochs == 0 else float("nan")), lacking
    mean = sum(known.values()) / len(known)
    return sum(known.get(e, mean) for e in range(1, epochs + 1)), lacking


def _saving_row(key: tuple, row: dict, planned: int, known: dict[int, float]) -> dict:
    pretrained = int(row["pretrained_epochs"])
    pretrained_seconds, _ = _spent(known, pretrained)
    planned_seconds, lacking = _spent(known, planned)
    notes = []
    if missing(row["chosen_epoch"]):
        notes.append("the walk is unfinished (see notes in tis.parquet): the saving so far is an upper bound")
    elif not bool(plain(row["complete"])):
        notes.append("the TIS row is incomplete (see notes in tis.parquet)")
    if lacking:
        filled = (
            "no epoch is known"
            if not known
            else f"counted at the mean of the known epochs ({sum(known.values()) / len(known):.1f} s)"
        )
        notes.append(f"the pretraining history lacks train epoch(s) {_ranges(lacking)}: {filled}")
    saved = planned_seconds - pretrained_seconds
    return {
        **dict(zip(CELL, key)),
        "chosen_epoch": plain(row["chosen_epoch"]),
        "pretrained_epochs": pretrained,
        "planned_epochs": planned,
        "pretrained_seconds": pretrained_seconds,
        "planned_seconds": planned_seconds,
        "saved_seconds": saved,
        "saved_fraction": saved / planned_seconds if planned_seconds else float("nan"),
        "complete": not notes,
        "notes": "; ".join(notes),
    }


def _ranges(epochs: list[int]) -> str:
    """'3-5, 9' for [3, 4, 5, 9] (sorted, distinct)."""
    runs: list[list[int]] = []
    for epoch in epochs:
        if runs and epoch == runs[-1][-1] + 1:
            runs[-1].append(epoch)
        else:
            runs.append([epoch])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def time_unit(seconds: float) -> tuple[str, float]:
    """The unit that shows `seconds` readably: s under 2 minutes, min under 2 hours, h above."""
    if seconds < 120:
        return "s", 1.0
    if seconds < 7200:
        return "min", 60.0
    return "h", 3600.0


def saving_headline(saving: pd.DataFrame) -> str:
    """One sentence: the online rule's pretraining over all cells against the planned schedule."""
    if not len(saving):
        return "No online choice yet: the TIS table has no main-variant robustness (online) rows."
    pretrained, planned = int(saving["pretrained_epochs"].sum()), int(saving["planned_epochs"].sum())
    timed = saving[saving["planned_seconds"].notna()]
    total, saved = float(timed["planned_seconds"].sum()), float(timed["saved_seconds"].sum())
    unit, size = time_unit(total)
    share = f"{pretrained / planned * 100:.0f} %" if planned else "n/a"
    time = (
        f"summed over the cells, it saved {saved / size:.1f} of {total / size:.1f} {unit} of pretraining time "
        f"({saved / total * 100:.0f} %)"
        if total
        else "no pretraining time is known"
    )
    problems = []
    untimed = len(saving) - len(timed)
    if untimed:
        problems.append(f"{untimed} without pretraining history")
    incomplete = int((~saving["complete"]).sum())
    if incomplete:
        problems.append(f"{incomplete} incomplete")
    problems = f" ({', '.join(problems)}: see online_saving.parquet)" if problems else ""
    return (
        f"The online rule (main variant) pretrained {share} of the planned epochs ({pretrained} of {planned}) "
        f"over {len(saving)} cells{problems}: {time}."
    )
