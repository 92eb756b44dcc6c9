"""Synthetic raw data: layouts, formats, label semantics, determinism and the CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medseg.synth import DATASETS, PRESETS, synthesize
from medseg.synth import cli as synth_cli

TINY = PRESETS["tiny"]
COVID = Path("covidqu", "Infection Segmentation Data", "Infection Segmentation Data")
IDRID_IMAGES = Path("idrid", "A. Segmentation", "1. Original Images")
IDRID_MASKS = Path("idrid", "A. Segmentation", "2. All Segmentation Groundtruths")


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("raw")
    synthesize(out, "tiny", seed=0)
    return out


def array(path: Path) -> np.ndarray:
    return np.asanyarray(nib.load(path).dataobj)


def read_info(folder: Path) -> dict[str, str]:
    return dict(line.split(": ") for line in (folder / "Info.cfg").read_text().splitlines())


def patients(raw: Path) -> list[Path]:
    return sorted((raw / "acdc").glob("*/patient*"))


def file_set(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def pixels(root: Path) -> dict[str, np.ndarray]:
    """Every file's decoded content, keyed by relative path."""
    content = {}
    for name in sorted(file_set(root)):
        path = root / name
        if name.endswith(".nii.gz"):
            content[name] = array(path)
        elif name.endswith((".png", ".jpg", ".JPEG", ".tif")):
            content[name] = np.asarray(Image.open(path))
        else:
            content[name] = np.frombuffer(path.read_bytes(), np.uint8)
    return content


def test_top_level_folders(raw: Path) -> None:
    assert sorted(p.name for p in raw.iterdir()) == sorted(DATASETS)


def test_acdc_patient_folders(raw: Path) -> None:
    training = sorted(p.name for p in (raw / "acdc" / "training").iterdir())
    testing = sorted(p.name for p in (raw / "acdc" / "testing").iterdir())
    assert training == [f"patient{n:03d}" for n in range(1, TINY.acdc_train + 1)]
    assert testing == [f"patient{n:03d}" for n in range(101, 101 + TINY.acdc_test)]


def test_acdc_info_cfg(raw: Path) -> None:
    for folder in patients(raw):
        lines = (folder / "Info.cfg").read_text().splitlines()
        assert [line.split(":")[0] for line in lines] == ["ED", "ES", "Group", "Height", "NbFrame", "Weight"]
        info = read_info(folder)
        frames = int(info["NbFrame"])
        assert TINY.acdc_frames[0] <= frames <= TINY.acdc_frames[1]
        assert info["ED"] == "1"
        assert 0.3 * frames <= int(info["ES"]) <= 0.6 * frames
        assert info["Group"] in {"NOR", "MINF", "DCM", "HCM", "RV"}
        for key in ("Height", "Weight"):
            assert len(info[key].split(".")[1]) == 1 and float(info[key]) > 0


def test_acdc_files_and_frames(raw: Path) -> None:
    for folder in patients(raw):
        info = read_info(folder)
        frames = [int(info["ED"]), int(info["ES"])]
        names = {f"{folder.name}_4d.nii.gz", "Info.cfg"}
        names |= {f"{folder.name}_frame{f:02d}{gt}.nii.gz" for f in frames for gt in ("", "_gt")}
        assert {p.name for p in folder.iterdir()} == names
        volume = array(folder / f"{folder.name}_4d.nii.gz")
        assert volume.dtype == np.int16 and volume.ndim == 4
        x, y, z, t = volume.shape
        assert TINY.acdc_side[0] <= min(x, y) and max(x, y) <= TINY.acdc_side[1]
        assert TINY.acdc_slices[0] <= z <= TINY.acdc_slices[1]
        assert t == int(info["NbFrame"])
        assert 0 <= volume.min() and volume.max() <= 1500
        for frame in frames:
            image = array(folder / f"{folder.name}_frame{frame:02d}.nii.gz")
            assert image.dtype == np.int16
            np.testing.assert_array_equal(image, volume[..., frame - 1])


def test_acdc_labels_and_zooms(raw: Path) -> None:
    for folder in patients(raw):
        info = read_info(folder)
        zooms = nib.load(folder / f"{folder.name}_4d.nii.gz").header.get_zooms()
        sx, sz = float(zooms[0]), float(zooms[2])
        assert zooms[1] == zooms[0] and float(zooms[3]) == 1.0
        assert 1.3 <= sx <= 1.8 and 5.0 <= sz <= 10.0
        labels = {}
        for phase in ("ED", "ES"):
            stem = f"{folder.name}_frame{int(info[phase]):02d}"
            gt_image = nib.load(folder / f"{stem}_gt.nii.gz")
            assert gt_image.header.get_zooms() == pytest.approx((sx, sx, sz))
            assert nib.load(folder / f"{stem}.nii.gz").header.get_zooms() == pytest.approx((sx, sx, sz))
            labels[phase] = np.asanyarray(gt_image.dataobj)
            assert labels[phase].dtype == np.uint8
            assert set(np.unique(labels[phase])) <= {0, 1, 2, 3}
        assert set(np.unique(labels["ED"])) == {0, 1, 2, 3}
        assert not np.array_equal(labels["ED"], labels["ES"])
        assert (labels["ES"] == 3).sum() < (labels["ED"] == 3).sum()


def test_acdc_image_follows_labels(raw: Path) -> None:
    folder = patients(raw)[0]
    image = array(folder / f"{folder.name}_frame01.nii.gz").astype(float)
    labels = array(folder / f"{folder.name}_frame01_gt.nii.gz")
    assert image[labels == 3].mean() > image[labels == 0].mean() > image[labels == 2].mean()


def test_covidqu_layout_and_masks(raw: Path) -> None:
    counts = dict(zip(("Train", "Val", "Test"), TINY.covid_per_split))
    prefixes = {"COVID-19": "covid", "Non-COVID": "non_covid", "Normal": "normal"}
    for split, covid_count in counts.items():
        for label, prefix in prefixes.items():
            count = covid_count if label == "COVID-19" else TINY.covid_other_per_split
            expected = {f"{prefix}_{k}.png" for k in range(1, count + 1)}
            for sub in ("images", "infection masks", "lung masks"):
                assert {p.name for p in (raw / COVID / split / label / sub).iterdir()} == expected
            for name in expected:
                image = Image.open(raw / COVID / split / label / "images" / name)
                assert image.mode == "L" and image.size == (TINY.covid_size, TINY.covid_size)
                lung = np.asarray(Image.open(raw / COVID / split / label / "lung masks" / name))
                infection = np.asarray(Image.open(raw / COVID / split / label / "infection masks" / name))
                for mask in (lung, infection):
                    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
                assert lung.any()
                assert infection.any() == (label == "COVID-19")
                assert not (infection & ~lung).any()


def test_idrid_layout(raw: Path) -> None:
    splits = {"a. Training Set": range(1, TINY.idrid_train + 1), "b. Testing Set": range(55, 55 + TINY.idrid_test)}
    for split, numbers in splits.items():
        assert {p.name for p in (raw / IDRID_IMAGES / split).iterdir()} == {f"IDRiD_{n:02d}.jpg" for n in numbers}
        mask_dir = raw / IDRID_MASKS / split / "1. Microaneurysms"
        assert {p.name for p in mask_dir.iterdir()} == {f"IDRiD_{n:02d}_MA.tif" for n in numbers}
        for n in numbers:
            image = Image.open(raw / IDRID_IMAGES / split / f"IDRiD_{n:02d}.jpg")
            assert image.format == "JPEG" and image.mode == "RGB" and image.size == TINY.idrid_size
            mask = Image.open(mask_dir / f"IDRiD_{n:02d}_MA.tif")
            assert mask.format == "TIFF" and mask.mode == "RGB" and mask.size == TINY.idrid_size
            colours = {tuple(c) for c in np.unique(np.asarray(mask).reshape(-1, 3), axis=0)}
            assert colours == {(0, 0, 0), (255, 0, 0)}
            assert (np.asarray(mask)[..., 0] == 255).sum() >= 3 * 5


def test_idrid_aspect() -> None:
    for preset in PRESETS.values():
        width, height = preset.idrid_size
        assert width * 2 == height * 3


def test_imagenet_layout(raw: Path) -> None:
    root = raw / "imagenet"
    synsets = sorted(p.name for p in (root / "train").iterdir())
    assert len(synsets) == TINY.imagenet_classes
    assert all(len(s) == 9 and s[0] == "n" and s[1:].isdigit() for s in synsets)
    for synset in synsets:
        names = {p.name for p in (root / "train" / synset).iterdir()}
        assert names == {f"{synset}_{k}.JPEG" for k in range(1, TINY.imagenet_train_per_class + 1)}
    lines = (root / "LOC_val_solution.csv").read_text().splitlines()
    assert lines[0] == "ImageId,PredictionString"
    solution = dict(line.split(",") for line in lines[1:])
    val = {p.stem for p in (root / "val").iterdir()}
    assert val == set(solution)
    assert len(val) == TINY.imagenet_classes * TINY.imagenet_val_per_class
    assert all(name.startswith("ILSVRC2012_val_") and len(name) == len("ILSVRC2012_val_") + 8 for name in val)
    classes_in_order = []
    for image_id in sorted(solution):
        synset, *box = solution[image_id].split()
        assert synset in synsets
        classes_in_order.append(synset)
        image = Image.open(root / "val" / f"{image_id}.JPEG")
        assert image.mode == "RGB"
        x_min, y_min, x_max, y_max = map(int, box)
        assert 0 <= x_min < x_max < image.size[0] and 0 <= y_min < y_max < image.size[1]
    assert classes_in_order != sorted(classes_in_order)
    assert {c: classes_in_order.count(c) for c in synsets} == dict.fromkeys(synsets, TINY.imagenet_val_per_class)


def test_imagenet_sizes_vary(raw: Path) -> None:
    sizes = {Image.open(p).size for p in (raw / "imagenet" / "train").rglob("*.JPEG")}
    assert len(sizes) > 1 and any(w != h for w, h in sizes)
    low, high = TINY.imagenet_side
    assert all(low <= w <= high and low <= h <= high for w, h in sizes)


def test_deterministic(raw: Path, tmp_path: Path) -> None:
    synthesize(tmp_path / "same", "tiny", seed=0)
    synthesize(tmp_path / "other", "tiny", seed=1)
    expected = pixels(raw)
    same = pixels(tmp_path / "same")
    assert same.keys() == expected.keys()
    for name, content in expected.items():
        np.testing.assert_array_equal(same[name], content, err_msg=name)
    for dataset in ("acdc", "covidqu", "idrid"):
        a = pixels(raw / dataset)
        b = pixels(tmp_path / "other" / dataset)
        shared = a.keys() & b.keys()
        assert shared and any(a[k].shape != b[k].shape or not np.array_equal(a[k], b[k]) for k in shared)
    assert file_set(raw / "imagenet" / "val") == file_set(tmp_path / "other" / "imagenet" / "val")
    assert file_set(raw / "imagenet" / "train") != file_set(tmp_path / "other" / "imagenet" / "train")


def test_only_writes_named_datasets(raw: Path, tmp_path: Path) -> None:
    synthesize(tmp_path, "tiny", only=["idrid", "covidqu"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["covidqu", "idrid"]
    for dataset in ("covidqu", "idrid"):
        assert file_set(tmp_path / dataset) == file_set(raw / dataset)


def test_rewrite_replaces_folder(tmp_path: Path) -> None:
    synthesize(tmp_path, "tiny", only=["imagenet"])
    (tmp_path / "imagenet" / "stale.txt").write_text("old")
    synthesize(tmp_path, "tiny", only=["imagenet"])
    assert not (tmp_path / "imagenet" / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["imagenet"]


def test_synth_parser(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    synth_cli.register(parser.add_subparsers())
    args = parser.parse_args(
        ["synth", "--out", str(tmp_path), "--preset", "tiny", "--only", "acdc", "--only", "idrid", "--seed", "3"]
    )
    assert (args.out, args.preset, args.only, args.seed) == (tmp_path, "tiny", ["acdc", "idrid"], 3)
    args.run(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acdc", "idrid"]
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "--out", str(tmp_path), "--only", "mnist"])


def test_medseg_main(tmp_path: Path) -> None:
    cli = pytest.importorskip("medseg.cli", reason="medseg.cli needs the other stages' modules", exc_type=ImportError)
    assert cli.main(["synth", "--out", str(tmp_path), "--preset", "tiny", "--only", "acdc"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["acdc"]
