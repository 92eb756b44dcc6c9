"""COVID-QU-Ex (chest X-ray PNGs): the COVID-19 infection-segmentation subset."""

from __future__ import annotations

import logging
from pathlib import Path

from medseg.data.output import write_prepared
from medseg.data.readers import check_same_shape, list_files, read_image, read_label_map
from medseg.data.resize import resize_image, resize_labels
from medseg.data.store import full_image_row
from medseg.errors import DataError

log = logging.getLogger(__name__)

CLASSES = ["background", "infection"]
# The Kaggle release really nests the top folder twice.
TOP = Path("Infection Segmentation Data") / "Infection Segmentation Data"
SPLITS = {"train": ("Train", "Val"), "test": ("Test",)}
SUBSET = "COVID-19"


def find_root(raw: Path) -> Path:
    root = raw / TOP
    if root.is_dir():
        return root
    hint = ""
    if (raw / "Train").is_dir() or (raw / "Infection Segmentation Data" / "Train").is_dir():
        hint = "; --raw points inside the release, give the folder that contains 'Infection Segmentation Data'"
    raise DataError(f"{raw}: expected the doubled top folder '{TOP}' of the COVID-QU-Ex release here{hint}")


def prepare_split(root: Path, raw: Path, release_splits: tuple[str, ...], size: int) -> tuple[list, list, list]:
    images, masks, rows = [], [], []
    for release_split in release_splits:
        subset = root / release_split / SUBSET
        image_paths = list_files(subset / "images", (".png",), f"the {release_split} {SUBSET} images")
        for image_path in image_paths:
            mask_path = subset / "infection masks" / image_path.name
            if not mask_path.is_file():
                raise DataError(f"{mask_path}: infection mask of {image_path} is missing")
            image = read_image(image_path, "L")
            infection = read_label_map(mask_path) > 0
            check_same_shape(image, image_path, infection, mask_path)
            images.append(resize_image(image, (size, size)))
            masks.append(resize_labels(infection.astype("uint8"), (size, size)))
            rows.append(
                full_image_row(
                    len(rows),
                    (size, size),
                    source=str(image_path.relative_to(raw)),
                    image_id=image_path.stem,
                    release_split=release_split,
                )
            )
        log.info("%s/%s: %d images", release_split, SUBSET, len(image_paths))
    return images, masks, rows


def prepare_covidqu(raw: Path, out: Path, size: int = 256) -> None:
    """Write train (Train + Val) and test (Test) images of size x size with binary masks."""
    root = find_root(raw)
    counts = write_prepared(
        raw,
        out,
        SPLITS,
        lambda split: prepare_split(root, raw, SPLITS[split], size),
        CLASSES,
        type="covidqu",
        channels=1,
        size=[size, size],
        masks="infection masks binarised: non-zero -> 1",
    )
    log.info("COVID-QU-Ex prepared in %s: %s images", out, counts)
