"""On-disk form of prepared data: arrays that training memory-maps, plus a Parquet index."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from medseg.errors import DataError

INDEX = "index.parquet"
IMAGES = "images.npy"
MASKS = "masks.npy"
META = "dataset.json"


def pixel_counts(mask: np.ndarray, classes: list[str]) -> dict[str, int]:
    """Per-class pixel counts of a label map, as `pixels_<class>` index columns."""
    counts = np.bincount(mask.ravel(), minlength=len(classes))
    return {f"pixels_{name}": int(count) for name, count in zip(classes, counts)}


def write_split(
    split_dir: Path,
    images: list[np.ndarray],
    masks: list[np.ndarray],
    rows: list[dict],
    classes: list[str],
) -> dict:
    """Write one split: stacked images (channel axis added for grayscale), masks and the index.

    `rows` describe the samples; each names the `image` it reads and its window
    (`y0`, `x0`, `height`, `width`); `i` and the per-class pixel counts are added here.
    """
    split_dir.mkdir(parents=True, exist_ok=True)
    image_array = np.stack(images)
    if image_array.ndim == 3:
        image_array = image_array[..., np.newaxis]
    mask_array = np.stack(masks).astype(np.uint8)
    np.save(split_dir / IMAGES, image_array)
    np.save(split_dir / MASKS, mask_array)
    records = []
    for i, row in enumerate(rows):
        window = mask_array[row["image"], row["y0"] : row["y0"] + row["height"], row["x0"] : row["x0"] + row["width"]]
        records.append({"i": i, **row, **pixel_counts(window, classes)})
    pd.DataFrame.from_records(records).to_parquet(split_dir / INDEX, index=False)
    return image_range(image_array)


def full_image_row(image: int, shape: tuple[int, ...], **fields) -> dict:
    """Index row of a sample that is a whole stored image."""
    return {"image": image, "y0": 0, "x0": 0, "height": shape[0], "width": shape[1], **fields}


def write_meta(out: Path, **meta) -> None:
    (out / META).write_text(json.dumps(meta, indent=2) + "\n")


@dataclass
class Split:
    """A prepared split opened for reading: arrays are memory-mapped, nothing is decoded."""

    images: np.ndarray
    masks: np.ndarray
    index: pd.DataFrame

    def __len__(self) -> int:
        return len(self.index)

    def sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The (image window, mask window) of sample `i`."""
        row = self.index.iloc[i]
        rows = slice(row.y0, row.y0 + row.height)
        cols = slice(row.x0, row.x0 + row.width)
        return self.images[row.image, rows, cols], self.masks[row.image, rows, cols]


def open_split(split_dir: Path) -> Split:
    split_dir = Path(split_dir)
    return Split(
        images=np.load(split_dir / IMAGES, mmap_mode="r"),
        masks=np.load(split_dir / MASKS, mmap_mode="r"),
        index=pd.read_parquet(split_dir / INDEX),
    )


def read_meta(out: Path) -> dict:
    return json.loads((Path(out) / META).read_text())


def read_segmentation_meta(data: Path, needed_by: str) -> dict:
    """dataset.json of a prepared segmentation dataset, or a MedsegError saying what `data` is instead."""
    from medseg.errors import MedsegError

    meta_file = Path(data) / META
    try:
        meta = read_meta(data)
    except FileNotFoundError:
        raise MedsegError(f"{meta_file} not found: --data must be a folder written by `medseg prepare`") from None
    except ValueError as error:
        raise MedsegError(f"{meta_file} is not valid JSON: {error}") from None
    if meta.get("type") == "imagenet":
        raise MedsegError(f"{data} is prepared ImageNet (an index only); {needed_by} needs a segmentation dataset")
    return meta


def image_range(images: np.ndarray) -> dict:
    """How consumers read a split's images: dtype, shape and the nominal value range."""
    nominal = [0, 255] if images.dtype == np.uint8 else [0.0, 1.0]
    return {"dtype": str(images.dtype), "shape": list(images.shape), "value_range": nominal}


# IDRiD is prepared as windows of its resized images (training) and tiles that partition them
# (test); scoring and training read the same geometry back.
def windows(size: tuple[int, int], window: int, stride: int) -> list[tuple[int, int, int, int]]:
    """(row, col, y0, x0) of every `window` x `window` crop at `stride` inside `size`."""
    height, width = size
    if window > min(height, width):
        raise DataError(f"IDRiD window {window} does not fit the resized images {height}x{width}")
    ys = range(0, height - window + 1, stride)
    xs = range(0, width - window + 1, stride)
    return [(r, c, y, x) for r, y in enumerate(ys) for c, x in enumerate(xs)]


def tiles(size: tuple[int, int], tile: int) -> list[tuple[int, int, int, int]]:
    """(row, col, y0, x0) of the equal `tile` x `tile` tiles that partition `size`."""
    height, width = size
    if height % tile or width % tile:
        raise DataError(f"IDRiD test tile {tile} does not divide the resized images {height}x{width}")
    return windows(size, tile, tile)
