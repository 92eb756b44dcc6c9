"""Tests of medseg.downstream.loss: the channel convention and Eq. A.2 on hand-computed tensors."""

from __future__ import annotations

import math

import pytest
import torch

from medseg.downstream.loss import SMOOTH, dice_loss, num_classes_of, output_channels, predict, probabilities
from medseg.errors import MedsegError

Z = SMOOTH


def test_output_channels_binary_is_one_sigmoid_channel():
    assert output_channels(2) == 1
    assert output_channels(4) == 4
    assert num_classes_of(torch.zeros(1, 1, 2, 2)) == 2
    assert num_classes_of(torch.zeros(1, 4, 2, 2)) == 4
    with pytest.raises(MedsegError, match="at least one class"):
        output_channels(1)


def test_probabilities_and_predictions():
    binary = torch.tensor([math.log(3), 0.0, -1.0]).view(1, 1, 1, 3)
    p = probabilities(binary)
    assert p.shape == (1, 2, 1, 3)
    torch.testing.assert_close(p[0, :, 0, 0], torch.tensor([0.25, 0.75]))
    torch.testing.assert_close(p.sum(1), torch.ones(1, 1, 3))
    # sigmoid(0) = 0.5 is not above 0.5: background.
    assert predict(binary).tolist() == [[[1, 0, 0]]]
    multi = torch.tensor([[0.0, 2.0], [1.0, 0.0], [0.5, 3.0]]).view(1, 3, 1, 2)
    torch.testing.assert_close(probabilities(multi), torch.softmax(multi, 1))
    assert predict(multi).tolist() == [[[1, 2]]]


def _logits_of(probs: list[list[float]]) -> torch.Tensor:
    """B x K x 1 x 1 logits whose softmax is `probs` (one pixel per image)."""
    return torch.tensor(probs).log().view(len(probs), -1, 1, 1)


def test_multiclass_dice_loss_by_hand():
    # Two images of one pixel each, three classes, summed over the batch:
    #   image 1: p = (0.5, 0.25, 0.25), truth class 0; image 2: p = (0.2, 0.6, 0.2), truth class 1.
    #   class 0: <p, y> = 0.5, |p|^2 = 0.25 + 0.04 = 0.29,     |y|^2 = 1 -> (1.0 + z) / (1.29 + z)
    #   class 1: <p, y> = 0.6, |p|^2 = 0.0625 + 0.36 = 0.4225, |y|^2 = 1 -> (1.2 + z) / (1.4225 + z)
    #   class 2: <p, y> = 0,   |p|^2 = 0.0625 + 0.04 = 0.1025, |y|^2 = 0 -> z / (0.1025 + z)
    #   loss = 1 - (0.775196 + 0.843586 + 0.0000976) / 3 = 0.460374
    logits = _logits_of([[0.5, 0.25, 0.25], [0.2, 0.6, 0.2]])
    target = torch.tensor([0, 1]).view(2, 1, 1)
    expected = 1 - ((1.0 + Z) / (1.29 + Z) + (1.2 + Z) / (1.4225 + Z) + Z / (0.1025 + Z)) / 3
    loss = dice_loss(logits, target)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert loss.item() == pytest.approx(0.460374, abs=1e-6)
    # Summed over the batch, not averaged per image.
    per_image = (dice_loss(logits[:1], target[:1]) + dice_loss(logits[1:], target[1:])) / 2
    assert abs(per_image.item() - loss.item()) > 0.1


def test_binary_dice_loss_by_hand():
    # One image of two pixels, one channel: z = log 3 (p = 0.75) truth 1; z = 0 (p = 0.5) truth 0.
    #   foreground: p = (0.75, 0.5),  y = (1, 0): <p, y> = 0.75, |p|^2 = 0.8125 -> (1.5 + z) / (1.8125 + z)
    #   background: p = (0.25, 0.5), y = (0, 1): <p, y> = 0.5,  |p|^2 = 0.3125 -> (1.0 + z) / (1.3125 + z)
    #   loss = 1 - (0.827587 + 0.761907) / 2 = 0.205253
    logits = torch.tensor([math.log(3), 0.0]).view(1, 1, 1, 2)
    target = torch.tensor([[[1, 0]]])
    expected = 1 - ((1.5 + Z) / (1.8125 + Z) + (1.0 + Z) / (1.3125 + Z)) / 2
    assert dice_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    assert dice_loss(logits, target).item() == pytest.approx(0.205253, abs=1e-6)


def test_dice_loss_perfect_and_absent_class():
    # Confident correct logits: every class term is ~1, including class 2 that no pixel has
    # (its probabilities are ~0, so the term is zeta / zeta).
    target = torch.tensor([[[0, 1], [1, 0]]])
    logits = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 40
    assert dice_loss(logits, target).item() == pytest.approx(0.0, abs=1e-5)


def test_dice_loss_gradient_and_half_precision():
    logits = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0)).bfloat16().requires_grad_()
    target = torch.randint(0, 4, (2, 8, 8), generator=torch.Generator().manual_seed(1))
    loss = dice_loss(logits, target)
    assert loss.dtype == torch.float32
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="does not match"):
        dice_loss(logits, target[:, :4])
