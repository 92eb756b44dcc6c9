"""state.pt (the full training state at a checkpoint) and the resume file (the same, mid-segment).

Both hold the model with its head, optimizer, scheduler, grad scaler, the global random states,
the position in the data order (epoch, update) and the run's identity. They are only ever read
with `torch.load(weights_only=True)`, and only continued by a run of the same identity.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open

from medseg.atomic import atomic_file
from medseg.errors import MedsegError
from medseg.models.encoder import Encoder
from medseg.pretrain.settings import describe_difference

log = logging.getLogger(__name__)

FORMAT = "medseg-pretrain-state/1"
RESUME_NAME = "resume.pt"
# What torch.load raises for a truncated, foreign or tampered file.
_UNREADABLE = (RuntimeError, EOFError, OSError, ValueError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile)


def save(path: Path, state: dict) -> None:
    """Write a state dict atomically (a killed write never leaves a partial file under `path`)."""
    with atomic_file(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def read(path: Path) -> dict:
    """A state written by `save`, or a MedsegError naming the file."""
    if not path.is_file():
        raise MedsegError(
            f"{path}: pretraining state not found; the previous checkpoint of this chain must be "
            "trained first (Snakemake schedules it)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except _UNREADABLE as error:
        raise MedsegError(
            f"{path} is not a readable pretraining state ({type(error).__name__}: {error}); delete it "
            "and re-run the job that writes it"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise MedsegError(f"{path} is not a medseg pretraining state (no '{FORMAT}' marker)")
    return state


def read_checked(path: Path, identity: dict[str, str]) -> dict:
    """`read`, refusing a state of another model, scheme, configuration or data."""
    state = read(path)
    if state["identity"] != identity:
        raise MedsegError(
            f"{path} was written by a different pretraining run: {describe_difference(state['identity'], identity)}. "
            "Continue it with its own settings, or re-run its chain from the start with these"
        )
    return state


def load_scratch(encoder: Encoder, path: Path, image_size: int) -> None:
    """Load the epoch-0 encoder written by `medseg init`, refusing one built for another model or size."""
    encoder.load(path)  # checks the encoder, its width and (Swin) window; names the file
    try:
        with safe_open(path, framework="pt") as file:
            saved_size = (file.metadata() or {}).get("image_size")
    except SafetensorError as error:  # pragma: no cover - load() above already read it
        raise MedsegError(f"{path} is not a readable safetensors file: {error}") from None
    if saved_size != str(image_size):
        raise MedsegError(
            f"{path} was initialised for image size {saved_size} but this run uses {image_size}; "
            "re-run `medseg init` with this image size"
        )


def resume_path(out_dir: Path) -> Path:
    """Where a segment keeps its resume file: beside its outputs, not one of them."""
    return Path(out_dir) / RESUME_NAME


def read_resume(path: Path, identity: dict[str, str], segment: dict[str, int]) -> dict | None:
    """The resume file of this very segment, or None (absent, unreadable or stale: then logged)."""
    if not path.is_file():
        return None
    try:
        state = read(path)
    except MedsegError as error:
        log.warning("ignoring the resume file: %s", error)
        return None
    if state["identity"] != identity or state.get("segment") != segment:
        log.warning(
            "ignoring the resume file %s: it belongs to another run (%s; segment %s, this one %s)",
            path, describe_difference(state["identity"], identity) or "same settings", state.get("segment"), segment,
        )
        return None
    return state
