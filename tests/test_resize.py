import numpy as np

from medseg.data.resize import resize_image, resize_labels, resize_labels_max


def test_labels_keep_their_class_ids():
    labels = np.zeros((37, 53), np.uint8)
    labels[5:20, 7:30] = 1
    labels[10:15, 10:12] = 3
    out = resize_labels(labels, (16, 16))
    assert out.dtype == np.uint8
    assert set(np.unique(out)) <= {0, 1, 3}
    assert resize_labels(labels, (100, 80)).shape == (100, 80)


def test_max_resize_keeps_single_pixel_lesions():
    # 6 isolated one-pixel lesions; nearest sampling at a 3x shrink would miss most of them.
    mask = np.zeros((90, 120), np.uint8)
    points = [(1, 1), (44, 58), (88, 2), (2, 119), (89, 119), (46, 61)]
    for y, x in points:
        mask[y, x] = 1
    out = resize_labels_max(mask, (30, 40))
    assert out.sum() == len(points)
    # pixel (y, x) lands under target (y // 3, x // 3) for an exact factor 3
    assert {tuple(p) for p in np.argwhere(out)} == {(y // 3, x // 3) for y, x in points}


def test_max_resize_hand_computed_non_integer_factor():
    # 5 source rows onto 2 target rows: rows 0-1 -> 0 (starts floor(0*5/2)=0, floor(1*5/2)=2), 2-4 -> 1
    mask = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0], [0, 0, 0]], np.uint8)
    out = resize_labels_max(mask, (2, 3))
    np.testing.assert_array_equal(out, [[0, 0, 0], [0, 1, 0]])


def test_max_resize_enlarging_is_nearest():
    mask = np.array([[0, 1], [1, 0]], np.uint8)
    np.testing.assert_array_equal(
        resize_labels_max(mask, (4, 4)), [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]]
    )


def test_bilinear_float_image_stays_in_range_and_averages():
    image = np.zeros((4, 4), np.float32)
    image[:, 2:] = 1.0
    out = resize_image(image, (2, 2))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0, 1], [0, 1]], atol=0.2)
    assert out.min() >= 0 and out.max() <= 1
    uint8 = resize_image((image * 255).astype(np.uint8), (8, 8))
    assert uint8.dtype == np.uint8 and uint8.shape == (8, 8)
