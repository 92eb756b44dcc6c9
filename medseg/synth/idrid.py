"""Synthetic IDRiD (segmentation part): fundus photographs with microaneurysm masks.

Layout: `A. Segmentation/1. Original Images/{a. Training Set,b. Testing Set}/IDRiD_NN.jpg`
(RGB JPEG) and `A. Segmentation/2. All Segmentation Groundtruths/{a. Training Set,
b. Testing Set}/1. Microaneurysms/IDRiD_NN_MA.tif` (RGB TIFF, microaneurysm pixels
(255, 0, 0), the rest black). Training images are numbered from 01, test images from 55.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

from medseg.synth import shapes
from medseg.synth.presets import Preset

IMAGES = Path("A. Segmentation", "1. Original Images")
MASKS = Path("A. Segmentation", "2. All Segmentation Groundtruths")
SPLITS = {"a. Training Set": 1, "b. Testing Set": 55}
MICROANEURYSMS = "1. Microaneurysms"
LESION_RGB = (255, 0, 0)
JPEG_QUALITY = 95


def write(root: Path, preset: Preset, rng: np.random.Generator) -> None:
    """Write the training and testing images and their microaneurysm masks under `root`."""
    counts = (preset.idrid_train, preset.idrid_test)
    for (split, first), count in zip(SPLITS.items(), counts):
        image_dir = root / IMAGES / split
        mask_dir = root / MASKS / split / MICROANEURYSMS
        image_dir.mkdir(parents=True)
        mask_dir.mkdir(parents=True)
        for number in range(first, first + count):
            image, lesions = fundus(rng, preset.idrid_size)
            mask = np.zeros(image.shape, np.uint8)
            mask[lesions] = LESION_RGB
            Image.fromarray(image).save(image_dir / f"IDRiD_{number:02d}.jpg", quality=JPEG_QUALITY)
            Image.fromarray(mask).save(mask_dir / f"IDRiD_{number:02d}_MA.tif")


def fundus(rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A fundus-like RGB image of `size` (width, height) and its microaneurysm mask."""
    shape = (size[1], size[0])
    offset = rng.uniform(-0.02, 0.02, 2)
    center = (shape[0] * (0.5 + offset[0]), shape[1] * (0.5 + offset[1]))
    radius = 0.53 * shape[0]
    rows, cols = shapes.grid(shape)
    eye = shapes.disk(shape, center, radius)
    side = 1 if rng.random() < 0.5 else -1
    disc_center = (center[0] + rng.uniform(-0.1, 0.1) * radius, center[1] + side * 0.55 * radius)
    disc_radius = 0.14 * radius
    r2 = ((rows - center[0]) ** 2 + (cols - center[1]) ** 2) / radius**2
    shade = (1 - 0.45 * r2) * (0.9 + 0.2 * shapes.smooth_noise(rng, shape, 6))
    macula = shapes.gaussian_blob(shape, (center[0], center[1] - side * 0.2 * radius), (0.12 * radius,) * 2)
    shade *= 1 - 0.3 * macula
    shade *= 1 - vessels(rng, shape, disc_center, radius)
    base = np.array([rng.uniform(190, 230), rng.uniform(70, 100), rng.uniform(20, 40)])
    image = shade[..., None] * base
    disc = shapes.gaussian_blob(shape, disc_center, (disc_radius, disc_radius))
    image += np.clip(2 * disc, 0, 1)[..., None] * (np.array([255.0, 235.0, 150.0]) - image)
    lesions = microaneurysms(rng, shape, center, radius, disc_center, disc_radius)
    image[lesions] = image[lesions] * 0.25 + np.array([120.0, 25.0, 15.0]) * 0.75
    image += rng.normal(0.0, 3.0, image.shape)
    image[~eye] = 0
    return shapes.to_uint8(image), lesions


def vessels(rng: np.random.Generator, shape: tuple[int, int], start: tuple[float, float], radius: float) -> np.ndarray:
    """Darkening in [0, 0.5) along branching vessel lines leaving the optic disc."""
    darkening = np.zeros(shape)
    width = max(0.8, 0.012 * shape[0])
    trunks = [(-math.pi / 2 + rng.uniform(-0.5, 0.5), 1.0) for _ in range(2)]
    trunks += [(math.pi / 2 + rng.uniform(-0.5, 0.5), 1.0) for _ in range(2)]
    trunks += [(rng.uniform(0, 2 * math.pi), 0.6) for _ in range(int(rng.integers(2, 5)))]
    for angle, strength in trunks:
        path = random_walk(rng, start, angle, 0.07 * radius, int(rng.integers(10, 16)))
        fork = path[int(rng.integers(3, len(path) - 3))]
        branch = random_walk(rng, fork, angle + rng.choice([-1, 1]) * rng.uniform(0.4, 0.9), 0.06 * radius, 8)
        for line, scale in ((path, strength), (branch, 0.6 * strength)):
            distance = shapes.polyline_distance(shape, line)
            np.maximum(darkening, 0.45 * scale * np.exp(-((distance / (width * scale)) ** 2)), out=darkening)
    return darkening


def random_walk(
    rng: np.random.Generator, start: tuple[float, float], angle: float, step: float, steps: int
) -> list[tuple[float, float]]:
    """Points of a gently curving path (angle 0 points along +row)."""
    points = [start]
    bend = rng.uniform(-0.12, 0.12)
    for _ in range(steps):
        angle += bend + rng.uniform(-0.15, 0.15)
        row, col = points[-1]
        points.append((row + step * math.cos(angle), col + step * math.sin(angle)))
    return points


def microaneurysms(
    rng: np.random.Generator,
    shape: tuple[int, int],
    center: tuple[float, float],
    radius: float,
    disc_center: tuple[float, float],
    disc_radius: float,
) -> np.ndarray:
    """Mask of 5-20 tiny dots (radius 1-2 px) inside the retina, away from the optic disc."""
    lesions = np.zeros(shape, bool)
    placed = 0
    wanted = int(rng.integers(5, 21))
    while placed < wanted:
        distance = 0.8 * radius * math.sqrt(rng.random())
        angle = rng.uniform(0, 2 * math.pi)
        dot = (round(center[0] + distance * math.cos(angle)), round(center[1] + distance * math.sin(angle)))
        inside = 1 <= dot[0] < shape[0] - 2 and 1 <= dot[1] < shape[1] - 2
        if inside and math.dist(dot, disc_center) > 1.5 * disc_radius:
            lesions |= shapes.disk(shape, dot, float(rng.integers(1, 3)))
            placed += 1
    return lesions
