"""The printed tables (paper/printed_tables.csv) and the recomputation of each printed cell.

The file holds one row per printed value: `table`, `row`, `column` (the paper's labels, in a
fixed spelling) and `value` (as printed, 3 decimals). This module knows what each label means:
which dataset and scheme a table shows, which indicator and robustness variant a row is, which
model or dataset and mode a column is. A row that names no level, pooling, distance or margin
uses the main variant (§6, Appendix B); the variant rows are the offline rule. The row labels
(`ROWS`, `RowSpec`, `row_key`) and the readable names are the aggregation's (`medseg.aggregate.tables`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from medseg.aggregate.labels import DATASET_NAMES, MODE_NAMES, MODEL_NAMES
from medseg.aggregate.tables import ROWS, row_key
from medseg.errors import MedsegError

if TYPE_CHECKING:
    import pandas as pd

# table -> (dataset, scheme); None where the table averages over that axis (Table 3).
TABLES = {
    "3(a)": (None, None),
    "3(b)": (None, None),
    "4": ("idrid", "advanced"),
    "5": ("covidqu", "advanced"),
    "6": ("idrid", "simple"),
    "B.1(a)": ("acdc", "simple"),
    "B.1(b)": ("acdc", "advanced"),
    "B.2(a)": ("covidqu", "simple"),
    "B.2(b)": ("covidqu", "advanced"),
    "B.3(a)": ("idrid", "simple"),
    "B.3(b)": ("idrid", "advanced"),
}
TABLE_TITLES = {
    "3(a)": "Table 3(a): TIS per dataset, averaged over models and schemes",
    "3(b)": "Table 3(b): TIS per model, averaged over datasets and schemes",
    "4": "Table 4: distances, IDRiD, advanced scheme",
    "5": "Table 5: margins, COVID-QU, advanced scheme",
    "6": "Table 6: representations, IDRiD, simple scheme",
    "B.1(a)": "Table B.1(a): ACDC, simple scheme",
    "B.1(b)": "Table B.1(b): ACDC, advanced scheme",
    "B.2(a)": "Table B.2(a): COVID-QU, simple scheme",
    "B.2(b)": "Table B.2(b): COVID-QU, advanced scheme",
    "B.3(a)": "Table B.3(a): IDRiD, simple scheme",
    "B.3(b)": "Table B.3(b): IDRiD, advanced scheme",
}
# The printed labels -> names (the labels are the aggregation's readable names).
MODEL_LABELS = {label: name for name, label in MODEL_NAMES.items()}
DATASET_LABELS = {label: name for name, label in DATASET_NAMES.items()}
MODE_LABELS = {label: name for name, label in MODE_NAMES.items()}


def read_printed(path: Path) -> pd.DataFrame:
    """The transcribed printed values, every label checked against the ones this module knows."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise MedsegError(f"{path}: no such file; pass the transcribed printed tables (paper/printed_tables.csv)")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("table", "row", "column", "value") if c not in table.columns]
    if missing:
        raise MedsegError(f"{path}: lacks the column(s) {', '.join(missing)}; expected table,row,column,value")
    for number, record in enumerate(table.itertuples(index=False), start=2):
        problem = None
        if record.table not in TABLES:
            problem = f"unknown table {record.table!r}"
        elif record.row not in ROWS:
            problem = f"unknown row {record.row!r}"
        else:
            try:
                _column(record.table, record.column)
                float(record.value)
            except (KeyError, ValueError):
                problem = f"unknown column {record.column!r} or value {record.value!r}"
        if problem:
            raise MedsegError(f"{path}: line {number}: {problem}; see the labels in medseg/audit/printed.py")
    table["printed"] = table["value"].astype(float)
    return table


def _column(table: str, column: str) -> tuple[str, str]:
    """(model or dataset, mode) of a printed column."""
    what, mode = column.rsplit(", ", 1)
    names = DATASET_LABELS if table == "3(a)" else MODEL_LABELS
    return names[what], MODE_LABELS[mode]


def recompute(printed: pd.DataFrame, tis: pd.DataFrame) -> pd.Series:
    """The recomputed value of every printed cell from one alignment's TIS table.

    A cell of Table 3 is the mean over the 6 cells it averages (three models or datasets, two
    schemes); any other cell is one TIS row. NaN where the TIS table lacks a row it needs.
    """
    import pandas as pd

    lookup = {}
    columns = ["dataset", "model", "scheme", "mode", "indicator", "distance", "margin", "level", "pooled", "tis"]
    for *key, value in tis[columns].itertuples(index=False):
        key[5:9] = [None if pd.isna(v) else v for v in key[5:9]]
        lookup[tuple(key)] = value
    values = []
    for record in printed.itertuples(index=False):
        dataset, scheme = TABLES[record.table]
        what, mode = _column(record.table, record.column)
        variant = row_key(ROWS[record.row], mode)
        if record.table == "3(a)":
            cells = [(what, m, s) for m in MODEL_LABELS.values() for s in ("simple", "advanced")]
        elif record.table == "3(b)":
            cells = [(d, what, s) for d in DATASET_LABELS.values() for s in ("simple", "advanced")]
        else:
            cells = [(dataset, what, scheme)]
        found = [lookup.get((*cell, mode, *variant)) for cell in cells]
        values.append(float("nan") if None in found else sum(found) / len(found))
    return pd.Series(values, index=printed.index, dtype=float)


def matches(recomputed: pd.Series, printed: pd.Series) -> pd.Series:
    """True where the recomputed value, rounded to 3 decimals, is the printed one."""
    return (recomputed.round(3) - printed).abs() < 1e-9
