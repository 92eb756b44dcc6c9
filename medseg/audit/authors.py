"""The authors' published results (paper/results/) as the long tables `medseg.aggregate.tis` reads.

Names are mapped to this project's (models, datasets, schemes, distances, modes), the Dice
column is chosen per dataset, the stored robustness (the mean hinge) becomes Eq. 3 (1 - hinge),
and the levels, counted from the first encoder output, become `last` / `second_to_last` (other
levels are dropped). The random initialisation's runs (stored once, under `simple`) become the
`scratch` scheme; its robustness stays per scheme, as stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from medseg.errors import MedsegError
from medseg.names import SCRATCH, SCRATCH_EPOCH

if TYPE_CHECKING:
    import pandas as pd

MODELS = {"basic U-Net": "unet", "ResNet50 Attention U-Net": "resnet50_attention_unet", "Swin U-Net": "swin_unet"}
ENCODERS = {"u-net_encoder": "unet", "resnet50": "resnet50_attention_unet", "swin_transformer": "swin_unet"}
DATASETS = {"ACDC": "acdc", "COVIDQUDataset": "covidqu", "COVID-QU": "covidqu", "IDRiD": "idrid"}
SCHEMES = {"simple": "simple", "advanced": "advanced", "simple_training": "simple", "advanced_training": "advanced"}
DISTANCES = {"cosine_distance": "cosine", "inv_pearson_corr": "correlation", "l2_loss": "l2"}
# The Dice column per dataset: ACDC's is the mean over its three foreground classes.
DICE_COLUMN = {"acdc": "mean dice index", "covidqu": "dice index", "idrid": "dice index"}
# The number of encoder outputs: `level` counts them from 1, so this is the last level.
LAST_LEVEL = {"unet": 5, "resnet50_attention_unet": 5, "swin_unet": 4}

DOWNSTREAM_COLUMNS = [
    "model",
    "dataset",
    "pretraining length",
    "freeze encoder",
    "pretraining scheme",
    "seed",
    "dice index",
    "mean dice index",
]
ROBUSTNESS_COLUMNS = [
    "dataset",
    "metric",
    "margin",
    "encoder",
    "pretraining_scheme",
    "pooled",
    "level",
    "pretraining_length",
    "robustness",
]
ACCURACY_COLUMNS = ["model", "scheme", "pretraining_length", "imagenet_val_top1"]


def _read(path: Path, columns: list[str], what: str) -> pd.DataFrame:
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise MedsegError(f"{path}: no such file; pass the authors' {what} CSV (see paper/results/README.md)")
    try:
        table = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as error:
        raise MedsegError(f"{path}: not a readable CSV file ({error}); pass the authors' {what} CSV") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise MedsegError(f"{path}: lacks the column(s) {', '.join(missing)}; expected the authors' {what} CSV")
    return table


def _map(table: pd.DataFrame, column: str, names: dict[str, str], path: Path) -> pd.Series:
    unknown = sorted(set(table[column].astype(str)) - set(names))
    if unknown:
        raise MedsegError(
            f"{path}: unknown {column} value(s) {', '.join(map(repr, unknown))}; expected {', '.join(map(repr, names))}"
        )
    return table[column].astype(str).map(names)


def _boolean(table: pd.DataFrame, column: str, path: Path) -> pd.Series:
    values = table[column].astype(str).str.lower().map({"true": True, "false": False})
    if values.isna().any():
        raise MedsegError(f"{path}: column {column!r} must hold True or False")
    return values.astype(bool)


@contextlib.contextmanager
def _values(path: Path, what: str) -> Iterator[None]:
    """A value that does not convert (a word where a number belongs) becomes a one-line error."""
    try:
        yield
    except (ValueError, TypeError) as error:
        raise MedsegError(f"{path}: a value does not convert ({error}); expected the authors' {what} CSV") from None


def read_downstream(path: Path) -> pd.DataFrame:
    """`downstream_scores.csv` as the runs table: dataset, model, scheme, epoch, mode, seed, dice."""
    import pandas as pd

    raw = _read(path, DOWNSTREAM_COLUMNS, "downstream_scores")
    with _values(path, "downstream_scores"):
        dataset = _map(raw, "dataset", DATASETS, path)
        epoch = raw["pretraining length"].astype(int)
        dice = pd.Series(float("nan"), index=raw.index)
        for name, column in DICE_COLUMN.items():
            dice = dice.where(dataset != name, raw[column])
        runs = pd.DataFrame(
            {
                "dataset": dataset,
                "model": _map(raw, "model", MODELS, path),
                "scheme": _map(raw, "pretraining scheme", SCHEMES, path).where(epoch != SCRATCH_EPOCH, SCRATCH),
                "epoch": epoch,
                "mode": _boolean(raw, "freeze encoder", path).map({True: "decoder", False: "full"}),
                "seed": raw["seed"].astype(int),
                "dice": dice.astype(float),
            }
        )
        if runs["dice"].isna().any():
            row = raw[runs["dice"].isna()].index[0]
            raise MedsegError(
                f"{path}: line {row + 2} has no Dice in its dataset's column ({DICE_COLUMN[dataset[row]]!r})"
            )
        return runs


def read_robustness(path: Path) -> pd.DataFrame:
    """`robustness_scores.csv` as the robustness table, Eq. 3 (1 - the stored mean hinge)."""
    import pandas as pd

    raw = _read(path, ROBUSTNESS_COLUMNS, "robustness_scores")
    with _values(path, "robustness_scores"):
        model = _map(raw, "encoder", ENCODERS, path)
        last = model.map(LAST_LEVEL)
        level = raw["level"].astype(int)
        table = pd.DataFrame(
            {
                "dataset": _map(raw, "dataset", DATASETS, path),
                "model": model,
                "scheme": _map(raw, "pretraining_scheme", SCHEMES, path),
                "epoch": raw["pretraining_length"].astype(int),
                "distance": _map(raw, "metric", DISTANCES, path),
                "margin": raw["margin"].astype(float),
                "level": (level - last).map({0: "last", -1: "second_to_last"}),
                "pooled": _boolean(raw, "pooled", path),
                "robustness": 1.0 - raw["robustness"].astype(float),
                "hinge_mean": raw["robustness"].astype(float),
            }
        )
        return table[table["level"].notna()].reset_index(drop=True)


def read_accuracy(path: Path) -> pd.DataFrame:
    """`imagenet_accuracy.csv` as the accuracy table: model, scheme, epoch, val_top1."""
    import pandas as pd

    raw = _read(path, ACCURACY_COLUMNS, "imagenet_accuracy")
    with _values(path, "imagenet_accuracy"):
        names = {name: name for name in LAST_LEVEL} | MODELS
        return pd.DataFrame(
            {
                "model": _map(raw, "model", names, path),
                "scheme": _map(raw, "scheme", SCHEMES, path),
                "epoch": raw["pretraining_length"].astype(int),
                "val_top1": raw["imagenet_val_top1"].astype(float),
            }
        )


def align_authors(runs: pd.DataFrame, epochs: list[int]) -> pd.DataFrame:
    """The runs as the authors' evaluation paired them with the checkpoints.

    For the advanced scheme the downstream results, ordered `[1, 5, ..., 300, random init]`,
    were paired position by position with the checkpoint list `[0, 1, 5, ..., 300]`: checkpoint
    `epochs[i]` gets the runs of `epochs[i + 1]`, and the last checkpoint gets the random
    initialisation's. The simple scheme is unaffected.
    """
    import pandas as pd

    epochs = sorted(epochs)
    label = {true: shown for shown, true in zip(epochs, epochs[1:])}
    advanced = runs[runs["scheme"] == "advanced"].copy()
    advanced["epoch"] = advanced["epoch"].map(label)
    scratch = runs[runs["scheme"] == SCRATCH].assign(scheme="advanced", epoch=epochs[-1])
    return pd.concat(
        [runs[runs["scheme"] != "advanced"], advanced.dropna(subset=["epoch"]), scratch], ignore_index=True
    ).astype({"epoch": int})


def copied_scratch_robustness(robustness: pd.DataFrame) -> list[str]:
    """The datasets whose epoch-0 robustness is, row for row, the last checkpoint's (a release defect)."""
    last = robustness["epoch"].max()
    keys = ["dataset", "model", "scheme", "distance", "margin", "level", "pooled"]
    zero = robustness[robustness["epoch"] == SCRATCH_EPOCH].set_index(keys)["robustness"]
    final = robustness[robustness["epoch"] == last].set_index(keys)["robustness"].reindex(zero.index)
    same = (zero == final).groupby(level="dataset").all()
    return sorted(same[same].index)
