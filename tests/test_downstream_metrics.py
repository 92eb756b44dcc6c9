"""Tests of medseg.downstream.metrics: A.3 Dice, Jaccard, MCC, AP and HD95 against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medseg.downstream.metrics import (
    MEAN,
    SegmentationMetrics,
    average_precision,
    dice_index,
    hd95,
    hd95_authors,
    jaccard_index,
    log_odds,
    matthews,
)
from medseg.errors import MedsegError

# A hand-made confusion of one class: TP 10, FP 5, FN 3, TN 82 (100 pixels).
TP, FP, FN, TN = 10, 5, 3, 82


def test_dice_jaccard_mcc_on_a_hand_made_confusion():
    # Dice (A.3): (2*10 + 1) / (2*10 + 5 + 3 + 1) = 21 / 29
    assert dice_index([TP], [FP], [FN])[0] == pytest.approx(21 / 29)
    # Jaccard: (10 + 1) / (10 + 5 + 3 + 1) = 11 / 19
    assert jaccard_index([TP], [FP], [FN])[0] == pytest.approx(11 / 19)
    # MCC: (10*82 - 5*3) / sqrt(15 * 13 * 87 * 85) = 805 / sqrt(1442025) = 805 / 1200.8435 = 0.670362
    assert matthews([TP], [FP], [FN], [TN])[0] == pytest.approx(805 / math.sqrt(1442025))
    assert matthews([TP], [FP], [FN], [TN])[0] == pytest.approx(0.670362, abs=1e-6)
    # A class that is neither present nor predicted: Dice and Jaccard 1 (the +1s), MCC 0.
    assert dice_index([0], [0], [0])[0] == 1.0
    assert jaccard_index([0], [0], [0])[0] == 1.0
    assert matthews([0], [0], [0], [100])[0] == 0.0
    # Test-set sized counts do not overflow.
    big = 50_000_000
    assert matthews([big], [0], [0], [big])[0] == pytest.approx(1.0)


def _binary_logits(values: list[float]) -> torch.Tensor:
    return torch.tensor(values).view(1, 1, 1, -1)


def test_accumulated_confusion_and_long_table():
    # Binary task, two batches. Predictions: z > 0 is foreground.
    metrics = SegmentationMetrics(["background", "lesion"], hd95=False)
    metrics.update(_binary_logits([2.0, 1.0, -1.0, -2.0]), torch.tensor([[[1, 0, 1, 0]]]))
    metrics.update(_binary_logits([3.0, -3.0]), torch.tensor([[[1, 0]]]))
    counts = metrics.counts()
    # lesion: TP 2 (pixels 1, 5), FP 1 (pixel 2), FN 1 (pixel 3), TN 2
    assert counts["tp"].tolist() == [2, 2]
    assert counts["fp"].tolist() == [1, 1]
    assert counts["fn"].tolist() == [1, 1]
    assert counts["tn"].tolist() == [2, 2]
    table = metrics.result()
    assert list(table.columns) == ["metric", "class", "value"]
    assert set(table["metric"]) == {"dice", "jaccard", "mcc", "ap"}
    dice = table[table["metric"] == "dice"].set_index("class")["value"]
    assert dice["lesion"] == pytest.approx(5 / 7)  # (2*2 + 1) / (4 + 1 + 1 + 1)
    assert dice[MEAN] == dice["lesion"]  # binary: A.5 takes the foreground class


def test_multiclass_mean_is_over_foreground_only():
    # 1 x 3 x 1 x 3 logits predicting (0, 1, 2); truth (0, 1, 1).
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]]).T.reshape(1, 3, 1, 3)
    metrics = SegmentationMetrics(["bg", "a", "b"], hd95=False)
    metrics.update(logits, torch.tensor([[[0, 1, 1]]]))
    dice = metrics.scores()["dice"]
    # bg: TP 1 -> 3/3; a: TP 1, FN 1 -> 3/4; b: FP 1 -> 1/2
    np.testing.assert_allclose(dice, [1.0, 0.75, 0.5])
    table = metrics.result().set_index(["metric", "class"])["value"]
    assert table["dice", MEAN] == pytest.approx(0.625)


def test_average_precision_by_hand():
    # Scores (logits) 3, 2, 1, 0, -1 with truth 1, 0, 1, 1, 0.
    # Lesion, by decreasing score: + - + + -: precision at each positive 1/1, 2/3, 3/4
    #   AP = (1 + 2/3 + 3/4) / 3 = 29/36.
    # Background scores are -z: -3 -2 -1 0 1 with truth 0 1 0 0 1; decreasing: 1(+) 0(-) -1(-) -2(+) -3(-)
    #   AP = (1/1 + 2/4) / 2 = 3/4.
    metrics = SegmentationMetrics(["background", "lesion"], hd95=False)
    metrics.update(_binary_logits([3.0, 2.0, 1.0, 0.0, -1.0]), torch.tensor([[[1, 0, 1, 1, 0]]]))
    ap = metrics.scores()["ap"]
    assert ap[1] == pytest.approx(29 / 36)
    assert ap[0] == pytest.approx(3 / 4)
    # Ties count as one threshold (scikit-learn): scores 2, 2, 0 with truth 1, 0, 1:
    #   at 2: recall 1/2, precision 1/2; at 0: recall 1, precision 2/3 -> AP = 1/4 + 1/3.
    tied = SegmentationMetrics(["background", "lesion"], hd95=False)
    tied.update(_binary_logits([2.0, 2.0, 0.0]), torch.tensor([[[1, 0, 1]]]))
    assert tied.scores()["ap"][1] == pytest.approx(1 / 4 + 1 / 3)
    # Histograms directly (bins in increasing score): top bin 2 positives (recall 2/3 at
    # precision 1), then 1 negative, then 1 positive (recall +1/3 at precision 3/4). No positives -> 0.
    assert average_precision([1, 0, 2], [0, 1, 0]) == pytest.approx(2 / 3 * 1 + 1 / 3 * 3 / 4)
    assert average_precision([0, 0], [3, 1]) == 0.0


def _exact_ap(scores: np.ndarray, positive: np.ndarray) -> float:
    """AP of distinct scores by sorting: the mean over positives of the precision at their rank."""
    ranked = positive[np.argsort(-scores, kind="stable")]
    precision = np.cumsum(ranked) / np.arange(1, len(ranked) + 1)
    return float(precision[ranked].mean())


def test_binned_average_precision_is_close_to_exact():
    # 3 classes, 4000 pixels: AP from the histograms against AP from sorting the softmax
    # probabilities (same ranking as the log-odds); the binning only ties near-equal scores.
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (4, 1, 1000), generator=g)
    logits = torch.randn(4, 3, 1, 1000, generator=g) * 2 + F.one_hot(target, 3).permute(0, 3, 1, 2) * 1.5
    metrics = SegmentationMetrics(["bg", "a", "b"], hd95=False)
    metrics.update(logits[:2], target[:2])
    metrics.update(logits[2:], target[2:])
    p = torch.softmax(logits.double(), 1).numpy()
    for c, ap in enumerate(metrics.scores()["ap"]):
        exact = _exact_ap(p[:, c].ravel(), (target.numpy() == c).ravel())
        assert ap == pytest.approx(exact, abs=5e-4)  # 256 bins would be off by 4e-3


def test_log_odds_are_exact_where_probabilities_saturate():
    logits = torch.tensor([[0.3, -1.2, 2.0], [40.0, 0.0, 0.0]]).T.reshape(1, 3, 1, 2)
    odds = log_odds(logits)
    p = torch.softmax(logits.double(), 1)
    torch.testing.assert_close(odds[..., 0], torch.logit(p[..., 0]).float())
    # softmax rounds to p = 1 in float32 (logit inf); the log-odds stay finite and exact.
    assert odds[0, 0, 0, 1].item() == pytest.approx(40 - math.log(2))
    assert odds[0, 1, 0, 1].item() == pytest.approx(-math.log(math.exp(40) + 1))


def _surface_brute(mask: np.ndarray) -> np.ndarray:
    """Pixels of `mask` with a 4-neighbour outside it (the image border counts as outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _hd95_brute(prediction: np.ndarray, truth: np.ndarray) -> float:
    """HD95 by all pairwise distances between the two surfaces (no distance transform)."""
    a = np.argwhere(_surface_brute(prediction)).astype(float)
    b = np.argwhere(_surface_brute(truth)).astype(float)
    distances = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return max(np.percentile(distances.min(1), 95), np.percentile(distances.min(0), 95))


def test_hd95_by_hand():
    truth = np.zeros((10, 10), bool)
    prediction = np.zeros((10, 10), bool)
    truth[2, 2] = True
    prediction[2, 5] = True
    assert hd95(prediction, truth) == 3.0  # one surface pixel each, 3 apart
    truth[:] = False
    truth[2:6, 2:6] = True  # a 4 x 4 square
    prediction[:] = False
    prediction[2:6, 4:8] = True  # the same square 2 pixels to the right
    # Truth's 12 surface pixels (its ring) to the prediction's ring: rows 2 and 5 at columns 4-5
    # lie on it (0); row 2/5 column 3 and rows 3-4 column 5 are 1 away; column 2 (4 pixels) is
    # 2 away. Distances 0 x4, 1 x4, 2 x4 -> 95th percentile 2; the other direction is symmetric.
    assert hd95(prediction, truth) == pytest.approx(2.0)
    assert hd95(truth, truth) == 0.0


def test_hd95_matches_brute_force_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(30):
        shape = tuple(rng.integers(8, 40, size=2))
        # Blobs: random rectangles unioned, sometimes touching the image border.
        masks = []
        for _ in range(2):
            mask = np.zeros(shape, bool)
            for _ in range(rng.integers(1, 4)):
                y0, x0 = rng.integers(0, shape[0] - 2), rng.integers(0, shape[1] - 2)
                mask[y0 : y0 + rng.integers(1, 8), x0 : x0 + rng.integers(1, 8)] = True
            masks.append(mask)
        assert hd95(*masks) == pytest.approx(_hd95_brute(*masks), abs=1e-9)


def test_hd95_empty_masks_are_scored():
    empty = np.zeros((6, 8), bool)
    full = np.zeros((6, 8), bool)
    full[1:3, 1:3] = True
    assert hd95(empty, empty) == 0.0
    assert hd95(full, empty) == pytest.approx(10.0)  # diagonal of 6 x 8
    assert hd95(empty, full) == pytest.approx(10.0)
    # In the accumulator every sample counts: sample 1 has the class nowhere (0), sample 2 is a
    # false alarm (diagonal 10), sample 3 is exact (0): mean 10/3.
    metrics = SegmentationMetrics(["background", "lesion"])
    logits = torch.full((3, 1, 6, 8), -5.0)
    logits[1, 0, 1:3, 1:3] = 5.0
    logits[2, 0, 1:3, 1:3] = 5.0
    target = torch.zeros(3, 6, 8, dtype=torch.long)
    target[2, 1:3, 1:3] = 1
    metrics.update(logits, target)
    assert metrics.hd95_values == [[0.0, 10.0, 0.0]]
    table = metrics.result().set_index(["metric", "class"])["value"]
    assert table["hd95", "lesion"] == pytest.approx(10 / 3)
    assert table["hd95", MEAN] == pytest.approx(10 / 3)
    assert ("hd95", "background") not in table.index


def _line_and_pixel() -> tuple[np.ndarray, np.ndarray]:
    """A 3 x 12 image: prediction one pixel at (1, 5), truth the line of row 1, columns 5-9."""
    prediction, truth = np.zeros((3, 12), bool), np.zeros((3, 12), bool)
    prediction[1, 5] = True
    truth[1, 5:10] = True
    return prediction, truth


def test_hd95_authors_pools_both_directions_by_hand():
    # Every pixel of a one-pixel-thick line is surface. Prediction -> truth: [0]; truth ->
    # prediction: [0, 1, 2, 3, 4]. MONAI: max(0, 95th percentile of 0..4 = 0.95 * 4) = 3.8.
    # medpy: pooled [0, 0, 1, 2, 3, 4], rank 0.95 * 5 = 4.75 between 3 and 4 -> 3.75.
    prediction, truth = _line_and_pixel()
    assert hd95(prediction, truth) == pytest.approx(3.8)
    assert hd95_authors(prediction, truth) == pytest.approx(3.75)
    assert hd95_authors(truth, prediction) == pytest.approx(3.75)  # symmetric
    # Where they differ most: the truth has two far pixels (columns 38, 39) the prediction misses.
    # Truth -> prediction: 20 zeros, 19, 20: rank 0.95 * 21 = 19.95 -> 0 + 0.95 * 19 = 18.05.
    # Pooled with the prediction's 20 zeros: 40 zeros, 19, 20: rank 0.95 * 41 = 38.95 -> 0.
    prediction, truth = np.zeros((3, 40), bool), np.zeros((3, 40), bool)
    prediction[1, :20] = True
    truth[1, :20] = True
    truth[1, 38:] = True
    assert hd95(prediction, truth) == pytest.approx(18.05)
    assert hd95_authors(prediction, truth) == 0.0
    # Empty masks: not scored (NaN), where the MONAI convention gives 0 or the diagonal.
    empty = np.zeros((3, 40), bool)
    assert math.isnan(hd95_authors(empty, truth)) and math.isnan(hd95_authors(empty, empty))


def _one_hot_logits(prediction: np.ndarray, classes: int) -> torch.Tensor:
    """B x classes x H x W logits whose argmax is `prediction` (B x H x W class ids)."""
    return F.one_hot(torch.from_numpy(prediction), classes).permute(0, 3, 1, 2).float() * 5


def test_hd95_authors_skips_empty_samples_and_counts_them():
    # Three 3 x 12 samples, classes bg, a, b (hand-computed per sample, see the tests above):
    #   0: a absent from both (skipped; MONAI 0); b the pixel vs the line (MONAI 3.8, medpy 3.75)
    #   1: a predicted at (0, 0) only (skipped; MONAI the diagonal sqrt(3^2 + 12^2) = sqrt(153));
    #      b exact (0, 0)
    #   2: a and b absent from both (skipped; MONAI 0)
    prediction, truth = np.zeros((3, 3, 12), np.int64), np.zeros((3, 3, 12), np.int64)
    pixel, line = _line_and_pixel()
    prediction[0][pixel], truth[0][line] = 2, 2
    prediction[1][line], truth[1][line] = 2, 2
    prediction[1, 0, 0] = 1
    metrics = SegmentationMetrics(["bg", "a", "b"])
    metrics.update(_one_hot_logits(prediction, 3), torch.from_numpy(truth))
    table = metrics.result().set_index(["metric", "class"])["value"]
    assert table["hd95", "a"] == pytest.approx(math.sqrt(153) / 3)
    assert table["hd95", "b"] == pytest.approx(3.8 / 3)
    assert table["hd95", MEAN] == pytest.approx((math.sqrt(153) / 3 + 3.8 / 3) / 2)
    assert math.isnan(table["hd95_authors", "a"])  # every sample skipped
    assert table["hd95_authors", "b"] == pytest.approx((3.75 + 0) / 2)
    assert table["hd95_authors", MEAN] == pytest.approx(1.875)  # over the classes with a value
    assert (table["hd95_authors_skipped", "a"], table["hd95_authors_skipped", "b"]) == (3, 1)
    assert table["hd95_authors_skipped", MEAN] == 2
    assert ("hd95_authors", "bg") not in table.index and ("hd95_authors_skipped", "bg") not in table.index
    # Every class skipped everywhere: NaN, also as the mean.
    nothing = SegmentationMetrics(["bg", "a"])
    nothing.update(torch.full((2, 1, 4, 4), -5.0), torch.zeros(2, 4, 4, dtype=torch.long))
    table = nothing.result().set_index(["metric", "class"])["value"]
    assert math.isnan(table["hd95_authors", "a"]) and math.isnan(table["hd95_authors", MEAN])
    assert table["hd95_authors_skipped", MEAN] == 2 and table["hd95", MEAN] == 0.0


def test_hd95_authors_equals_medpy_on_random_masks():
    medpy = pytest.importorskip("medpy.metric.binary")  # optional: `pip install medpy`
    rng = np.random.default_rng(1)
    for _ in range(30):
        shape = tuple(rng.integers(8, 40, size=2))
        masks = []
        for _ in range(2):  # random rectangles unioned, sometimes touching the image border
            mask = np.zeros(shape, bool)
            for _ in range(rng.integers(1, 4)):
                y0, x0 = rng.integers(0, shape[0] - 2), rng.integers(0, shape[1] - 2)
                mask[y0 : y0 + rng.integers(1, 8), x0 : x0 + rng.integers(1, 8)] = True
            masks.append(mask)
        assert hd95_authors(*masks) == pytest.approx(medpy.hd95(*masks), abs=1e-9)
    prediction, truth = _line_and_pixel()
    assert medpy.hd95(prediction, truth) == pytest.approx(3.75)  # the hand-worked case above


@pytest.mark.parametrize("channels", [1, 3])
def test_non_finite_logits_are_scored_without_crashing(channels):
    # A broken model's logits (NaN, ±inf) must still give a table, not a bincount traceback.
    names = ["bg", "a", "b"][: max(channels, 2)]
    logits = torch.zeros(2, channels, 4, 4)
    logits[0, 0, :2] = math.nan
    logits[1, 0, 2:] = math.inf
    logits[1, -1, :1] = -math.inf
    metrics = SegmentationMetrics(names)
    metrics.update(logits, torch.zeros(2, 4, 4, dtype=torch.long))
    table = metrics.result()
    assert np.isfinite(table[table.metric.isin(["dice", "jaccard", "mcc", "ap", "hd95"])].value).all()
    assert int(metrics.histograms.sum()) == 2 * 16 * len(names)  # every pixel binned once per class


def test_errors():
    with pytest.raises(MedsegError, match="class names"):
        SegmentationMetrics(["background"])
    with pytest.raises(MedsegError, match="class names"):
        SegmentationMetrics(["background", MEAN])
    with pytest.raises(MedsegError, match="no test samples"):
        SegmentationMetrics(["background", "lesion"]).result()
    metrics = SegmentationMetrics(["bg", "a", "b"])
    with pytest.raises(ValueError, match="channel"):
        metrics.update(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
