"""Tests of medseg.jitter: Algorithm 3 with per-image factors, against a per-image reference loop."""

from __future__ import annotations

import colorsys

import pytest
import torch
import torchvision.transforms.functional as TF

from medseg.jitter import (
    BRIGHTNESS,
    CONTRAST,
    GREY_WEIGHTS,
    HUE,
    SATURATION,
    JitterFactors,
    apply_jitter,
    color_jitter,
    draw_factors,
    hsv_to_rgb,
    identity_factors,
    rgb_to_hsv,
)


def _images(n: int = 5, height: int = 4, width: int = 6, seed: int = 0) -> torch.Tensor:
    x = torch.rand(n, 3, height, width, generator=torch.Generator().manual_seed(seed))
    x[0, :, 0, 0] = 0.5  # a grey pixel (no hue)
    x[0, :, 0, 1] = torch.tensor([0.7, 0.7, 0.2])  # a tie between R and G at the maximum
    x[1, :, 1, 1] = 1.0  # white
    x[1, :, 1, 2] = 0.0  # black
    return x


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def _reference(image: torch.Tensor, b: float, c: float, s: float, h: float) -> torch.Tensor:
    """Algorithm 3 for one image, pixel by pixel with Python floats and colorsys."""
    _, height, width = image.shape
    pixels = [[[float(image[ch, y, x]) for ch in range(3)] for x in range(width)] for y in range(height)]
    pixels = [[[_clamp(b * v) for v in p] for p in row] for row in pixels]
    grey = [[sum(w * v for w, v in zip(GREY_WEIGHTS, p)) for p in row] for row in pixels]
    mean = sum(sum(row) for row in grey) / (height * width)
    pixels = [[[_clamp(c * v + (1 - c) * mean) for v in p] for p in row] for row in pixels]
    pixels = [[[_clamp(s * v + (1 - s) * g) for v in p] for p, g in zip(row, grow)] for row, grow in zip(pixels, grey)]
    out = torch.empty(3, height, width, dtype=torch.float64)
    for y in range(height):
        for x in range(width):
            hue, sat, val = colorsys.rgb_to_hsv(*pixels[y][x])
            out[:, y, x] = torch.tensor(colorsys.hsv_to_rgb((hue + h) % 1.0, sat, val))
    return out.float()


def test_factors_are_drawn_per_image_within_the_ranges():
    factors = draw_factors(16, torch.Generator().manual_seed(1))
    for values, (low, high) in zip(
        (factors.brightness, factors.contrast, factors.saturation, factors.hue), (BRIGHTNESS, CONTRAST, SATURATION, HUE)
    ):
        assert values.shape == (16,)
        assert len(set(values.tolist())) == 16  # every image has its own factor
        assert low <= values.min() and values.max() <= high


def test_factors_repeat_with_the_seed_and_do_not_depend_on_the_batch_size():
    a = draw_factors(10, torch.Generator().manual_seed(3))
    b = draw_factors(10, torch.Generator().manual_seed(3))
    prefix = draw_factors(4, torch.Generator().manual_seed(3))
    other = draw_factors(10, torch.Generator().manual_seed(4))
    assert torch.equal(a.brightness, b.brightness) and torch.equal(a.hue, b.hue)
    assert torch.equal(a[:4].contrast, prefix.contrast) and torch.equal(a[:4].saturation, prefix.saturation)
    assert not torch.equal(a.brightness, other.brightness)


def test_batch_equals_per_image_reference_loop():
    x = _images()
    factors = draw_factors(len(x), torch.Generator().manual_seed(0))
    batch = apply_jitter(x, factors)
    for i in range(len(x)):
        expected = _reference(
            x[i],
            float(factors.brightness[i]),
            float(factors.contrast[i]),
            float(factors.saturation[i]),
            float(factors.hue[i]),
        )
        torch.testing.assert_close(batch[i], expected, atol=2e-6, rtol=0)


def test_extreme_factors_against_reference_loop():
    """The ends of the ranges, where clamping and the hue wrap-around matter."""
    x = _images(n=4, seed=5)
    factors = JitterFactors(
        torch.tensor([1.1, 0.9, 1.1, 0.9]),
        torch.tensor([1.05, 0.95, 0.95, 1.05]),
        torch.tensor([1.1, 0.9, 0.9, 1.1]),
        torch.tensor([0.05, -0.05, 0.0, -0.05]),
    )
    batch = apply_jitter(x, factors)
    for i in range(len(x)):
        expected = _reference(
            x[i], *(float(f[i]) for f in (factors.brightness, factors.contrast, factors.saturation, factors.hue))
        )
        torch.testing.assert_close(batch[i], expected, atol=2e-6, rtol=0)
    assert batch.min() >= 0 and batch.max() <= 1


def test_images_of_a_batch_get_different_jitter():
    x = _images(n=2)[:1].expand(6, -1, -1, -1).contiguous()
    out = color_jitter(x, torch.Generator().manual_seed(0))
    assert all(not torch.allclose(out[0], out[i]) for i in range(1, 6))


def test_batch_equals_one_image_at_a_time():
    x = _images(n=6, seed=2)
    factors = draw_factors(6, torch.Generator().manual_seed(2))
    batch = apply_jitter(x, factors)
    for i in range(6):
        torch.testing.assert_close(batch[i : i + 1], apply_jitter(x[i : i + 1], factors[i]), atol=1e-6, rtol=0)


def test_identity_factors_change_nothing():
    x = _images()
    torch.testing.assert_close(apply_jitter(x, identity_factors(len(x))), x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("step", ["brightness", "contrast", "saturation", "hue"])
def test_each_step_alone_equals_torchvision(step):
    """One step at a time, Algorithm 3 equals torchvision's functional op with the same factor."""
    x = _images(n=3, seed=7)
    values = {
        "brightness": [1.1, 0.9, 1.03],
        "contrast": [1.05, 0.95, 1.01],
        "saturation": [1.1, 0.9, 0.97],
        "hue": [0.05, -0.05, 0.02],
    }[step]
    identity = identity_factors(3)
    fields = {name: getattr(identity, name) for name in ("brightness", "contrast", "saturation", "hue")}
    fields[step] = torch.tensor(values)
    ours = apply_jitter(x, JitterFactors(**fields))
    op = {
        "brightness": TF.adjust_brightness,
        "contrast": TF.adjust_contrast,
        "saturation": TF.adjust_saturation,
        "hue": TF.adjust_hue,
    }[step]
    for i, value in enumerate(values):
        torch.testing.assert_close(ours[i], op(x[i], value), atol=2e-6, rtol=0)


def test_hsv_conversions_match_colorsys():
    x = _images(n=2, seed=9)
    hsv = rgb_to_hsv(x)
    for b in range(2):
        for y in range(x.shape[2]):
            for col in range(x.shape[3]):
                expected = colorsys.rgb_to_hsv(*x[b, :, y, col].tolist())
                torch.testing.assert_close(
                    hsv[b, :, y, col], torch.tensor(expected, dtype=torch.float32), atol=1e-6, rtol=0
                )
    torch.testing.assert_close(hsv_to_rgb(hsv), x, atol=1e-6, rtol=0)
    wrapped = hsv.clone()
    wrapped[:, 0] = 1.0  # hue 1 is hue 0
    zero = hsv.clone()
    zero[:, 0] = 0.0
    torch.testing.assert_close(hsv_to_rgb(wrapped), hsv_to_rgb(zero))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="B, 3, H, W"):
        apply_jitter(torch.rand(2, 1, 4, 4), identity_factors(2))
    with pytest.raises(ValueError, match="factor sets"):
        apply_jitter(torch.rand(2, 3, 4, 4), identity_factors(3))
