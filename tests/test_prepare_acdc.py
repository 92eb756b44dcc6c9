"""`medseg prepare acdc`: the synthetic release end to end, and one hand-made patient worked out by hand."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conftest import SIZE

from medseg.data.acdc import CLASSES, normalise, prepare_acdc, read_info
from medseg.data.readers import read_nifti
from medseg.data.resize import resize_image, resize_labels
from medseg.data.store import open_split, read_meta


def patients(raw, folder):
    return sorted((raw / "acdc" / folder).iterdir())


@pytest.mark.parametrize(("split", "folder"), [("train", "training"), ("test", "testing")])
def test_counts_shapes_dtypes_ranges(raw, prepared, split, folder):
    data = open_split(prepared / "acdc" / split)
    expected = sum(2 * read_nifti(p / f"{p.name}_4d.nii.gz")[0].shape[2] for p in patients(raw, folder))
    assert len(data) == expected == data.images.shape[0]
    assert data.images.shape[1:] == (SIZE, SIZE, 1) and data.images.dtype == np.float32
    assert data.masks.shape == (expected, SIZE, SIZE) and data.masks.dtype == np.uint8
    assert 0.0 <= data.images.min() and data.images.max() <= 1.0
    assert set(np.unique(data.masks)) == {0, 1, 2, 3}
    assert set(data.index.patient) == {p.name for p in patients(raw, folder)}
    counts = data.index[[f"pixels_{c}" for c in CLASSES]].to_numpy()
    assert (counts.sum(axis=1) == SIZE * SIZE).all()
    assert read_meta(prepared / "acdc")["splits"][split] == expected


def test_slices_are_the_ed_and_es_frames_that_info_cfg_names(raw, prepared):
    data = open_split(prepared / "acdc" / "train")
    for patient in patients(raw, "training"):
        info = read_info(patient)
        volume_4d, _ = read_nifti(patient / f"{patient.name}_4d.nii.gz")
        for phase in ("ED", "ES"):
            frame = int(info[phase])
            rows = data.index[(data.index.patient == patient.name) & (data.index.frame == phase)]
            assert (rows.frame_number == frame).all()
            assert list(rows.slice) == list(range(volume_4d.shape[2]))
            expected = normalise(volume_4d[..., frame - 1])
            gt, _ = read_nifti(patient / f"{patient.name}_frame{frame:02d}_gt.nii.gz")
            for row in rows.itertuples():
                image, mask = data.sample(row.i)
                np.testing.assert_allclose(image[..., 0], resize_image(expected[:, :, row.slice], (SIZE, SIZE)))
                np.testing.assert_array_equal(mask, resize_labels(gt[:, :, row.slice].astype(np.uint8), (SIZE, SIZE)))


def test_ed_and_es_differ(prepared):
    data = open_split(prepared / "acdc" / "train")
    first = data.index.patient.iloc[0]
    ed = data.index[(data.index.patient == first) & (data.index.frame == "ED")].i
    es = data.index[(data.index.patient == first) & (data.index.frame == "ES")].i
    assert not np.array_equal(data.masks[ed.to_numpy()], data.masks[es.to_numpy()])


def test_normalise_clips_percentiles_to_unit_range():
    volume = np.arange(1000, dtype=np.int16).reshape(10, 10, 10)
    out = normalise(volume)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    # values below the 0.5th percentile (4.995) clip to 0; the middle maps linearly
    assert out.flat[0] == out.flat[4] == 0.0
    np.testing.assert_allclose(out.flat[500], (500 - 4.995) / (994.005 - 4.995), rtol=1e-5)
    assert (normalise(np.full((2, 2, 2), 7)) == 0).all()


def test_accepts_database_root(raw_copy, tmp_path):
    from medseg.data.acdc import find_root

    acdc = raw_copy("acdc")
    nested = tmp_path / "release"
    (nested / "database").mkdir(parents=True)
    acdc.rename(nested / "database" / "x")
    (nested / "database" / "x" / "training").rename(nested / "database" / "training")
    assert find_root(nested) == nested / "database"


# -- one hand-made patient, every prepared value worked out by hand ----------------------------


def stack(*slices: list[list[int]]) -> np.ndarray:
    """A volume (x, y, slice), as ACDC stores it, from its slices written as [x][y] lists."""
    return np.stack([np.array(s) for s in slices], axis=-1)


def write_patient(folder: Path, info: str, frames: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    """Info.cfg and, per frame number, patientNNN_frameXX.nii.gz (int16) with its _gt (uint8)."""
    folder.mkdir(parents=True)
    (folder / "Info.cfg").write_text(info)
    for frame, (image, labels) in frames.items():
        stem = folder / f"{folder.name}_frame{frame:02d}"
        nib.save(nib.Nifti1Image(image.astype(np.int16), np.eye(4)), f"{stem}.nii.gz")
        nib.save(nib.Nifti1Image(labels.astype(np.uint8), np.eye(4)), f"{stem}_gt.nii.gz")


# patient001's ED frame: 2 slices of 2 (x) x 4 (y) voxels. Its 16 intensities in order are
# -15, 185, 200, 300, 300, 400, 500, 500, 600, 600, 700, 700, 800, 815, 815, 1015; numpy's (linear)
# 0.5th and 99.5th percentiles lie at positions 0.005 * 15 = 0.075 and 0.995 * 15 = 14.925:
#   low = -15 + 0.075 * (185 - -15) = 0,  high = 815 + 0.925 * (1015 - 815) = 1000,
# so -15 clips to 0, 1015 clips to 1 and every other intensity v becomes v / 1000.
ED_IMAGE = stack(
    [[-15, 200, 400, 600], [185, 600, 800, 1015]],
    [[300, 500, 700, 815], [300, 500, 700, 815]],
)
# ES: ED reversed along y, doubled, plus 100. Normalised per frame volume (its own percentiles
# 2 * 0 + 100 = 100 and 2 * 1000 + 100 = 2100), it becomes ED's normalised values reversed along y.
ES_IMAGE = 2 * ED_IMAGE[:, ::-1] + 100
# fmt: off
ED_LABELS = stack(
    [[0, 1, 1, 0], [0, 2, 3, 2]],
    [[2, 3, 3, 2], [0, 0, 0, 0]],
)
ES_LABELS = stack(
    [[0, 1, 1, 1], [3, 3, 2, 0]],
    [[0, 0, 0, 0], [3, 2, 1, 0]],
)
# A slice is volume[:, :, z]: its rows are x, its columns y (no reorientation). --size 4 leaves the
# 4 columns and stretches the 2 rows to 4. Images, bilinear (PIL; output rows centred on input rows
# 0.25, 0.75, 1.25, 1.75, edges clamped): r0, (3 r0 + r1) / 4, (r0 + 3 r1) / 4, r1.
ED_EXPECTED = np.array([
    [[0,       0.2, 0.4, 0.6],
     [0.04625, 0.3, 0.5, 0.7],  # (3 * [0, 0.2, 0.4, 0.6] + [0.185, 0.6, 0.8, 1]) / 4 = [0.185, 1.2, 2, 2.8] / 4
     [0.13875, 0.5, 0.7, 0.9],  # ([0, 0.2, 0.4, 0.6] + 3 * [0.185, 0.6, 0.8, 1]) / 4 = [0.555, 2, 2.8, 3.6] / 4
     [0.185,   0.6, 0.8, 1]],
    [[0.3, 0.5, 0.7, 0.815]] * 4,  # equal rows stay equal
])
ES_EXPECTED = ED_EXPECTED[:, :, ::-1]  # see ES_IMAGE; reversing y commutes with stretching x
# Labels, nearest (those centres round down to input rows 0, 0, 1, 1): r0, r0, r1, r1.
ED_EXPECTED_MASKS = np.array([
    [[0, 1, 1, 0], [0, 1, 1, 0], [0, 2, 3, 2], [0, 2, 3, 2]],
    [[2, 3, 3, 2], [2, 3, 3, 2], [0, 0, 0, 0], [0, 0, 0, 0]],
])
ES_EXPECTED_MASKS = np.array([
    [[0, 1, 1, 1], [0, 1, 1, 1], [3, 3, 2, 0], [3, 3, 2, 0]],
    [[0, 0, 0, 0], [0, 0, 0, 0], [3, 2, 1, 0], [3, 2, 1, 0]],
])
# fmt: on


def test_a_hand_made_patient_prepares_to_hand_computed_values(tmp_path):
    raw = tmp_path / "raw"
    decoy = (np.full((2, 4, 2), 3000), np.full((2, 4, 2), 3))  # frame 2 is neither ED nor ES: never read
    write_patient(
        raw / "training" / "patient001",
        "ED: 1\nES: 3\nGroup: NOR\nNbFrame: 3\n",
        {1: (ED_IMAGE, ED_LABELS), 2: decoy, 3: (ES_IMAGE, ES_LABELS)},
    )
    # testing/ needs a patient too: a flat volume (high <= low) normalises to 0 everywhere.
    flat = np.full((2, 4, 1), 500)
    test_labels = stack([[0, 0, 1, 1], [2, 2, 3, 3]])
    write_patient(
        raw / "testing" / "patient101",
        "ED: 1\nES: 2\nGroup: DCM\n",
        {1: (flat, test_labels), 2: (flat, np.zeros((2, 4, 1)))},
    )
    prepare_acdc(raw, tmp_path / "acdc", size=4)

    train = open_split(tmp_path / "acdc" / "train")
    # ED then ES, slices in order; each slice one 4 x 4 image with one channel.
    assert train.images.shape == (4, 4, 4, 1) and train.images.dtype == np.float32
    expected = np.concatenate([ED_EXPECTED, ES_EXPECTED])
    np.testing.assert_allclose(train.images[..., 0], expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(train.masks, np.concatenate([ED_EXPECTED_MASKS, ES_EXPECTED_MASKS]))
    columns = ["i", "image", "y0", "x0", "height", "width", "patient", "group", "frame", "frame_number", "slice"]
    assert train.index[columns].values.tolist() == [
        [0, 0, 0, 0, 4, 4, "patient001", "NOR", "ED", 1, 0],
        [1, 1, 0, 0, 4, 4, "patient001", "NOR", "ED", 1, 1],
        [2, 2, 0, 0, 4, 4, "patient001", "NOR", "ES", 3, 0],
        [3, 3, 0, 0, 4, 4, "patient001", "NOR", "ES", 3, 1],
    ]
    assert train.index.source.tolist() == [f"training/patient001/patient001_frame0{f}.nii.gz" for f in (1, 1, 3, 3)]
    # pixels of background, RV, myocardium, LV in the four masks above
    counts = train.index[[f"pixels_{c}" for c in CLASSES]].values.tolist()
    assert counts == [[6, 4, 4, 2], [8, 0, 4, 4], [4, 6, 2, 4], [10, 2, 2, 2]]

    test = open_split(tmp_path / "acdc" / "test")
    assert (test.images == 0).all() and test.images.shape == (2, 4, 4, 1)
    np.testing.assert_array_equal(test.masks[0], [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])
    assert (test.masks[1] == 0).all()
    assert test.index.frame.tolist() == ["ED", "ES"] and test.index.frame_number.tolist() == [1, 2]
    meta = read_meta(tmp_path / "acdc")
    assert meta["splits"] == {"train": 4, "test": 2} and meta["size"] == [4, 4]
