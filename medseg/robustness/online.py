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

EPOCH_IN_PATH = re.compile(r"(?:^|/)epoch=(\d+)(?:/|$)")


def epoch_of(path: str | Path) -> int:
    """The checkpoint epoch of a robustness file, from its hive path (`.../epoch=N/...`)."""
    match = EPOCH_IN_PATH.search(Path(path).as_posix())
    if match is None:
        raise MedsegError(f"{path}: no 'epoch=N' folder in the path; robustness files live under .../epoch=N/")
    return int(match.group(1))


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


def write_choice(record: dict, out: Path) -> None:
    with atomic_file(out) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
