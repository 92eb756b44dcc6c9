"""Image modes read right or refused, never silently corrupted: 16-bit, palette, alpha, bilevel."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import IDRID_GEOMETRY, SIZE
from PIL import Image

from medseg.data.covidqu import TOP, prepare_covidqu
from medseg.data.idrid import prepare_idrid
from medseg.data.readers import read_image
from medseg.data.store import open_split, read_meta
from medseg.errors import DataError


def as_16_bit(path) -> None:
    """Rewrite an 8-bit grey PNG as 16-bit with the same brightness (v * 257)."""
    values = np.asarray(Image.open(path).convert("L")).astype(np.uint16) * 257
    Image.fromarray(values).save(path)
    assert Image.open(path).mode == "I;16"


def test_16_bit_is_scaled_by_its_bit_depth(tmp_path):
    values = np.array([[0, 257, 32896, 65535, 128]], np.uint16)
    Image.fromarray(values).save(tmp_path / "x.png")
    assert read_image(tmp_path / "x.png", "L").tolist() == [[0, 1, 128, 255, 0]]
    assert read_image(tmp_path / "x.png", "RGB").shape == (1, 5, 3)


def test_float_image_is_refused(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "x.tif")
    with pytest.raises(DataError, match=f"{tmp_path / 'x.tif'}: 32-bit floating-point"):
        read_image(tmp_path / "x.tif", "L")


def test_16_bit_covid_images_equal_their_8_bit_originals(raw_copy, prepared, tmp_path):
    covid = raw_copy("covidqu")
    for path in (covid / TOP).rglob("COVID-19/images/*.png"):
        as_16_bit(path)
    prepare_covidqu(covid, tmp_path / "out", size=SIZE)
    for split in ("train", "test"):
        assert np.array_equal(
            open_split(tmp_path / "out" / split).images, open_split(prepared / "covidqu" / split).images
        )


def palette_red_first(image: Image.Image) -> Image.Image:
    """A palette mask whose entry 0 is red (lesion) and entry 1 black: indices invert the colours."""
    lesion = np.asarray(image.convert("L")) > 0
    palette = Image.fromarray(np.where(lesion, 0, 1).astype(np.uint8), mode="P")
    palette.putpalette([255, 0, 0, 0, 0, 0] + [0, 0, 0] * 254)
    return palette


MASK_MODES = {
    "L": lambda image: image.convert("L"),
    "1": lambda image: image.convert("L").point(lambda v: 255 if v else 0).convert("1"),
    "RGB": lambda image: image.convert("RGB"),
    "RGBA": lambda image: image.convert("RGB").convert("RGBA"),
    "LA": lambda image: image.convert("L").convert("LA"),
    "P": palette_red_first,
}


@pytest.mark.parametrize("mode", MASK_MODES)
def test_idrid_mask_modes(raw_copy, prepared, tmp_path, mode):
    idrid = raw_copy("idrid")
    for path in idrid.rglob("*_MA.tif"):
        converted = MASK_MODES[mode](Image.open(path))
        assert converted.mode == mode
        converted.save(path)
    prepare_idrid(idrid, tmp_path / "out", **IDRID_GEOMETRY)
    for split in ("train", "test"):
        assert np.array_equal(open_split(tmp_path / "out" / split).masks, open_split(prepared / "idrid" / split).masks)


def test_idrid_mask_of_unsupported_mode_is_refused(raw_copy, tmp_path):
    idrid = raw_copy("idrid")
    mask = sorted(idrid.rglob("*_MA.tif"))[0]
    Image.open(mask).convert("CMYK").save(mask)
    with pytest.raises(DataError, match=f"{mask}: lesion mask in image mode CMYK"):
        prepare_idrid(idrid, tmp_path / "out", **IDRID_GEOMETRY)


def test_dataset_json_records_image_dtype_and_range(prepared):
    acdc, covid = read_meta(prepared / "acdc"), read_meta(prepared / "covidqu")
    assert acdc["images"]["train"]["dtype"] == "float32" and acdc["images"]["train"]["value_range"] == [0.0, 1.0]
    assert covid["images"]["test"]["dtype"] == "uint8" and covid["images"]["test"]["value_range"] == [0, 255]
    assert covid["images"]["test"]["shape"] == list(open_split(prepared / "covidqu" / "test").images.shape)
    acdc_train = open_split(prepared / "acdc" / "train").images
    assert 0 <= acdc_train.min() and acdc_train.max() <= 1
