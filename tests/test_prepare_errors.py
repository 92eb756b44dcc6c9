"""Every bad input stops preparation with one message naming the file, and writes nothing."""

from __future__ import annotations

import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import IDRID_GEOMETRY
from PIL import Image

from medseg.data.acdc import prepare_acdc
from medseg.data.covidqu import TOP, prepare_covidqu
from medseg.data.idrid import prepare_idrid
from medseg.data.imagenet import prepare_imagenet
from medseg.errors import DataError


def first_patient(acdc: Path) -> Path:
    return sorted((acdc / "training").iterdir())[0]


def ed_files(patient: Path) -> tuple[Path, Path]:
    ed = int(re.search(r"ED: (\d+)", (patient / "Info.cfg").read_text()).group(1))
    stem = patient / f"{patient.name}_frame{ed:02d}"
    return Path(f"{stem}.nii.gz"), Path(f"{stem}_gt.nii.gz")


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def expect_error(prepare, raw: Path, out: Path, names: Path | str, **kwargs) -> None:
    with pytest.raises(DataError, match=re.escape(str(names))):
        prepare(raw, out, **kwargs)
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*")), "a temporary folder was left behind"


def test_acdc_truncated_nifti(raw_copy, tmp_path):
    acdc = raw_copy("acdc")
    image, _ = ed_files(first_patient(acdc))
    truncate(image)
    expect_error(prepare_acdc, acdc, tmp_path / "out", image, size=32)


def test_acdc_missing_info_cfg(raw_copy, tmp_path):
    acdc = raw_copy("acdc")
    info = first_patient(acdc) / "Info.cfg"
    info.unlink()
    expect_error(prepare_acdc, acdc, tmp_path / "out", info, size=32)


def test_acdc_info_names_a_missing_frame(raw_copy, tmp_path):
    acdc = raw_copy("acdc")
    patient = first_patient(acdc)
    info = patient / "Info.cfg"
    info.write_text(re.sub(r"ES: \d+", "ES: 99", info.read_text()))
    expect_error(prepare_acdc, acdc, tmp_path / "out", patient / f"{patient.name}_frame99.nii.gz", size=32)


def test_acdc_mask_shape_differs(raw_copy, tmp_path):
    acdc = raw_copy("acdc")
    _, gt = ed_files(first_patient(acdc))
    volume = nib.load(gt)
    nib.save(nib.Nifti1Image(np.asarray(volume.dataobj)[:-2], volume.affine), gt)
    expect_error(prepare_acdc, acdc, tmp_path / "out", gt, size=32)


def test_acdc_label_outside_classes(raw_copy, tmp_path):
    acdc = raw_copy("acdc")
    _, gt = ed_files(first_patient(acdc))
    volume = nib.load(gt)
    labels = np.asarray(volume.dataobj).copy()
    labels[0, 0, 0] = 7
    nib.save(nib.Nifti1Image(labels, volume.affine), gt)
    with pytest.raises(DataError, match=r"label values \[7\] are outside the ACDC classes 0-3"):
        prepare_acdc(acdc, tmp_path / "out", size=32)
    assert not (tmp_path / "out").exists()


def test_acdc_wrong_root(tmp_path):
    (tmp_path / "empty").mkdir()
    expect_error(prepare_acdc, tmp_path / "empty", tmp_path / "out", tmp_path / "empty" / "training")


def test_acdc_empty_split_folder(raw_copy, tmp_path):
    acdc = raw_copy("acdc")
    for patient in (acdc / "testing").iterdir():
        for f in patient.iterdir():
            f.unlink()
        patient.rmdir()
    expect_error(prepare_acdc, acdc, tmp_path / "out", acdc / "testing", size=32)


def test_covidqu_single_top_folder(raw_copy, tmp_path):
    covid = raw_copy("covidqu")
    inner = covid / TOP
    inner.rename(tmp_path / "inner")
    (covid / TOP.parent).rmdir()
    (tmp_path / "inner").rename(covid / TOP.parent)  # now only one 'Infection Segmentation Data'
    expect_error(prepare_covidqu, covid, tmp_path / "out", "Infection Segmentation Data/Infection Segmentation Data")


def test_covidqu_empty_images_folder(raw_copy, tmp_path):
    covid = raw_copy("covidqu")
    images = covid / TOP / "Val" / "COVID-19" / "images"
    for f in images.iterdir():
        f.unlink()
    expect_error(prepare_covidqu, covid, tmp_path / "out", images)


def test_covidqu_unreadable_png(raw_copy, tmp_path):
    covid = raw_copy("covidqu")
    png = sorted((covid / TOP / "Train" / "COVID-19" / "images").iterdir())[0]
    truncate(png)
    expect_error(prepare_covidqu, covid, tmp_path / "out", png)


def test_covidqu_mask_shape_differs(raw_copy, tmp_path):
    covid = raw_copy("covidqu")
    mask = sorted((covid / TOP / "Test" / "COVID-19" / "infection masks").iterdir())[0]
    Image.new("L", (10, 12)).save(mask)
    expect_error(prepare_covidqu, covid, tmp_path / "out", mask)


def test_covidqu_missing_mask(raw_copy, tmp_path):
    covid = raw_copy("covidqu")
    mask = sorted((covid / TOP / "Test" / "COVID-19" / "infection masks").iterdir())[0]
    mask.unlink()
    expect_error(prepare_covidqu, covid, tmp_path / "out", mask)


@pytest.mark.parametrize("damaged", ["jpg", "tif"])
def test_idrid_unreadable_image_or_mask(raw_copy, tmp_path, damaged):
    idrid = raw_copy("idrid")
    path = sorted(idrid.rglob(f"b. Testing Set/**/*.{damaged}"))[0]
    truncate(path)
    expect_error(prepare_idrid, idrid, tmp_path / "out", path, **IDRID_GEOMETRY)


def test_idrid_mask_shape_differs(raw_copy, tmp_path):
    idrid = raw_copy("idrid")
    mask = sorted(idrid.rglob("a. Training Set/1. Microaneurysms/*.tif"))[0]
    Image.new("RGB", (20, 30)).save(mask)
    expect_error(prepare_idrid, idrid, tmp_path / "out", mask, **IDRID_GEOMETRY)


def test_idrid_misnamed_folder(raw_copy, tmp_path):
    idrid = raw_copy("idrid")
    images = idrid / "A. Segmentation" / "1. Original Images"
    images.rename(images.with_name("Original Images"))
    expect_error(prepare_idrid, idrid, tmp_path / "out", images / "a. Training Set", **IDRID_GEOMETRY)


def test_imagenet_missing_train(tmp_path):
    (tmp_path / "imagenet").mkdir()
    expect_error(prepare_imagenet, tmp_path / "imagenet", tmp_path / "out", tmp_path / "imagenet" / "train")


def test_imagenet_unreadable_jpeg(raw_copy, tmp_path):
    imagenet = raw_copy("imagenet")
    jpeg = sorted((imagenet / "train").rglob("*.JPEG"))[0]
    jpeg.write_bytes(b"not a jpeg")
    expect_error(prepare_imagenet, imagenet, tmp_path / "out", jpeg)


def test_imagenet_flat_val_needs_solution(raw_copy, tmp_path):
    imagenet = raw_copy("imagenet")
    (imagenet / "LOC_val_solution.csv").unlink()
    expect_error(prepare_imagenet, imagenet, tmp_path / "out", imagenet / "LOC_val_solution.csv")


def test_cli_reports_one_line_naming_the_file(raw_copy, tmp_path, capsys):
    from medseg.cli import main

    acdc = raw_copy("acdc")
    info = first_patient(acdc) / "Info.cfg"
    info.unlink()
    assert main(["prepare", "acdc", "--raw", str(acdc), "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("medseg: error: ") and str(info) in message
    assert not (tmp_path / "out").exists()


def test_acdc_ed_equal_to_es(raw_copy, tmp_path):
    acdc = raw_copy("acdc")
    info = first_patient(acdc) / "Info.cfg"
    ed = re.search(r"ED: (\d+)", info.read_text()).group(1)
    info.write_text(re.sub(r"ES: \d+", f"ES: {ed}", info.read_text()))
    expect_error(prepare_acdc, acdc, tmp_path / "out", f"{info}: ED and ES are both frame {int(ed)}", size=32)


def test_imagenet_truncated_jpeg_is_refused_at_prepare_time(raw_copy, tmp_path):
    imagenet = raw_copy("imagenet")
    jpeg = sorted((imagenet / "train").rglob("*.JPEG"))[-1]
    data = jpeg.read_bytes()
    jpeg.write_bytes(data[: len(data) * 2 // 3])  # the header is intact, the end is missing
    expect_error(prepare_imagenet, imagenet, tmp_path / "out", f"{jpeg}: truncated JPEG file")


def test_imagenet_png_named_jpeg_and_padded_jpeg_are_accepted(raw_copy, tmp_path):
    imagenet = raw_copy("imagenet")
    first, second = sorted((imagenet / "train").rglob("*.JPEG"))[:2]
    Image.open(first).save(first, format="PNG")  # ImageNet really has a PNG named .JPEG
    second.write_bytes(second.read_bytes() + b"\0" * 10)
    prepare_imagenet(imagenet, tmp_path / "out")


def test_imagenet_empty_prediction_string(raw_copy, tmp_path, capsys):
    from medseg.cli import main

    imagenet = raw_copy("imagenet")
    solution = imagenet / "LOC_val_solution.csv"
    lines = solution.read_text().splitlines()
    image_id = lines[3].split(",")[0]
    lines[3] = f"{image_id},"
    solution.write_text("\n".join(lines) + "\n")
    assert main(["prepare", "imagenet", "--raw", str(imagenet), "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message == (
        f"medseg: error: {solution}, line 4: empty PredictionString for {image_id!r}; "
        "expected '<synset> x_min y_min x_max y_max ...'"
    )
    assert not (tmp_path / "out").exists()
