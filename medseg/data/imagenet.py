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
from medseg.data.output import check_output
from medseg.data.readers import list_files, read_header, require_dir
from medseg.data.store import INDEX, read_meta, write_meta
from medseg.errors import DataError

log = logging.getLogger(__name__)

SUFFIXES = (".jpeg", ".jpg", ".png")
SOLUTION = "LOC_val_solution.csv"
HEADER_CHUNK = 20_000
END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}
TAIL_BYTES = 64
SPLITS = ("train", "val")


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
        solution = {}
        for row in reader:
            labels = (row.get("PredictionString") or "").split()
            if not labels:
                raise DataError(
                    f"{path}, line {reader.line_num}: empty PredictionString for {row['ImageId']!r}; "
                    "expected '<synset> x_min y_min x_max y_max ...'"
                )
            solution[row["ImageId"]] = labels[0]
        return solution


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


def check_image_file(path: Path) -> tuple[int, int]:
    """Width and height from the header, after checking that the file is complete.

    Decoding every image would take hours on all of ImageNet; a truncated file still has an
    intact header, but it lacks the end marker of its format (JPEG's end-of-image, PNG's IEND).
    """
    _, width, height, kind = read_header(path)
    end = END_MARKERS.get(kind)
    if end is not None:
        with path.open("rb") as handle:
            handle.seek(max(path.stat().st_size - TAIL_BYTES, 0))
            tail = handle.read().rstrip(b"\0\r\n\t ")  # some encoders pad after the marker
        if not tail.endswith(end):
            raise DataError(
                f"{path}: truncated {kind} file (no end-of-image marker); replace it with an "
                "intact copy from the dataset archive or remove it"
            )
    return width, height


def index_frame(raw: Path, files: list[tuple[Path, str]], classes: list[str], workers: int) -> pd.DataFrame:
    """Index rows with the image sizes from the headers, every file checked to be a complete image.

    Paths are relative to the raw folder, so a prepared index survives moving the data.
    """
    label = {name: i for i, name in enumerate(classes)}
    sizes = []
    with ThreadPoolExecutor(workers) as pool:
        for start in range(0, len(files), HEADER_CHUNK):
            chunk = [path for path, _ in files[start : start + HEADER_CHUNK]]
            sizes += list(pool.map(check_image_file, chunk))
            log.info("checked %d/%d image files", len(sizes), len(files))
    return pd.DataFrame(
        {
            "i": np.arange(len(files)),
            "path": [path.relative_to(raw).as_posix() for path, _ in files],
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
    check_output(raw, out, "imagenet", SPLITS)
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
        for split, files in zip(SPLITS, (train, val)):
            (tmp / split).mkdir()
            index_frame(raw, files, chosen, workers).to_parquet(tmp / split / INDEX, index=False)
        write_meta(
            tmp,
            type="imagenet",
            raw=str(raw.resolve()),
            classes=chosen,
            splits={"train": len(train), "val": len(val)},
            budget={
                "classes": classes,
                "images_per_class": images_per_class,
                "val_images_per_class": val_images_per_class,
            },
        )
    log.info("ImageNet indexed in %s: %d classes, %d train, %d val images", out, len(chosen), len(train), len(val))


def image_paths(prepared: Path, split: str, raw: Path | None = None) -> pd.DataFrame:
    """The index of a prepared ImageNet split with `path` made absolute.

    Paths are resolved against `raw` (the data's current location, e.g. from the config) or,
    when None, against the raw folder recorded in dataset.json at preparation time.
    """
    index = pd.read_parquet(Path(prepared) / split / INDEX)
    root = Path(raw) if raw is not None else Path(read_meta(prepared)["raw"])
    index["path"] = [str(root / path) for path in index["path"]]
    return index
