import re
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


def prepare(root, out, classes=("background", "lesion")):
    prepare_folder(root, out, list(classes), size=24)


def test_palette_masks_hold_class_ids_as_indices(folder_dataset, tmp_path):
    names = sorted(p.name for p in (folder_dataset / "masks").iterdir())
    labels = np.zeros((48, 48), np.uint8)
    labels[:16], labels[16:32] = 1, 2
    for name in names:
        mask = Image.fromarray(labels, mode="P")
        mask.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0] + [0, 0, 0] * 253)  # grey levels 0, 76, 150
        mask.save(folder_dataset / "masks" / name)
    prepare(folder_dataset, tmp_path / "out", ["background", "a", "b"])
    masks = open_split(tmp_path / "out" / "train").masks
    assert set(np.unique(masks)) == {0, 1, 2} and (masks[:, :8] == 1).all()


def test_colour_mask_is_refused_grey_rgb_mask_is_read(folder_dataset, tmp_path):
    mask = sorted((folder_dataset / "masks").iterdir())[0]
    Image.open(mask).convert("RGB").save(mask)  # grey saved as RGB: channels equal
    prepare(folder_dataset, tmp_path / "grey")
    rgb = np.zeros((48, 48, 3), np.uint8)
    rgb[:10, :, 0] = 255
    Image.fromarray(rgb).save(mask)
    with pytest.raises(DataError, match=f"{mask}: colour mask"):
        prepare(folder_dataset, tmp_path / "colour")


def test_mixed_grey_and_colour_images_are_stored_in_colour(folder_dataset, tmp_path):
    images = sorted((folder_dataset / "images").glob("Train_*"))
    colour = np.zeros((48, 48, 3), np.uint8)
    colour[..., 0] = 200
    Image.fromarray(colour).save(images[-1])  # grey images first, one colour image last
    prepare(folder_dataset, tmp_path / "out")
    assert read_meta(tmp_path / "out")["channels"] == 3
    train = open_split(tmp_path / "out" / "train")
    assert train.images.shape[-1] == 3
    row = train.index.set_index("source").loc[f"images/{images[-1].name}"]
    assert (train.images[row.image] == [200, 0, 0]).all()
    grey = train.images[0]
    assert (grey[..., 0] == grey[..., 1]).all() and (grey[..., 1] == grey[..., 2]).all() and grey.std() > 0


def test_16_bit_images_equal_their_8_bit_originals(folder_dataset, tmp_path):
    prepare(folder_dataset, tmp_path / "eight")
    for image in (folder_dataset / "images").iterdir():
        values = np.asarray(Image.open(image).convert("L")).astype(np.uint16) * 257
        Image.fromarray(values).save(image)
    prepare(folder_dataset, tmp_path / "sixteen")
    for split in ("train", "test"):
        assert np.array_equal(
            open_split(tmp_path / "eight" / split).images, open_split(tmp_path / "sixteen" / split).images
        )


@pytest.mark.parametrize(
    ("extra_row", "message"),
    [
        ("{test},train", "listed again, as train after test (test data would leak into training)"),
        ("{test},test", "listed again, as test after test"),
        ("{test},test,oops", "expected 2 fields (image,split), found 3"),
    ],
)
def test_bad_splits_rows(folder_dataset, tmp_path, extra_row, message):
    path = folder_dataset / "splits.csv"
    lines = path.read_text().splitlines()
    test_image = next(line.split(",")[0] for line in lines if line.endswith(",test"))
    lines.append(extra_row.format(test=test_image))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=re.escape(message.format(line=len(lines)))) as error:
        prepare(folder_dataset, tmp_path / "out")
    assert str(error.value).startswith(f"{path}, line {len(lines)}: ")
    assert not (tmp_path / "out").exists()


def test_non_utf8_splits_csv(folder_dataset, tmp_path, capsys):
    from medseg.cli import main

    path = folder_dataset / "splits.csv"
    path.write_bytes(path.read_bytes() + "caf\xe9.png,train\n".encode("latin-1"))
    line = path.read_bytes().count(b"\n")
    argv = [
        "prepare",
        "folder",
        "--raw",
        str(folder_dataset),
        "--out",
        str(tmp_path / "out"),
        "--classes",
        "background",
        "lesion",
    ]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1] == f"medseg: error: {path}, line {line}: not UTF-8 text; save the file as UTF-8"


def test_repeated_class_names_are_refused(folder_dataset, tmp_path):
    with pytest.raises(DataError, match="class names must be distinct, a appears more than once"):
        prepare(folder_dataset, tmp_path / "out", ["background", "a", "a"])
