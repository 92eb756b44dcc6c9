"""Readers for the raw files that turn every failure into a DataError naming the file."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from medseg.errors import DataError


class Header(NamedTuple):
    mode: str
    width: int
    height: int
    format: str


# Modes that hold more than 8 bits per pixel; PIL's convert("L") would clip them to 255.
HIGH_DEPTH_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
GRAYSCALE_MODES = {"1", "L", "LA", "La"} | HIGH_DEPTH_MODES


def open_image(path: Path) -> Image.Image:
    """Open and fully decode an image file in its own mode (masks need the mode to be read right)."""
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(
            f"{path}: cannot decode image ({error}); the file is truncated or corrupt, "
            "replace it with an intact copy from the dataset archive"
        ) from None


def to_8bit(image: Image.Image, path: Path) -> Image.Image:
    """A 16-bit grey image scaled by its bit depth to 8 bits (v * 255 / 65535, rounded)."""
    values = np.asarray(image).astype(np.int64)
    if values.min() < 0 or values.max() > 65535:
        raise DataError(
            f"{path}: {image.mode} image with values {values.min()}..{values.max()}, outside the "
            "16-bit range 0-65535; save it as an 8- or 16-bit image"
        )
    return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8))


def read_image(path: Path, mode: str) -> np.ndarray:
    """Decode an intensity image into an 8-bit array of PIL `mode` ("L" or "RGB").

    16-bit images are scaled by their bit depth, never clipped; alpha is dropped; palette
    images are read through their palette.
    """
    image = open_image(path)
    if image.mode in HIGH_DEPTH_MODES:
        image = to_8bit(image, path)
    elif image.mode == "F":
        raise DataError(f"{path}: 32-bit floating-point images are not supported; save it as an 8- or 16-bit image")
    return np.asarray(image if image.mode == mode else image.convert(mode))


def read_label_map(path: Path) -> np.ndarray:
    """The class ids of a mask file, read according to its mode.

    Grey (8 or 16 bit) and bilevel masks hold the ids as values; palette masks hold them as
    palette indices (their colours are only for display); an alpha channel is ignored; an RGB
    mask is accepted only when it is grey (all channels equal).
    """
    image = open_image(path)
    values = np.asarray(image)
    if image.mode in ("1", "L", "P") or image.mode in HIGH_DEPTH_MODES:
        return values.astype(np.int64)
    if image.mode in ("LA", "La", "PA"):
        return values[..., 0].astype(np.int64)
    if image.mode in ("RGB", "RGBA"):
        rgb = values[..., :3]
        if (rgb == rgb[..., :1]).all():
            return rgb[..., 0].astype(np.int64)
        raise DataError(
            f"{path}: colour mask; a mask must hold class ids in one channel (a grey or palette "
            "image, values 0..C-1), not colours"
        )
    raise DataError(f"{path}: mask in image mode {image.mode}; save it as a grey, bilevel or palette image")


def read_header(path: Path) -> Header:
    """The PIL mode, width, height and format of an image file, reading only its header."""
    try:
        with Image.open(path) as image:
            return Header(image.mode, image.width, image.height, image.format or "")
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
            f"{mask_path}: label values {bad.tolist()} are outside the {dataset} classes 0-{num_classes - 1}"
        )
