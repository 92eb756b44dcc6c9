"""The distances of Eq. 3 between paired representations, and the hinge that robustness averages.

Each distance takes two (B, D) tensors and returns the B row-wise distances, computed in float64
whatever the input dtype, so the result does not depend on how rows are batched.

- `cosine`: 1 − ⟨q, k⟩ / (‖q‖ ‖k‖) (Eq. 4). A zero vector has cosine similarity 0 with anything
  (distance 1), as in torch's cosine_similarity, instead of a NaN.
- `l2`: the Euclidean distance ‖q − k‖ (the paper's L² distance; the authors' release used the
  mean squared difference instead).
- `correlation`: 1 − Pearson(q, k), the cosine distance of the vectors centred on their own
  means; a constant vector has correlation 0 (distance 1).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from medseg import names

# Norm products below this count as zero (a zero or constant vector).
_TINY = 1e-30


def cosine(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    q, k = q.double(), k.double()
    dot = (q * k).sum(dim=1)
    norms = q.norm(dim=1) * k.norm(dim=1)
    return 1.0 - dot / norms.clamp_min(_TINY)


def l2(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    return (q.double() - k.double()).norm(dim=1)


def correlation(q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    q, k = q.double(), k.double()
    return cosine(q - q.mean(dim=1, keepdim=True), k - k.mean(dim=1, keepdim=True))


DISTANCES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cosine": cosine,
    "l2": l2,
    "correlation": correlation,
}
assert tuple(DISTANCES) == names.DISTANCES


def hinge(positive: np.ndarray, negative: np.ndarray, margin: float) -> np.ndarray:
    """Per image: max(0, d(q, k⁺) − d(q, k⁻) + ε)."""
    return np.maximum(0.0, np.asarray(positive, np.float64) - np.asarray(negative, np.float64) + margin)


def robustness(positive: np.ndarray, negative: np.ndarray, margin: float) -> tuple[float, float]:
    """(Eq. 3's robustness = 1 − mean hinge, the mean hinge) over the images."""
    mean = float(hinge(positive, negative, margin).mean())
    return 1.0 - mean, mean
