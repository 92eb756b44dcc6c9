"""Which checkpoint robustness chooses: the offline and online rules of the paper (§4, §6).

- **offline**: the argmax of robustness over all checkpoints, the scratch encoder (epoch 0)
  included; ties go to the earliest checkpoint.
- **online**: robustness as an early-stopping signal. Start at the first pretrained checkpoint
  (epoch 1 in the paper; the scratch encoder is ignored, §6), move to the next checkpoint while
  its robustness is strictly higher, and at the first checkpoint whose robustness is not higher
  stop and keep the current one. Checkpoints after that one are never needed, so their
  pretraining is never run.

The main variant (§6) is cosine distance, margin 0.5, the second-to-last encoder level, pooled
for decoder-only training and unpooled for full training: the online choice depends on the
downstream mode.

Pure Python, no third-party imports (`medseg.names`, `medseg.paper` only): the Snakefile's input functions call `online_walk`.
Scores are given as a mapping epoch -> robustness (higher is better, Eq. 3) or as a sequence
aligned with `epochs`; a missing or NaN score is an unknown one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from medseg import paper
from medseg.names import MODES, SCRATCH_EPOCH


@dataclass(frozen=True)
class Variant:
    """One robustness variant: the distance, the margin, the encoder level, pooled or not."""

    distance: str
    margin: float
    level: str
    pooled: bool


def main_variant(mode: str) -> Variant:
    """The paper's main variant for a downstream mode (`full` or `decoder`), §6."""
    if mode not in MODES:
        raise ValueError(f"unknown downstream mode {mode!r}; expected one of {', '.join(MODES)}")
    return Variant(
        distance=paper.MAIN_DISTANCE, margin=paper.MAIN_MARGIN, level=paper.MAIN_LEVEL, pooled=mode == "decoder"
    )


MAIN_VARIANTS = {mode: main_variant(mode) for mode in MODES}


def _known(epochs: Iterable[int], scores: Mapping[int, float] | Sequence[float]) -> tuple[list[int], dict[int, float]]:
    """The checkpoints sorted by epoch (each once) and the known scores among them."""
    epochs = [int(e) for e in epochs]
    if len(set(epochs)) != len(epochs):
        raise ValueError(f"checkpoint epochs must be distinct, got {epochs}")
    if not isinstance(scores, Mapping):
        scores = list(scores)
        if len(scores) != len(epochs):
            raise ValueError(f"{len(scores)} scores for {len(epochs)} checkpoints")
        scores = dict(zip(epochs, scores))
    known = {}
    for epoch in epochs:
        value = scores.get(epoch)
        if value is not None and not math.isnan(value):
            known[epoch] = float(value)
    return sorted(epochs), known


def offline_choice(epochs: Iterable[int], scores: Mapping[int, float] | Sequence[float]) -> int:
    """The epoch with the highest score among the checkpoints with a known score; ties -> earliest."""
    ordered, known = _known(epochs, scores)
    best = None
    for epoch in ordered:
        if epoch in known and (best is None or known[epoch] > known[best]):
            best = epoch
    if best is None:
        raise ValueError("no checkpoint has a robustness score")
    return best


@dataclass(frozen=True)
class OnlineWalk:
    """How far the online rule got with the scores known so far.

    `trail`: the checkpoints whose robustness the walk read, in order (the last one is the one
    that showed the decrease, unless the walk ran off the end of the list). `chosen`: the kept
    checkpoint, None while the walk is unfinished. `needed`: the next checkpoint whose robustness
    the walk must read, None once finished. `pretrained_epochs`: the pretraining the walk cost
    so far, the latest checkpoint in the trail (0 for an empty trail).
    """

    trail: tuple[int, ...]
    chosen: int | None
    needed: int | None

    @property
    def finished(self) -> bool:
        return self.chosen is not None

    @property
    def pretrained_epochs(self) -> int:
        return max(self.trail, default=0)


def online_walk(epochs: Iterable[int], scores: Mapping[int, float] | Sequence[float] | None = None) -> OnlineWalk:
    """Walk the online rule as far as the known scores allow.

    Epoch 0 (the scratch encoder) is never part of the walk. With every score known the walk
    is finished; otherwise `needed` names the one checkpoint whose robustness comes next. This
    is what the workflow's input function asks: given the scores so far, is the walk done, and
    if not, which checkpoint must be pretrained and scored next.
    """
    ordered, known = _known(epochs, {} if scores is None else scores)
    walk = [epoch for epoch in ordered if epoch != SCRATCH_EPOCH]
    if not walk:
        raise ValueError("the online rule needs at least one pretrained checkpoint (epoch > 0)")
    trail: list[int] = []
    for position, epoch in enumerate(walk):
        if epoch not in known:
            return OnlineWalk(tuple(trail), chosen=None, needed=epoch)
        trail.append(epoch)
        if position > 0 and not known[epoch] > known[walk[position - 1]]:
            return OnlineWalk(tuple(trail), chosen=walk[position - 1], needed=None)
    return OnlineWalk(tuple(trail), chosen=walk[-1], needed=None)


def online_choice(epochs: Iterable[int], scores: Mapping[int, float] | Sequence[float]) -> tuple[int, tuple[int, ...]]:
    """The checkpoint the online rule keeps and the trail it walked (see `OnlineWalk`).

    Raises ValueError when a score the walk needs is unknown.
    """
    walk = online_walk(epochs, scores)
    if not walk.finished:
        raise ValueError(f"the online walk needs the robustness of epoch {walk.needed}, which is unknown")
    return walk.chosen, walk.trail
