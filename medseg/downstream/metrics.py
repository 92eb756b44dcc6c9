"""Test-set scores of a segmentation model (Appendix A.5): Dice, Jaccard, MCC, AP and HD95.

`SegmentationMetrics` is fed batches of (logits, class-id targets) and keeps only what the
scores need, so a whole test set never sits in memory:

- a confusion matrix over every test pixel, from the predictions of A.5 (argmax; sigmoid > 0.5
  for a one-channel binary model, see `medseg.downstream.loss`). Per class c, with TP, FP, FN,
  TN counted over the whole test set (not averaged per image):
  Dice (Eq. A.3) (2TP+1) / (2TP+FP+FN+1); Jaccard (TP+1) / (TP+FP+FN+1), the same +1
  stabilisation; MCC (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)), 0 when a factor of
  the denominator is 0 (scikit-learn's convention).
- per class, histograms of the pixels' scores for positive and negative pixels, for average
  precision (AP). The score is the class's exact log-odds log(p / (1 - p)) computed from the
  logits (z_c - logsumexp of the other logits; +-z for one channel), so confident pixels are
  not all rounded to p = 1 as float32 probabilities would be. AP_BINS equal bins over
  [-AP_LOG_ODDS, AP_LOG_ODDS] (beyond it: the end bins); AP is scikit-learn's step-wise
  sum over thresholds of (recall increase) x precision, computed exactly for the binned scores:
  the only approximation is that pixels in one bin (log-odds within 40/16384 = 0.0024 of each
  other, or both beyond +-20) count as tied, which scikit-learn also does for equal scores.
  Memory: 2 x AP_BINS counts per class. A class without any positive test pixel has AP 0
  (scikit-learn's value).
- per test sample (a slice, or an IDRiD tile) and foreground class, the Hausdorff distance's
  95th percentile in pixels, in two conventions. The surface of a mask is its pixels with a
  4-neighbour outside it or on the image border; each surface pixel's distance to the other
  mask's surface is Euclidean.
  `hd95`: the larger of the two directed 95th percentiles (MONAI's
  `compute_hausdorff_distance(percentile=95)`, DeepMind's `compute_robust_hausdorff`). Empty
  masks are scored, never dropped: prediction and truth both empty -> 0 (a correct "absent");
  exactly one empty -> the image diagonal sqrt(H^2 + W^2), more than any distance inside the
  image. A class's value is the mean over all test samples.
  `hd95_authors`: the 95th percentile of both directions' distances pooled (medpy's
  `metric.binary.hd95`, which the paper's authors used), and a sample where either mask is
  empty is skipped, as the authors' code does. A class's value is the mean over the samples
  not skipped (NaN when every sample was); `hd95_authors_skipped` counts the skipped samples.
  (The authors' code then averages per-batch means; here every scored sample weighs the same.)

`result()` gives the long `scores.parquet` table: columns metric (dice, jaccard, mcc, ap,
hd95, hd95_authors, hd95_authors_skipped), class (each class name, background included except
for the three HD95 metrics, and `mean` over the foreground classes: for a binary task the
foreground class itself, as A.5 takes; for hd95_authors over the classes that have a value),
value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from medseg.downstream.loss import num_classes_of, predict
from medseg.errors import MedsegError

if TYPE_CHECKING:
    import pandas as pd

METRICS = ("dice", "jaccard", "mcc", "ap", "hd95", "hd95_authors", "hd95_authors_skipped")
FOREGROUND_ONLY = ("hd95", "hd95_authors", "hd95_authors_skipped")
"""Metrics scored per foreground class only (the background has no outline of interest)."""
MEAN = "mean"
AP_BINS = 16384
AP_LOG_ODDS = 20.0  # float32 probabilities saturate at log-odds ~17; beyond 20 counts as tied
HD_PERCENTILE = 95


def dice_index(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Eq. A.3 per class: (2TP + 1) / (2TP + FP + FN + 1)."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    return (2 * tp + 1) / (2 * tp + fp + fn + 1)


def jaccard_index(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """Per class (TP + 1) / (TP + FP + FN + 1), stabilised like Eq. A.3."""
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    return (tp + 1) / (tp + fp + fn + 1)


def matthews(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    """Per-class Matthews correlation coefficient; 0 where the denominator is 0."""
    # float64: the products of test-set pixel counts (~1e8 each) overflow int64.
    tp, fp, fn, tn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn, tn))
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    numerator = tp * tn - fp * fn
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def average_precision(positives: np.ndarray, negatives: np.ndarray) -> float:
    """AP from score histograms (bins in increasing score): sum over thresholds of recall gain x precision."""
    positives = np.asarray(positives, dtype=np.float64)[::-1]  # highest scores first
    negatives = np.asarray(negatives, dtype=np.float64)[::-1]
    total = positives.sum()
    if total == 0:
        return 0.0
    tp, predicted = np.cumsum(positives), np.cumsum(positives + negatives)
    # Recall only grows in bins holding positives, where `predicted` > 0.
    gain = positives > 0
    return float(np.sum(positives[gain] / total * tp[gain] / predicted[gain]))


def surface(mask: np.ndarray) -> np.ndarray:
    """Pixels of a 2-D boolean mask with a 4-neighbour outside it or on the image border."""
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def surface_distances(prediction: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Distances of each prediction surface pixel to the truth's surface, and of each truth surface pixel to
    the prediction's; None when either 2-D boolean mask is empty."""
    if prediction.shape != truth.shape or prediction.ndim != 2:
        raise ValueError(f"expected two 2-D masks of one shape, got {prediction.shape} and {truth.shape}")
    if not prediction.any() or not truth.any():
        return None
    from scipy import ndimage

    # Only the bounding box of both masks, grown by one (empty) pixel where the image goes on,
    # matters: surfaces and distances in it are those of the whole image, at a fraction of the cost.
    union = prediction | truth
    rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
    box = (slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2))
    prediction, truth = prediction[box], truth[box]
    edge_prediction, edge_truth = surface(prediction), surface(truth)
    # distance_transform_edt gives each pixel's distance to the nearest zero: here to the other surface.
    to_truth = ndimage.distance_transform_edt(~edge_truth)[edge_prediction]
    to_prediction = ndimage.distance_transform_edt(~edge_prediction)[edge_truth]
    return to_truth, to_prediction


def directed_hd95(distances: tuple[np.ndarray, np.ndarray], percentile: float = HD_PERCENTILE) -> float:
    """MONAI's HD95 of `surface_distances`: the larger of the two directed percentiles."""
    return float(max(np.percentile(distances[0], percentile), np.percentile(distances[1], percentile)))


def pooled_hd95(distances: tuple[np.ndarray, np.ndarray], percentile: float = HD_PERCENTILE) -> float:
    """medpy's HD95 of `surface_distances`: the percentile of both directions' distances together."""
    return float(np.percentile(np.concatenate(distances), percentile))


def hd95(prediction: np.ndarray, truth: np.ndarray, percentile: float = HD_PERCENTILE) -> float:
    """HD95 in pixels of two 2-D boolean masks; both empty -> 0, one empty -> the image diagonal."""
    distances = surface_distances(prediction, truth)
    if distances is not None:
        return directed_hd95(distances, percentile)
    return 0.0 if not prediction.any() and not truth.any() else math.hypot(*prediction.shape)


def hd95_authors(prediction: np.ndarray, truth: np.ndarray, percentile: float = HD_PERCENTILE) -> float:
    """medpy's HD95 in pixels of two 2-D boolean masks; NaN when either is empty (the authors skip such samples)."""
    distances = surface_distances(prediction, truth)
    return math.nan if distances is None else pooled_hd95(distances, percentile)


def log_odds(logits: torch.Tensor) -> torch.Tensor:
    """B x (C+1) x H x W per-class log(p / (1 - p)) computed from the logits without rounding p."""
    logits = logits.float()
    if logits.shape[1] == 1:
        return torch.cat([-logits, logits], dim=1)
    channels = logits.shape[1]
    others = [torch.cat([logits[:, :c], logits[:, c + 1 :]], dim=1).logsumexp(dim=1) for c in range(channels)]
    return logits - torch.stack(others, dim=1)


class SegmentationMetrics:
    """Accumulates a test set's confusion counts, AP histograms and per-sample HD95 (see the module docstring)."""

    def __init__(self, class_names: Sequence[str], hd95: bool = True, ap_bins: int = AP_BINS) -> None:
        names = list(class_names)
        if len(names) < 2 or len(set(names)) != len(names) or MEAN in names:
            raise MedsegError(
                f"class names must be a background and at least one class, each once and none"
                f" called {MEAN!r}; got {names}"
            )
        self.class_names = names
        self.num_classes = len(names)
        self.with_hd95 = hd95
        self.ap_bins = ap_bins
        self.confusion: torch.Tensor | None = None  # [truth, prediction] pixel counts
        self.histograms: torch.Tensor | None = None  # [class, negative/positive, bin]
        self.hd95_values: list[list[float]] = [[] for _ in names[1:]]  # per foreground class, per sample
        self.hd95_authors_values: list[list[float]] = [[] for _ in names[1:]]  # per foreground class, scored samples
        self.hd95_authors_skipped = [0 for _ in names[1:]]  # per foreground class
        self.samples = 0

    @torch.no_grad()
    def update(self, logits: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: logits B x channels x H x W as the model gives them, target B x H x W class ids."""
        k = self.num_classes
        if num_classes_of(logits) != k:
            raise ValueError(f"logits with {logits.shape[1]} channel(s) do not fit {k} classes")
        if target.shape != (logits.shape[0], *logits.shape[2:]):
            raise ValueError(f"target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}")
        target = target.to(logits.device, torch.long)
        prediction = predict(logits)
        if self.confusion is None:
            self.confusion = torch.zeros(k * k, dtype=torch.long, device=logits.device)
            self.histograms = torch.zeros(k * 2 * self.ap_bins, dtype=torch.long, device=logits.device)
        self.confusion += torch.bincount((target * k + prediction).flatten(), minlength=k * k)

        scaled = (log_odds(logits) + AP_LOG_ODDS) * (self.ap_bins / (2 * AP_LOG_ODDS))
        # A NaN score (overflowing logits of a broken model) goes to the lowest bin: .long() of NaN
        # is a huge negative number that bincount refuses. ±inf are clamped to the end bins.
        bins = scaled.nan_to_num_(nan=0.0).floor().clamp_(0, self.ap_bins - 1).long()
        classes = torch.arange(k, device=logits.device).view(1, k, 1, 1)
        positive = (target[:, None] == classes).long()
        keys = (classes * 2 + positive) * self.ap_bins + bins
        self.histograms += torch.bincount(keys.flatten(), minlength=k * 2 * self.ap_bins)

        if self.with_hd95:
            self._add_hd95(prediction.cpu().numpy(), target.cpu().numpy())
        self.samples += logits.shape[0]

    def _add_hd95(self, predicted: np.ndarray, truth: np.ndarray) -> None:
        """Both HD95 conventions of every sample and foreground class, from one pair of distance transforms."""
        for b in range(predicted.shape[0]):
            for c in range(1, self.num_classes):
                mask, reference = predicted[b] == c, truth[b] == c
                distances = surface_distances(mask, reference)
                if distances is None:
                    self.hd95_values[c - 1].append(hd95(mask, reference))
                    self.hd95_authors_skipped[c - 1] += 1
                else:
                    self.hd95_values[c - 1].append(directed_hd95(distances))
                    self.hd95_authors_values[c - 1].append(pooled_hd95(distances))

    def counts(self) -> dict[str, np.ndarray]:
        """Per-class TP, FP, FN and TN over everything seen so far."""
        if self.confusion is None:
            raise MedsegError("no test samples were scored: the test split is empty")
        k = self.num_classes
        confusion = self.confusion.view(k, k).cpu().numpy()
        tp = np.diag(confusion)
        fp = confusion.sum(axis=0) - tp
        fn = confusion.sum(axis=1) - tp
        return {"tp": tp, "fp": fp, "fn": fn, "tn": confusion.sum() - tp - fp - fn}

    def scores(self) -> dict[str, np.ndarray]:
        """Per-metric arrays: one value per class (hd95: per foreground class)."""
        n = self.counts()
        histograms = self.histograms.view(self.num_classes, 2, self.ap_bins).cpu().numpy()
        values = {
            "dice": dice_index(n["tp"], n["fp"], n["fn"]),
            "jaccard": jaccard_index(n["tp"], n["fp"], n["fn"]),
            "mcc": matthews(n["tp"], n["fp"], n["fn"], n["tn"]),
            "ap": np.array([average_precision(h[1], h[0]) for h in histograms]),
        }
        if self.with_hd95:
            values["hd95"] = np.array([np.mean(v) for v in self.hd95_values])
            values["hd95_authors"] = np.array([np.mean(v) if v else math.nan for v in self.hd95_authors_values])
            values["hd95_authors_skipped"] = np.array(self.hd95_authors_skipped, dtype=np.float64)
        return values

    def result(self) -> pd.DataFrame:
        """The long table: metric, class, value; each metric's `mean` is over the foreground classes."""
        import pandas as pd

        rows = []
        for metric, values in self.scores().items():
            names = self.class_names[1:] if metric in FOREGROUND_ONLY else self.class_names
            foreground = values if metric in FOREGROUND_ONLY else values[1:]
            rows += [(metric, name, float(v)) for name, v in zip(names, values)]
            rows.append((metric, MEAN, _mean_of_known(foreground)))
        return pd.DataFrame(rows, columns=["metric", "class", "value"])


def _mean_of_known(values: np.ndarray) -> float:
    """Mean of the non-NaN values (a class whose every hd95_authors sample was skipped has none), NaN if none."""
    known = values[~np.isnan(values)]
    return float(np.mean(known)) if len(known) else math.nan
