"""Geometric augmentation of images and masks together, batched on the device (Appendix A.4).

Every sample of a batch gets its own parameters, drawn from the `torch.Generator` passed in (a
CPU generator gives the same draws whatever device the batch is on), and the whole batch is
then warped by one `affine_grid` and `grid_sample` per tensor: images bilinear, masks nearest,
so masks are never interpolated and keep exact class ids.

- `rotate_flip` (ACDC, COVID-QU-Ex): rotation by an angle uniform in [0, pi] about the image
  centre, then a vertical (top-bottom) flip with probability 0.5. The output keeps the input
  size; the corners that the rotation brings in from outside the image are filled with 0 in
  the images (black for images in [0, 1]: augment before any mean/std normalisation) and with
  class 0 (background) in the masks.
- `idrid_crop` (IDRiD, Algorithm 2 without its ColorJitter): rotation by an angle uniform in
  [0, 2 pi), a tile x tile crop lying wholly inside the rotated window (never any fill), then a
  vertical flip with probability 0.5.

Angles are in image coordinates (x right, y down), so a positive angle turns the content
clockwise on screen. Per batch the generator is drawn from once, as `torch.rand(B, k)` in
float64: columns (angle, flip[, centre x, centre y]); the same generator state gives the same
output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from medseg.errors import MedsegError

FLIP_P = 0.5
ROTATION_MAX = math.pi  # rotate_flip's angle range [0, pi]
IDRID_ROTATION_MAX = 2 * math.pi  # Algorithm 2's [0, 2 pi)


def rotate_flip(
    images: torch.Tensor, masks: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate each sample by U[0, pi] and flip it vertically with p 0.5 (images B x C x H x W, masks B x H x W)."""
    _check(images, masks)
    angles, flips = rotate_flip_params(images.shape[0], generator)
    theta = rotate_flip_theta(angles, flips, images.shape[2], images.shape[3])
    return warp(images, masks, theta, images.shape[2], images.shape[3])


def rotate_flip_params(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (angle in [0, pi), flip as bool), float64 on the generator's device."""
    u = torch.rand(batch, 2, generator=generator, device=generator.device, dtype=torch.float64)
    return u[:, 0] * ROTATION_MAX, u[:, 1] < FLIP_P


def rotate_flip_theta(angles: torch.Tensor, flips: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """B x 2 x 3 `affine_grid` matrices: output = flip(rotate(input)) about the image centre.

    In pixel units about the centre, output point q reads input point R(-angle) F q (F mirrors
    y when flipping). `affine_grid` works in coordinates normalised to [-1, 1] per axis, so the
    map is conjugated by D = diag(W/2, H/2) to stay a rotation on non-square images.
    """
    scale = torch.tensor([width / 2, height / 2], dtype=angles.dtype, device=angles.device)
    linear = _rotation(-angles) @ _flip(flips, angles.dtype)
    linear = linear * scale[None, None, :] / scale[None, :, None]  # D^-1 A D
    return torch.cat([linear, torch.zeros_like(linear[:, :, :1])], dim=2)


def idrid_crop(
    windows: torch.Tensor, masks: torch.Tensor, tile: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 2's geometry: rotate by U[0, 2 pi), crop tile x tile inside the rotated window, flip with p 0.5.

    windows: B x C x S x S, masks: B x S x S; returns B x C x tile x tile and B x tile x tile.
    """
    _check(windows, masks)
    size = windows.shape[2]
    if windows.shape[3] != size:
        raise ValueError(f"expected square windows, got {windows.shape[2]} x {windows.shape[3]}")
    angles, flips, centres = idrid_params(windows.shape[0], size, tile, generator)
    return warp(windows, masks, idrid_theta(angles, flips, centres, size, tile), tile, tile)


def crop_margin(angles: torch.Tensor, window: int, tile: int) -> torch.Tensor:
    """Largest |offset| (pixels, per axis, in the window's frame) of a valid crop centre at each angle.

    Derivation. Work in pixel units about the window centre, where the window's pixel centres
    fill the square [-(S-1)/2, (S-1)/2]^2 (S = window). Output pixel q of the crop (its pixel
    centres fill [-(t-1)/2, (t-1)/2]^2, t = tile) reads the window at s = c + R(-angle) F q,
    where c is the crop centre expressed in the window's own frame and F the optional flip. The
    points R(-angle) F q form the crop square turned by the angle; an axis-aligned extent of a
    square of half-side h turned by a is h (|cos a| + |sin a|) per axis, F changes nothing. So
    every output pixel reads inside the window -- bilinear sampling then never touches the zero
    fill -- exactly when |c_x|, |c_y| <= m = ((S-1) - (t-1)(|cos a| + |sin a|)) / 2. The valid
    centres are that square (the same square turned by the angle in the rotated image's frame:
    rotation keeps uniformity), and `idrid_params` samples c uniformly in it.

    Algorithm 2 states the same side length, l = 448 - 224 (sin + cos), for the valid region
    (here 2m with the half-pixel terms of pixel centres), but places it axis-aligned in the
    rotated image at offsets (h0, w0) that leave the rotated window (at angle 0, w0 = 224 and w
    up to 448 reach column 672 of a 448-pixel window); this follows its intent, not its offsets.
    """
    spread = angles.cos().abs() + angles.sin().abs()
    return ((window - 1) - (tile - 1) * spread) / 2


def idrid_params(
    batch: int, window: int, tile: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample (angle in [0, 2 pi), flip as bool, crop centre B x 2 in pixels), float64."""
    # The crop must fit at the worst angle (pi/4: spread sqrt 2) for every angle to be possible.
    if tile < 1 or (tile - 1) * math.sqrt(2) > window - 1:
        raise MedsegError(
            f"an IDRiD tile of {tile} pixels does not fit inside a {window}-pixel window at every"
            f" rotation: the window must be at least sqrt(2) times the tile (paper: 448 and 224)"
        )
    u = torch.rand(batch, 4, generator=generator, device=generator.device, dtype=torch.float64)
    angles = u[:, 0] * IDRID_ROTATION_MAX
    margin = crop_margin(angles, window, tile).clamp_min(0)  # only rounding can make it negative
    centres = (2 * u[:, 2:] - 1) * margin[:, None]
    return angles, u[:, 1] < FLIP_P, centres


def idrid_theta(
    angles: torch.Tensor, flips: torch.Tensor, centres: torch.Tensor, window: int, tile: int
) -> torch.Tensor:
    """B x 2 x 3 `affine_grid` matrices sampling the tile x tile output straight from the window.

    Output pixel q (pixels about the tile centre) reads window point c + R(-angle) F q; in
    `affine_grid`'s normalised coordinates q = (tile/2) o and s = (window/2) s_n, so
    s_n = (tile/window) R(-angle) F o + 2c/window.
    """
    linear = _rotation(-angles) @ _flip(flips, angles.dtype) * (tile / window)
    return torch.cat([linear, (2 * centres / window)[:, :, None]], dim=2)


def warp(
    images: torch.Tensor, masks: torch.Tensor, theta: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample images (bilinear) and masks (nearest) on the grid of `theta`; outside the input reads 0.

    theta: B x 2 x 3 in `affine_grid`'s normalised coordinates (align_corners=False), mapping
    the height x width output to the input.
    """
    # The grid in at least float32: in half precision a 448-pixel window is off by pixels.
    dtype = torch.promote_types(images.dtype, torch.float32)
    batch = images.shape[0]
    grid = F.affine_grid(theta.to(images.device, dtype), [batch, 1, height, width], align_corners=False)
    out = F.grid_sample(images.to(dtype), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    # Class ids are exact in float32 (below 2^24), and nearest sampling only copies them.
    labels = F.grid_sample(masks[:, None].to(dtype), grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out.to(images.dtype), labels[:, 0].to(masks.dtype)


def _rotation(angles: torch.Tensor) -> torch.Tensor:
    """B x 2 x 2 rotation matrices [[cos, -sin], [sin, cos]]."""
    cos, sin = angles.cos(), angles.sin()
    return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)


def _flip(flips: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """B x 2 x 2 diag(1, -1) where a sample is flipped vertically, the identity elsewhere."""
    ones = torch.ones(flips.shape, dtype=dtype, device=flips.device)
    return torch.diag_embed(torch.stack([ones, 1 - 2 * flips.to(dtype)], -1))


def _check(images: torch.Tensor, masks: torch.Tensor) -> None:
    """Refuse anything but float images B x C x H x W with integer masks B x H x W."""
    if images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"expected floating-point images B x C x H x W, got {images.dtype} {tuple(images.shape)}")
    if masks.shape != (images.shape[0], *images.shape[2:]) or masks.is_floating_point():
        raise ValueError(
            f"expected integer masks {images.shape[0]} x H x W matching the images,"
            f" got {masks.dtype} {tuple(masks.shape)}"
        )
