"""Small numpy drawing helpers shared by the synthetic dataset generators.

Arrays are indexed (row, col); points and centres are given as (row, col) too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Shape2D = tuple[int, int]
Point = tuple[float, float]


def grid(shape: Shape2D) -> tuple[np.ndarray, np.ndarray]:
    """Float row and column coordinates of every pixel."""
    rows, cols = np.meshgrid(
        np.arange(shape[0], dtype=np.float64), np.arange(shape[1], dtype=np.float64), indexing="ij"
    )
    return rows, cols


def rotated(shape: Shape2D, center: Point, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates relative to `center`, rotated by `angle` radians."""
    rows, cols = grid(shape)
    dr, dc = rows - center[0], cols - center[1]
    cos, sin = np.cos(angle), np.sin(angle)
    return dr * cos + dc * sin, -dr * sin + dc * cos


def ellipse(shape: Shape2D, center: Point, radii: Point, angle: float = 0.0) -> np.ndarray:
    """Filled ellipse mask with semi-axes `radii` (along rows, cols before rotation)."""
    u, v = rotated(shape, center, angle)
    return (u / radii[0]) ** 2 + (v / radii[1]) ** 2 <= 1.0


def disk(shape: Shape2D, center: Point, radius: float) -> np.ndarray:
    """Filled disk mask."""
    return ellipse(shape, center, (radius, radius))


def gaussian_blob(shape: Shape2D, center: Point, radii: Point, angle: float = 0.0) -> np.ndarray:
    """Smooth bump, 1 at `center` and exp(-1/2) on the ellipse with semi-axes `radii`."""
    u, v = rotated(shape, center, angle)
    return np.exp(-0.5 * ((u / radii[0]) ** 2 + (v / radii[1]) ** 2))


def smooth_noise(rng: np.random.Generator, shape: Shape2D, cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a random `cells` x `cells` lattice, smoothly interpolated."""
    lattice = rng.random((cells + 1, cells + 1))
    r0, fr = _lattice_coords(shape[0], cells)
    c0, fc = _lattice_coords(shape[1], cells)
    fr, fc = fr[:, None], fc[None, :]
    top = lattice[np.ix_(r0, c0)] * (1 - fc) + lattice[np.ix_(r0, c0 + 1)] * fc
    bottom = lattice[np.ix_(r0 + 1, c0)] * (1 - fc) + lattice[np.ix_(r0 + 1, c0 + 1)] * fc
    return top * (1 - fr) + bottom * fr


def _lattice_coords(size: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Lattice index and smoothstep fraction of each of `size` pixels along one axis."""
    position = np.linspace(0.0, cells, size)
    index = np.minimum(position.astype(np.int64), cells - 1)
    fraction = position - index
    return index, fraction * fraction * (3 - 2 * fraction)


def polyline_distance(shape: Shape2D, points: Sequence[Point]) -> np.ndarray:
    """Distance of every pixel to the polyline through `points`."""
    rows, cols = grid(shape)
    distance = np.full(shape, np.inf)
    for (r0, c0), (r1, c1) in zip(points[:-1], points[1:]):
        dr, dc = r1 - r0, c1 - c0
        length2 = max(dr * dr + dc * dc, 1e-12)
        t = np.clip(((rows - r0) * dr + (cols - c0) * dc) / length2, 0.0, 1.0)
        np.minimum(distance, np.hypot(rows - r0 - t * dr, cols - c0 - t * dc), out=distance)
    return distance


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x_min, y_min, x_max, y_max) of the true pixels, x being the column."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Round and clip to 0..255."""
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)
