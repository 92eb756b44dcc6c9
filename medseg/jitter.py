"""The paper's colour jitter (Algorithm 3), with factors drawn per image and applied to a whole batch.

Algorithm 3 applies, in this fixed order, to an RGB image x in [0, 1]:

1. brightness: x = λ_b x, λ_b ~ U[0.9, 1.1];
2. x̄ = 0.2989 R + 0.587 G + 0.114 B, the grey image of the brightness-jittered x;
3. contrast: x = λ_c x + (1 − λ_c) μ, λ_c ~ U[0.95, 1.05], μ the mean of x̄ over the image;
4. saturation: x = λ_s x + (1 − λ_s) x̄, λ_s ~ U[0.9, 1.1];
5. hue: in HSV, h = (h + λ_h) mod 1, λ_h ~ U[−0.05, 0.05]; back to RGB.

torchvision's ColorJitter (v1 and v2) draws one factor set per call and shuffles the order of the
four steps, so it is not this. Here every image of a batch has its own four factors
(`draw_factors`), and `apply_jitter` applies them vectorised over the batch. Robustness scoring and
downstream training both use this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

BRIGHTNESS = (0.9, 1.1)
CONTRAST = (0.95, 1.05)
SATURATION = (0.9, 1.1)
HUE = (-0.05, 0.05)
# Algorithm 3's grey weights (ITU-R 601, as torchvision's rgb_to_grayscale).
GREY_WEIGHTS = (0.2989, 0.587, 0.114)


@dataclass(frozen=True)
class JitterFactors:
    """Per-image factors: four tensors of shape (B,), row i for image i of the batch."""

    brightness: torch.Tensor
    contrast: torch.Tensor
    saturation: torch.Tensor
    hue: torch.Tensor

    def __len__(self) -> int:
        return len(self.brightness)

    def __getitem__(self, index) -> JitterFactors:
        """The factors of some images (an index, slice, mask or index tensor), still 1-D."""
        return JitterFactors(*(f[index].reshape(-1) for f in self._fields()))

    def to(self, device: torch.device | str) -> JitterFactors:
        return JitterFactors(*(f.to(device) for f in self._fields()))

    def _fields(self) -> tuple[torch.Tensor, ...]:
        return self.brightness, self.contrast, self.saturation, self.hue


def draw_factors(n: int, generator: torch.Generator | None = None) -> JitterFactors:
    """Factors for `n` images, drawn on the CPU from `generator` (a CPU torch.Generator, or None for torch's global one).

    Image i takes the i-th group of four uniform numbers (brightness, contrast, saturation, hue),
    so the factors of the first k images do not depend on n, nor on the device that applies them.
    """
    u = torch.rand(n, 4, generator=generator, dtype=torch.float64)
    columns = []
    for column, (low, high) in enumerate((BRIGHTNESS, CONTRAST, SATURATION, HUE)):
        columns.append((low + (high - low) * u[:, column]).float())
    return JitterFactors(*columns)


def identity_factors(n: int) -> JitterFactors:
    """Factors that leave every image unchanged (up to the HSV round trip)."""
    ones = torch.ones(n)
    return JitterFactors(ones, ones.clone(), ones.clone(), torch.zeros(n))


def color_jitter(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Algorithm 3 with fresh per-image factors from `generator`: (B, 3, H, W) in [0, 1] in and out."""
    return apply_jitter(x, draw_factors(len(x), generator))


def apply_jitter(x: torch.Tensor, factors: JitterFactors) -> torch.Tensor:
    """Algorithm 3 on a (B, 3, H, W) float batch in [0, 1] with the given per-image factors."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (B, 3, H, W) batch, got shape {tuple(x.shape)}")
    if len(factors) != len(x):
        raise ValueError(f"{len(factors)} factor sets for a batch of {len(x)} images")
    f = factors.to(x.device)
    brightness, contrast, saturation, hue = (v.to(x.dtype).view(-1, 1, 1, 1) for v in f._fields())
    # Clamping: after each of the three linear steps the image is clamped to [0, 1], as
    # torchvision's functional adjust_* ops do for float images, so the HSV conversion sees valid
    # colours and the output stays in [0, 1]. The grey image x̄ is taken literally from the
    # pseudocode: computed once, from the (clamped) brightness-jittered image, and used both for
    # the contrast mean μ and as the saturation blend target (torchvision would recompute the grey
    # image after contrast; Algorithm 3 does not).
    x = (x * brightness).clamp(0, 1)
    weights = torch.tensor(GREY_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    grey = (x * weights).sum(dim=1, keepdim=True)
    mean = grey.mean(dim=(2, 3), keepdim=True)
    x = (contrast * x + (1 - contrast) * mean).clamp(0, 1)
    x = (saturation * x + (1 - saturation) * grey).clamp(0, 1)
    h, s, v = rgb_to_hsv(x).unbind(dim=1)
    h = torch.remainder(h + hue.view(-1, 1, 1), 1.0)
    return hsv_to_rgb(torch.stack([h, s, v], dim=1))


# RGB <-> HSV is written here because no installed library has a public, batched torch API for
# it: torchvision only exposes adjust_hue with one factor per call (its converters are private),
# and kornia is not a dependency. The formulas are colorsys's, vectorised (same tie order R, G, B).


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) RGB in [0, 1] to HSV, every channel in [0, 1] (hue 0 for greys)."""
    r, g, b = x.unbind(dim=1)
    maxc = x.amax(dim=1)
    minc = x.amin(dim=1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc)), torch.zeros_like(maxc))
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, torch.remainder(h / 6.0, 1.0), torch.zeros_like(h))
    return torch.stack([h, s, maxc], dim=1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) HSV with channels in [0, 1] to RGB in [0, 1]."""
    h, s, v = x.unbind(dim=1)
    h6 = h * 6.0
    sector = torch.floor(h6)
    f = h6 - sector
    sector = sector.long() % 6  # h == 1.0 is h == 0
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    # Per sector (0..5), which of v, q, p, t each output channel takes.
    r = torch.stack([v, q, p, p, t, v])
    g = torch.stack([t, v, v, q, p, p])
    b = torch.stack([p, p, t, v, v, q])
    index = sector.unsqueeze(0)
    return torch.stack([c.gather(0, index).squeeze(0) for c in (r, g, b)], dim=1)
