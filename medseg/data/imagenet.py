"""ImageNet (ILSVRC2012 or any ImageFolder): an index of (path, label); decoding stays in training.

Accepted layouts under the raw folder:
    train/<class>/*.JPEG                          class folders: synsets or any names
    val/<class>/*.JPEG                            validation in class folders, or
    val/*.JPEG + LOC_val_solution.csv             flat validation with the Kaggle solution file
"""

from __future__ import annotations

import csv
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from medseg.atomic import atomic_dir
from medseg.data.readers import list_files, read_header, require_dir
from medseg.data.store import INDEX, write_meta
from medseg.errors import DataError

log = logging.getLogger(__name__)

SUFFIXES = (".jpeg", ".jpg", ".png")
SOLUTION = "LOC_val_solution.csv"
HEADER_CHUNK = 20_000


def choose_classes(all_classes: list[str], count: int | None) -> list[str]:
    """`count` classes spread evenly over the sorted class list (all when `count` is None)."""
    if count is None or count >= len(all_classes):
        return all_classes
    picks = np.unique(np.linspace(0, len(all_classes) - 1, count).round().astype(int))
    return [all_classes[i] for i in picks]


def class_folders(split_dir: Path) -> list[str]:
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir())


def read_solution(raw: Path) -> dict[str, str]:
    """Validation image id -> synset, from the first label of each PredictionString."""
    path = raw / SOLUTION
    if not path.is_file():
        raise DataError(
            f"{path} is missing; a flat {raw / 'val'} folder needs the Kaggle {SOLUTION} beside it "
            "(or put the validation images into class folders)"
        )
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or not {"ImageId", "PredictionString"} <= set(reader.fieldnames):
            raise DataError(f"{path}: expected the header ImageId,PredictionString")
        return {row["ImageId"]: row["PredictionString"].split()[0] for row in reader}


def foldered_files(split_dir: Path, classes: list[str], per_class: int | None) -> list[tuple[Path, str]]:
    files = []
    for name in classes:
        paths = list_files(split_dir / name, SUFFIXES, f"the images of class {name}")
        files += [(path, name) for path in paths[:per_class]]
    return files


def flat_val_files(raw: Path, classes: list[str], per_class: int | None) -> list[tuple[Path, str]]:
    solution = read_solution(raw)
    by_class: dict[str, list[Path]] = {name: [] for name in classes}
    for path in list_files(raw / "val", SUFFIXES, "the flat validation images"):
        synset = solution.get(path.stem)
        if synset is None:
            raise DataError(f"{path}: no row for {path.stem} in {raw / SOLUTION}")
        if synset in by_class:
            by_class[synset].append(path)
    return [(path, name) for name in classes for path in by_class[name][:per_class]]


def index_frame(files: list[tuple[Path, str]], classes: list[str], workers: int) -> pd.DataFrame:
    """Index rows with the image sizes from the headers (which also proves each file is an image)."""
    label = {name: i for i, name in enumerate(classes)}
    sizes = []
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(files), HEADER_CHUNK):
            chunk = [path for path, _ in files[start : start + HEADER_CHUNK]]
            sizes += [(w, h) for _, w, h in pool.map(read_header, chunk)]
            log.info("checked %d/%d image headers", len(sizes), len(files))
    return pd.DataFrame(
        {
            "i": np.arange(len(files)),
            "path": [str(path.resolve()) for path, _ in files],
            "label": [label[name] for _, name in files],
            "synset": [name for _, name in files],
            "width": [w for w, _ in sizes],
            "height": [h for _, h in sizes],
        }
    )


def prepare_imagenet(
    raw: Path,
    out: Path,
    classes: int | None = None,
    images_per_class: int | None = None,
    val_images_per_class: int | None = None,
    workers: int = 8,
) -> None:
    """Index train and val images of the chosen classes (labels follow sorted class names)."""
    train_dir = require_dir(raw / "train", "the ImageNet train/ folder of class folders")
    all_classes = class_folders(train_dir)
    if not all_classes:
        raise DataError(f"{train_dir}: no class folders; expected train/<class>/*.JPEG")
    chosen = choose_classes(all_classes, classes)
    val_dir = require_dir(raw / "val", "the ImageNet val/ folder")
    train = foldered_files(train_dir, chosen, images_per_class)
    if class_folders(val_dir):
        val = foldered_files(val_dir, chosen, val_images_per_class)
    else:
        val = flat_val_files(raw, chosen, val_images_per_class)
    if not val:
        raise DataError(f"{val_dir}: no validation images of the chosen classes")
    with atomic_dir(out) as tmp:
        for split, files in (("train", train), ("val", val)):
            (tmp / split).mkdir()
            index_frame(files, chosen, workers).to_parquet(tmp / split / INDEX, index=False)
        write_meta(
            tmp, type="imagenet", classes=chosen, splits={"train": len(train), "val": len(val)},
            budget={"classes": classes, "images_per_class": images_per_class,
                    "val_images_per_class": val_images_per_class},
        )
    log.info("ImageNet indexed in %s: %d classes, %d train, %d val images", out, len(chosen), len(train), len(val))
