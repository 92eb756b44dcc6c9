"""A prepared segmentation dataset held on the training device, and its batches as the model sees them.

Both splits are copied to the device once, as stored (uint8 or float32, grey or RGB, the stored
size): a few hundred MB at the paper's sizes, so no data loader and no per-sample Python in the
training loop. A batch is drawn by index: one gather of equal-sized windows (the whole image for
ACDC, COVID-QU-Ex and folder datasets; IDRiD's training windows and test tiles), then the shared
input function of `medseg.inputs` (scaled to [0, 1], grey to RGB, resized to the model's input
with masks nearest) -- the same as robustness scoring uses.

Augmentation (Appendix A.4) runs on the device on [0, 1] pixels, before normalisation, with
per-sample parameters from one CPU generator: ACDC, COVID-QU-Ex and folder datasets are rotated by
U[0, pi] and flipped vertically with p 0.5 (`augment.rotate_flip`); IDRiD's windows go through
Algorithm 2 (`augment.idrid_crop` to a `tile` x `tile` crop) and then the per-image colour jitter
of Algorithm 3 (`medseg.jitter`). Test batches are not augmented.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medseg.data.store import INDEX, META, Split, open_split, read_segmentation_meta
from medseg.downstream.augment import idrid_crop, rotate_flip
from medseg.errors import DataError, MedsegError
from medseg.inputs import input_size, normalise, to_labels, to_pixels, value_scale
from medseg.jitter import color_jitter

SPLITS = ("train", "test")


@dataclass
class DeviceSplit:
    """One split on the device: the stored arrays and the window each sample reads."""

    name: str
    images: torch.Tensor
    """(N, H, W, C) as stored."""
    masks: torch.Tensor
    """(N, H, W) class ids, uint8."""
    image: torch.Tensor
    """(S,) int64: the stored image sample s reads."""
    y0: torch.Tensor
    x0: torch.Tensor
    side: int
    """Height and width of every sample's window."""
    scale: float
    """Stored values / scale lie in [0, 1]."""

    def __len__(self) -> int:
        return len(self.image)

    @property
    def whole_images(self) -> bool:
        return self.side == self.images.shape[1] == self.images.shape[2]

    def stored(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored pixels (B, side, side, C) and masks (B, side, side) of samples `ids`: one gather each."""
        ids = ids.to(self.image.device)
        image = self.image[ids]
        if self.whole_images:
            return self.images[image], self.masks[image]
        offsets = torch.arange(self.side, device=ids.device)
        rows = (self.y0[ids][:, None] + offsets)[:, :, None]
        cols = (self.x0[ids][:, None] + offsets)[:, None, :]
        image = image[:, None, None]
        return self.images[image, rows, cols], self.masks[image, rows, cols]

    def pixels(self, ids: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Samples `ids` as float32 RGB (B, 3, size, size) in [0, 1] and int64 labels (B, size, size)."""
        images, masks = self.stored(ids)
        device = self.images.device
        return to_pixels(images, size, self.scale, device), to_labels(masks, size, device)


@dataclass
class Task:
    """A prepared dataset opened for training: its classes, input size and both splits on the device."""

    path: Path
    meta: dict
    classes: list[str]
    input_size: int
    train: DeviceSplit
    test: DeviceSplit

    @property
    def kind(self) -> str:
        return str(self.meta.get("type"))

    @property
    def train_side(self) -> int:
        """Side of the training samples before augmentation: IDRiD's windows, else the model input."""
        return self.train.side if self.kind == "idrid" else self.input_size

    def fingerprint(self) -> str:
        """Hash of dataset.json and both splits' index (what a resume file must have been trained on)."""
        digest = hashlib.sha256()
        for path in (self.path / META, *(self.path / split / INDEX for split in SPLITS)):
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def train_batch(self, ids: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Augmented, normalised training inputs (B, 3, s, s) and labels (B, s, s), s = the input size."""
        pixels, labels = self.train.pixels(ids, self.train_side)
        pixels, labels = augment(self.kind, pixels, labels, self.input_size, generator)
        return normalise(pixels), labels

    def test_batch(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised test inputs and labels at the input size, not augmented."""
        pixels, labels = self.test.pixels(ids, self.input_size)
        return normalise(pixels), labels


def augment(
    kind: str, pixels: torch.Tensor, labels: torch.Tensor, size: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Appendix A.4's augmentation of [0, 1] pixels and labels for a dataset type (see the module docstring)."""
    if kind == "idrid":
        pixels, labels = idrid_crop(pixels, labels, size, generator)
        return color_jitter(pixels, generator), labels
    return rotate_flip(pixels, labels, generator)


def open_task(
    data: Path, image_size: int, device: torch.device | str = "cpu", expected_classes: list[str] | None = None
) -> Task:
    """Open a prepared segmentation dataset, check it and copy both splits to `device`."""
    data = Path(data)
    meta_file = data / META
    meta = read_segmentation_meta(data, "downstream training")
    classes = list(meta.get("classes", []))
    if expected_classes is not None and classes != list(expected_classes):
        raise MedsegError(
            f"{meta_file} has {len(classes)} classes {classes}, but {len(expected_classes)} classes "
            f"{list(expected_classes)} were expected (--classes); prepare the dataset again or fix the class list"
        )
    if len(classes) < 2:
        raise MedsegError(
            f"{meta_file} lists {len(classes)} class(es); a segmentation task needs a background and a class"
        )
    size = input_size(meta, image_size)
    splits = {}
    for name in SPLITS:
        if name not in meta.get("images", {}):
            raise MedsegError(f"{meta_file} has no '{name}' split with images")
        try:
            opened = open_split(data / name)
        except FileNotFoundError as error:
            raise MedsegError(
                f"{error.filename}: missing from the prepared dataset {data}; re-run `medseg prepare`"
            ) from None
        splits[name] = _to_device(data / name, name, opened, value_scale(meta, name), len(classes), device)
    return Task(data, meta, classes, size, splits["train"], splits["test"])


def _to_device(
    folder: Path, name: str, split: Split, scale: float, num_classes: int, device: torch.device | str
) -> DeviceSplit:
    index = split.index
    if len(index) == 0:
        raise MedsegError(f"{folder / INDEX}: the '{name}' split has no samples")
    sides = pd.unique(pd.concat([index["height"], index["width"]]))
    if len(sides) != 1:
        raise DataError(
            f"{folder / INDEX}: samples of different sizes {sorted(int(s) for s in sides)[:5]}; downstream training "
            "needs equal square windows (re-run `medseg prepare`)"
        )
    masks = torch.from_numpy(np.array(split.masks))
    top = int(masks.max())
    if top >= num_classes:
        raise DataError(
            f"{folder / 'masks.npy'} holds class id {top}, but {folder.parent / META} lists {num_classes} classes "
            f"(ids 0-{num_classes - 1}); the masks and the class list do not match"
        )
    images = torch.from_numpy(np.array(split.images))

    def column(key: str) -> torch.Tensor:
        return torch.as_tensor(index[key].to_numpy(np.int64), device=device)

    return DeviceSplit(
        name, images.to(device), masks.to(device), column("image"), column("y0"), column("x0"), int(sides[0]), scale
    )
