"""The resume file of a downstream run: model, optimizer, scheduler, position and history so far.

Written atomically every few minutes and on SIGTERM/SIGINT; read only with
`torch.load(weights_only=True)`. A run continues only a resume file of its own identity
(`settings.identity`). The file lives beside the scores, hidden (`.scores.resume.pt` beside `scores.parquet` by default), so
that reading the `downstream` tree as a Parquet dataset never trips over it.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path

import torch

from medseg.atomic import atomic_file
from medseg.errors import MedsegError
from medseg.pretrain.settings import describe_difference

log = logging.getLogger(__name__)

FORMAT = "medseg-downstream-resume/1"
# What torch.load raises for a truncated, foreign or tampered file.
_UNREADABLE = (RuntimeError, EOFError, OSError, ValueError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile)


def default_resume(scores: Path) -> Path:
    """Where a run keeps its resume file unless told: beside its scores, hidden, named after them."""
    scores = Path(scores)
    return scores.parent / f".{scores.stem}.resume.pt"


def save(path: Path, state: dict) -> None:
    """Write a resume file atomically (a killed write never leaves a partial file under `path`)."""
    with atomic_file(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def _read(path: Path) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except _UNREADABLE as error:
        raise MedsegError(f"{path} is not a readable resume file ({type(error).__name__}: {error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "identity" not in state:
        raise MedsegError(f"{path} is not a medseg downstream resume file (no '{FORMAT}' marker)")
    return state


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
        state = _read(path)
        if state["identity"] != identity:
            raise MedsegError(
                f"{path} belongs to a different run: {describe_difference(state['identity'], identity)}"
            )
    except MedsegError as error:
        if explicit:
            raise MedsegError(f"{error}; delete it to start this run over") from None
        log.warning("ignoring the resume file: %s", error)
        return None
    return state


def remove(path: Path) -> None:
    Path(path).unlink(missing_ok=True)
