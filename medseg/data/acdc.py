"""ACDC (cardiac cine MRI, NIfTI): ED and ES frames as 2-D short-axis slices."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np

from medseg.data.output import write_prepared
from medseg.data.readers import check_labels, check_same_shape, read_nifti, require_dir
from medseg.data.resize import resize_image, resize_labels
from medseg.data.store import full_image_row
from medseg.errors import DataError

log = logging.getLogger(__name__)

CLASSES = ["background", "rv_cavity", "myocardium", "lv_cavity"]
SPLITS = {"train": "training", "test": "testing"}
PHASES = ("ED", "ES")
CLIP_PERCENTILES = (0.5, 99.5)
PATIENT = re.compile(r"patient\d{3}")


def find_root(raw: Path) -> Path:
    """The folder holding training/ and testing/: the raw folder itself or its database/."""
    for root in (raw, raw / "database"):
        if (root / "training").is_dir():
            return root
    raise DataError(
        f"{raw}: expected the ACDC folders training/ and testing/ here or under database/ "
        f"(found neither {raw / 'training'} nor {raw / 'database' / 'training'})"
    )


def read_info(patient_dir: Path) -> dict[str, str]:
    """Parse a patient's Info.cfg (`Key: value` lines); ED and ES must be frame numbers."""
    path = patient_dir / "Info.cfg"
    if not path.is_file():
        raise DataError(f"{path} is missing; every ACDC patient folder needs an Info.cfg with ED: and ES: lines")
    info = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    for phase in PHASES:
        if not info.get(phase, "").isdigit():
            raise DataError(f"{path}: expected a line '{phase}: <frame number>', found {info.get(phase)!r}")
    if int(info["ED"]) == int(info["ES"]):
        raise DataError(
            f"{path}: ED and ES are both frame {int(info['ED'])}, so the same slices would be written "
            "twice; correct the frame numbers"
        )
    return info


def normalise(volume: np.ndarray) -> np.ndarray:
    """Clip a volume to its 0.5th-99.5th intensity percentiles and scale that range to [0, 1]."""
    low, high = np.percentile(volume, CLIP_PERCENTILES)
    if high <= low:
        return np.zeros(volume.shape, np.float32)
    return ((np.clip(volume, low, high) - low) / (high - low)).astype(np.float32)


def read_frame(patient_dir: Path, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """The normalised image volume and the label volume of one frame of a patient."""
    stem = f"{patient_dir.name}_frame{frame:02d}"
    image_path = patient_dir / f"{stem}.nii.gz"
    mask_path = patient_dir / f"{stem}_gt.nii.gz"
    for path in (image_path, mask_path):
        if not path.is_file():
            raise DataError(f"{path} does not exist, but {patient_dir / 'Info.cfg'} names frame {frame} as ED or ES")
    image, _ = read_nifti(image_path)
    labels, _ = read_nifti(mask_path)
    for path, volume in ((image_path, image), (mask_path, labels)):
        if volume.ndim != 3:
            raise DataError(f"{path}: expected a 3-D volume (x, y, slice), found shape {volume.shape}")
    check_same_shape(image, image_path, labels, mask_path, spatial_dims=3)
    if not np.array_equal(labels, np.round(labels)):
        raise DataError(f"{mask_path}: label values must be integers 0-{len(CLASSES) - 1}")
    check_labels(labels, mask_path, len(CLASSES), "ACDC")
    return normalise(image), labels.astype(np.uint8)


def prepare_split(root: Path, folder: str, size: int) -> tuple[list, list, list]:
    split_dir = require_dir(root / folder, f"the ACDC {folder}/ folder")
    patients = sorted(p for p in split_dir.iterdir() if p.is_dir() and PATIENT.fullmatch(p.name))
    if not patients:
        raise DataError(f"{split_dir}: no patientNNN folders; expected the ACDC {folder} patients here")
    images, masks, rows = [], [], []
    for number, patient_dir in enumerate(patients, 1):
        info = read_info(patient_dir)
        for phase in PHASES:
            frame = int(info[phase])
            volume, labels = read_frame(patient_dir, frame)
            source = f"{folder}/{patient_dir.name}/{patient_dir.name}_frame{frame:02d}.nii.gz"
            for z in range(volume.shape[2]):
                images.append(resize_image(volume[:, :, z], (size, size)))
                masks.append(resize_labels(labels[:, :, z], (size, size)))
                rows.append(
                    full_image_row(
                        len(rows),
                        (size, size),
                        source=source,
                        patient=patient_dir.name,
                        group=info.get("Group", ""),
                        frame=phase,
                        frame_number=frame,
                        slice=z,
                    )
                )
        log.info("%s: patient %d/%d (%s), %d slices so far", folder, number, len(patients), patient_dir.name, len(rows))
    return images, masks, rows


def prepare_acdc(raw: Path, out: Path, size: int = 256) -> None:
    """Write train (training/ patients) and test (testing/ patients) slices of size x size."""
    root = find_root(raw)
    counts = write_prepared(
        raw,
        out,
        SPLITS,
        lambda split: prepare_split(root, SPLITS[split], size),
        CLASSES,
        type="acdc",
        channels=1,
        size=[size, size],
        intensity=f"per-volume clip to percentiles {list(CLIP_PERCENTILES)}, scaled to [0, 1]",
    )
    log.info("ACDC prepared in %s: %s slices", out, counts)
