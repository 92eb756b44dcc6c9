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
- `rankme` (optional): `dataset, model, scheme, epoch, level, rankme`, the RankMe (Garrido et
  al., 2023: effective rank of the pooled features of the unjittered images) of each checkpoint
  and encoder level; epoch 0 as above.

Indicators (the selection rules are `medseg.selection`'s):
`robustness_offline` and `robustness_online` for every robustness variant in the table (the
`main` column marks the paper's main variant of the row's mode), `rankme_offline` (highest
RankMe) and `rankme_online` (the same walk as robustness's) for every level in the RankMe table
(variant: `level`, `pooled` true; `main` at the paper's main level, second to last),
`imagenet_accuracy` (the checkpoint with the highest top-1, ties to the earliest) and
`no_pretraining` (epoch 0).

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
from medseg.paper import MAIN_LEVEL
from medseg.selection import MAIN_VARIANTS, offline_choice, online_walk

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

CELL = ["dataset", "model", "scheme", "mode"]
VARIANT = ["distance", "margin", "level", "pooled"]
RUN_COLUMNS = ["dataset", "model", "scheme", "epoch", "mode", "seed", "dice"]
ROBUSTNESS_COLUMNS = ["dataset", "model", "scheme", "epoch", *VARIANT, "robustness"]
ACCURACY_COLUMNS = ["model", "scheme", "epoch", "val_top1"]
RANKME_COLUMNS = ["dataset", "model", "scheme", "epoch", "level", "rankme"]
INDICATORS = (
    "robustness_offline",
    "robustness_online",
    "rankme_offline",
    "rankme_online",
    "imagenet_accuracy",
    "no_pretraining",
)
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


# Output types: nullable integers and booleans (a row may have none), float margins (NaN where none).
OUTPUT_TYPES = {
    "chosen_epoch": "Int64",
    "best_epoch": "Int64",
    "pretrained_epochs": "Int64",
    "pooled": "boolean",
    "main": "boolean",
    "complete": "boolean",
    "margin": "float64",
}


def typed_rows(rows: Sequence, columns: Sequence[str]) -> pd.DataFrame:
    """Rows as a table of `columns`, typed as `tis_table` and `rank_table` type their output."""
    import pandas as pd

    table = pd.DataFrame(rows, columns=list(columns))
    return table.astype({column: kind for column, kind in OUTPUT_TYPES.items() if column in table.columns})


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


def with_scratch(table: pd.DataFrame, keys: list[str], schemes: Iterable[str] = ()) -> pd.DataFrame:
    """Every scheme's rows, plus the scratch rows at epoch 0 for each scheme without its own.

    The schemes are those of the table and `schemes` (a scheme whose checkpoints have no rows yet).
    """
    import pandas as pd

    schemes = sorted({s for s in table["scheme"].unique() if s != SCRATCH} | set(schemes) - {SCRATCH})
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


def _cells(runs: pd.DataFrame, epochs: list[int], seeds: list, expected: Iterable[tuple] = ()) -> list[_Cell]:
    """The cells of the runs and the `expected` (dataset, model, scheme, mode) cells, with or without runs."""
    from collections import Counter, defaultdict

    import numpy as np

    expected = {tuple(key) for key in expected}
    table = with_scratch(runs, ["dataset", "model", "mode"], {key[2] for key in expected})
    grouped: dict[tuple, dict[int, list[tuple]]] = defaultdict(lambda: defaultdict(list))
    for dataset, model, scheme, epoch, mode, seed, dice in table[RUN_COLUMNS].itertuples(index=False):
        grouped[(dataset, model, scheme, mode)][int(epoch)].append((seed, dice))
    cells = []
    for key in sorted(set(grouped) | expected):
        by_epoch = grouped.get(key, {})
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


def _score_lookup(
    table: pd.DataFrame, keys: list[str], value: str, schemes: Iterable[str] = ()
) -> dict[tuple, dict[int, float]]:
    """{(keys...): {epoch: value}}, scratch rows filled in at epoch 0 per scheme, unknown values left out."""
    table = with_scratch(table, [k for k in keys if k != "scheme"], schemes)
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


NO_VARIANT = (None, None, None, None)


def _is_main(mode: str, variant: tuple) -> bool | None:
    """Whether a variant is the paper's main one for `mode`; RankMe's main level is the same; None: no variant."""
    if tuple(variant) == NO_VARIANT:
        return None
    distance, _, level, _ = variant
    if distance is None:  # RankMe: one pooled representation per level
        return level == MAIN_LEVEL
    main = MAIN_VARIANTS.get(mode)
    return main is not None and tuple(variant) == (main.distance, main.margin, main.level, main.pooled)


@dataclass
class _LabelFree:
    """A label-free score of the checkpoints (robustness or RankMe): its variants and values."""

    name: str
    variants: list[tuple]
    scores: dict[tuple, dict[int, float]]  # (dataset, model, scheme, *variant) -> {epoch: score}


def _label_free(
    robustness: pd.DataFrame | None, rankme: pd.DataFrame | None, schemes: Iterable[str] = ()
) -> list[_LabelFree]:
    """The label-free scores given, checked; RankMe's variant is (None, None, level, True).

    `schemes`: the schemes of the cells, which the scratch encoder's scores serve.
    """
    schemes = set(schemes)
    sources = []
    keys = ["dataset", "model", "scheme", *VARIANT]
    if robustness is not None:
        _check_columns(robustness, ROBUSTNESS_COLUMNS, "robustness")
        sources.append(
            _LabelFree("robustness", _variants(robustness), _score_lookup(robustness, keys, "robustness", schemes))
        )
    if rankme is not None:
        _check_columns(rankme, RANKME_COLUMNS, "rankme")
        table = rankme[RANKME_COLUMNS].astype({"level": object}).assign(distance=None, margin=None, pooled=True)
        sources.append(_LabelFree("rankme", _variants(table), _score_lookup(table, keys, "rankme", schemes)))
    return sources


def tis_table(
    runs: pd.DataFrame,
    robustness: pd.DataFrame | None = None,
    accuracy: pd.DataFrame | None = None,
    rankme: pd.DataFrame | None = None,
    *,
    epochs: Iterable[int] | None = None,
    seeds: Iterable | None = None,
    cells: Iterable[tuple] = (),
    bootstrap: int = 0,
    seed: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per (cell, indicator, variant) with the columns `COLUMNS`.

    `epochs`: the checkpoints every cell should have (default: every epoch in `runs`, with 0).
    `seeds`: the seeds every checkpoint should have (default: every seed in `runs`).
    `cells`: (dataset, model, scheme, mode) cells expected even without runs (a grid still
    running): they get their rows, incomplete, so that no average silently leaves them out.
    `bootstrap`: number of resamples for the interval `tis_low`..`tis_high` at `confidence`
    (each checkpoint's runs drawn with replacement, independently; the chosen checkpoint stays
    fixed, since no indicator looks at Dice); 0 leaves the interval empty. `seed` makes it
    repeatable. `pretrained_epochs`: the pretraining an indicator needed before it could choose:
    the last checkpoint for the offline ones, the end of its trail for the online rule, 0 for
    no pretraining.
    """

    _check_columns(runs, RUN_COLUMNS, "runs")
    epochs = _epochs(runs, epochs)
    seeds = sorted(runs["seed"].unique().tolist()) if seeds is None else list(seeds)
    cells = _cells(runs, epochs, seeds, cells)
    sources = _label_free(robustness, rankme, {cell.key[2] for cell in cells})
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

        def add(indicator, chosen, pretrained, notes, variant=NO_VARIANT):
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
                    _is_main(mode, variant),
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
        for source in sources:
            for variant in source.variants:
                scores = source.scores.get((dataset, model, scheme, *variant), {})
                missing = [] if scores else [f"no {source.name} for any checkpoint"]
                lacking = [e for e in cell.epochs if e not in scores]
                notes = missing or ([f"no {source.name} for epoch(s) {lacking}"] if lacking else [])
                known = [e for e in cell.epochs if e in scores]
                offline = offline_choice(known, scores) if known else None
                add(f"{source.name}_offline", offline, last, notes, variant)
                if last == SCRATCH_EPOCH:
                    continue  # no pretrained checkpoint: nothing to walk
                walk = online_walk(cell.epochs, scores)
                lacks = [] if walk.finished else [f"the online walk lacks the {source.name} of epoch {walk.needed}"]
                add(f"{source.name}_online", walk.chosen, walk.pretrained_epochs, missing or lacks, variant)

    return typed_rows(rows, COLUMNS)


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
    rankme: pd.DataFrame | None = None,
    *,
    epochs: Iterable[int] | None = None,
    cells: Iterable[tuple] = (),
) -> pd.DataFrame:
    """Per cell and score, Spearman and Kendall (tau-b) correlation of the score with mean Dice.

    Scores: every robustness variant (`score` = `robustness`), every RankMe level (`rankme`) and
    the ImageNet top-1 (`imagenet_accuracy`; the scratch encoder at 0 unless given). Over the cell's checkpoints
    that have both a mean Dice and a score (`n_checkpoints`), the scratch encoder included. Every
    robustness variant of the table has a row in every cell (0 checkpoints where the cell lacks it);
    `cells` as in `tis_table`.
    """

    _check_columns(runs, RUN_COLUMNS, "runs")
    cells = _cells(runs, _epochs(runs, epochs), sorted(runs["seed"].unique().tolist()), cells)
    label_free = _label_free(robustness, rankme, {cell.key[2] for cell in cells})
    acc: dict[tuple, dict[int, float]] | None = None
    if accuracy is not None:
        _check_columns(accuracy, ACCURACY_COLUMNS, "accuracy")
        acc = _score_lookup(accuracy, ["model", "scheme"], "val_top1")
    rows = []
    for cell in cells:
        dataset, model, scheme, mode = cell.key
        sources = [
            (source.name, variant, source.scores.get((dataset, model, scheme, *variant), {}))
            for source in label_free
            for variant in source.variants
        ]
        if acc is not None:
            sources.append(("imagenet_accuracy", NO_VARIANT, {SCRATCH_EPOCH: 0.0, **acc.get((model, scheme), {})}))
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
                    _is_main(mode, variant),
                    len(both),
                    spearman(x, y) if len(both) > 1 else float("nan"),
                    kendall(x, y) if len(both) > 1 else float("nan"),
                )
            )
    return typed_rows(rows, RANK_COLUMNS)
