"""Readers for the raw files that turn every failure into a DataError naming the file."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from medseg.errors import DataError


def read_image(path: Path, mode: str | None = None) -> np.ndarray:
    """Decode an image file fully (optionally converting its PIL mode) into an array."""
    try:
        with Image.open(path) as image:
            image.load()
            if mode is not None and image.mode != mode:
                image = image.convert(mode)
            return np.asarray(image)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(
            f"{path}: cannot decode image ({error}); the file is truncated or corrupt, "
            "replace it with an intact copy from the dataset archive"
        ) from None


def read_header(path: Path) -> tuple[str, int, int]:
    """The PIL mode, width and height of an image file, reading only its header."""
    try:
        with Image.open(path) as image:
            return image.mode, image.width, image.height
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{path}: not a readable image ({error}); replace or remove the file") from None


def read_nifti(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    """Load a NIfTI volume's voxel array and its voxel spacing (header zooms)."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError

    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        volume = nib.load(path)
        data = np.asanyarray(volume.dataobj)
        zooms = tuple(float(z) for z in volume.header.get_zooms())
    except (ImageFileError, OSError, EOFError, ValueError, zlib.error) as error:
        raise DataError(
            f"{path}: cannot read NIfTI volume ({type(error).__name__}: {error}); the file is "
            "truncated or corrupt, re-extract it from the dataset archive"
        ) from None
    return data, zooms


def require_dir(path: Path, what: str) -> Path:
    """Return `path` if it is a folder, else fail saying which folder was expected."""
    if not path.is_dir():
        raise DataError(f"expected {what} at {path}, but there is no such folder")
    return path


def list_files(folder: Path, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """Sorted files of `folder` with one of `suffixes` (case-insensitive); fail when none."""
    require_dir(folder, what)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if not files:
        raise DataError(f"{folder}: no {'/'.join(suffixes)} files; expected {what} here")
    return files


def check_same_shape(
    image: np.ndarray, image_path: Path, mask: np.ndarray, mask_path: Path, spatial_dims: int = 2
) -> None:
    """Fail when an image and its mask do not cover the same pixels (or voxels, `spatial_dims=3`)."""
    if image.shape[:spatial_dims] != mask.shape[:spatial_dims]:
        raise DataError(
            f"{mask_path}: mask has shape {mask.shape[:spatial_dims]} but its image {image_path} has "
            f"shape {image.shape[:spatial_dims]}; image and mask must have the same size"
        )


def check_labels(mask: np.ndarray, mask_path: Path, num_classes: int, dataset: str) -> None:
    """Fail when a label map holds values that are not class ids 0..num_classes-1."""
    values = np.unique(mask)
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        raise DataError(
            f"{mask_path}: label values {bad.tolist()} are outside the {dataset} classes "
            f"0-{num_classes - 1}"
        )
