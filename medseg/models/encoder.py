"""The encoder interface shared by all models: level features, level names, safetensors I/O."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import safe_open, save_file
from torch import nn

from medseg.atomic import atomic_file
from medseg.errors import MedsegError
from medseg.names import LEVELS

# File metadata that describes where the weights come from, not the encoder's shapes: `load`
# does not compare it, and a file without it (older medseg) still loads.
DESCRIPTIVE_KEYS = ("image_size", "scheme", "epoch", "seed")


@dataclass(frozen=True)
class Level:
    """One encoder level: its feature channels and its stride relative to the input."""

    channels: int
    stride: int


class Encoder(nn.Module):
    """A U-Net-style encoder: `forward` returns one NCHW feature map per level, highest resolution first.

    Subclasses set `name`, `init_scheme` (the weight initialisation of their model family, also
    used for a classification head on top) and `levels`.
    """

    name: ClassVar[str]
    init_scheme: ClassVar[Callable[[nn.Module], None]]
    levels: tuple[Level, ...]

    def __init__(self, image_size: int, width: float) -> None:
        super().__init__()
        self.image_size = image_size
        self.width = width

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def level_index(self, level: str) -> int:
        """Index into `levels` (and into the forward output) of a named level."""
        if level not in LEVELS:
            raise MedsegError(f"unknown encoder level {level!r}; expected one of {', '.join(LEVELS)}")
        return len(self.levels) - 1 - LEVELS.index(level)

    def description(self) -> str:
        """How error messages and listings name this encoder, e.g. `'resnet50' (width 1)`."""
        return _describe(self.identity())

    def identity(self) -> dict[str, str]:
        """What a weights file must match to load into this encoder (the tensor shapes depend on it)."""
        return {"encoder": self.name, "width": f"{self.width:g}"}

    def save(self, path: str | os.PathLike, about: Mapping[str, str] | None = None) -> None:
        """Write the weights and BatchNorm statistics as safetensors.

        The metadata is `identity()`, the image size and `about`: descriptive keys (scheme, epoch,
        seed) that say which checkpoint the file is.
        """
        about = dict(about or {})
        if unknown := sorted(set(about) - set(DESCRIPTIVE_KEYS)):
            raise ValueError(f"not descriptive encoder metadata: {unknown}; known: {DESCRIPTIVE_KEYS}")
        tensors = {key: value.detach().cpu().contiguous() for key, value in self.state_dict().items()}
        metadata = self.identity() | {"image_size": str(self.image_size)} | about
        with atomic_file(path) as tmp:
            save_file(tensors, tmp, metadata=metadata)

    def load(self, path: str | os.PathLike) -> dict[str, str]:
        """Load weights written by `save` of an encoder with the same identity; returns the file's metadata."""
        path = Path(path)
        try:
            with safe_open(path, framework="pt") as file:
                metadata = file.metadata() or {}
                tensors = {key: file.get_tensor(key) for key in file.keys()}
        except FileNotFoundError:
            raise MedsegError(f"{path}: encoder weights file not found") from None
        except SafetensorError as error:
            raise MedsegError(f"{path} is not a readable safetensors file: {error}") from None
        if "encoder" not in metadata:
            raise MedsegError(f"{path} has no encoder metadata: it was not written by medseg")
        saved = {key: value for key, value in metadata.items() if key not in DESCRIPTIVE_KEYS}
        if saved != self.identity():
            raise MedsegError(f"{path} was saved from encoder {_describe(saved)} but this is {self.description()}")
        try:
            self.load_state_dict(tensors)
        except RuntimeError as error:
            raise MedsegError(f"{path} does not match encoder {_describe(saved)}: {error}") from None
        return metadata


def _describe(identity: dict[str, str]) -> str:
    """`'resnet50' (width 1)` from an identity dict."""
    knobs = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in identity.items() if key != "encoder")
    return f"'{identity['encoder']}' ({knobs})"
