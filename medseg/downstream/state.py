"""The resume file of a downstream run (model, optimizer, scheduler, position and history so far)
and its finished-run record (its scores, history and, with --save-model, weights).

Both are written atomically and read only with `torch.load(weights_only=True)`, and a run uses
only files of its own identity (`settings.identity`). They live beside the scores, hidden
(`.scores.resume.pt` and `.scores.finished.pt` beside `scores.parquet` by default), so that
reading the `downstream` tree as a Parquet dataset never trips over them.

The resume file is written every few minutes and on SIGTERM/SIGINT, and removed once the run's
outputs are written. The record is written when a run finishes, before its outputs, and kept
until every run of the `medseg train` call is done: Snakemake deletes the declared outputs of a
job that did not finish, so without it a multi-run job interrupted in its third run would train
the first two again. With it, the same command run again writes their outputs from the records.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import torch

from medseg.errors import MedsegError
from medseg.training_state import describe_difference, load_marked, save_marked

log = logging.getLogger(__name__)

FORMAT = "medseg-downstream-resume/1"
RECORD_FORMAT = "medseg-downstream-finished/1"


def default_resume(scores: Path) -> Path:
    """Where a run keeps its resume file unless told: beside its scores, hidden, named after them."""
    scores = Path(scores)
    return scores.parent / f".{scores.stem}.resume.pt"


def save(path: Path, state: dict) -> None:
    """Write a resume file atomically (a killed write never leaves a partial file under `path`)."""
    save_marked(path, FORMAT, state)


def read_resume(path: Path, identity: dict[str, str], explicit: bool) -> dict | None:
    """The resume file of this very run, or None when there is none.

    A file that cannot be read or belongs to another run is refused naming it when the caller
    named it (`explicit`, --resume); at the default place it is stale (e.g. the settings changed
    since a run was killed): logged and ignored, and overwritten by this run's next resume file.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = load_marked(path, FORMAT, "downstream resume file")
        if state["identity"] != identity:
            raise MedsegError(f"{path} belongs to a different run: {describe_difference(state['identity'], identity)}")
    except MedsegError as error:
        if explicit:
            raise MedsegError(f"{error}; delete it to start this run over") from None
        log.warning("ignoring the resume file: %s", error)
        return None
    return state


def remove(path: Path) -> None:
    Path(path).unlink(missing_ok=True)


def save_record(
    path: Path,
    identity: dict[str, str],
    scores: pd.DataFrame,
    history: list[dict],
    model: dict[str, torch.Tensor] | None,
    model_metadata: dict[str, str] | None,
) -> None:
    """Write a finished run's record atomically: what its outputs are made of (tables as plain columns)."""
    save_marked(
        path,
        RECORD_FORMAT,
        {
            "identity": identity,
            "scores": {column: scores[column].tolist() for column in scores.columns},
            "history": history,
            "model": model,
            "model_metadata": model_metadata,
        },
    )


def read_record(path: Path, identity: dict[str, str]) -> dict | None:
    """The finished-run record of this very run, or None (none there; another run's or unreadable: logged)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        record = load_marked(path, RECORD_FORMAT, "downstream finished-run record")
    except MedsegError as error:
        log.warning("ignoring the finished-run record: %s", error)
        return None
    if record["identity"] != identity:
        log.warning(
            "ignoring the finished-run record %s of a different run: %s",
            path,
            describe_difference(record["identity"], identity),
        )
        return None
    return record
