"""Tests of medseg.inputs: input sizes, IDRiD tiles of the training images, pixels and normalisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from medseg.data.store import open_split, read_meta
from medseg.errors import DataError
from medseg.inputs import WINDOW_COLUMNS, input_size, normalise, read_windows, scoring_windows, to_pixels, value_scale


def test_input_size_is_the_tile_for_idrid_only(prepared):
    assert input_size(read_meta(prepared / "acdc"), 64) == 64
    assert input_size(read_meta(prepared / "covidqu"), 224) == 224
    idrid = read_meta(prepared / "idrid")
    assert input_size(idrid, 64) == idrid["test_tile"] == 16


def test_value_scale_follows_the_stored_range(prepared):
    assert value_scale(read_meta(prepared / "acdc"), "train") == 1.0  # float32 in [0, 1]
    assert value_scale(read_meta(prepared / "covidqu"), "train") == 255.0
    with pytest.raises(DataError, match="value range"):
        value_scale({"images": {"train": {"value_range": [-1, 1]}}}, "train")


@pytest.mark.parametrize("name", ["acdc", "covidqu"])
def test_whole_image_datasets_score_their_index_rows(prepared, name):
    windows = scoring_windows(prepared / name, "train")
    index = pd.read_parquet(prepared / name / "train" / "index.parquet")
    pd.testing.assert_frame_equal(windows, index[WINDOW_COLUMNS])


def test_idrid_training_images_are_cut_like_the_test_split(prepared):
    meta = read_meta(prepared / "idrid")
    windows = scoring_windows(prepared / "idrid", "train")
    n_images = meta["images"]["train"]["shape"][0]
    tile = meta["test_tile"]
    assert len(windows) == n_images * meta["tiles_per_test_image"]
    assert (windows.height == tile).all() and (windows.width == tile).all()
    # Image by image, in the test split's tile order (rows, then columns).
    assert windows.image.tolist() == sorted(windows.image.tolist())
    test = pd.read_parquet(prepared / "idrid" / "test" / "index.parquet")
    first_test_image = test[test.image == 0]
    for image in range(n_images):
        mine = windows[windows.image == image].reset_index(drop=True)
        assert mine[["y0", "x0", "height", "width"]].equals(
            first_test_image[["y0", "x0", "height", "width"]].reset_index(drop=True)
        )
        assert mine.tile_row.tolist() == first_test_image.window_row.tolist()
        assert mine.tile_col.tolist() == first_test_image.window_col.tolist()
    # The tiles partition each image.
    height, width = meta["size"]
    covered = np.zeros((height, width), dtype=int)
    for row in windows[windows.image == 0].itertuples():
        covered[row.y0 : row.y0 + row.height, row.x0 : row.x0 + row.width] += 1
    assert (covered == 1).all()


def test_read_windows_returns_the_stored_crops(prepared):
    split = open_split(prepared / "idrid" / "train")
    windows = scoring_windows(prepared / "idrid", "train").iloc[[0, 7, 63]]
    crops = read_windows(split, windows)
    assert crops.shape == (3, 16, 16, 3) and crops.dtype == np.uint8
    row = windows.iloc[1]
    np.testing.assert_array_equal(crops[1], split.images[row.image, row.y0 : row.y0 + 16, row.x0 : row.x0 + 16])


def test_grey_images_are_repeated_and_scaled():
    grey = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1) * 7
    x = to_pixels(grey, 4, 255.0)
    assert x.shape == (2, 3, 4, 4) and x.dtype == torch.float32
    for channel in range(3):
        torch.testing.assert_close(x[:, channel], torch.from_numpy(grey[..., 0]).float() / 255)


def test_resizing_is_bilinear_and_stays_in_range():
    rgb = np.random.default_rng(0).integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
    x = to_pixels(rgb, 6, 255.0)
    expected = F.interpolate(
        torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255,
        size=(6, 6),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )
    torch.testing.assert_close(x, expected)
    assert x.min() >= 0 and x.max() <= 1
    same = to_pixels(rgb, 8, 255.0)  # no resizing at the stored size
    torch.testing.assert_close(same, torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 255)


def test_float_images_keep_their_values(prepared):
    split = open_split(prepared / "acdc" / "train")
    x = to_pixels(split.images[:2], 32, 1.0)
    torch.testing.assert_close(x[:, 1], torch.from_numpy(np.array(split.images[:2, ..., 0])))


def test_normalisation_is_pretraining_s():
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    torch.testing.assert_close(normalise(mean), torch.zeros(1, 3, 2, 2))
    ones = normalise(torch.ones(1, 3, 1, 1)).flatten()
    expected = (1 - torch.tensor(IMAGENET_DEFAULT_MEAN)) / torch.tensor(IMAGENET_DEFAULT_STD)
    torch.testing.assert_close(ones, expected)


def test_normalisation_constants_are_timms():
    from medseg import inputs

    assert inputs.IMAGENET_DEFAULT_MEAN == IMAGENET_DEFAULT_MEAN
    assert inputs.IMAGENET_DEFAULT_STD == IMAGENET_DEFAULT_STD
