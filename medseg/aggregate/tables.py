"""The paper's tables (1, 2, 3a, 3b, 4, 5, 6, B.1-B.3) and the online saving, as Parquet and Markdown.

Every table is built from the collected tables (`medseg.aggregate.collect`) and the TIS table
(`medseg.aggregate.tis.COLUMNS`) as a tidy long DataFrame: one row per printed value, with the
numbers behind it (which checkpoint, the bootstrap interval, whether the cells it comes from are
complete). `write_tables` writes each as `<stem>.parquet` and renders it as `<stem>.md` in the
paper's layout (rows the indicators or variants, columns model x mode).

- Table 1: the best mean test Dice per dataset x model x mode over both schemes and every
  checkpoint (the scratch encoder included), with the scheme and epoch that reached it.
- Table 2: worst / best mean Dice over every initialization (both schemes' checkpoints and scratch).
- Tables 3(a) / 3(b): the mean TIS of the main rows per dataset x mode (over models and schemes)
  and per model x mode (over datasets and schemes).
- Tables 4 (distances), 5 (margins), 6 (representations) and B (every row of Appendix B, with
  RankMe where present): one section per dataset and scheme of the TIS table, not only the
  paper's examples.
- `online_saving`: the online method's saving, built by `medseg.aggregate.saving` (Markdown here).

Row labels are the paper's (`ROWS`); a row that names no level, pooling, distance or margin uses
the mode's main variant (§6, Appendix B), and the variant rows are the offline rule. The audit
(`medseg.audit.printed`) reads the printed tables with the same labels.

Only the standard library and the vocabulary modules are imported at module level: the workflow
imports `TABLES` for its outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medseg import names
from medseg.aggregate.frames import CELL, KNOWN_ORDER, checked, known_first, missing, plain, sorted_keys, typed
from medseg.aggregate.labels import DATASET_NAMES, DISTANCE_NAMES, MODE_NAMES, MODEL_NAMES
from medseg.aggregate.saving import SCHEMA as SAVING_SCHEMA
from medseg.aggregate.saving import online_saving, saving_headline, time_unit
from medseg.paper import MAIN_DISTANCE, MAIN_LEVEL, MAIN_MARGIN, MARGINS
from medseg.selection import MAIN_VARIANTS

if TYPE_CHECKING:
    import pandas as pd

TABLES = ("table1", "table2", "table3a", "table3b", "table4", "table5", "table6", "table_b", "online_saving")
"""The file stems `write_tables` writes (`<stem>.parquet` and `<stem>.md`)."""


DAGGER = "†"
INCOMPLETE_NOTE = f"{DAGGER} computed from an incomplete cell: see notes in tis.parquet"
SAVING_NOTE = (
    f"{DAGGER} incomplete (a walk unfinished, a TIS row or the pretraining history incomplete): see notes in "
    "online_saving.parquet"
)


@dataclass(frozen=True)
class RowSpec:
    """What a row shows: an indicator and its variant; None: the mode's main variant (§6)."""

    indicator: str
    distance: str | None = None
    margin: float | None = None
    level: str | None = None
    pooled: bool | None = None


def level_row(level: str, pooled: bool) -> tuple[str, RowSpec]:
    """A representation row (Table 6, B): cosine distance, margin 0.5, offline."""
    label = f"{level.replace('_', ' ')}, {'pooled' if pooled else 'not pooled'}"
    return label, RowSpec("robustness_offline", level=level, pooled=pooled)


def distance_row(distance: str, margin: float) -> tuple[str, RowSpec]:
    """A distance and margin row (Tables 4, 5, B): the mode's main level and pooling, offline."""
    label = f"{DISTANCE_NAMES.get(distance, distance)}, margin {margin:.2f}"
    return label, RowSpec("robustness_offline", distance=distance, margin=margin)


def rankme_row(level: str) -> tuple[str, RowSpec]:
    """RankMe of one encoder level (pooled features), offline."""
    return f"RankMe, {level.replace('_', ' ')}", RowSpec("rankme_offline", level=level)


MAIN_ROWS = {
    "robustness (offline)": RowSpec("robustness_offline"),
    "robustness (online)": RowSpec("robustness_online"),
    "RankMe (offline)": RowSpec("rankme_offline"),
    "RankMe (online)": RowSpec("rankme_online"),
    "ImageNet accuracy": RowSpec("imagenet_accuracy"),
    "no pretraining": RowSpec("no_pretraining"),
}
"""The rows of Table 3 (RankMe beyond the paper): each indicator at the mode's main variant."""
BASELINE_ROWS = {label: MAIN_ROWS[label] for label in ("ImageNet accuracy", "no pretraining")}

ROWS = {
    **MAIN_ROWS,
    **dict(level_row(level, pooled) for level in names.LEVELS for pooled in (True, False)),
    **dict(distance_row(distance, MAIN_MARGIN) for distance in DISTANCE_NAMES if distance != MAIN_DISTANCE),
    **dict(distance_row(MAIN_DISTANCE, margin) for margin in MARGINS),
    **dict(rankme_row(level) for level in names.LEVELS),
}
"""Row label -> what it shows: the labels of the paper's tables and of the RankMe rows."""


def row_key(spec: RowSpec, mode: str) -> tuple:
    """(indicator, distance, margin, level, pooled) of a row in a mode's column, as in the TIS table."""
    if spec.indicator.startswith("rankme"):  # one pooled representation per level
        return (spec.indicator, None, None, spec.level or MAIN_LEVEL, True)
    if not spec.indicator.startswith("robustness"):
        return (spec.indicator, None, None, None, None)
    main = MAIN_VARIANTS[mode]
    return (
        spec.indicator,
        spec.distance or main.distance,
        main.margin if spec.margin is None else spec.margin,
        spec.level or main.level,
        main.pooled if spec.pooled is None else spec.pooled,
    )


# ---------------------------------------------------------------------------------------------
# Shared helpers

VARIANT = ["distance", "margin", "level", "pooled"]
TIS_VALUES = ["chosen_epoch", "tis", "tis_low", "tis_high", "complete"]

# The Parquet columns of every stem, with their types (fixed, so an empty table has the same schema).
_TIS_CELL = {"chosen_epoch": "Int64", "tis": "float64", "tis_low": "float64", "tis_high": "float64"}
_ROW = {"row": "string", "indicator": "string", "distance": "string", "margin": "float64", "level": "string"}
SCHEMAS: dict[str, dict[str, str]] = {
    "table1": {
        **dict.fromkeys(["dataset", "model", "mode"], "string"),
        "best_dice": "float64",
        "scheme": "string",
        "epoch": "Int64",
        **dict.fromkeys(["n_cells", "n_complete"], "int64"),
        "complete": "bool",
    },
    "table2": {
        **dict.fromkeys(["dataset", "model", "mode"], "string"),
        "ratio": "float64",
        "worst_dice": "float64",
        "worst_scheme": "string",
        "worst_epoch": "Int64",
        "best_dice": "float64",
        "best_scheme": "string",
        "best_epoch": "Int64",
        **dict.fromkeys(["n_inits", "n_cells", "n_complete"], "int64"),
        "complete": "bool",
    },
    **{
        stem: {
            by: "string",
            "mode": "string",
            **_ROW,
            "pooled": "boolean",
            **dict.fromkeys(["tis", "tis_min", "tis_max", "mean_tis_low", "mean_tis_high"], "float64"),
            **dict.fromkeys(["n_cells", "n_values", "n_complete"], "int64"),
            "complete": "bool",
        }
        for stem, by in (("table3a", "dataset"), ("table3b", "model"))
    },
    **{
        stem: {
            **dict.fromkeys(["dataset", "scheme"], "string"),
            **_ROW,
            "pooled": "boolean",
            **dict.fromkeys(["model", "mode"], "string"),
            **_TIS_CELL,
            "complete": "bool",
        }
        for stem in ("table4", "table5", "table6", "table_b")
    },
    "online_saving": SAVING_SCHEMA,
}


def _frame(rows: list[dict], stem: str) -> pd.DataFrame:
    """The rows as the stem's table: its columns in order, typed."""
    return typed(rows, SCHEMAS[stem])


def _name(names_: dict[str, str], value: str) -> str:
    return names_.get(value, value)


def _column_label(names_: dict[str, str], what: str, mode: str) -> str:
    """A column 'basic U-Net, full training' (a model or dataset, then the mode), as the paper labels them."""
    return f"{_name(names_, what)}, {_name(MODE_NAMES, mode)}"


def _f(value, digits: int = 3) -> str:
    return "n/a" if missing(value) else f"{value:.{digits}f}"


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _tis_columns() -> list[str]:
    from medseg.aggregate.tis import COLUMNS

    return COLUMNS


def _lookup(tis: pd.DataFrame) -> dict[tuple, dict]:
    """(dataset, model, scheme, mode, indicator, distance, margin, level, pooled) -> the row's TIS values."""
    lookup = {}
    columns = [*CELL, "indicator", *VARIANT, *TIS_VALUES]
    for record in tis[columns].itertuples(index=False):
        key = tuple(plain(v) for v in record[:9])
        values = dict(zip(TIS_VALUES, (plain(v) for v in record[9:])))
        values["complete"] = bool(values["complete"])
        lookup[key] = values
    return lookup


def _complete_cells(tis: pd.DataFrame) -> dict[tuple, bool]:
    """(dataset, model, scheme, mode) -> whether the cell's Dice runs are complete (its `no_pretraining` row)."""
    rows = tis[tis["indicator"] == "no_pretraining"]
    return {tuple(key): bool(plain(c)) for *key, c in rows[[*CELL, "complete"]].itertuples(index=False)}


def _order(table: pd.DataFrame, column: str) -> list:
    """The distinct values of a key column in the tables' order: the paper's first, then the others sorted."""
    return known_first(table[column].unique(), KNOWN_ORDER[column])


# ---------------------------------------------------------------------------------------------
# Tables 1 and 2: Dice


def table1(tis: pd.DataFrame) -> pd.DataFrame:
    """Best mean test Dice per dataset x model x mode, over both schemes (each with the scratch encoder).

    From the `no_pretraining` rows of the TIS table (`best_dice`, `best_epoch` per cell; that row's
    `complete` is the completeness of the cell's runs); the maximum over the schemes, ties to the
    first scheme in `medseg.names.PRETRAIN_SCHEMES`. `scheme` and `epoch` say which checkpoint
    reached it (`scratch`, epoch 0, for the scratch encoder). `n_cells`: the schemes' cells, of
    which `n_complete` are complete.
    """
    tis = checked(tis, _tis_columns(), "tis")
    cells = tis[tis["indicator"] == "no_pretraining"]
    schemes = _order(cells, "scheme")
    found: dict[tuple, list[tuple]] = {}
    for dataset, model, scheme, mode, dice, epoch, complete in cells[
        [*CELL, "best_dice", "best_epoch", "complete"]
    ].itertuples(index=False):
        found.setdefault((dataset, model, mode), []).append((scheme, plain(dice), plain(epoch), bool(plain(complete))))
    rows = []
    for key in sorted_keys(found, ["dataset", "model", "mode"]):
        ordered = sorted(found[key], key=lambda f: schemes.index(f[0]))
        best = max((f for f in ordered if f[1] is not None), key=lambda f: f[1], default=None)  # ties: the first
        scheme = None if best is None else names.SCRATCH if best[2] == names.SCRATCH_EPOCH else best[0]
        n_complete = sum(f[3] for f in ordered)
        rows.append(
            {
                **dict(zip(["dataset", "model", "mode"], key)),
                "best_dice": float("nan") if best is None else best[1],
                "scheme": scheme,
                "epoch": None if best is None else best[2],
                "n_cells": len(ordered),
                "n_complete": n_complete,
                "complete": n_complete == len(ordered),
            }
        )
    return _frame(rows, "table1")


def table2(runs: pd.DataFrame, tis: pd.DataFrame) -> pd.DataFrame:
    """Worst / best mean Dice per dataset x model x mode over every initialization.

    The initializations: the scratch encoder and every checkpoint of both schemes (external
    encoders left out); each one's mean Dice over its runs (`runs`: `medseg.aggregate.tis.dice_runs`).
    Ties go to the earliest (scratch, then the schemes in order, then by epoch). `n_inits`: the
    initializations with a mean; completeness as in `table1`, from the TIS table's cells
    (`n_cells` 0: the TIS table lacks them, so incomplete).
    """
    from medseg.aggregate.tis import RUN_COLUMNS

    runs = checked(runs, RUN_COLUMNS, "runs")
    tis = checked(tis, _tis_columns(), "tis")
    runs = runs[~runs["scheme"].astype(str).str.startswith(names.EXTERNAL_PREFIX) & runs["dice"].notna()]
    means = runs.groupby(["dataset", "model", "mode", "scheme", "epoch"], observed=True)["dice"].mean()
    inits: dict[tuple, list[tuple[tuple[str, int], float]]] = {}
    for (dataset, model, mode, scheme, epoch), dice in means.items():
        inits.setdefault((dataset, model, mode), []).append(((scheme, int(epoch)), float(dice)))
    flags: dict[tuple, list[bool]] = {}
    for (dataset, model, _, mode), flag in _complete_cells(tis).items():
        flags.setdefault((dataset, model, mode), []).append(flag)
    schemes = [names.SCRATCH, *known_first(runs["scheme"].unique(), names.PRETRAIN_SCHEMES)]
    rows = []
    for key in sorted_keys(set(inits) | set(flags), ["dataset", "model", "mode"]):
        ordered = sorted(inits.get(key, []), key=lambda item: (schemes.index(item[0][0]), item[0][1]))
        worst = min(ordered, key=lambda item: item[1], default=((None, None), float("nan")))
        best = max(ordered, key=lambda item: item[1], default=((None, None), float("nan")))
        cells = flags.get(key, [])
        rows.append(
            {
                **dict(zip(["dataset", "model", "mode"], key)),
                "ratio": worst[1] / best[1] if best[1] else float("nan"),
                "worst_dice": worst[1],
                "worst_scheme": worst[0][0],
                "worst_epoch": worst[0][1],
                "best_dice": best[1],
                "best_scheme": best[0][0],
                "best_epoch": best[0][1],
                "n_inits": len(ordered),
                "n_cells": len(cells),
                "n_complete": sum(cells),
                "complete": bool(cells) and all(cells) and bool(ordered),
            }
        )
    return _frame(rows, "table2")


# ---------------------------------------------------------------------------------------------
# Tables 3(a) and 3(b): mean TIS of the main rows


def _present_rows(tis: pd.DataFrame, rows: dict[str, RowSpec]) -> dict[str, RowSpec]:
    indicators = set(tis["indicator"].dropna())
    return {label: spec for label, spec in rows.items() if spec.indicator in indicators}


def _averaged(tis: pd.DataFrame, by: str, stem: str) -> pd.DataFrame:
    """Mean TIS of the main rows per `by` (dataset or model) x mode, over the other axis and the schemes."""
    import statistics

    tis = checked(tis, _tis_columns(), "tis")
    lookup = _lookup(tis)
    cells = tis[CELL].drop_duplicates()
    other = "model" if by == "dataset" else "dataset"
    present = _present_rows(tis, MAIN_ROWS)
    rows = []
    for group in _order(cells, by):
        part = cells[cells[by] == group]
        for mode in _order(part, "mode"):
            members = part[part["mode"] == mode]
            averaged = list(members[[other, "scheme"]].itertuples(index=False, name=None))
            for label, spec in present.items():
                key = row_key(spec, mode)
                found = []
                for what, scheme in averaged:
                    cell = {by: group, other: what}
                    found.append(lookup.get((cell["dataset"], cell["model"], scheme, mode, *key)))
                values = [f["tis"] for f in found if f and f["tis"] is not None]
                lows = [f["tis_low"] for f in found if f and f["tis_low"] is not None]
                highs = [f["tis_high"] for f in found if f and f["tis_high"] is not None]
                n_complete = sum(1 for f in found if f and f["complete"])
                rows.append(
                    {
                        by: group,
                        "mode": mode,
                        "row": label,
                        **dict(zip(["indicator", *VARIANT], key)),
                        "tis": statistics.fmean(values) if values else float("nan"),
                        "tis_min": min(values, default=float("nan")),
                        "tis_max": max(values, default=float("nan")),
                        "mean_tis_low": statistics.fmean(lows) if lows else float("nan"),
                        "mean_tis_high": statistics.fmean(highs) if highs else float("nan"),
                        "n_cells": len(found),
                        "n_values": len(values),
                        "n_complete": n_complete,
                        "complete": n_complete == len(found),
                    }
                )
    return _frame(rows, stem)


def table3a(tis: pd.DataFrame) -> pd.DataFrame:
    """Table 3(a): per dataset x mode, the mean TIS of each main row over the models and schemes.

    One row per (dataset, mode, row). `tis`: the mean over the cells that have a value
    (`n_values` of `n_cells`; every (model, scheme) cell of the TIS table with that dataset and
    mode counts); `tis_min`..`tis_max`: the lowest and highest cell, the spread the Markdown shows.
    `mean_tis_low`, `mean_tis_high`: the mean of the cells' bootstrap bounds, which is NOT an
    interval of the mean (the cells' resamples are independent, so the mean's own interval would be
    narrower); it is there to compare with the cells' bounds, nothing more. `complete` is false
    when any cell is incomplete or lacks the row (`n_complete` < `n_cells`).
    """
    return _averaged(tis, "dataset", "table3a")


def table3b(tis: pd.DataFrame) -> pd.DataFrame:
    """Table 3(b): per model x mode, the mean TIS of each main row over the datasets and schemes (as `table3a`)."""
    return _averaged(tis, "model", "table3b")


# ---------------------------------------------------------------------------------------------
# Tables 4, 5, 6 and B: one TIS per row and model x mode column, a section per dataset and scheme


def _variants(tis: pd.DataFrame, column: str, known: Sequence = ()) -> list:
    robustness = tis[tis["indicator"].astype(str).str.startswith("robustness")]
    return known_first((plain(v) for v in robustness[column]), known)


def _rankme_levels(tis: pd.DataFrame) -> list:
    return known_first((plain(v) for v in tis[tis["indicator"] == "rankme_offline"]["level"]), names.LEVELS)


def _distance_rows(tis: pd.DataFrame) -> dict[str, RowSpec]:
    return dict(distance_row(MAIN_DISTANCE, m) for m in sorted(_variants(tis, "margin")))


def _table4_rows(tis: pd.DataFrame) -> dict[str, RowSpec]:
    distances = _variants(tis, "distance", tuple(DISTANCE_NAMES))
    return {**dict(distance_row(d, MAIN_MARGIN) for d in distances), **BASELINE_ROWS}


def _table6_rows(tis: pd.DataFrame) -> dict[str, RowSpec]:
    levels = _variants(tis, "level", names.LEVELS)
    return dict(level_row(level, pooled) for level in levels for pooled in (True, False))


def _table_b_rows(tis: pd.DataFrame) -> dict[str, RowSpec]:
    distances = _variants(tis, "distance", tuple(DISTANCE_NAMES))
    margins = sorted(_variants(tis, "margin"))
    return {
        **MAIN_ROWS,
        **_table6_rows(tis),
        **dict(distance_row(d, m) for d in distances for m in margins),
        **dict(rankme_row(level) for level in _rankme_levels(tis)),
    }


GRID_ROWS: dict[str, Callable[[pd.DataFrame], dict[str, RowSpec]]] = {
    "table4": _table4_rows,
    "table5": _distance_rows,
    "table6": _table6_rows,
    "table_b": _table_b_rows,
}


def _grid(tis: pd.DataFrame, stem: str) -> pd.DataFrame:
    """One row per (dataset, scheme, row, model, mode) for the rows the TIS table has.

    A row is kept in a section when any of its model x mode columns has it; a column without it
    gets a row with no TIS, marked incomplete.
    """
    tis = checked(tis, _tis_columns(), "tis")
    lookup = _lookup(tis)
    candidates = GRID_ROWS[stem](tis)
    cells = tis[CELL].drop_duplicates()
    rows = []
    for dataset in _order(cells, "dataset"):
        for scheme in _order(cells[cells["dataset"] == dataset], "scheme"):
            part = cells[(cells["dataset"] == dataset) & (cells["scheme"] == scheme)]
            columns = [(m, mo) for m in _order(part, "model") for mo in _order(part[part["model"] == m], "mode")]
            for label, spec in candidates.items():
                keys = {mode: row_key(spec, mode) for _, mode in columns}
                found = {(m, mo): lookup.get((dataset, m, scheme, mo, *keys[mo])) for m, mo in columns}
                if not any(found.values()):
                    continue
                for (model, mode), values in found.items():
                    values = values or {"complete": False}
                    rows.append(
                        {
                            "dataset": dataset,
                            "scheme": scheme,
                            "row": label,
                            **dict(zip(["indicator", *VARIANT], keys[mode])),
                            "model": model,
                            "mode": mode,
                            **{k: values.get(k) for k in _TIS_CELL},
                            "complete": values["complete"],
                        }
                    )
    return _frame(rows, stem)


def table4(tis: pd.DataFrame) -> pd.DataFrame:
    """Table 4, per dataset and scheme: each distance at margin 0.5 (main level and pooling) and the baselines.

    Columns of every grid table (4, 5, 6, B): the section (`dataset`, `scheme`), the row (`row`
    label and the TIS table's indicator and variant it reads), the column (`model`, `mode`), and
    that TIS row's `chosen_epoch`, `tis`, bootstrap interval `tis_low`..`tis_high` and `complete`.
    """
    return _grid(tis, "table4")


def table5(tis: pd.DataFrame) -> pd.DataFrame:
    """Table 5, per dataset and scheme: TIS of cosine distance at every margin of the table (main level and pooling)."""
    return _grid(tis, "table5")


def table6(tis: pd.DataFrame) -> pd.DataFrame:
    """Table 6, per dataset and scheme: TIS of every level, pooled or not (cosine distance, margin 0.5)."""
    return _grid(tis, "table6")


def table_b(tis: pd.DataFrame) -> pd.DataFrame:
    """Tables B.1-B.3, per dataset and scheme: the main rows, every representation and distance x margin, RankMe.

    RankMe rows (main and per level) only where the TIS table has RankMe.
    """
    return _grid(tis, "table_b")


# ---------------------------------------------------------------------------------------------
# Markdown

SCORES_COLUMNS = ["dataset", "model", "scheme", "epoch", "mode", "seed", "metric", "class", "value"]
TITLES = {
    "table1": "Table 1: best mean test Dice per dataset, model and mode",
    "table2": "Table 2: worst / best mean test Dice over every initialization",
    "table3a": "Table 3(a): TIS per dataset, averaged over models and schemes",
    "table3b": "Table 3(b): TIS per model, averaged over datasets and schemes",
    "table4": "Table 4: TIS of the distances",
    "table5": "Table 5: TIS of the margins",
    "table6": "Table 6: TIS of the representations",
    "table_b": "Tables B.1-B.3: TIS of every indicator and variant",
    "online_saving": "Online saving: the pretraining the online rule needed",
}
_INTERVAL = "[bootstrap interval, 95 % over seeds] where the TIS table has one"
CAPTIONS = {
    "table1": "Over both pretraining schemes and every checkpoint, the scratch encoder included; in parentheses "
    "the scheme and epoch that reached it.",
    "table2": "Mean Dice of the worst initialization divided by the best one's, over the scratch encoder and every "
    "checkpoint of both schemes (which ones: table2.parquet).",
    "table3a": "Mean TIS of the (model, scheme) cells of each dataset and mode, at the mode's main variant; in "
    "parentheses the lowest and highest cell. The mean of the cells' bootstrap bounds is in table3a.parquet "
    "(mean_tis_low, mean_tis_high): it is not an interval of the mean.",
    "table3b": "Mean TIS of the (dataset, scheme) cells of each model and mode, at the mode's main variant; in "
    "parentheses the lowest and highest cell. The mean of the cells' bootstrap bounds is in table3b.parquet "
    "(mean_tis_low, mean_tis_high): it is not an interval of the mean.",
    "table4": f"Offline robustness with each distance at margin {MAIN_MARGIN:.2f}, the mode's main level and pooling, "
    f"beside the baselines; TIS {_INTERVAL}.",
    "table5": f"Offline robustness with {DISTANCE_NAMES[MAIN_DISTANCE]} at every margin, the mode's main level and "
    f"pooling; TIS {_INTERVAL}.",
    "table6": f"Offline robustness of each level, pooled or not, {DISTANCE_NAMES[MAIN_DISTANCE]}, margin "
    f"{MAIN_MARGIN:.2f}; TIS {_INTERVAL}.",
    "table_b": "Rows that name no level, pooling, distance or margin use the mode's main variant "
    f"({DISTANCE_NAMES[MAIN_DISTANCE]}, margin {MAIN_MARGIN:.2f}, {MAIN_LEVEL.replace('_', ' ')} level, pooled for "
    "decoder only, not pooled for full training); the variant rows and the RankMe level rows are the offline rule. "
    f"TIS {_INTERVAL}.",
}
SCHEME_NAMES = {"simple": "simple scheme", "advanced": "advanced scheme"}


class _Marks:
    """Counts the values a Markdown file shows: those from incomplete cells (†) and those not available."""

    def __init__(self, note: str = INCOMPLETE_NOTE) -> None:
        self.note = note
        self.values = self.incomplete = self.unavailable = 0

    def value(self, text: str, missing: bool, complete: bool) -> str:
        self.values += 1
        if missing:
            self.unavailable += 1
            return "n/a"
        if not complete:
            self.incomplete += 1
            return text + DAGGER
        return text

    def footer(self) -> list[str]:
        lines = []
        if self.incomplete:
            lines.append(f"{self.note}. {self.incomplete} of {self.values} values.")
        if self.unavailable:
            lines.append(
                f"n/a: no value ({self.unavailable} of {self.values}): the cell lacks runs or the row, or the "
                "online walk has not finished."
            )
        return lines


def _pivot(frame: pd.DataFrame, rows: str, what: str, labels: dict[str, str], text: Callable[[dict], str]) -> str:
    """A Markdown table: one line per value of `rows`, one column per (`what`, mode), in the frame's order."""
    records = frame.to_dict("records")
    columns = list(dict.fromkeys((r[what], r["mode"]) for r in records))
    lines = list(dict.fromkeys(r[rows] for r in records))
    cells = {(r[rows], r[what], r["mode"]): text(r) for r in records}
    header = ["", *[_column_label(labels, w, m) for w, m in columns]]
    names_ = DATASET_NAMES if rows == "dataset" else {}
    body = [[_name(names_, line), *[cells.get((line, *c), "") for c in columns]] for line in lines]
    return _markdown_table(header, body)


def _tis_text(marks: _Marks) -> Callable[[dict], str]:
    def text(r: dict) -> str:
        value = marks.value(_f(r["tis"]), missing(r["tis"]), r["complete"])
        interval = not (missing(r["tis"]) or missing(r["tis_low"]) or missing(r["tis_high"]))
        return value + (f" [{r['tis_low']:.3f}, {r['tis_high']:.3f}]" if interval else "")

    return text


def _markdown_table1(frame: pd.DataFrame, marks: _Marks) -> list[str]:
    def text(r: dict) -> str:
        value = marks.value(_f(r["best_dice"]), missing(r["best_dice"]), r["complete"])
        if missing(r["best_dice"]):
            return value
        return value + (" (scratch)" if r["scheme"] == names.SCRATCH else f" ({r['scheme']}, epoch {r['epoch']})")

    return [_pivot(frame, "dataset", "model", MODEL_NAMES, text)]


def _markdown_table2(frame: pd.DataFrame, marks: _Marks) -> list[str]:
    return [
        _pivot(
            frame,
            "dataset",
            "model",
            MODEL_NAMES,
            lambda r: marks.value(_f(r["ratio"]), missing(r["ratio"]), r["complete"]),
        )
    ]


def _markdown_averaged(by: str, labels: dict[str, str]) -> Callable[[pd.DataFrame, _Marks], list[str]]:
    def render(frame: pd.DataFrame, marks: _Marks) -> list[str]:
        def text(r: dict) -> str:
            spread = "" if missing(r["tis"]) else f" ({r['tis_min']:.3f}–{r['tis_max']:.3f})"
            return marks.value(_f(r["tis"]), missing(r["tis"]), r["complete"]) + spread

        low, high = int(frame["n_cells"].min()), int(frame["n_cells"].max())
        cells = f"{low}" if low == high else f"{low} to {high}"
        return [
            _pivot(frame, "row", by, labels, text),
            "",
            f"Each value averages {cells} cells (n_cells in the Parquet).",
        ]

    return render


def _markdown_grid(frame: pd.DataFrame, marks: _Marks) -> list[str]:
    lines = []
    for (dataset, scheme), part in frame.groupby(["dataset", "scheme"], sort=False):
        lines += [f"## {_name(DATASET_NAMES, dataset)}, {_name(SCHEME_NAMES, scheme)}", ""]
        lines += [_pivot(part, "row", "model", MODEL_NAMES, _tis_text(marks)), ""]
    return lines[:-1]


def _markdown_saving(frame: pd.DataFrame, marks: _Marks) -> list[str]:
    unit, size = time_unit(float(frame["planned_seconds"].max()) if frame["planned_seconds"].notna().any() else 0.0)

    def time(seconds) -> str:
        return _f(None if missing(seconds) else seconds / size, 1)

    cells = []
    for r in frame.to_dict("records"):
        saved = marks.value(time(r["saved_seconds"]), missing(r["saved_seconds"]), r["complete"])
        cells.append(
            [
                _name(DATASET_NAMES, r["dataset"]),
                _name(MODEL_NAMES, r["model"]),
                r["scheme"],
                _name(MODE_NAMES, r["mode"]),
                "n/a" if missing(r["chosen_epoch"]) else str(r["chosen_epoch"]),
                f"{r['pretrained_epochs']} of {r['planned_epochs']}",
                time(r["pretrained_seconds"]),
                time(r["planned_seconds"]),
                saved,
                "n/a" if missing(r["saved_fraction"]) else f"{r['saved_fraction'] * 100:.0f} %",
            ]
        )
    chains = []
    for (model, scheme), part in frame.groupby(["model", "scheme"], sort=False):
        latest = part.loc[part["pretrained_epochs"].idxmax()]
        saved = latest["planned_seconds"] - latest["pretrained_seconds"]
        chains.append(
            [
                _name(MODEL_NAMES, model),
                scheme,
                str(len(part)),
                f"{latest['pretrained_epochs']} of {latest['planned_epochs']}",
                time(latest["planned_seconds"]),
                marks.value(time(saved), missing(saved), bool(part["complete"].all())),
                "n/a"
                if missing(saved) or not latest["planned_seconds"]
                else f"{saved / latest['planned_seconds'] * 100:.0f} %",
            ]
        )
    return [
        saving_headline(frame),
        "",
        "Per cell, the online rule's main variant: the checkpoint it chose, the pretraining epochs it needed "
        "(the last checkpoint it scored) against the planned schedule, and the pretraining wall time of those "
        f"epochs (from the pretraining histories, in {unit}). Each cell counts as if its (dataset, mode) were "
        "the only use of the chain.",
        "",
        _markdown_table(
            [
                "dataset",
                "model",
                "scheme",
                "mode",
                "chosen epoch",
                "epochs pretrained",
                f"pretrained ({unit})",
                f"planned ({unit})",
                f"saved ({unit})",
                "saved",
            ],
            cells,
        ),
        "",
        "Per pretraining chain, shared by its cells: one pretraining that serves all of them runs to the latest "
        "stop among them.",
        "",
        _markdown_table(
            ["model", "scheme", "cells", "latest stop", f"planned ({unit})", f"saved ({unit})", "saved"], chains
        ),
    ]


_MARKDOWN: dict[str, Callable[[pd.DataFrame, _Marks], list[str]]] = {
    "table1": _markdown_table1,
    "table2": _markdown_table2,
    "table3a": _markdown_averaged("dataset", DATASET_NAMES),
    "table3b": _markdown_averaged("model", MODEL_NAMES),
    "table4": _markdown_grid,
    "table5": _markdown_grid,
    "table6": _markdown_grid,
    "table_b": _markdown_grid,
    "online_saving": _markdown_saving,
}


def markdown(stem: str, frame: pd.DataFrame) -> str:
    """The Markdown of one table, in the paper's layout, from the long frame its builder returned."""
    lines = [f"# {TITLES[stem]}", ""]
    if stem in CAPTIONS:
        lines += [CAPTIONS[stem], ""]
    if not len(frame):
        empty = "online saving" if stem == "online_saving" else "table"
        lines += [
            f"No runs yet: nothing to show in this {empty}." if stem != "online_saving" else saving_headline(frame)
        ]
        return "\n".join(lines) + "\n"
    marks = _Marks(SAVING_NOTE if stem == "online_saving" else INCOMPLETE_NOTE)
    lines += _MARKDOWN[stem](frame, marks)
    footer = marks.footer()
    if footer:
        lines += ["", *footer]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Building and writing


def build_tables(
    tis: pd.DataFrame | None, scores: pd.DataFrame | None, pretraining: pd.DataFrame | None
) -> dict[str, pd.DataFrame]:
    """Every table of `TABLES` from the TIS table and the collected scores and pretraining tables."""
    from medseg.aggregate.tis import dice_runs

    tis = checked(tis, _tis_columns(), "tis")
    runs = dice_runs(checked(scores, SCORES_COLUMNS, "scores"))
    return {
        "table1": table1(tis),
        "table2": table2(runs, tis),
        "table3a": table3a(tis),
        "table3b": table3b(tis),
        "table4": table4(tis),
        "table5": table5(tis),
        "table6": table6(tis),
        "table_b": table_b(tis),
        "online_saving": online_saving(tis, pretraining),
    }


def html(text: str) -> str:
    """A Markdown table page as a small HTML page, for the report (which shows HTML, not Markdown)."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(text)
    style = "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><style>{style}</style></head><body>\n{body}</body></html>\n'


def write_tables(tables: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    """Write `out/<stem>.parquet`, `.md` and `.html` for every stem of `TABLES`; return the paths.

    `tables`: `tis`, `scores`, `pretraining` (a missing or empty one: no runs yet, and the files
    say so). Every table is built before any file is written; each file is written atomically,
    and the same input gives byte-identical files (fixed row order, no timestamps).
    """
    from medseg.atomic import atomic_file

    frames = build_tables(tables.get("tis"), tables.get("scores"), tables.get("pretraining"))
    texts = {stem: markdown(stem, frames[stem]) for stem in TABLES}
    out = Path(out)
    paths = []
    for stem in TABLES:
        parquet, md = out / f"{stem}.parquet", out / f"{stem}.md"
        with atomic_file(parquet) as tmp:
            frames[stem].to_parquet(tmp, index=False)
        with atomic_file(md) as tmp:
            tmp.write_text(texts[stem], encoding="utf-8")
        with atomic_file(out / f"{stem}.html") as tmp:
            tmp.write_text(html(texts[stem]), encoding="utf-8")
        paths += [parquet, md, out / f"{stem}.html"]
    return paths
