"""Synthetic COVID-QU-Ex (infection segmentation part): chest X-rays with lung and infection masks.

Layout: `Infection Segmentation Data/Infection Segmentation Data/{Train,Val,Test}/
{COVID-19,Non-COVID,Normal}/{images,infection masks,lung masks}/<name>.png`; images and masks
are 8-bit grayscale PNGs, masks hold 0 and 255 only, and only COVID-19 infection masks are
non-empty.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from medseg.synth import shapes
from medseg.synth.presets import Preset

TOP = Path("Infection Segmentation Data", "Infection Segmentation Data")
SPLITS = ("Train", "Val", "Test")
CLASSES = {"COVID-19": "covid", "Non-COVID": "non_covid", "Normal": "normal"}


def write(root: Path, preset: Preset, rng: np.random.Generator) -> None:
    """Write every split and class folder under `root`."""
    for split, covid_count in zip(SPLITS, preset.covid_per_split):
        for label, prefix in CLASSES.items():
            folder = root / TOP / split / label
            count = covid_count if label == "COVID-19" else preset.covid_other_per_split
            for k in range(1, count + 1):
                arrays = chest_xray(rng, preset.covid_size, infected=label == "COVID-19")
                for sub, array in zip(("images", "lung masks", "infection masks"), arrays):
                    (folder / sub).mkdir(parents=True, exist_ok=True)
                    Image.fromarray(array).save(folder / sub / f"{prefix}_{k}.png")


def chest_xray(rng: np.random.Generator, size: int, infected: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An X-ray-like image, its lung mask and its infection mask (uint8, masks 0/255)."""
    shape = (size, size)
    rows, cols = shapes.grid(shape)
    jitter = rng.uniform(-0.03, 0.03, 4) * size
    body = shapes.ellipse(shape, (0.58 * size, 0.5 * size), (0.55 * size, 0.46 * size))
    image = 15 + 10 * shapes.smooth_noise(rng, shape, 4)
    image = np.where(body, 150 + 40 * shapes.smooth_noise(rng, shape, 6), image)
    lungs = np.zeros(shape, bool)
    for side, shift in ((-1, jitter[0]), (1, jitter[1])):
        center = (0.47 * size + jitter[2], 0.5 * size + side * 0.2 * size + shift)
        radii = (0.3 * size * rng.uniform(0.92, 1.08), 0.13 * size * rng.uniform(0.9, 1.1))
        lungs |= shapes.ellipse(shape, center, radii, side * rng.uniform(0.0, 0.15))
    heart = shapes.ellipse(shape, (0.64 * size, 0.54 * size + jitter[3]), (0.14 * size, 0.12 * size))
    lungs &= ~heart
    image = np.where(lungs, 55 + 25 * shapes.smooth_noise(rng, shape, 8), image)
    period = size / rng.uniform(7.0, 9.0)
    ribs = np.sin(2 * np.pi * (rows + 1.2 * (cols - size / 2) ** 2 / size) / period)
    image += body * 35 * np.clip(ribs, 0, 1) ** 4
    infection = np.zeros(shape, bool)
    if infected:
        image, infection = add_infection(rng, image, lungs)
    image += rng.normal(0.0, 6.0, shape)
    return shapes.to_uint8(image), lungs.astype(np.uint8) * 255, infection.astype(np.uint8) * 255


def add_infection(rng: np.random.Generator, image: np.ndarray, lungs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add 1-3 bright hazy blobs centred inside the lungs; return the image and their mask."""
    size = image.shape[0]
    inside = np.argwhere(lungs)
    infection = np.zeros(image.shape, bool)
    for _ in range(int(rng.integers(1, 4))):
        center = tuple(float(c) for c in inside[rng.integers(len(inside))])
        radii = tuple(float(r) for r in rng.uniform(0.05, 0.12, 2) * size)
        angle = float(rng.uniform(0, np.pi))
        haze = shapes.gaussian_blob(image.shape, center, radii, angle)
        image = image + 70 * haze * lungs
        infection |= lungs & shapes.ellipse(image.shape, center, radii, angle)
    return image, infection
