"""Which torch device a single-process command runs on (robustness scoring, downstream training)."""

from __future__ import annotations

import torch

from medseg.errors import MedsegError


def pick_device(name: torch.device | str | None) -> torch.device:
    """`name` (e.g. "cpu", "cuda:1"), else cuda when available, else cpu; a device torch lacks is refused."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise MedsegError(f"unknown torch device {str(name)!r}: {error}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MedsegError(f"device {str(name)!r} was asked for but torch sees no CUDA GPU")
    return device
