import numpy as np
from conftest import SIZE

from medseg.data.covidqu import TOP
from medseg.data.store import open_split, read_meta


def test_covid_subset_splits(raw, prepared):
    root = raw / "covidqu" / TOP
    count = {s: len(list((root / s / "COVID-19" / "images").glob("*.png"))) for s in ("Train", "Val", "Test")}
    train = open_split(prepared / "covidqu" / "train")
    test = open_split(prepared / "covidqu" / "test")
    assert len(train) == count["Train"] + count["Val"]
    assert len(test) == count["Test"]
    assert set(train.index.release_split) == {"Train", "Val"} and set(test.index.release_split) == {"Test"}
    assert all("COVID-19" in source for source in train.index.source)
    assert read_meta(prepared / "covidqu")["splits"] == {"train": len(train), "test": len(test)}


def test_shapes_dtypes_and_binary_masks(prepared):
    data = open_split(prepared / "covidqu" / "train")
    assert data.images.shape[1:] == (SIZE, SIZE, 1) and data.images.dtype == np.uint8
    assert data.masks.shape[1:] == (SIZE, SIZE) and data.masks.dtype == np.uint8
    assert set(np.unique(data.masks)) == {0, 1}
    assert (data.index.pixels_infection > 0).all()
    assert (data.index.pixels_background + data.index.pixels_infection == SIZE * SIZE).all()
