"""Synthetic ACDC: cine short-axis stacks of a beating heart, in the release's NIfTI layout.

Per patient: `Info.cfg`, `patientNNN_4d.nii.gz` (int16, X x Y x Z x T) and, for the ED and ES
frames, `patientNNN_frameXX.nii.gz` (that frame of the 4-D volume) with
`patientNNN_frameXX_gt.nii.gz` (uint8: 0 background, 1 RV cavity, 2 myocardium, 3 LV cavity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from medseg.synth import shapes
from medseg.synth.presets import Preset

GROUPS = ("NOR", "MINF", "DCM", "HCM", "RV")
BACKGROUND, RV, MYO, LV = 0, 1, 2, 3
NOISE_SIGMA = 30.0
MAX_INTENSITY = 1500


@dataclass(frozen=True)
class Heart:
    """Geometry of one patient's heart at end-diastole, basal slice, in pixels."""

    center: tuple[float, float]
    drift: tuple[float, float]
    """Shift of the centre per slice from base to apex."""
    lv_radius: float
    wall: float
    rv_angle: float
    """Direction from the LV centre to the RV: (cos, sin) of it is the (row, col) step."""
    contraction: float
    """Relative shrinking of the LV cavity at end-systole."""


def write(root: Path, preset: Preset, rng: np.random.Generator) -> None:
    """Write training/patient001.. and testing/patient101.. under `root`."""
    numbers = {"training": range(1, preset.acdc_train + 1), "testing": range(101, 101 + preset.acdc_test)}
    for split, patients in numbers.items():
        for number in patients:
            write_patient(root / split / f"patient{number:03d}", preset, rng)


def write_patient(folder: Path, preset: Preset, rng: np.random.Generator) -> None:
    """Draw one patient and write its Info.cfg and NIfTI files into `folder`."""
    folder.mkdir(parents=True)
    x, y = (int(n) for n in rng.integers(*preset.acdc_side, size=2, endpoint=True))
    slices = int(rng.integers(*preset.acdc_slices, endpoint=True))
    frames = int(rng.integers(*preset.acdc_frames, endpoint=True))
    ed = 1
    es = int(rng.integers(math.ceil(0.3 * frames), math.floor(0.6 * frames), endpoint=True))
    spacing = (round(float(rng.uniform(1.3, 1.8)), 3), round(float(rng.uniform(5.0, 10.0)) * 2) / 2)
    labels = cine_labels(draw_heart(rng, (x, y)), (x, y, slices, frames), es)
    volume = render(rng, labels)
    stem = folder.name
    (folder / "Info.cfg").write_text(info_cfg(rng, ed, es, frames))
    save(volume, spacing, folder / f"{stem}_4d.nii.gz")
    for frame in (ed, es):
        save(volume[..., frame - 1], spacing, folder / f"{stem}_frame{frame:02d}.nii.gz")
        save(labels[..., frame - 1], spacing, folder / f"{stem}_frame{frame:02d}_gt.nii.gz")


def info_cfg(rng: np.random.Generator, ed: int, es: int, frames: int) -> str:
    """Info.cfg text with the release's keys in the release's order."""
    group = GROUPS[int(rng.integers(len(GROUPS)))]
    height = rng.uniform(150.0, 195.0)
    weight = rng.uniform(50.0, 110.0)
    return f"ED: {ed}\nES: {es}\nGroup: {group}\nHeight: {height:.1f}\nNbFrame: {frames}\nWeight: {weight:.1f}\n"


def draw_heart(rng: np.random.Generator, side: tuple[int, int]) -> Heart:
    """Random heart position and size fitting an image of `side` pixels."""
    small = min(side)
    rv_angle = float(rng.uniform(0.75, 1.25) * math.pi)
    shift = 0.1 * small
    center = (
        side[0] / 2 - shift * math.cos(rv_angle) + rng.uniform(-0.04, 0.04) * small,
        side[1] / 2 - shift * math.sin(rv_angle) + rng.uniform(-0.04, 0.04) * small,
    )
    return Heart(
        center=center,
        drift=(float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.3, 0.3))),
        lv_radius=0.12 * small * float(rng.uniform(0.9, 1.1)),
        wall=max(1.6, 0.055 * small * float(rng.uniform(0.9, 1.15))),
        rv_angle=rv_angle,
        contraction=float(rng.uniform(0.25, 0.4)),
    )


def cine_labels(heart: Heart, shape: tuple[int, int, int, int], es: int) -> np.ndarray:
    """Label volume (X, Y, Z, T) of a heart beating with end-systole at 1-based frame `es`."""
    side, slices, frames = shape[:2], shape[2], shape[3]
    volumes = []
    for t in range(frames):
        state = systole(t, es - 1, frames)
        volumes.append(np.stack([slice_labels(side, heart, z, slices, state) for z in range(slices)], -1))
    return np.stack(volumes, -1)


def systole(t: int, es: int, frames: int) -> float:
    """Contraction state of 0-based frame `t`: 0 at end-diastole (t=0), 1 at end-systole."""
    if t <= es:
        return 0.5 * (1 - math.cos(math.pi * t / es))
    return 0.5 * (1 + math.cos(math.pi * (t - es) / (frames - es)))


def slice_labels(side: tuple[int, int], heart: Heart, z: int, slices: int, state: float) -> np.ndarray:
    """Label map of slice `z` (0 = base) at contraction `state`."""
    depth = z / (slices - 1)
    center = (heart.center[0] + heart.drift[0] * z, heart.center[1] + heart.drift[1] * z)
    taper = 1 - 0.5 * depth**1.5
    lv = heart.lv_radius * taper * (1 - heart.contraction * state)
    epi = lv + heart.wall * (1 + 0.4 * state)
    labels = np.zeros(side, np.uint8)
    rv_scale = (1 - 0.85 * depth) * (1 - 0.25 * state)
    if rv_scale * epi > 1.0:
        along, across = 0.9 * epi * rv_scale, 1.5 * epi * rv_scale
        distance = epi + 0.35 * along
        rv_center = (
            center[0] + distance * math.cos(heart.rv_angle),
            center[1] + distance * math.sin(heart.rv_angle),
        )
        labels[shapes.ellipse(side, rv_center, (along, across), heart.rv_angle)] = RV
    labels[shapes.disk(side, center, epi)] = MYO
    labels[shapes.disk(side, center, lv)] = LV
    return labels


def render(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """MR-like int16 intensities for a label volume (X, Y, Z, T): bright blood, dark muscle."""
    x, y, z, _ = labels.shape
    background = np.stack([350 + 450 * shapes.smooth_noise(rng, (x, y), 5) for _ in range(z)], -1)
    lv_blood = float(rng.uniform(1050, 1200))
    means = np.array([0.0, 0.9 * lv_blood, float(rng.uniform(180, 260)), lv_blood])
    image = np.where(labels == BACKGROUND, background[..., None], means[labels])
    image += rng.normal(0.0, NOISE_SIGMA, labels.shape)
    return np.clip(np.rint(image), 0, MAX_INTENSITY).astype(np.int16)


def save(data: np.ndarray, spacing: tuple[float, float], path: Path) -> None:
    """Write `data` as NIfTI with in-plane spacing, slice spacing and (4-D) 1.0 time zoom."""
    zooms = (spacing[0], spacing[0], spacing[1], 1.0)[: data.ndim]
    affine = np.diag([spacing[0], spacing[0], spacing[1], 1.0])
    image = nib.Nifti1Image(data, affine)
    image.header.set_zooms(zooms)
    image.header.set_xyzt_units("mm", "sec")
    nib.save(image, path)
