"""Synthetic ImageNet (ILSVRC2012 layout): textured shapes whose class does not depend on colour.

Layout: `train/<synset>/<synset>_<K>.JPEG`, flat `val/ILSVRC2012_val_<8 digits>.JPEG` with the
classes interleaved, and `LOC_val_solution.csv` (`ImageId,PredictionString`, the string being
`<synset> x_min y_min x_max y_max`). Class k is a shape family crossed with a texture; colours,
position, scale and rotation are random per image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from medseg.errors import MedsegError
from medseg.synth import shapes
from medseg.synth.presets import Preset

JPEG_QUALITY = 90
FIRST_SYNSET = 1_440_764


def regular_polygon(corners: int) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Inside test of a regular polygon with unit circumradius, in polar coordinates."""
    sector = 2 * math.pi / corners

    def inside(radius: np.ndarray, angle: np.ndarray) -> np.ndarray:
        return radius * np.cos(np.mod(angle, sector) - sector / 2) <= math.cos(sector / 2)

    return inside


def cross(radius: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Inside test of a plus sign with unit arm length, in polar coordinates."""
    u, v = np.abs(radius * np.cos(angle)), np.abs(radius * np.sin(angle))
    return ((u <= 0.32) & (v <= 1.0)) | ((v <= 0.32) & (u <= 1.0))


SHAPE_FAMILIES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "disk": lambda radius, angle: radius <= 1.0,
    "square": regular_polygon(4),
    "triangle": regular_polygon(3),
    "ring": lambda radius, angle: (radius <= 1.0) & (radius >= 0.55),
    "cross": cross,
    "star": lambda radius, angle: radius <= 0.55 + 0.45 * np.cos(5 * angle),
}

TEXTURES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "stripes": lambda u, v: 0.5 + 0.5 * np.sin(2 * math.pi * u / 0.5),
    "checker": lambda u, v: (np.sin(2 * math.pi * u / 0.6) * np.sin(2 * math.pi * v / 0.6) > 0).astype(float),
    "fine_diagonal": lambda u, v: 0.5 + 0.5 * np.sin(2 * math.pi * (u + v) / 0.25),
    "dots": lambda u, v: (np.hypot(np.mod(u, 0.4) - 0.2, np.mod(v, 0.4) - 0.2) > 0.11).astype(float),
}


def write(root: Path, preset: Preset, rng: np.random.Generator) -> None:
    """Write train/, val/ and LOC_val_solution.csv under `root`."""
    classes = class_designs(preset.imagenet_classes)
    synsets = synset_ids(rng, len(classes))
    for synset, design in zip(synsets, classes):
        folder = root / "train" / synset
        folder.mkdir(parents=True)
        for k in range(1, preset.imagenet_train_per_class + 1):
            image, _ = draw(rng, design, preset.imagenet_side)
            save(image, folder / f"{synset}_{k}.JPEG")
    labels = rng.permutation(np.repeat(np.arange(len(classes)), preset.imagenet_val_per_class))
    (root / "val").mkdir()
    rows = ["ImageId,PredictionString"]
    for index, label in enumerate(labels, 1):
        image, box = draw(rng, classes[label], preset.imagenet_side)
        image_id = f"ILSVRC2012_val_{index:08d}"
        save(image, root / "val" / f"{image_id}.JPEG")
        rows.append(f"{image_id},{synsets[label]} {' '.join(map(str, box))}")
    (root / "LOC_val_solution.csv").write_text("\n".join(rows) + "\n")


def class_designs(count: int) -> list[tuple[str, str]]:
    """(shape family, texture) of each class: shapes vary fastest, then textures."""
    designs = [(shape, texture) for texture in TEXTURES for shape in SHAPE_FAMILIES]
    if count > len(designs):
        raise MedsegError(f"synthetic ImageNet has at most {len(designs)} distinct classes, {count} requested")
    return designs[:count]


def synset_ids(rng: np.random.Generator, count: int) -> list[str]:
    """Distinct ImageNet-like ids 'n' + 8 digits, increasing, so sorted order is class order."""
    numbers = FIRST_SYNSET + np.cumsum(rng.integers(1_000, 200_000, count))
    return [f"n{number:08d}" for number in numbers]


def draw(
    rng: np.random.Generator, design: tuple[str, str], sides: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """One RGB image of class `design` and the object's box (x_min, y_min, x_max, y_max)."""
    height, width = (int(s) for s in rng.integers(sides[0], sides[1], 2, endpoint=True))
    shape = (height, width)
    scale = rng.uniform(0.25, 0.42) * min(shape)
    center = (rng.uniform(scale, height - scale), rng.uniform(scale, width - scale))
    u, v = shapes.rotated(shape, center, rng.uniform(0, 2 * math.pi))
    u, v = u / scale, v / scale
    mask = SHAPE_FAMILIES[design[0]](np.hypot(u, v), np.arctan2(v, u))
    texture = TEXTURES[design[1]](u, v)
    background_rgb, foreground_rgb = contrasting_colours(rng)
    background = background_rgb * (0.75 + 0.5 * shapes.smooth_noise(rng, shape, 4))[..., None]
    foreground = foreground_rgb * (0.45 + 0.55 * texture)[..., None]
    image = np.where(mask[..., None], foreground, background) + rng.normal(0.0, 8.0, (*shape, 3))
    return shapes.to_uint8(image), shapes.bounding_box(mask)


def contrasting_colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random background and foreground RGB colours whose luminances differ clearly."""
    luminance = np.array([0.299, 0.587, 0.114])
    while True:
        background, foreground = rng.uniform(0, 255, (2, 3))
        if abs(luminance @ (foreground - background)) > 70:
            return background, foreground


def save(image: np.ndarray, path: Path) -> None:
    """Write an RGB JPEG."""
    Image.fromarray(image).save(path, quality=JPEG_QUALITY)
