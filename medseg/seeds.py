"""All randomness of training, derived from (seed, epoch, position) instead of carried streams.

Pretraining: the data order of an epoch, each image's augmentation and each micro-batch's mixing,
erasing and stochastic depth are seeded from the run's seed and where they happen. A run
therefore continues exactly from (epoch, update) alone: splitting it into segments, killing and
resuming it, or changing the number of loader workers gives the same random draws. The scheme is
not mixed in: both schemes see the same image order in every epoch. Downstream training derives
its epoch order and per-step draws the same way (`medseg.downstream.train`).
"""

from __future__ import annotations

import random

import numpy as np
import torch

# Independent streams of one seed.
ORDER, SAMPLE, STEP = range(3)


def derive(*keys: int) -> int:
    """A 63-bit seed from non-negative integers (numpy's SeedSequence mixes them)."""
    low, high = np.random.SeedSequence([int(key) for key in keys]).generate_state(2)
    return (int(high) << 32 | int(low)) & (2**63 - 1)


def epoch_order(seed: int, epoch: int, size: int) -> np.ndarray:
    """The permutation of the training images used in `epoch` (1-based)."""
    return np.random.default_rng(derive(seed, ORDER, epoch)).permutation(size)


def sample_seed(seed: int, epoch: int, position: int) -> int:
    """Seed of the augmentation of the image at `position` of `epoch`'s order."""
    return derive(seed, SAMPLE, epoch, position)


def step_seed(seed: int, epoch: int, update: int, micro: int) -> int:
    """Seed of micro-batch `micro` of optimizer update `update` (0-based within the epoch)."""
    return derive(seed, STEP, epoch, update, micro)


def seed_globals(value: int) -> None:
    """Seed the global generators that timm's and torch's random parts draw from.

    timm's crops and random erasing use `random`, RandAugment and Mixup also use numpy's global
    generator, flips and stochastic depth use torch's (`manual_seed` seeds every CUDA device too).
    """
    random.seed(value)
    np.random.seed(value % 2**32)
    torch.manual_seed(value)


def rng_state() -> dict:
    """The global generator states, in types that `torch.load(weights_only=True)` accepts."""
    _, keys, position, has_gauss, cached_gauss = np.random.get_state()
    version, internal, gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "cached_gauss": float(cached_gauss),
        },
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` returned."""
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(
        (
            "MT19937",
            numpy["keys"].numpy().astype(np.uint32),
            numpy["position"],
            numpy["has_gauss"],
            numpy["cached_gauss"],
        )
    )
    python = state["python"]
    random.setstate((python["version"], tuple(python["internal"]), python["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
