"""Tests of medseg.downstream.augment: masks stay aligned, IDRiD crops never read padding, seeding."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medseg.downstream.augment import (
    crop_margin,
    idrid_crop,
    idrid_params,
    idrid_theta,
    rotate_flip,
    rotate_flip_params,
    rotate_flip_theta,
    warp,
)
from medseg.errors import MedsegError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _scene(height: int, width: int) -> torch.Tensor:
    """An asymmetric label map: an L-shaped class 1 and an off-centre disc of class 2."""
    mask = torch.zeros(height, width, dtype=torch.long)
    mask[height // 5 : height // 2, width // 6 : width // 4] = 1
    mask[height // 2 - 4 : height // 2, width // 6 : width // 2] = 1
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    mask[(y - 0.65 * height) ** 2 + (x - 0.6 * width) ** 2 < (0.15 * min(height, width)) ** 2] = 2
    return mask


CLASSES = 3


def _draw(masks: torch.Tensor) -> torch.Tensor:
    """Images drawn from masks: channel 0 the class id, then one indicator per class, then ones."""
    indicators = F.one_hot(masks, CLASSES).permute(0, 3, 1, 2).float()
    return torch.cat([masks[:, None].float(), indicators, torch.ones_like(indicators[:, :1])], dim=1)


def _aligned(images: torch.Tensor, masks: torch.Tensor, checked: float = 0.5) -> None:
    """The warped drawing agrees with the warped mask (see `_draw` for the channels)."""
    assert set(masks.unique().tolist()) <= set(range(CLASSES))
    # Exact at every pixel whose bilinear footprint lies inside the input (coverage 1): nearest
    # sampling takes the closest of the 4 pixels that bilinear sampling mixes, whose weight is
    # at least 1/4, so the mask's class has at least 1/4 in its indicator channel. A mask off by
    # one pixel fails this along every class boundary.
    inside = images[:, -1] > 1 - 1e-5
    share = images[:, 1:-1].gather(1, masks[:, None])[:, 0]
    assert bool((share[inside] > 0.25 - 1e-5).all())
    # Away from class edges (a 5 x 5 neighbourhood of one class) the thresholded drawing equals
    # the mask pixel-exactly.
    m = masks[:, None].float()
    constant = (F.max_pool2d(m, 5, 1, 2) == -F.max_pool2d(-m, 5, 1, 2))[:, 0] & inside
    constant[:, :2] = constant[:, -2:] = False
    constant[:, :, :2] = constant[:, :, -2:] = False
    assert constant.float().mean() > checked  # the check is not vacuous
    assert torch.equal(images[:, 0].round().long()[constant], masks[constant])


def test_warp_geometry_is_exact_on_the_pixel_grid():
    x = torch.arange(24.0).reshape(1, 1, 4, 6)
    m = torch.arange(24).reshape(1, 4, 6)
    angles = torch.tensor([0.0, math.pi, math.pi / 2], dtype=torch.float64)
    # angle 0 + flip = vertical flip; angle pi = rotation by 180 degrees.
    theta = rotate_flip_theta(angles[:2], torch.tensor([True, False]), 4, 6)
    out, labels = warp(x.expand(2, -1, -1, -1), m.expand(2, -1, -1), theta, 4, 6)
    assert torch.equal(labels[0], m[0].flip(0))
    assert torch.equal(labels[1], m[0].flip(0, 1))
    torch.testing.assert_close(out[:, 0], labels.float())
    # pi/2 on a square turns the content clockwise on screen (y points down).
    sq, msq = torch.arange(16.0).reshape(1, 1, 4, 4), torch.arange(16).reshape(1, 4, 4)
    out, labels = warp(sq, msq, rotate_flip_theta(angles[2:], torch.tensor([False]), 4, 4), 4, 4)
    assert torch.equal(labels, torch.rot90(msq, -1, (1, 2)))


def test_rotate_flip_keeps_masks_aligned():
    mask = _scene(64, 64)
    masks = mask.expand(16, -1, -1).clone()
    images = _draw(masks)
    out, labels = rotate_flip(images, masks, _gen(1))
    assert out.shape == images.shape and labels.shape == masks.shape and labels.dtype == torch.long
    _aligned(out, labels)
    # Something happened to every sample.
    assert all(not torch.equal(labels[i], mask) for i in range(16))


def test_rotate_flip_fills_corners_with_zero_and_background():
    images = torch.ones(1, 1, 32, 32)
    masks = torch.ones(1, 32, 32, dtype=torch.long)
    theta = rotate_flip_theta(torch.tensor([math.pi / 4], dtype=torch.float64), torch.tensor([False]), 32, 32)
    out, labels = warp(images, masks, theta, 32, 32)
    assert out[0, 0, 0, 0] == 0 and labels[0, 0, 0] == 0  # a corner comes from outside
    assert out[0, 0, 16, 16] == 1 and labels[0, 16, 16] == 1


def test_parameters_per_sample_and_seeded():
    angles, flips = rotate_flip_params(2000, _gen(3))
    assert 0 <= angles.min() and angles.max() < math.pi
    assert 0.45 < flips.double().mean() < 0.55
    images = torch.rand(1, 3, 32, 32, generator=_gen(4)).expand(8, -1, -1, -1)
    masks = _scene(32, 32).expand(8, -1, -1)
    out, labels = rotate_flip(images, masks, _gen(5))
    # Identical inputs, eight different outputs.
    assert len({tuple(o.flatten().tolist()) for o in out}) == 8
    again, labels_again = rotate_flip(images, masks, _gen(5))
    assert torch.equal(out, again) and torch.equal(labels, labels_again)
    other, _ = rotate_flip(images, masks, _gen(6))
    assert not torch.equal(out, other)


def test_idrid_crop_is_a_plain_crop_at_angle_zero():
    window = torch.arange(64.0).reshape(1, 1, 8, 8)
    mask = torch.arange(64).reshape(1, 8, 8)
    angle, no_flip = torch.zeros(1, dtype=torch.float64), torch.tensor([False])
    # Centre offset (x 2, y -2) from the window centre: rows 0-3, columns 4-7.
    theta = idrid_theta(angle, no_flip, torch.tensor([[2.0, -2.0]], dtype=torch.float64), 8, 4)
    out, labels = warp(window, mask, theta, 4, 4)
    assert torch.equal(labels[0], mask[0, 0:4, 4:8])
    assert torch.equal(out[0, 0], window[0, 0, 0:4, 4:8])
    theta = idrid_theta(angle, torch.tensor([True]), torch.zeros(1, 2, dtype=torch.float64), 8, 4)
    assert torch.equal(warp(window, mask, theta, 4, 4)[1][0], mask[0, 2:6, 2:6].flip(0))


@pytest.mark.parametrize(("window", "tile"), [(64, 32), (448, 224)])
def test_idrid_crop_never_reads_padding(window, tile):
    batch = 64 if window == 64 else 8
    ones = torch.ones(batch, 3, window, window)
    mask_ones = torch.ones(batch, window, window, dtype=torch.uint8)
    for seed in range(4 if window == 64 else 1):
        out, labels = idrid_crop(ones, mask_ones, tile, _gen(seed))
        assert out.shape == (batch, 3, tile, tile) and labels.shape == (batch, tile, tile)
        assert labels.dtype == torch.uint8 and bool((labels == 1).all())
        assert out.min() > 1 - 1e-4
    # The worst cases: angles at and near the diagonals, crop centres in every corner of the
    # valid region, with and without the flip.
    angles = []
    for base in (0, math.pi / 4, math.pi / 2, 3 * math.pi / 4, math.pi, 5 * math.pi / 4, 7 * math.pi / 4):
        angles += [base - 1e-3, base, base + 1e-3]
    angles = torch.tensor(angles, dtype=torch.float64).clamp_min(0).repeat_interleave(8)
    margin = crop_margin(angles, window, tile)
    signs = torch.tensor([[1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=torch.float64).repeat(len(angles) // 4, 1)
    flips = torch.arange(len(angles)) % 8 >= 4
    theta = idrid_theta(angles, flips, signs * margin[:, None], window, tile)
    n = len(angles)
    # Expanded inputs: no copies of the window per sample.
    ones, mask_ones = torch.ones(1, 1, window, window).expand(n, -1, -1, -1), mask_ones[:1].expand(n, -1, -1)
    out, labels = warp(ones, mask_ones, theta, tile, tile)
    assert out.min() > 1 - 1e-4 and bool((labels == 1).all())
    # The region is tight: one pixel further out at the diagonal reads the fill.
    diagonal = torch.tensor([math.pi / 4], dtype=torch.float64)
    beyond = crop_margin(diagonal, window, tile) + 1
    theta = idrid_theta(diagonal, torch.tensor([False]), torch.stack([beyond, beyond], 1), window, tile)
    out, _ = warp(ones[:1], mask_ones[:1], theta, tile, tile)
    assert out.min() < 0.5


def test_idrid_margin_matches_algorithm_2_side_length():
    # Algorithm 2's side of the valid region, l = 448 - 224 (sin + cos) for angles in [0, pi/2],
    # is 2m up to the half-pixel terms of pixel centres: 2m = 447 - 223 (sin + cos).
    angles = torch.linspace(0, math.pi / 2, 11, dtype=torch.float64)
    spread = angles.sin() + angles.cos()
    torch.testing.assert_close(2 * crop_margin(angles, 448, 224), 447 - 223 * spread)
    # Other quadrants mirror the first.
    torch.testing.assert_close(crop_margin(angles + math.pi / 2, 448, 224), crop_margin(angles, 448, 224))


def test_idrid_crop_keeps_masks_aligned_and_is_seeded():
    window = 64
    masks = torch.stack([_scene(window, window), _scene(window, window).flip(1)]).repeat(8, 1, 1)
    images = _draw(masks)
    out, labels = idrid_crop(images, masks, 32, _gen(7))
    assert bool((out[:, -1] > 1 - 1e-4).all())  # never the fill
    _aligned(out, labels, checked=0.3)  # 32-pixel crops of a busy scene
    again, labels_again = idrid_crop(images, masks, 32, _gen(7))
    assert torch.equal(out, again) and torch.equal(labels, labels_again)
    angles, flips, centres = idrid_params(4000, window, 32, _gen(8))
    assert 0 <= angles.min() and angles.max() < 2 * math.pi and angles.max() > 6
    assert 0.45 < flips.double().mean() < 0.55
    assert bool((centres.abs() <= crop_margin(angles, window, 32)[:, None]).all())
    assert len(set(angles[:16].tolist())) == 16


def test_errors():
    with pytest.raises(MedsegError, match="does not fit"):
        idrid_crop(torch.ones(1, 1, 40, 40), torch.ones(1, 40, 40, dtype=torch.long), 32, _gen())
    with pytest.raises(ValueError, match="integer masks"):
        rotate_flip(torch.ones(1, 1, 8, 8), torch.ones(1, 8, 8), _gen())
    with pytest.raises(ValueError, match="floating-point images"):
        rotate_flip(torch.ones(1, 1, 8, 8, dtype=torch.uint8), torch.ones(1, 8, 8, dtype=torch.long), _gen())
    with pytest.raises(ValueError, match="square"):
        idrid_crop(torch.ones(1, 1, 64, 48), torch.ones(1, 64, 48, dtype=torch.long), 16, _gen())
