"""What both training loops (pretraining, downstream training) share about their saved state.

State files are torch files with a format marker, written atomically and read only with
`torch.load(weights_only=True)`; a run continues only a state of its own identity (a dict of
strings), and names the keys that differ otherwise. Each epoch adds one row to a history table.
"""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from medseg.atomic import atomic_file
from medseg.errors import MedsegError

# What torch.load raises for a truncated, foreign or tampered file.
UNREADABLE = (RuntimeError, EOFError, OSError, ValueError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile)


def save_marked(path: Path, marker: str, state: dict) -> None:
    """Write `state` with its format marker atomically (a killed write never leaves a partial file)."""
    with atomic_file(path) as tmp:
        torch.save({"format": marker, **state}, tmp)


def load_marked(path: Path, marker: str, what: str, fix: str = "") -> dict:
    """A state written by `save_marked` with `marker`, or a MedsegError naming the file as not a `what`.

    `fix` is appended to the message of a file that cannot be read at all.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except UNREADABLE as error:
        raise MedsegError(f"{path} is not a readable {what} ({type(error).__name__}: {error}){fix}") from None
    if not isinstance(state, dict) or state.get("format") != marker or "identity" not in state:
        raise MedsegError(f"{path} is not a medseg {what} (no '{marker}' marker)")
    return state


def describe_difference(saved: dict[str, str], expected: dict[str, str]) -> str:
    """`seed 1 (this run: 0), batch ...`: the keys where a stored identity differs."""
    keys = sorted(set(saved) | set(expected))
    parts = [
        f"{key} {saved.get(key, 'unset')} (this run: {expected.get(key, 'unset')})"
        for key in keys
        if saved.get(key) != expected.get(key)
    ]
    return ", ".join(parts)


def epoch_row(epoch: int, lr: float, partial: dict, loss_terms: int, evaluation: dict[str, float]) -> dict:
    """One history row: the epoch, its last lr, mean training loss over `loss_terms`, `evaluation`, speed.

    `partial` holds the epoch's sums: `loss_sum`, `images`, `train_seconds` (training only) and
    `seconds` (everything, evaluation included).
    """
    train_seconds = partial["train_seconds"]
    return {
        "train_epoch": epoch,
        "lr": lr,
        "train_loss": partial["loss_sum"] / max(loss_terms, 1),
        **evaluation,
        "images_per_s": partial["images"] / train_seconds if train_seconds else float("nan"),
        "seconds": partial["seconds"],
    }


def history_columns(evaluation: Sequence[str]) -> tuple[str, ...]:
    """The columns of a history table whose rows are `epoch_row`s with these evaluation columns."""
    return ("train_epoch", "lr", "train_loss", *evaluation, "images_per_s", "seconds")


def write_history(path: Path, rows: list[dict], evaluation: Sequence[str]) -> None:
    """The history rows as a Parquet table, atomically (the columns even when there are no rows)."""
    table = pd.DataFrame(rows, columns=list(history_columns(evaluation))).astype({"train_epoch": "int64"})
    with atomic_file(path) as tmp:
        table.to_parquet(tmp, index=False)
