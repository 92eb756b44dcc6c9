"""The hive trees of a results folder into single tables, checked against the configured grid.

Every stage writes one small file per job under `results/<tree>/key=value/.../<file>`. This module
reads whatever exists (a grid may still be running), turns the path keys into typed columns
(`epoch` and `seed` integers, the others strings) and refuses, before anything is written, a
results tree it cannot vouch for: a stray or unreadable Parquet file, a file of another schema, a
run present twice, or a key value that is not in the configured grid. Hidden files (resume files,
the temporary files of writes in progress) and files of other types are not read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medseg.errors import MedsegError
from medseg.names import EXTERNAL_PREFIX, MODES, PRETRAIN_SCHEMES, SCRATCH, SCRATCH_EPOCH

if TYPE_CHECKING:
    import pandas as pd

ENCODER_KEYS = ("model", "scheme", "epoch")
SCORED_KEYS = ("dataset", *ENCODER_KEYS)
RUN_KEYS = (*SCORED_KEYS, "mode", "seed")
INTEGER_KEYS = ("epoch", "seed")
HISTORY = ["train_epoch", "lr", "train_loss"]
TIMING = ["images_per_s", "seconds"]


@dataclass(frozen=True)
class Tree:
    """One stage's hive tree: its folder under the results, its file name, path keys and file columns."""

    folder: str
    file: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]
    unique: tuple[str, ...] = ()  # file columns that, with the keys, identify a row

    @property
    def what(self) -> str:
        return f"{self.folder}/{'/'.join(f'{key}=…' for key in self.keys)}/{self.file}"


# The collected tables: name -> tree. The file columns are what the writing stages write
# (tests/test_aggregate_collect.py checks them against the stages' own column lists).
TREES = {
    "scores": Tree("downstream", "scores.parquet", RUN_KEYS, ("metric", "class", "value"), ("metric", "class")),
    "robustness": Tree(
        "robustness",
        "robustness.parquet",
        SCORED_KEYS,
        ("distance", "margin", "level", "pooled", "robustness", "hinge_mean", "n_images", "seconds"),
        ("distance", "margin", "level", "pooled"),
    ),
    "rankme": Tree(
        "rankme", "rankme.parquet", SCORED_KEYS, ("level", "rankme", "n_images", "n_features", "seconds"), ("level",)
    ),
    "pretraining": Tree(
        "pretrain_history",
        "history.parquet",
        ENCODER_KEYS,
        (*HISTORY, "val_loss", "val_top1", "val_top5", *TIMING),
        ("train_epoch",),
    ),
    "downstream_history": Tree(
        "downstream_history", "history.parquet", RUN_KEYS, (*HISTORY, "test_dice", *TIMING), ("train_epoch",)
    ),
}
ONLINE = Tree("online", "choice.json", ("dataset", "model", "scheme", "mode"), ())
ONLINE_COLUMNS = [
    *ONLINE.keys,
    "distance",
    "margin",
    "level",
    "pooled",
    "chosen_epoch",
    "trail",
    "pretrained_epochs",
    "planned_epochs",
    "saved_epochs",
    "mean_dice",
]
COLLECTED = (*TREES, "online", "progress")
PROGRESS_COLUMNS = ["stage", "expected", "done"]


# The `medseg aggregate` option that sets each key's values (the modes are fixed).
GRID_OPTIONS = {
    "dataset": "--datasets",
    "model": "--models",
    "scheme": "--external",
    "epoch": "--checkpoints",
    "seed": "--seeds",
}


@dataclass(frozen=True)
class Grid:
    """The configured grid: what the workflow runs, so what a results tree may hold."""

    datasets: tuple[str, ...]
    models: tuple[str, ...]
    checkpoints: tuple[int, ...]
    seeds: tuple[int, ...]
    external: tuple[str, ...] = ()  # names of external encoder files (scheme external-<name>, epoch 0)

    def schemes(self) -> tuple[str, ...]:
        return (*PRETRAIN_SCHEMES, SCRATCH, *(EXTERNAL_PREFIX + name for name in self.external))

    def epochs(self) -> tuple[int, ...]:
        """Every checkpoint with the scratch encoder's epoch 0."""
        return (SCRATCH_EPOCH, *sorted(self.checkpoints))

    def allowed(self, key: str) -> tuple:
        return {
            "dataset": self.datasets,
            "model": self.models,
            "scheme": self.schemes(),
            "epoch": self.epochs(),
            "mode": MODES,
            "seed": self.seeds,
        }[key]

    def encoder_files(self) -> int:
        """Encoder files scored per dataset: scratch and every checkpoint per model, and the external files."""
        return len(self.models) * (1 + len(PRETRAIN_SCHEMES) * len(self.checkpoints)) + len(self.external)

    def expected(self) -> dict[str, int]:
        """How many files each collected table has when the grid is done."""
        scored = len(self.datasets) * self.encoder_files()
        return {
            "scores": scored * len(MODES) * len(self.seeds),
            "robustness": scored,
            "rankme": scored,
            "pretraining": len(self.models) * len(PRETRAIN_SCHEMES) * len(self.checkpoints),
            "downstream_history": scored * len(MODES) * len(self.seeds),
            "online": len(self.datasets) * len(self.models) * len(PRETRAIN_SCHEMES) * len(MODES),
        }


def _keys_of(path: Path, root: Path, tree: Tree, grid: Grid) -> dict[str, str | int]:
    """The typed key values of one file of `tree`, checked against its layout and the grid."""
    parts = path.relative_to(root).parts
    layout = f"expected {tree.what}"
    if len(parts) != len(tree.keys) + 1 or parts[-1] != tree.file:
        raise MedsegError(f"{path}: a stray file in {root}; {layout}; move it out of the results tree")
    values: dict[str, str | int] = {}
    for key, part in zip(tree.keys, parts[:-1]):
        match = re.fullmatch(rf"{key}=(.+)", part)
        if match is None:
            raise MedsegError(f"{path}: folder {part!r} where {key}=… belongs; {layout}")
        text = match.group(1)
        value: str | int = text
        if key in INTEGER_KEYS:
            if not re.fullmatch(r"0|[1-9][0-9]*", text):
                raise MedsegError(f"{path}: {key}={text} is not a whole number as medseg writes it; {layout}")
            value = int(text)
        if value not in grid.allowed(key):
            allowed = " ".join(map(str, grid.allowed(key)))
            option = GRID_OPTIONS.get(key)
            fix = f", or add the value to the config (`medseg aggregate {option}`)" if option else ""
            raise MedsegError(
                f"{path}: {key}={text} is not in the configured grid ({key}: {allowed}); move the file out of "
                f"the results tree{fix}"
            )
        values[key] = value
    scheme, epoch = values.get("scheme"), values.get("epoch")
    if scheme is not None and (scheme in PRETRAIN_SCHEMES) == (epoch == SCRATCH_EPOCH):
        where = "a checkpoint epoch" if scheme in PRETRAIN_SCHEMES else f"epoch {SCRATCH_EPOCH}"
        raise MedsegError(f"{path}: scheme={scheme} with epoch={epoch}; that scheme's files are at {where}")
    return values


def _files(root: Path, tree: Tree) -> list[Path]:
    """The files of a tree that are read: not hidden, of the tree's file type, sorted."""
    if not root.exists():
        return []
    if not root.is_dir():
        raise MedsegError(f"{root}: not a folder; expected the hive tree {tree.what}")
    suffix = Path(tree.file).suffix
    return sorted(
        path
        for path in root.rglob(f"*{suffix}")
        if not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def _read_parquet(path: Path, tree: Tree) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path).to_pandas()
    except Exception as error:  # pyarrow raises several types for damaged files
        raise MedsegError(f"{path}: not a readable Parquet file ({error}); delete it and re-run its job") from None
    if sorted(table.columns) != sorted(tree.columns):
        raise MedsegError(
            f"{path}: columns {', '.join(map(str, table.columns))}; expected {', '.join(tree.columns)} "
            f"(the schema of {tree.what})"
        )
    return table[list(tree.columns)]


def _typed(frame: pd.DataFrame, keys: Iterable[str]) -> pd.DataFrame:
    """Key columns as strings, `epoch` and `seed` as int64."""
    return frame.astype({key: "int64" if key in INTEGER_KEYS else "string" for key in keys})


def collect_tree(results: Path, name: str, grid: Grid) -> pd.DataFrame:
    """Every file of one tree as one table: the path keys first, then the file's columns."""
    import pandas as pd

    tree = TREES[name]
    root = Path(results) / tree.folder
    parts, seen = [], {}
    for path in _files(root, tree):
        keys = _keys_of(path, root, tree, grid)
        identity = tuple(keys.values())
        if identity in seen:
            raise MedsegError(f"{path} and {seen[identity]} are the same run; keep one of them")
        seen[identity] = path
        table = _read_parquet(path, tree)
        repeated = table.duplicated(list(tree.unique))
        if repeated.any():
            row = table[repeated].iloc[0]
            what = ", ".join(f"{column}={row[column]}" for column in tree.unique)
            raise MedsegError(f"{path}: the row {what} is there twice; delete the file and re-run its job")
        parts.append(table.assign(**keys))
    columns = [*tree.keys, *tree.columns]
    if not parts:
        return _typed(pd.DataFrame({column: pd.Series(dtype="float64") for column in columns}), tree.keys)
    frame = pd.concat(parts, ignore_index=True)[columns]
    return _typed(frame, tree.keys).reset_index(drop=True)


def _choice_row(path: Path, keys: dict) -> dict:
    """One flat row of an online `choice.json`."""
    try:
        record = json.loads(path.read_text())
        variant = record["variant"]
        row = {
            **keys,
            **{column: variant[column] for column in ("distance", "margin", "level", "pooled")},
            "chosen_epoch": int(record["chosen_epoch"]),
            "trail": " ".join(str(step["epoch"]) for step in record["trail"]),
            **{column: int(record[column]) for column in ("pretrained_epochs", "planned_epochs", "saved_epochs")},
            "mean_dice": float(record.get("downstream", {}).get("mean_dice", float("nan"))),
        }
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise MedsegError(
            f"{path}: not an online choice written by `medseg online` ({type(error).__name__}: {error}); delete it "
            "and re-run its job"
        ) from None
    mismatch = [key for key in ONLINE.keys if str(record.get(key)) != str(keys[key])]
    if mismatch:
        key = mismatch[0]
        raise MedsegError(f"{path}: holds {key} {record.get(key)!r} but lies under {key}={keys[key]}")
    return row


def collect_online(results: Path, grid: Grid) -> pd.DataFrame:
    """Every online `choice.json` as one table (the trail as space-separated epochs)."""
    import pandas as pd

    root = Path(results) / ONLINE.folder
    rows = []
    for path in _files(root, ONLINE):
        keys = _keys_of(path, root, ONLINE, grid)
        if keys["scheme"] not in PRETRAIN_SCHEMES:
            raise MedsegError(
                f"{path}: scheme={keys['scheme']}; the online method walks {' or '.join(PRETRAIN_SCHEMES)}"
            )
        rows.append(_choice_row(path, keys))
    frame = pd.DataFrame(rows, columns=ONLINE_COLUMNS)
    return frame.astype(
        {
            **{key: "string" for key in (*ONLINE.keys, "distance", "level", "trail")},
            "margin": "float64",
            "pooled": "boolean",
            **{key: "int64" for key in ("chosen_epoch", "pretrained_epochs", "planned_epochs", "saved_epochs")},
            "mean_dice": "float64",
        }
    )


def progress(tables: dict[str, pd.DataFrame], grid: Grid) -> pd.DataFrame:
    """Files done against files expected, per collected table."""
    import pandas as pd

    keys = {**{name: tree.keys for name, tree in TREES.items()}, "online": ONLINE.keys}
    rows = [
        (name, expected, len(tables[name][list(keys[name])].drop_duplicates()))
        for name, expected in grid.expected().items()
    ]
    return pd.DataFrame(rows, columns=PROGRESS_COLUMNS).astype({"stage": "string"})


def collect(results: Path, grid: Grid) -> dict[str, pd.DataFrame]:
    """Every collected table of `COLLECTED`, all read and checked before the caller writes any."""
    results = Path(results)
    if not results.is_dir():
        raise MedsegError(f"{results}: no such folder; give the workflow's results folder (--results)")
    tables = {name: collect_tree(results, name, grid) for name in TREES}
    tables["online"] = collect_online(results, grid)
    tables["progress"] = progress(tables, grid)
    return tables
