import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medseg.data.covidqu import TOP
from medseg.data.folder import prepare_folder
from medseg.data.store import open_split, read_meta
from medseg.errors import DataError


@pytest.fixture
def folder_dataset(raw, tmp_path):
    """A folder dataset made from the synthetic COVID-19 X-rays (0/255 masks, as users often have)."""
    root = tmp_path / "mine"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rows = []
    for split, release in (("train", "Train"), ("test", "Test")):
        for image in sorted((raw / "covidqu" / TOP / release / "COVID-19" / "images").iterdir()):
            name = f"{release}_{image.name}"
            shutil.copy(image, root / "images" / name)
            shutil.copy(image.parent.parent / "infection masks" / image.name, root / "masks" / name)
            rows.append({"image": name, "split": split})
    pd.DataFrame(rows).to_csv(root / "splits.csv", index=False)
    return root


def test_folder_dataset(folder_dataset, tmp_path):
    prepare_folder(folder_dataset, tmp_path / "out", ["background", "lesion"], size=24)
    splits = pd.read_csv(folder_dataset / "splits.csv")
    train = open_split(tmp_path / "out" / "train")
    assert len(train) == (splits.split == "train").sum()
    assert train.images.shape[1:] == (24, 24, 1) and train.images.dtype == np.uint8
    assert set(np.unique(train.masks)) == {0, 1}
    assert "pixels_lesion" in train.index.columns
    assert read_meta(tmp_path / "out")["classes"] == ["background", "lesion"]


def test_folder_mask_values_outside_classes(folder_dataset, tmp_path):
    mask = sorted((folder_dataset / "masks").glob("Train_*"))[0]
    labels = np.zeros((48, 48), np.uint8)
    labels[:3] = 5
    Image.fromarray(labels).save(mask)
    with pytest.raises(DataError, match=f"{mask}: label values \\[5\\] are outside the dataset's classes 0-1"):
        prepare_folder(folder_dataset, tmp_path / "out", ["background", "lesion"], size=24)
    assert not (tmp_path / "out").exists()


def test_folder_needs_splits_csv(folder_dataset, tmp_path):
    (folder_dataset / "splits.csv").unlink()
    with pytest.raises(DataError, match="splits.csv is missing"):
        prepare_folder(folder_dataset, tmp_path / "out", ["background", "lesion"])


def test_folder_empty_splits_csv(folder_dataset, tmp_path):
    (folder_dataset / "splits.csv").write_text("image,split\n")
    with pytest.raises(DataError, match="splits.csv lists no images"):
        prepare_folder(folder_dataset, tmp_path / "out", ["background", "lesion"])
