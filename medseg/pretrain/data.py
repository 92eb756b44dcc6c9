"""Prepared ImageNet as JPEGs streamed by DataLoader workers, in a seeded, resumable order.

Nothing is held in memory but the index: paths as one fixed-width bytes array (no Python object
per image, so forked workers share it instead of copying it on access) and the labels. Each
worker decodes its images with PIL, converts them to RGB and applies timm's transforms, which
end in a uint8 tensor; conversion to float, mixing and normalisation happen on the device.
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, Sampler

from medseg import seeds
from medseg.data.store import INDEX, META, read_meta
from medseg.errors import DataError
from medseg.pretrain.settings import DataInfo

# A sample key: (row of the index, epoch, position in the epoch's order); epoch 0: not seeded.
Key = tuple[int, int, int]


@dataclass(frozen=True)
class SplitIndex:
    """One split of prepared ImageNet: where its images are and their labels."""

    root: Path
    paths: np.ndarray
    """Paths relative to `root`, as a fixed-width bytes array."""
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def read_split(prepared: Path, split: str, raw: Path | None) -> SplitIndex:
    """The index of `split`; images are found under `raw` or else where dataset.json says."""
    index_path = Path(prepared) / split / INDEX
    if not index_path.is_file():
        raise DataError(f"{index_path} is missing; prepare ImageNet first (`medseg prepare imagenet`)")
    kind = read_meta(prepared).get("type") if (Path(prepared) / META).is_file() else None
    if kind != "imagenet":
        raise DataError(
            f"{prepared} holds a prepared {kind or 'unknown'} dataset, not ImageNet; give the output of "
            "`medseg prepare imagenet` (e.g. results/data/imagenet)"
        )
    index = pd.read_parquet(index_path, columns=["path", "label"])
    root = Path(raw) if raw is not None else Path(read_meta(prepared)["raw"])
    paths = np.array([path.encode() for path in index["path"]], dtype=bytes)
    return SplitIndex(root, paths, index["label"].to_numpy(np.int64))


def data_info(prepared: Path, train: SplitIndex, val: SplitIndex) -> DataInfo:
    """Class count, sizes and a fingerprint of both indexes (independent of the raw folder's location)."""
    meta_path = Path(prepared) / META
    classes = len(read_meta(prepared)["classes"]) if meta_path.is_file() else int(train.labels.max()) + 1
    digest = hashlib.sha256()
    for split in (train, val):
        digest.update(split.paths.tobytes())
        digest.update(split.labels.tobytes())
    return DataInfo(classes, len(train), len(val), digest.hexdigest()[:16])


class Images(Dataset):
    """Decoded, transformed images of one split, addressed by `Key`."""

    def __init__(self, split: SplitIndex, transform: Callable, seed: int) -> None:
        self.split = split
        self.transform = transform
        self.seed = seed

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, key: Key) -> tuple[torch.Tensor, int]:
        index, epoch, position = key
        if epoch:
            # timm's transforms draw from the global generators: seed them for this image only.
            seeds.seed_globals(seeds.sample_seed(self.seed, epoch, position))
        path = self.split.root / self.split.paths[index].decode()
        try:
            with Image.open(path) as file:
                image = file.convert("RGB")
        except (OSError, UnidentifiedImageError) as error:
            raise DataError(f"{path}: cannot decode the image ({error}); replace the file and re-run") from None
        return self.transform(image), int(self.split.labels[index])


class TrainBatches(Sampler[list[Key]]):
    """The micro-batches that one process trains on in one epoch, from a given update on.

    Update `u` of an epoch takes positions [u * batch, (u + 1) * batch) of the epoch's order,
    cut into micro-batches m = 0, 1, ...; process `rank` of `world` takes m = a * world + rank at
    accumulation step a. One process with accumulation k and k processes without accumulation
    therefore see the same micro-batches. Images past the last whole batch are left out.
    """

    def __init__(self, size: int, seed: int, batch: int, micro_batch: int, accumulation: int, rank: int, world: int):
        self.size, self.seed, self.batch, self.micro_batch = size, seed, batch, micro_batch
        self.accumulation, self.rank, self.world = accumulation, rank, world
        self.epoch = 1
        self.start_update = 0

    @property
    def updates_per_epoch(self) -> int:
        return self.size // self.batch

    def __len__(self) -> int:
        return (self.updates_per_epoch - self.start_update) * self.accumulation

    def __iter__(self) -> Iterator[list[Key]]:
        order = seeds.epoch_order(self.seed, self.epoch, self.size)
        for update in range(self.start_update, self.updates_per_epoch):
            for step in range(self.accumulation):
                first = update * self.batch + (step * self.world + self.rank) * self.micro_batch
                positions = range(first, first + self.micro_batch)
                yield [(int(order[p]), self.epoch, p) for p in positions]


class ValBatches(Sampler[list[Key]]):
    """This process's contiguous share of the validation images, in batches."""

    def __init__(self, size: int, batch: int, rank: int, world: int):
        self.indices = range(rank * size // world, (rank + 1) * size // world)
        self.batch = batch

    def __len__(self) -> int:
        return -(-len(self.indices) // self.batch)

    def __iter__(self) -> Iterator[list[Key]]:
        for start in range(0, len(self.indices), self.batch):
            yield [(index, 0, 0) for index in self.indices[start : start + self.batch]]


def _quiet_worker(_: int) -> None:
    # Slurm and `kill` send SIGTERM to the whole process group: the main process saves its
    # resume file and stops the workers itself, so they must not die first.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def loader(dataset: Images, batches: Sampler, workers: int, pin_memory: bool) -> DataLoader:
    """A DataLoader over `batches`; with workers, they persist across epochs."""
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        worker_init_fn=_quiet_worker if workers else None,
        prefetch_factor=2 if workers else None,
    )
