"""The online method's bookkeeping: read a checkpoint's main-variant robustness, write the choice.

The walk itself is `medseg.robustness.selection.online_walk`; the workflow's input function
asks it which checkpoint comes next, one robustness file at a time (see workflow/rules/robustness.smk).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from medseg.atomic import atomic_file
from medseg.errors import MedsegError
from medseg.robustness.selection import main_variant, online_walk

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
        (table.distance == variant.distance) & (table.margin == variant.margin)
        & (table.level == variant.level) & (table.pooled == variant.pooled)
    ]
    if len(row) != 1:
        raise MedsegError(
            f"{path} has no row for the main variant ({variant.distance}, margin {variant.margin:g}, "
            f"{variant.level}, {'pooled' if variant.pooled else 'unpooled'}); score it with margin {variant.margin:g} included"
        )
    return float(row.robustness.iloc[0])


def online_choice_record(checkpoints: Sequence[int], files: Iterable[str | Path], mode: str) -> dict:
    """What `choice.json` holds: the kept checkpoint, the trail walked and the pretraining it cost."""
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
        "mode": mode,
        "variant": {"distance": variant.distance, "margin": variant.margin, "level": variant.level, "pooled": variant.pooled},
        "chosen_epoch": walk.chosen,
        "trail": [{"epoch": epoch, "robustness": scores[epoch]} for epoch in walk.trail],
        "pretrained_epochs": walk.pretrained_epochs,
        "planned_epochs": planned,
        "saved_epochs": planned - walk.pretrained_epochs,
    }


def downstream_record(files: Sequence[str | Path], chosen_epoch: int, mode: str) -> dict:
    """The kept checkpoint's downstream result: mean foreground Dice of each seed's run, and their mean."""
    import pandas as pd

    runs = []
    for path in files:
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
