import numpy as np
import pytest
from conftest import IDRID_GEOMETRY
from PIL import Image

from medseg.data.idrid import prepare_idrid
from medseg.data.store import open_split, read_meta, tiles, windows
from medseg.errors import DataError


def test_paper_geometry_counts():
    assert len(windows((1120, 2240), 448, 112)) == 7 * 17 == 119
    assert len(tiles((1120, 2240), 224)) == 50
    assert tiles((1120, 2240), 224)[-1] == (4, 9, 896, 2016)


def test_windows_and_tiles_per_image(raw, prepared):
    train = open_split(prepared / "idrid" / "train")
    test = open_split(prepared / "idrid" / "test")
    n_train = len(list((raw / "idrid").rglob("a. Training Set/IDRiD_*.jpg")))
    n_test = len(list((raw / "idrid").rglob("b. Testing Set/IDRiD_*.jpg")))
    assert train.images.shape == (n_train, 80, 160, 3) and train.images.dtype == np.uint8
    assert test.images.shape == (n_test, 80, 160, 3)
    assert (train.index.groupby("image_id").size() == 119).all() and len(train) == 119 * n_train
    assert (test.index.groupby("image_id").size() == 50).all() and len(test) == 50 * n_test
    assert (train.index.height == 32).all() and (test.index.width == 16).all()
    image, mask = train.sample(len(train) - 1)
    assert image.shape == (32, 32, 3) and mask.shape == (32, 32)
    # test tiles partition each image exactly: their pixel counts add up to the whole mask
    per_image = test.index.groupby("image").pixels_microaneurysm.sum()
    assert (per_image.to_numpy() == test.masks.reshape(n_test, -1).sum(axis=1)).all()
    assert read_meta(prepared / "idrid")["windows_per_train_image"] == 119


def test_every_microaneurysm_survives_resizing(raw, prepared):
    train = open_split(prepared / "idrid" / "train")
    assert set(np.unique(train.masks)) == {0, 1}
    masks = sorted((raw / "idrid").rglob("a. Training Set/1. Microaneurysms/*_MA.tif"))
    for k, path in enumerate(masks):
        source = np.asarray(Image.open(path)).max(axis=-1) > 0
        assert source.sum() >= 3
        # source row y lies under the last target row whose partition starts at or before y
        ys, xs = np.nonzero(source)
        ty = np.searchsorted((np.arange(80) * source.shape[0]) // 80, ys, side="right") - 1
        tx = np.searchsorted((np.arange(160) * source.shape[1]) // 160, xs, side="right") - 1
        assert train.masks[k][ty, tx].all()


def test_tile_must_divide_the_resized_image(raw, tmp_path):
    with pytest.raises(DataError, match="tile 15 does not divide"):
        prepare_idrid(raw / "idrid", tmp_path / "out", **{**IDRID_GEOMETRY, "tile": 15})
    assert not (tmp_path / "out").exists()
