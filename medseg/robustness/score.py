"""Robustness of one encoder on one prepared dataset (paper Eq. 3, Appendix A.6), every variant at once.

Every sample of the split is jittered twice by Algorithm 3 (`medseg.jitter`, factors per image):
view 1 is the query q̃ᵢ, view 2 the positive key kᵢ⁺ of its own sample and the negative key of the
sample whose query is paired with it by a seeded random derangement (no sample is its own
negative). The jitter factors and the derangement depend on the seed and the number of samples
only, so every encoder scored with the same seed sees exactly the same views and negatives.

Each sample's two views go through the encoder once each (eval mode, no gradients, batched,
float32); every variant (distance x margin x level x pooled) comes from those two passes.
Distances are float64 per sample and averaged in sample order, but the encoder's float32 output
for one image can differ in its last bits with the batch shape (other kernels), so the batch
size changes results in rounding only (tests/test_robustness_cli.py checks 1e-5 on its data).

Streaming: only per-sample distances are kept, never all features (unless saving them). A
sample's negative key is usually in another batch, so samples are processed along the cycles of
the derangement (i, neg(i), neg(neg(i)), ...): the negative key of each query is then in the same
batch or the next one, except at the end of a cycle, whose negative is the cycle's first key.
`_NegativePairs` pairs queries and keys as they arrive and holds only the ones still waiting, so
memory is one batch of features plus at most two held samples, whatever the dataset size.

RankMe (Garrido et al., ICML 2023), the second label-free indicator, needs a third pass over the
unjittered samples (`rankme_pass`, only when asked for): it keeps the pooled features of every
level, N x C per level, and takes their effective rank (`rankme`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medseg.data.store import Split, open_split, read_segmentation_meta
from medseg.devices import pick_device
from medseg.errors import MedsegError
from medseg.inputs import input_size, normalise, read_windows, scoring_windows, to_pixels, value_scale
from medseg.jitter import JitterFactors, apply_jitter, draw_factors
from medseg.models.encoder import Encoder
from medseg.models.encoder_file import EncoderFile, inspect, load, resolve_image_size
from medseg.names import LEVELS, POOLINGS
from medseg.paper import MARGINS
from medseg.robustness.distances import DISTANCES, robustness
from medseg.robustness.features import REPRESENTATIONS, feature_name, representations

log = logging.getLogger(__name__)

COLUMNS = ["distance", "margin", "level", "pooled", "robustness", "hinge_mean", "n_images", "seconds"]
RANKME_COLUMNS = ["level", "rankme", "n_images", "n_features", "seconds"]
RANKME_EPS = 1e-7  # the paper's epsilon
DEFAULT_BATCH = 32
DEFAULT_SPLIT = "train"
# Independent random streams derived from the one seed.
_JITTER_STREAM, _NEGATIVE_STREAM = range(2)

Key = tuple[str, str, str]  # (level, pooling, distance)


def derangement(n: int, seed: int) -> np.ndarray:
    """A uniformly random permutation of range(n) without fixed points, the same for the same (n, seed)."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 elements, got {n}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, _NEGATIVE_STREAM]))
    identity = np.arange(n)
    while True:  # about e tries on average
        permutation = rng.permutation(n)
        if not np.any(permutation == identity):
            return permutation


def cycle_order(permutation: np.ndarray) -> np.ndarray:
    """Every index once, cycle by cycle: i, p[i], p[p[i]], ... (each cycle from its smallest index)."""
    seen = np.zeros(len(permutation), dtype=bool)
    order = []
    for start in range(len(permutation)):
        i = start
        while not seen[i]:
            seen[i] = True
            order.append(i)
            i = int(permutation[i])
    return np.asarray(order, dtype=np.int64)


def jitter_factors(n: int, seed: int) -> tuple[JitterFactors, JitterFactors]:
    """The Algorithm 3 factors of the query views and of the key views of n samples."""
    generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, _JITTER_STREAM]).generate_state(1)[0]))
    return draw_factors(n, generator), draw_factors(n, generator)


class _NegativePairs:
    """Pairs query i with key negative[i] as soon as both have been seen; holds only the waiting ones."""

    def __init__(self, negative: np.ndarray) -> None:
        self.negative = negative
        self.query_of_key = np.argsort(negative)  # the inverse permutation: key j is query_of_key[j]'s negative
        self.queries: dict[int, dict] = {}  # queries whose negative key has not come yet
        self.keys: dict[int, dict] = {}  # keys whose query has not come yet

    @property
    def held(self) -> int:
        return len(self.queries) + len(self.keys)

    def add(self, ids: Sequence[int], queries: dict, keys: dict) -> list[tuple[int, dict, dict]]:
        """Add a batch (row r of `queries`/`keys` is sample ids[r]); return the (i, query, key) pairs now complete."""
        row = {int(i): r for r, i in enumerate(ids)}
        pairs = []
        for i, r in row.items():
            j = int(self.negative[i])
            if j in row:
                pairs.append((i, _row(queries, r), _row(keys, row[j])))
            elif j in self.keys:
                pairs.append((i, _row(queries, r), self.keys.pop(j)))
            else:
                self.queries[i] = _row(queries, r, copy=True)
        for j, r in row.items():
            i = int(self.query_of_key[j])
            if i in row:
                continue  # paired above
            if i in self.queries:
                pairs.append((i, self.queries.pop(i), _row(keys, r)))
            else:
                self.keys[j] = _row(keys, r, copy=True)  # its query comes in a later batch
        return pairs


def _row(features: dict, r: int, copy: bool = False) -> dict:
    return {rep: (t[r].clone() if copy else t[r]) for rep, t in features.items()}


@dataclass
class Scores:
    """Per-sample distances of every (level, pooling, distance), and what they came from."""

    positive: dict[Key, np.ndarray]
    negative_distance: dict[Key, np.ndarray]
    negative: np.ndarray
    seconds: float
    features: dict[str, torch.Tensor] | None = None
    windows: pd.DataFrame | None = field(default=None, repr=False)
    rankme: RankMe | None = None

    @property
    def n_images(self) -> int:
        return len(self.negative)

    def table(self, margins: Iterable[float] = MARGINS) -> pd.DataFrame:
        """One row per variant, in the order distance, margin, level, pooled (pooled first)."""
        rows = []
        for distance in DISTANCES:
            for margin in margins:
                for level in LEVELS:
                    for pooling in POOLINGS:
                        key = (level, pooling, distance)
                        value, hinge_mean = robustness(self.positive[key], self.negative_distance[key], float(margin))
                        rows.append(
                            {
                                "distance": distance,
                                "margin": float(margin),
                                "level": level,
                                "pooled": pooling == "pooled",
                                "robustness": value,
                                "hinge_mean": hinge_mean,
                                "n_images": self.n_images,
                                "seconds": self.seconds,
                            }
                        )
        return pd.DataFrame(rows, columns=COLUMNS).astype({"n_images": "int64", "pooled": "bool"})


def _distances(queries: dict, keys: dict) -> dict[Key, torch.Tensor]:
    """Row-wise distances of stacked (B, D) queries and keys for every representation and distance."""
    return {
        (level, pooling, name): fn(queries[(level, pooling)], keys[(level, pooling)]).cpu()
        for level, pooling in REPRESENTATIONS
        for name, fn in DISTANCES.items()
    }


def _check_finite(features: dict, view: str, ids: np.ndarray, source: str, windows: pd.DataFrame) -> None:
    for (level, _pooling), tensor in features.items():
        bad = ~torch.isfinite(tensor).all(dim=1)
        if bad.any():
            first = int(ids[int(bad.nonzero()[0, 0])])
            raise MedsegError(
                f"{source}: the encoder's {level} features of the {view} view are NaN or inf for "
                f"{int(bad.sum())} sample(s) in a batch (first: sample {first}, image {int(windows.image.iloc[first])}); "
                "the weights may have diverged"
            )


def score_encoder(
    encoder: Encoder,
    split: Split,
    windows: pd.DataFrame,
    size: int,
    scale: float,
    *,
    seed: int = 0,
    batch: int = DEFAULT_BATCH,
    device: torch.device | str = "cpu",
    save_features: bool = False,
    source: str = "encoder",
) -> Scores:
    """Score `encoder` on the `windows` of `split` (stored values / `scale` in [0, 1], inputs `size`)."""
    start = time.perf_counter()
    n = len(windows)
    negative = derangement(n, seed)
    query_factors, key_factors = jitter_factors(n, seed)
    order = cycle_order(negative)
    encoder = encoder.to(device).eval()
    positive: dict[Key, np.ndarray] = {}
    negative_distance: dict[Key, np.ndarray] = {}
    stored: dict[str, torch.Tensor] | None = {} if save_features else None
    pairs = _NegativePairs(negative)
    most_held = 0
    for begin in range(0, n, batch):
        ids = order[begin : begin + batch]
        index = torch.from_numpy(ids)
        pixels = to_pixels(read_windows(split, windows.iloc[ids]), size, scale, device)
        views = {}
        for view, factors in (("query", query_factors), ("key", key_factors)):
            views[view] = representations(encoder, normalise(apply_jitter(pixels, factors[index])))
            _check_finite(views[view], view, ids, source, windows)
        for key, values in _distances(views["query"], views["key"]).items():
            positive.setdefault(key, np.full(n, np.nan))[ids] = values.numpy()
        complete = pairs.add(ids, views["query"], views["key"])
        most_held = max(most_held, pairs.held)
        if complete:
            rows = np.array([i for i, _, _ in complete])
            stacked_q = {rep: torch.stack([q[rep] for _, q, _ in complete]) for rep in REPRESENTATIONS}
            stacked_k = {rep: torch.stack([k[rep] for _, _, k in complete]) for rep in REPRESENTATIONS}
            for key, values in _distances(stacked_q, stacked_k).items():
                negative_distance.setdefault(key, np.full(n, np.nan))[rows] = values.numpy()
        if stored is not None:
            for view, features in views.items():
                for (level, pooling), tensor in features.items():
                    name = feature_name(view, level, pooling)
                    if name not in stored:
                        stored[name] = torch.empty((n, tensor.shape[1]), dtype=torch.float32)
                    stored[name][index] = tensor.cpu()
        log.debug("scored %d/%d samples (%d held for later negatives)", min(begin + batch, n), n, pairs.held)
    assert pairs.held == 0 and all(not np.isnan(v).any() for v in negative_distance.values())
    if stored is not None:
        stored["negative"] = torch.from_numpy(negative.astype(np.int64))
    log.debug("at most %d samples were held between batches", most_held)
    return Scores(positive, negative_distance, negative, time.perf_counter() - start, stored, windows)


def rankme(features: np.ndarray, eps: float = RANKME_EPS) -> float:
    """RankMe of an N x D feature matrix: the exponential of the entropy of its normalised singular values.

    Garrido et al., "RankMe: Assessing the downstream performance of pretrained self-supervised
    representations by their rank", ICML 2023: p_k = s_k / sum(s) + eps, RankMe =
    exp(-sum_k p_k log p_k). The features are not centred (the paper's definition); float64. A
    smooth count of the directions the features use: 1 for rank one, min(N, D) for equal singular
    values. An all-zero matrix has no direction: 0, its rank (the formula divides by zero).
    """
    singular = np.linalg.svd(np.asarray(features, dtype=np.float64), compute_uv=False)
    total = singular.sum()
    if total == 0:
        return 0.0
    p = singular / total + eps
    return float(np.exp(-np.sum(p * np.log(p))))


@dataclass
class RankMe:
    """RankMe of the pooled features of every level (`LEVELS`) of the unjittered samples."""

    features: dict[str, np.ndarray]  # level -> (N, C) float32, in sample order
    values: dict[str, float]
    seconds: float  # the third forward pass and the SVDs

    @property
    def n_images(self) -> int:
        return len(next(iter(self.features.values())))

    def table(self) -> pd.DataFrame:
        """One row per level, in the order of `LEVELS`."""
        rows = [
            {
                "level": level,
                "rankme": self.values[level],
                "n_images": self.n_images,
                "n_features": self.features[level].shape[1],
                "seconds": self.seconds,
            }
            for level in LEVELS
        ]
        return pd.DataFrame(rows, columns=RANKME_COLUMNS).astype({"n_images": "int64", "n_features": "int64"})


def rankme_pass(
    encoder: Encoder,
    split: Split,
    windows: pd.DataFrame,
    size: int,
    scale: float,
    *,
    batch: int = DEFAULT_BATCH,
    device: torch.device | str = "cpu",
    source: str = "encoder",
) -> RankMe:
    """RankMe of `encoder` on the unjittered `windows` of `split`: one more pass, inputs as for robustness."""
    start = time.perf_counter()
    n = len(windows)
    encoder = encoder.to(device).eval()
    batches: dict[str, list[np.ndarray]] = {level: [] for level in LEVELS}
    for begin in range(0, n, batch):
        ids = np.arange(begin, min(begin + batch, n))
        pixels = to_pixels(read_windows(split, windows.iloc[ids]), size, scale, device)
        features = representations(encoder, normalise(pixels))
        _check_finite(features, "unjittered", ids, source, windows)
        for level in LEVELS:
            batches[level].append(features[(level, "pooled")].cpu().numpy())
    pooled = {level: np.concatenate(batches[level]) for level in LEVELS}
    values = {level: rankme(pooled[level]) for level in LEVELS}
    return RankMe(pooled, values, time.perf_counter() - start)


@dataclass(frozen=True)
class Dataset:
    """A prepared segmentation dataset opened for scoring."""

    path: Path
    meta: dict
    split: Split
    split_name: str
    windows: pd.DataFrame
    scale: float


def open_dataset(data: Path, split: str = DEFAULT_SPLIT) -> Dataset:
    """Open a prepared dataset's split with the samples robustness scores; MedsegError naming what is wrong."""
    data = Path(data)
    meta_file = data / "dataset.json"
    meta = read_segmentation_meta(data, "robustness scoring")
    if split not in meta.get("images", {}):
        raise MedsegError(f"{meta_file} has no '{split}' split with images")
    try:
        opened = open_split(data / split)
    except FileNotFoundError as error:
        raise MedsegError(
            f"{error.filename}: missing from the prepared dataset {data}; re-run `medseg prepare`"
        ) from None
    windows = scoring_windows(data, split, meta)
    if len(windows) < 2:
        raise MedsegError(
            f"{data / split / 'index.parquet'}: {len(windows)} sample(s) in the '{split}' split; robustness needs at "
            "least 2 (every sample's negative key comes from another sample)"
        )
    return Dataset(data, meta, opened, split, windows, value_scale(meta, split))


def scoring_size(info: EncoderFile, dataset: Dataset, image_size: int | None = None) -> int:
    """The input size `info` is scored at on `dataset`: IDRiD's tile, else `resolve_image_size`."""
    return input_size(dataset.meta, resolve_image_size(info, image_size))


def score_file(
    encoder_path: Path,
    dataset: Dataset,
    *,
    image_size: int | None = None,
    seed: int = 0,
    batch: int = DEFAULT_BATCH,
    device: torch.device | str | None = None,
    save_features: bool = False,
    with_rankme: bool = False,
) -> tuple[EncoderFile, int, Scores]:
    """Open an encoder file and score it on `dataset`: (what the file is, the input size used, the scores).

    `with_rankme`: also run the third, unjittered pass and put its RankMe in `scores.rankme`.
    """
    info = inspect(Path(encoder_path))
    size = scoring_size(info, dataset, image_size)
    encoder = load(info, size)
    device = pick_device(device)
    log.info(
        "scoring %s (%s) on %d samples of %s at %dx%d on %s",
        info.path,
        info.describe(),
        len(dataset.windows),
        dataset.path,
        size,
        size,
        device,
    )
    scores = score_encoder(
        encoder,
        dataset.split,
        dataset.windows,
        size,
        dataset.scale,
        seed=seed,
        batch=batch,
        device=device,
        save_features=save_features,
        source=str(info.path),
    )
    if with_rankme:
        scores.rankme = rankme_pass(
            encoder,
            dataset.split,
            dataset.windows,
            size,
            dataset.scale,
            batch=batch,
            device=device,
            source=str(info.path),
        )
    return info, size, scores
