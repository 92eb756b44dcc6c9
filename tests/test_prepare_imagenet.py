from pathlib import Path

import numpy as np
import pandas as pd

from medseg.data.imagenet import choose_classes, image_paths, prepare_imagenet
from medseg.data.store import INDEX, read_meta


def test_index_of_flat_val_layout(raw, prepared):
    train = pd.read_parquet(prepared / "imagenet" / "train" / INDEX)
    val = pd.read_parquet(prepared / "imagenet" / "val" / INDEX)
    synsets = sorted(p.name for p in (raw / "imagenet" / "train").iterdir())
    assert read_meta(prepared / "imagenet")["classes"] == synsets
    assert sorted(train.synset.unique()) == synsets
    assert (train.label == train.synset.map(synsets.index)).all()
    solution = pd.read_csv(raw / "imagenet" / "LOC_val_solution.csv")
    truth = dict(zip(solution.ImageId, solution.PredictionString.str.split().str[0]))
    assert len(val) == len(solution)
    assert all(truth[p.split("/")[-1].removesuffix(".JPEG")] == s for p, s in zip(val.path, val.synset))
    assert (train.width > 0).all() and (val.height > 0).all()
    assert list(train.i) == list(range(len(train)))


def test_index_paths_are_relative_to_the_raw_folder(raw, prepared, tmp_path):
    train = pd.read_parquet(prepared / "imagenet" / "train" / INDEX)
    assert all(not Path(p).is_absolute() and p.startswith("train/") for p in train.path)
    assert read_meta(prepared / "imagenet")["raw"] == str((raw / "imagenet").resolve())
    resolved = image_paths(prepared / "imagenet", "train")
    assert all(Path(p).is_file() for p in resolved.path)
    moved = image_paths(prepared / "imagenet", "val", raw=tmp_path / "elsewhere")
    assert moved.path.iloc[0].startswith(str(tmp_path / "elsewhere" / "val"))


def test_budget_and_foldered_val(raw_copy, tmp_path):
    imagenet = raw_copy("imagenet")
    # move the flat val images into class folders (the other accepted layout)
    solution = pd.read_csv(imagenet / "LOC_val_solution.csv")
    for image_id, prediction in zip(solution.ImageId, solution.PredictionString):
        folder = imagenet / "val" / prediction.split()[0]
        folder.mkdir(exist_ok=True)
        (imagenet / "val" / f"{image_id}.JPEG").rename(folder / f"{image_id}.JPEG")
    (imagenet / "LOC_val_solution.csv").unlink()
    prepare_imagenet(imagenet, tmp_path / "out", classes=2, images_per_class=3, val_images_per_class=1)
    train = pd.read_parquet(tmp_path / "out" / "train" / INDEX)
    val = pd.read_parquet(tmp_path / "out" / "val" / INDEX)
    synsets = sorted(p.name for p in (imagenet / "train").iterdir())
    assert sorted(train.synset.unique()) == [synsets[0], synsets[-1]]
    assert len(train) == 6 and len(val) == 2
    assert sorted(train.label.unique()) == [0, 1]


def test_choose_classes_spreads_evenly():
    names = [f"c{i:02d}" for i in range(10)]
    assert choose_classes(names, 3) == ["c00", "c04", "c09"]  # linspace 0, 4.5, 9 rounds half to even
    assert choose_classes(names, None) == names and choose_classes(names, 50) == names
    assert len(choose_classes(names, 7)) == 7
    assert np.all(np.diff([int(n[1:]) for n in choose_classes(names, 7)]) > 0)
