"""Tests of the robustness computation: distances, hinge and margins, derangement, streaming pairs, RankMe."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medseg.robustness.distances import correlation, cosine, hinge, l2, robustness
from medseg.robustness.features import REPRESENTATIONS
from medseg.robustness.score import RANKME_EPS, _NegativePairs, cycle_order, derangement, rankme

# Two images: row 0 has its positive much closer than its negative, row 1 the reverse.
Q = torch.tensor([[1.0, 2.0, 2.0], [1.0, 0.0, 0.0]])
K_POS = torch.tensor([[2.0, 1.0, 2.0], [0.0, 1.0, 0.0]])
K_NEG = torch.tensor([[2.0, -2.0, 1.0], [1.0, 0.0, 0.0]])


def test_cosine_by_hand():
    # |q| = |k+| = |k-| = 3; <q, k+> = 8, <q, k-> = 0. Row 1: orthogonal, then identical.
    torch.testing.assert_close(cosine(Q, K_POS), torch.tensor([1 / 9, 1.0], dtype=torch.float64))
    torch.testing.assert_close(cosine(Q, K_NEG), torch.tensor([1.0, 0.0], dtype=torch.float64))


def test_l2_by_hand():
    torch.testing.assert_close(l2(Q, K_POS), torch.tensor([math.sqrt(2), math.sqrt(2)], dtype=torch.float64))
    torch.testing.assert_close(l2(Q, K_NEG), torch.tensor([math.sqrt(18), 0.0], dtype=torch.float64))


def test_correlation_by_hand():
    # Centred: q = (-2, 1, 1)/3, k+ = (1, -2, 1)/3 -> r = -1/2; k- = (5, -7, 2)/3 -> r = -15 / (6 sqrt 13).
    # Row 1: q = (2, -1, -1)/3 and k+ = (-1, 2, -1)/3 -> r = -1/2; k- = q -> r = 1.
    torch.testing.assert_close(correlation(Q, K_POS), torch.tensor([1.5, 1.5], dtype=torch.float64))
    torch.testing.assert_close(
        correlation(Q, K_NEG), torch.tensor([1 + 15 / (6 * math.sqrt(13)), 0.0], dtype=torch.float64)
    )


def test_zero_and_constant_vectors_give_distance_one():
    zero = torch.zeros(1, 4)
    other = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert cosine(zero, other).item() == 1.0
    assert correlation(torch.full((1, 4), 3.0), other).item() == 1.0


@pytest.mark.parametrize(
    "margin, expected",
    # cosine: d+ - d- = 1/9 - 1 = -8/9 (row 0) and 1 - 0 = 1 (row 1).
    [(0.0, [0.0, 1.0]), (0.25, [0.0, 1.25]), (0.5, [0.0, 1.5]), (0.75, [0.0, 1.75]), (1.0, [1 / 9, 2.0])],
)
def test_hinge_and_robustness_for_every_margin(margin, expected):
    positive, negative = cosine(Q, K_POS).numpy(), cosine(Q, K_NEG).numpy()
    np.testing.assert_allclose(hinge(positive, negative, margin), expected, atol=1e-12)
    value, mean = robustness(positive, negative, margin)
    assert mean == pytest.approx(sum(expected) / 2, abs=1e-12)
    assert value == pytest.approx(1 - sum(expected) / 2, abs=1e-12)


@pytest.mark.parametrize("n", [2, 3, 5, 17, 100])
def test_derangement_has_no_fixed_points_and_repeats_with_its_seed(n):
    for seed in range(10):
        p = derangement(n, seed)
        assert sorted(p.tolist()) == list(range(n))
        assert not np.any(p == np.arange(n))
        np.testing.assert_array_equal(p, derangement(n, seed))
    if n > 3:
        assert any(not np.array_equal(derangement(n, 0), derangement(n, seed)) for seed in range(1, 10))


def test_derangement_of_two_is_the_swap_and_of_one_is_refused():
    np.testing.assert_array_equal(derangement(2, 0), [1, 0])
    with pytest.raises(ValueError):
        derangement(1, 0)


def test_cycle_order_follows_the_cycles():
    p = derangement(50, 3)
    order = cycle_order(p)
    assert sorted(order.tolist()) == list(range(50))
    # Each element is followed by its negative, except at the end of a cycle.
    breaks = sum(p[a] != b for a, b in zip(order, order[1:]))
    cycles = 0
    seen = set()
    for start in range(50):
        if start not in seen:
            cycles += 1
            i = start
            while i not in seen:
                seen.add(i)
                i = int(p[i])
    assert breaks == cycles - 1


@pytest.mark.parametrize("batch", [1, 2, 5, 64])
@pytest.mark.parametrize("ordering", ["cycles", "index", "random"])
def test_negative_pairs_are_complete_in_any_order(batch, ordering):
    n = 23
    negative = derangement(n, 1)
    order = {
        "cycles": cycle_order(negative),
        "index": np.arange(n),
        "random": np.random.default_rng(0).permutation(n),
    }[ordering]
    features = torch.arange(n, dtype=torch.float32).view(n, 1)
    pairs = _NegativePairs(negative)
    found = {}
    for begin in range(0, n, batch):
        ids = order[begin : begin + batch]
        rep = REPRESENTATIONS[0]
        done = pairs.add(ids, {rep: features[ids] + 1000}, {rep: features[ids]})
        for i, q, k in done:
            assert i not in found
            found[i] = (int(q[rep]) - 1000, int(k[rep]))
        if ordering == "cycles":
            assert pairs.held <= 2  # a query waiting for the next batch, a cycle's first key
    assert pairs.held == 0
    assert found == {i: (i, int(negative[i])) for i in range(n)}


def _orthogonal(n: int, seed: int) -> np.ndarray:
    return np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))[0]


def test_rankme_of_singular_values_3_and_1_by_hand():
    # p = (0.75, 0.25): exp(-(0.75 ln 0.75 + 0.25 ln 0.25)) = (4/3)^0.75 * 4^0.25 = 1.75476...
    expected = (4 / 3) ** 0.75 * 4**0.25
    assert expected == pytest.approx(1.754765, abs=1e-6)
    assert rankme(np.diag([3.0, 1.0])) == pytest.approx(expected, rel=1e-6)
    p = np.array([0.75, 0.25]) + RANKME_EPS  # the paper's epsilon, exactly
    assert rankme(np.diag([3.0, 1.0])) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-14)
    # Only the singular values count: rotated on both sides, padded with zero rows, transposed, float32.
    z = _orthogonal(5, 0)[:, :2] @ np.diag([3.0, 1.0]) @ _orthogonal(2, 1).T
    for same in (z, z.T, np.vstack([z, np.zeros((3, 2))]), z.astype(np.float32)):
        assert rankme(same) == pytest.approx(expected, rel=1e-6)


def test_rankme_of_rank_one_is_one_and_not_centred():
    u, v = np.arange(1.0, 11.0), np.array([1.0, -2.0, 0.5, 3.0, 1.0, 2.0])
    # p = (1 + eps, eps x 5): exp(-(1 + eps) ln(1 + eps) + 5 eps ln(1/eps)) = 1 + 7.96e-6.
    eps = RANKME_EPS
    expected = np.exp(-(1 + eps) * np.log1p(eps) + 5 * eps * np.log(1 / eps))
    assert expected == pytest.approx(1 + 7.96e-6, abs=1e-8)
    assert rankme(np.outer(u, v)) == pytest.approx(expected, abs=1e-12)
    # A constant matrix is rank one as it stands; centring would leave nothing.
    assert rankme(np.full((8, 4), 2.5)) == pytest.approx(1.0, abs=1e-5)
    assert rankme(np.zeros((4, 3))) == 0.0


@pytest.mark.parametrize("n", [2, 7, 32])
def test_rankme_of_an_orthogonal_matrix_is_its_size(n):
    assert rankme(4.0 * _orthogonal(n, n)) == pytest.approx(n, rel=1e-5)
    # N < D: min(N, D) equal singular values.
    assert rankme(_orthogonal(n + 3, n)[:n]) == pytest.approx(n, rel=1e-5)
