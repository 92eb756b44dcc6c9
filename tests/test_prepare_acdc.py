import numpy as np
import pytest
from conftest import SIZE

from medseg.data.acdc import CLASSES, normalise, read_info
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
