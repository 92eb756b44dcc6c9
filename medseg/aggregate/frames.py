"""Small helpers for the aggregation's long tables, shared by the table builders (`tables`, `saving`).

Missing values (None, NaN, pd.NA) read as None, the tables' order of datasets, models, schemes
and modes (the paper's first, then the others sorted), and a table's columns checked and typed.
Only the standard library and the vocabulary modules are imported at module level: the workflow
imports `medseg.aggregate.tables` for its outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from medseg import names
from medseg.aggregate.labels import DATASET_NAMES
from medseg.aggregate.tis import CELL  # noqa: F401 (the tables' cell keys, for the builders)

if TYPE_CHECKING:
    import pandas as pd

KNOWN_ORDER = {
    "dataset": tuple(DATASET_NAMES),
    "model": names.MODEL_NAMES,
    "scheme": names.PRETRAIN_SCHEMES,
    "mode": names.MODES,
}
"""Key column -> its values in the tables' order (the paper's)."""


def missing(value) -> bool:
    """None, NaN or pd.NA (whose comparisons cannot be made a bool)."""
    if value is None:
        return True
    try:
        return bool(value != value)
    except TypeError:
        return True


def plain(value):
    """None for NaN/NA, a plain Python value otherwise (dict keys must match across dtypes)."""
    if missing(value):
        return None
    return value.item() if hasattr(value, "item") else value


def known_first(values: Iterable, known: Sequence) -> list:
    """The distinct values: the known ones in their order, then the others sorted."""
    values = {v for v in values if not missing(v)}
    return [v for v in known if v in values] + sorted(v for v in values if v not in known)


def sorted_keys(keys: Iterable[tuple], columns: Sequence[str]) -> list[tuple]:
    """Key tuples (values of `columns`) sorted column by column in the tables' order."""
    keys = list(keys)
    orders = [known_first((k[i] for k in keys), KNOWN_ORDER[c]) for i, c in enumerate(columns)]
    return sorted(keys, key=lambda k: tuple(order.index(v) for order, v in zip(orders, k)))


def checked(table: pd.DataFrame | None, columns: Sequence[str], name: str) -> pd.DataFrame:
    """`table` with its columns; an empty or absent table becomes an empty one with the columns."""
    import pandas as pd

    if table is None or (len(table) == 0 and any(c not in table.columns for c in columns)):
        return pd.DataFrame({column: pd.Series(dtype="object") for column in columns})
    lacking = [c for c in columns if c not in table.columns]
    if lacking:
        raise ValueError(f"the {name} table lacks the column(s) {', '.join(lacking)}")
    return table


def typed(rows: list[dict], schema: dict[str, str]) -> pd.DataFrame:
    """The rows as a table of the schema's columns (name -> dtype), in order, typed."""
    import pandas as pd

    return pd.DataFrame(rows, columns=list(schema)).astype(schema)
