"""state.pt (the full training state at a checkpoint) and the resume file (the same, mid-segment).

Both hold the model with its head, optimizer, scheduler, grad scaler, the global random states,
the position in the data order (epoch, update) and the run's identity. They are only ever read
with `torch.load(weights_only=True)`, and only continued by a run of the same identity.
"""

from __future__ import annotations

import logging
from pathlib import Path

from medseg.errors import MedsegError
from medseg.models.encoder import Encoder
from medseg.names import SCRATCH, SCRATCH_EPOCH
from medseg.pretrain.settings import RESUME_FILE, STATE_FILE
from medseg.training_state import describe_difference, load_marked, save_marked

log = logging.getLogger(__name__)

FORMAT = "medseg-pretrain-state/1"


def save(path: Path, state: dict) -> None:
    """Write a state dict atomically (a killed write never leaves a partial file under `path`)."""
    save_marked(path, FORMAT, state)


def read(path: Path) -> dict:
    """A state written by `save`, or a MedsegError naming the file."""
    if not path.is_file():
        raise MedsegError(
            f"{path}: pretraining state not found; the previous checkpoint of this chain must be "
            "trained first (Snakemake schedules it)"
        )
    return load_marked(path, FORMAT, "pretraining state", fix="; delete it and re-run the job that writes it")


def read_checked(path: Path, identity: dict[str, str]) -> dict:
    """`read`, refusing a state of another model, scheme, configuration or data."""
    state = read(path)
    if state["identity"] != identity:
        raise MedsegError(
            f"{path} was written by a different pretraining run: {describe_difference(state['identity'], identity)}. "
            "Continue it with its own settings, or re-run its chain from the start with these"
        )
    return state


def save_scratch(encoder: Encoder, path: Path, seed: int) -> None:
    """Write the epoch-0 encoder of `seed` (what `medseg init` writes), marked as such in its metadata."""
    save_encoder(encoder, path, SCRATCH, SCRATCH_EPOCH, seed)


def save_encoder(encoder: Encoder, path: Path, scheme: str, epoch: int, seed: int) -> None:
    """Write a checkpoint's encoder, its metadata naming the scheme, epoch and seed."""
    encoder.save(path, about={"scheme": scheme, "epoch": str(epoch), "seed": str(seed)})


def load_scratch(encoder: Encoder, path: Path, image_size: int, seed: int) -> None:
    """Load the epoch-0 encoder that `medseg init` wrote for this seed, model and size; refuse anything else.

    A first segment restarts the chain from zero, so any other file (a later checkpoint's
    encoder, another seed's) would silently train a different run.
    """
    metadata = encoder.load(path)  # checks the encoder, its width and (Swin) window; names the file
    if metadata.get("scheme") != SCRATCH or metadata.get("epoch") != "0":
        if "scheme" in metadata:
            raise MedsegError(
                f"{path} is the encoder of checkpoint {metadata.get('epoch')} ({metadata['scheme']} scheme), not a "
                f"scratch encoder: continue from that checkpoint's {Path(path).with_name(STATE_FILE)}, or start the "
                "first segment from the file of `medseg init`"
            )
        raise MedsegError(
            f"{path} does not record that it is a scratch encoder (it was not written by `medseg init`, or by an "
            f"older medseg): write the start with `medseg init --seed {seed}` and the same model options"
        )
    if metadata.get("seed") != str(seed):
        raise MedsegError(
            f"{path} is the scratch encoder of seed {metadata.get('seed')} but this run uses seed {seed}: start from "
            f"the file of `medseg init --seed {seed}`"
        )
    if metadata.get("image_size") != str(image_size):
        raise MedsegError(
            f"{path} was initialised for image size {metadata.get('image_size')} but this run uses {image_size}; "
            "re-run `medseg init` with this image size"
        )


def resume_path(out_dir: Path) -> Path:
    """Where a segment keeps its resume file: beside its outputs, not one of them."""
    return Path(out_dir) / RESUME_FILE


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
            path,
            describe_difference(state["identity"], identity) or "same settings",
            state.get("segment"),
            segment,
        )
        return None
    return state
