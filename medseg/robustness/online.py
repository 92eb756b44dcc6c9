"""The online method's bookkeeping: read a checkpoint's main-variant robustness, write the choice.

The walk itself is `medseg.selection.online_walk`; the workflow's input function
asks it which checkpoint comes next, one robustness file at a time (see workflow/rules/robustness.smk).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from medseg.atomic import atomic_file
from medseg.errors import MedsegError
from medseg.names import SCRATCH, SCRATCH_EPOCH
from medseg.selection import main_variant, online_walk

CELL_KEYS = ("dataset", "model", "scheme")  # what a walk's files share (besides the scratch encoder's scheme)


def path_key(path: str | Path, key: str) -> str:
    """The value of a hive folder `key=value` in `path`."""
    match = re.search(rf"(?:^|/){key}=([^/]+)(?:/|$)", Path(path).as_posix())
    if match is None:
        raise MedsegError(f"{path}: no '{key}=...' folder in the path; results live under .../{key}=.../")
    return match.group(1)


def epoch_of(path: str | Path) -> int:
    """The checkpoint epoch of a robustness or scores file, from its hive path (`.../epoch=N/...`)."""
    value = path_key(path, "epoch")
    if not value.isdigit():
        raise MedsegError(f"{path}: 'epoch={value}' is not a whole number")
    return int(value)


def main_score(path: str | Path, mode: str) -> float:
    """The robustness of the main variant for downstream `mode` (§6) in one robustness.parquet."""
    import pandas as pd

    variant = main_variant(mode)
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise MedsegError(f"{path}: not a readable robustness table ({error})") from None
    row = table[
        (table.distance == variant.distance)
        & (table.margin == variant.margin)
        & (table.level == variant.level)
        & (table.pooled == variant.pooled)
    ]
    if len(row) != 1:
        raise MedsegError(
            f"{path} has no row for the main variant ({variant.distance}, margin {variant.margin:g}, "
            f"{variant.level}, {'pooled' if variant.pooled else 'unpooled'}); score it with margin {variant.margin:g} included"
        )
    score = float(row.robustness.iloc[0])
    if not math.isfinite(score):
        # A NaN would read as "not scored yet" and the workflow would ask for the same file forever.
        raise MedsegError(
            f"{path}: the main variant's robustness is {score}, not a number the walk can compare; the file is "
            "damaged or not written by `medseg robustness`: delete it and score the checkpoint again"
        )
    return score


def cell_keys(path: str | Path) -> dict[str, str]:
    """The dataset, model and scheme of a robustness or scores file, from its hive path."""
    return {key: path_key(path, key) for key in CELL_KEYS}


def shared_keys(files: Sequence[str | Path]) -> dict[str, str]:
    """The (dataset, model, scheme) that every file belongs to; MedsegError naming two that differ.

    The scratch encoder (scheme `scratch`, epoch 0) belongs to every scheme. Two files of the
    same epoch are refused too: only one of them could be walked.
    """
    keys: dict[str, tuple[str, Path]] = {}
    epochs: dict[int, Path] = {}
    for path in map(Path, files):
        epoch = epoch_of(path)
        if epoch in epochs:
            raise MedsegError(f"{epochs[epoch]} and {path} are both epoch {epoch}; give one file per checkpoint")
        epochs[epoch] = path
        for key, value in cell_keys(path).items():
            if key == "scheme" and value == SCRATCH and epoch == SCRATCH_EPOCH:
                continue
            first = keys.setdefault(key, (value, path))
            if first[0] != value:
                raise MedsegError(
                    f"{first[1]} and {path} are of different {key}s ({first[0]}, {value}); give the robustness "
                    "files of one dataset, model and scheme"
                )
    return {key: value for key, (value, _) in keys.items()}


def online_choice_record(checkpoints: Sequence[int], files: Iterable[str | Path], mode: str) -> dict:
    """What `choice.json` holds: the walk's dataset, model and scheme, the kept checkpoint, the trail
    walked and the pretraining it cost."""
    files = list(files)
    keys = shared_keys(files)
    scores = {epoch_of(path): main_score(path, mode) for path in files}
    walk = online_walk(checkpoints, scores)
    if not walk.finished:
        raise MedsegError(
            f"the online walk over checkpoints {list(checkpoints)} needs the robustness of epoch {walk.needed}, "
            "which is not among the files given"
        )
    variant = main_variant(mode)
    planned = max(checkpoints)
    return {
        **keys,
        "mode": mode,
        "variant": {
            "distance": variant.distance,
            "margin": variant.margin,
            "level": variant.level,
            "pooled": variant.pooled,
        },
        "chosen_epoch": walk.chosen,
        "trail": [{"epoch": epoch, "robustness": scores[epoch]} for epoch in walk.trail],
        "pretrained_epochs": walk.pretrained_epochs,
        "planned_epochs": planned,
        "saved_epochs": planned - walk.pretrained_epochs,
    }


def downstream_record(
    files: Sequence[str | Path], chosen_epoch: int, mode: str, keys: dict[str, str] | None = None
) -> dict:
    """The kept checkpoint's downstream result: mean foreground Dice of each seed's run, and their mean.

    `keys`: the walk's dataset, model and scheme, which every scores file must share.
    """
    import pandas as pd

    runs = []
    for path in files:
        if keys is not None:
            other = {key: value for key, value in cell_keys(path).items() if value != keys[key]}
            if other:
                key, value = next(iter(other.items()))
                raise MedsegError(
                    f"{path} is of {key} {value}, but the robustness files are of {key} {keys[key]}; give the scores "
                    "of the walked dataset, model and scheme"
                )
        if epoch_of(path) != chosen_epoch or path_key(path, "mode") != mode:
            raise MedsegError(
                f"{path} is a {path_key(path, 'mode')} run from epoch {epoch_of(path)}, but the online walk kept "
                f"epoch {chosen_epoch} for {mode} training; give the scores of that checkpoint and mode"
            )
        try:
            table = pd.read_parquet(path)
            dice = table[(table["metric"] == "dice") & (table["class"] == "mean")]["value"]
        except (OSError, ValueError, KeyError) as error:
            raise MedsegError(f"{path}: not a readable scores table ({error})") from None
        if len(dice) != 1:
            raise MedsegError(f"{path} has no mean Dice row (metric dice, class mean); is it a scores.parquet?")
        runs.append({"seed": int(path_key(path, "seed")), "dice": float(dice.iloc[0])})
    seeds = [run["seed"] for run in runs]
    if len(set(seeds)) != len(seeds):
        raise MedsegError(f"the scores files repeat a seed ({sorted(seeds)}); give one file per seed")
    runs.sort(key=lambda run: run["seed"])
    mean = sum(run["dice"] for run in runs) / len(runs)
    return {"runs": runs, "mean_dice": mean}


def write_choice(record: dict, out: Path) -> None:
    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
