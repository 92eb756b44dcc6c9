"""Transferability indicator scores (TIS, paper Eq. 1) from long tables of runs and scores.

TIS(indicator) = mean Dice at the checkpoint the indicator chooses / the best mean Dice over the
cell's checkpoints, for every (dataset, model, scheme, mode) cell. A scheme's checkpoints are
the scratch encoder (epoch 0) plus its own.

Inputs are plain long DataFrames, so this project's own Parquet tables and the authors'
published results (converted by `medseg.audit`) go through the same code:

- `runs`: one row per downstream run: `dataset, model, scheme, epoch, mode, seed, dice`
  (`mode`: `full` or `decoder`). The scratch encoder's runs are `epoch` 0 under
  `scheme` `scratch` and count for every scheme; a scheme's own epoch-0 rows take precedence.
  `dice_runs(scores)` makes this table from the downstream stage's `scores.parquet` rows.
- `robustness` (optional): `dataset, model, scheme, epoch, distance, margin, level, pooled,
  robustness` (Eq. 3: higher is better), one row per checkpoint and variant; epoch 0 as above.
- `accuracy` (optional): `model, scheme, epoch, val_top1`, the ImageNet validation top-1 of
  each pretrained checkpoint. A scratch encoder without a value counts as 0 (its classifier is
  untrained: chance level, below every pretrained checkpoint).

Indicators (the selection rules are `medseg.selection`'s):
`robustness_offline` and `robustness_online` for every robustness variant in the table (the
`main` column marks the paper's main variant of the row's mode), `imagenet_accuracy` (the
checkpoint with the highest top-1, ties to the earliest) and `no_pretraining` (epoch 0).

A cell is `complete` when every expected checkpoint has exactly one run per expected seed and
the indicator's scores are all known; otherwise the row says why in `notes`. Every robustness
variant in the table is expected in every cell: a cell without robustness (or without one
variant) still gets its robustness rows, incomplete, with a note. Incomplete cells
are computed from the runs they have (duplicated runs count as they are), never dropped.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from medseg.names import SCRATCH, SCRATCH_EPOCH
from medseg.selection import MAIN_VARIANTS, offline_choice, online_walk

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

CELL = ["dataset", "model", "scheme", "mode"]
VARIANT = ["distance", "margin", "level", "pooled"]
RUN_COLUMNS = ["dataset", "model", "scheme", "epoch", "mode", "seed", "dice"]
ROBUSTNESS_COLUMNS = ["dataset", "model", "scheme", "epoch", *VARIANT, "robustness"]
ACCURACY_COLUMNS = ["model", "scheme", "epoch", "val_top1"]
INDICATORS = ("robustness_offline", "robustness_online", "imagenet_accuracy", "no_pretraining")
COLUMNS = [
    *CELL,
    "indicator",
    *VARIANT,
    "main",
    "chosen_epoch",
    "chosen_dice",
    "best_epoch",
    "best_dice",
    "tis",
    "tis_low",
    "tis_high",
    "pretrained_epochs",
    "complete",
    "notes",
]
RANK_COLUMNS = [*CELL, "score", *VARIANT, "main", "n_checkpoints", "spearman", "kendall"]


def dice_runs(scores: pd.DataFrame) -> pd.DataFrame:
    """The `runs` table from downstream `scores.parquet` rows: metric `dice`, class `mean`."""
    rows = scores[(scores["metric"] == "dice") & (scores["class"] == "mean")]
    return rows.rename(columns={"value": "dice"})[RUN_COLUMNS].reset_index(drop=True)


def _check_columns(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"the {name} table lacks the column(s) {', '.join(missing)}")


@dataclass
class _Cell:
    """One (dataset, model, scheme, mode) cell: its runs per checkpoint and what is missing."""

    key: tuple
    epochs: list[int]
    runs: dict[int, np.ndarray] = field(default_factory=dict)  # epoch -> Dice of its runs, as they are
    mean: dict[int, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    interval: dict[int, tuple[float, float]] = field(default_factory=dict)  # epoch -> bootstrap TIS interval

    def best(self) -> tuple[int | None, float]:
        known = [e for e in self.epochs if e in self.mean]
        if not known:
            return None, float("nan")
        best = offline_choice(known, self.mean)
        return best, self.mean[best]

    def bootstrap(self, n: int, seed: int, confidence: float) -> None:
        """TIS intervals of every checkpoint: each checkpoint's runs resampled with replacement."""
        import numpy as np

        rng = np.random.default_rng([seed, zlib.crc32("/".join(map(str, self.key)).encode())])
        means = np.full((n, len(self.epochs)), np.nan)
        for column, epoch in enumerate(self.epochs):
            dice = self.runs.get(epoch)
            if dice is not None:
                means[:, column] = dice[rng.integers(0, len(dice), size=(n, len(dice)))].mean(axis=1)
        if np.isnan(means).all():
            return
        ratio = means / np.nanmax(means, axis=1, keepdims=True)
        tail = (1 - confidence) / 2
        low, high = np.quantile(ratio, [tail, 1 - tail], axis=0)
        self.interval = {e: (float(low[i]), float(high[i])) for i, e in enumerate(self.epochs) if e in self.runs}


def _with_scratch(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Every scheme's rows, plus the scratch rows at epoch 0 for each scheme without its own."""
    import pandas as pd

    schemes = sorted(s for s in table["scheme"].unique() if s != SCRATCH)
    scratch = table[(table["scheme"] == SCRATCH) & (table["epoch"] == SCRATCH_EPOCH)]
    parts = [table[table["scheme"] != SCRATCH]]
    for scheme in schemes:
        if not len(scratch):
            break
        own = table[(table["scheme"] == scheme) & (table["epoch"] == SCRATCH_EPOCH)]
        has_zero = own[keys].drop_duplicates()
        extra = scratch.merge(has_zero, on=keys, how="left", indicator=True)
        parts.append(extra[extra["_merge"] == "left_only"].drop(columns="_merge").assign(scheme=scheme))
    return pd.concat(parts, ignore_index=True)


def _cells(runs: pd.DataFrame, epochs: list[int], seeds: list) -> list[_Cell]:
    from collections import Counter, defaultdict

    import numpy as np

    table = _with_scratch(runs, ["dataset", "model", "mode"])
    grouped: dict[tuple, dict[int, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    for dataset, model, scheme, epoch, mode, seed, dice in table[RUN_COLUMNS].itertuples(index=False):
        grouped[(dataset, model, scheme, mode)][int(epoch)].append((seed, dice))
    cells = []
    for key in sorted(grouped):
        by_epoch = grouped[key]
        cell = _Cell(key=key, epochs=list(epochs))
        for epoch in epochs:
            rows = by_epoch.get(epoch, [])
            dice = np.array([d for _, d in rows], dtype=float)
            dice = dice[~np.isnan(dice)]
            if not len(dice):
                cell.notes.append(f"epoch {epoch}: no runs")
                continue
            cell.runs[epoch] = dice
            cell.mean[epoch] = float(dice.mean())
            counts = Counter(s for s, _ in rows)
            lacking = [s for s in seeds if s not in counts]
            if lacking:
                cell.notes.append(f"epoch {epoch}: seed {', '.join(map(str, lacking))} missing")
            twice = sorted(s for s, n in counts.items() if n > 1)
            if twice:
                cell.notes.append(f"epoch {epoch}: seed {', '.join(map(str, twice))} repeated")
            if len(dice) < len(rows):
                cell.notes.append(f"epoch {epoch}: {len(rows) - len(dice)} run(s) without Dice")
        unexpected = sorted(set(by_epoch) - set(epochs))
        if unexpected:
            cell.notes.append(f"epochs {unexpected} not among the checkpoints, ignored")
        cells.append(cell)
    return cells


def _score_lookup(table: pd.DataFrame, keys: list[str], value: str) -> dict[tuple, dict[int, float]]:
    """{(keys...): {epoch: value}}, scratch rows filled in at epoch 0 per scheme, unknown values left out."""
    table = _with_scratch(table, [k for k in keys if k != "scheme"])
    table = table[table[value].notna()]
    repeated = table.duplicated([*keys, "epoch"])
    if repeated.any():
        row = table[repeated].iloc[0]
        raise ValueError(
            f"the {value} table has {int(repeated.sum())} repeated rows, e.g. "
            + ", ".join(f"{k}={row[k]}" for k in [*keys, "epoch"])
        )
    lookup: dict[tuple, dict[int, float]] = {}
    for *key, epoch, score in table[[*keys, "epoch", value]].itertuples(index=False):
        lookup.setdefault(tuple(key), {})[int(epoch)] = float(score)
    return lookup


def _variants(robustness: pd.DataFrame) -> list[tuple]:
    """Every robustness variant in the table, in order of appearance: each cell is expected to have all."""
    return list(dict.fromkeys(tuple(v) for v in robustness[VARIANT].itertuples(index=False)))


def _epochs(runs: pd.DataFrame, epochs: Iterable[int] | None) -> list[int]:
    if epochs is None:
        return sorted({int(e) for e in runs["epoch"]} | {SCRATCH_EPOCH})
    return sorted({int(e) for e in epochs})


def _is_main(mode: str, variant: tuple) -> bool:
    main = MAIN_VARIANTS.get(mode)
    return main is not None and tuple(variant) == (main.distance, main.margin, main.level, main.pooled)


def tis_table(
    runs: pd.DataFrame,
    robustness: pd.DataFrame | None = None,
    accuracy: pd.DataFrame | None = None,
    *,
    epochs: Iterable[int] | None = None,
    seeds: Iterable | None = None,
    bootstrap: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per (cell, indicator, variant) with the columns `COLUMNS`.

    `epochs`: the checkpoints every cell should have (default: every epoch in `runs`, with 0).
    `seeds`: the seeds every checkpoint should have (default: every seed in `runs`).
    `bootstrap`: number of resamples for the interval `tis_low`..`tis_high` at `confidence`
    (each checkpoint's runs drawn with replacement, independently; the chosen checkpoint stays
    fixed, since no indicator looks at Dice); 0 leaves the interval empty. `seed` makes it
    repeatable. `pretrained_epochs`: the pretraining an indicator needed before it could choose:
    the last checkpoint for the offline ones, the end of its trail for the online rule, 0 for
    no pretraining.
    """
    import pandas as pd

    _check_columns(runs, RUN_COLUMNS, "runs")
    epochs = _epochs(runs, epochs)
    seeds = sorted(runs["seed"].unique().tolist()) if seeds is None else list(seeds)
    cells = _cells(runs, epochs, seeds)
    rob: dict[tuple, dict[int, float]] = {}
    variants: list[tuple] = []
    if robustness is not None:
        _check_columns(robustness, ROBUSTNESS_COLUMNS, "robustness")
        rob = _score_lookup(robustness, ["dataset", "model", "scheme", *VARIANT], "robustness")
        variants = _variants(robustness)
    acc: dict[tuple, dict[int, float]] = {}
    if accuracy is not None:
        _check_columns(accuracy, ACCURACY_COLUMNS, "accuracy")
        acc = _score_lookup(accuracy, ["model", "scheme"], "val_top1")
    last = max(epochs)

    rows = []
    for cell in cells:
        dataset, model, scheme, mode = cell.key
        best_epoch, best_dice = cell.best()
        if bootstrap:
            cell.bootstrap(bootstrap, seed, confidence)

        def add(indicator, chosen, pretrained, notes, variant=(None, None, None, None)):
            notes = cell.notes + notes
            dice = cell.mean.get(chosen, float("nan"))
            low, high = cell.interval.get(chosen, (float("nan"), float("nan")))
            rows.append(
                (
                    dataset,
                    model,
                    scheme,
                    mode,
                    indicator,
                    *variant,
                    None if variant[0] is None else _is_main(mode, variant),
                    chosen,
                    dice,
                    best_epoch,
                    best_dice,
                    dice / best_dice,
                    low,
                    high,
                    pretrained,
                    not notes,
                    "; ".join(notes),
                )
            )

        add("no_pretraining", SCRATCH_EPOCH, 0, [])
        if accuracy is not None:
            top1 = {SCRATCH_EPOCH: 0.0, **acc.get((model, scheme), {})}
            lacking = [e for e in cell.epochs if e not in top1]
            notes = [f"no ImageNet top-1 for epoch(s) {lacking}"] if lacking else []
            add("imagenet_accuracy", offline_choice([e for e in cell.epochs if e in top1], top1), last, notes)
        # Every variant of the table for every cell: a cell without it gets rows marked incomplete,
        # so that a summary over the rows sees the gap instead of averaging over fewer cells.
        for variant in variants:
            scores = rob.get((dataset, model, scheme, *variant), {})
            missing = [] if scores else ["no robustness for any checkpoint"]
            lacking = [e for e in cell.epochs if e not in scores]
            notes = missing or ([f"no robustness for epoch(s) {lacking}"] if lacking else [])
            known = [e for e in cell.epochs if e in scores]
            add("robustness_offline", offline_choice(known, scores) if known else None, last, notes, variant)
            if last == SCRATCH_EPOCH:
                continue  # no pretrained checkpoint: nothing to walk
            walk = online_walk(cell.epochs, scores)
            lacks = [] if walk.finished else [f"the online walk lacks the robustness of epoch {walk.needed}"]
            notes = missing or lacks
            add("robustness_online", walk.chosen, walk.pretrained_epochs, notes, variant)

    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("chosen_epoch", "best_epoch", "pretrained_epochs"):
        table[column] = table[column].astype("Int64")
    for column in ("pooled", "main", "complete"):
        table[column] = table[column].astype("boolean")
    table["margin"] = table["margin"].astype(float)
    return table


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either side is constant."""
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic) if _varies(x) and _varies(y) else float("nan")


def kendall(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (accounts for ties); NaN when either side is constant."""
    from scipy.stats import kendalltau

    return float(kendalltau(x, y).statistic) if _varies(x) and _varies(y) else float("nan")


def _varies(values: Sequence[float]) -> bool:
    return len(set(values)) > 1


def rank_table(
    runs: pd.DataFrame,
    robustness: pd.DataFrame | None = None,
    accuracy: pd.DataFrame | None = None,
    *,
    epochs: Iterable[int] | None = None,
) -> pd.DataFrame:
    """Per cell and score, Spearman and Kendall (tau-b) correlation of the score with mean Dice.

    Scores: every robustness variant (`score` = `robustness`) and the ImageNet top-1
    (`imagenet_accuracy`; the scratch encoder at 0 unless given). Over the cell's checkpoints
    that have both a mean Dice and a score (`n_checkpoints`), the scratch encoder included. Every
    robustness variant of the table has a row in every cell (0 checkpoints where the cell lacks it).
    """
    import pandas as pd

    _check_columns(runs, RUN_COLUMNS, "runs")
    cells = _cells(runs, _epochs(runs, epochs), sorted(runs["seed"].unique().tolist()))
    rob: dict[tuple, dict[int, float]] = {}
    variants: list[tuple] = []
    if robustness is not None:
        _check_columns(robustness, ROBUSTNESS_COLUMNS, "robustness")
        rob = _score_lookup(robustness, ["dataset", "model", "scheme", *VARIANT], "robustness")
        variants = _variants(robustness)
    acc: dict[tuple, dict[int, float]] | None = None
    if accuracy is not None:
        _check_columns(accuracy, ACCURACY_COLUMNS, "accuracy")
        acc = _score_lookup(accuracy, ["model", "scheme"], "val_top1")
    rows = []
    for cell in cells:
        dataset, model, scheme, mode = cell.key
        sources = [("robustness", variant, rob.get((dataset, model, scheme, *variant), {})) for variant in variants]
        if acc is not None:
            sources.append(
                ("imagenet_accuracy", (None, None, None, None), {SCRATCH_EPOCH: 0.0, **acc.get((model, scheme), {})})
            )
        for name, variant, scores in sources:
            both = [e for e in cell.epochs if e in cell.mean and e in scores]
            x = [scores[e] for e in both]
            y = [cell.mean[e] for e in both]
            rows.append(
                (
                    dataset,
                    model,
                    scheme,
                    mode,
                    name,
                    *variant,
                    None if variant[0] is None else _is_main(mode, variant),
                    len(both),
                    spearman(x, y) if len(both) > 1 else float("nan"),
                    kendall(x, y) if len(both) > 1 else float("nan"),
                )
            )
    table = pd.DataFrame(rows, columns=RANK_COLUMNS)
    table["pooled"] = table["pooled"].astype("boolean")
    table["main"] = table["main"].astype("boolean")
    table["margin"] = table["margin"].astype(float)
    return table
