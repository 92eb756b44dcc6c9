import math

import pytest
import torch
from torch import nn

from medseg.finite import NonFinite, check_finite, non_finite_tensor


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))


def test_finite_weights_pass():
    model = _model()
    assert non_finite_tensor(model) is None
    check_finite(0.5, model, "epoch 1, update 1 of 2", "lower the learning rate")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_weight_or_buffer_is_named(bad):
    model = _model()
    with torch.no_grad():
        model[1].running_var[1] = bad
    assert non_finite_tensor(model) == "1.running_var"
    with pytest.raises(
        NonFinite,
        match=r"^non-finite weights \(1\.running_var\) after the update at epoch 3, "
        r"update 7 of 9; lower the learning rate$",
    ):
        check_finite(0.25, model, "epoch 3, update 7 of 9", "lower the learning rate")


def test_a_non_finite_loss_is_reported_first():
    with pytest.raises(NonFinite, match=r"^non-finite training loss \(nan\) at epoch 1, update 2 of 2; x$"):
        check_finite(math.nan, _model(), "epoch 1, update 2 of 2", "x")


def test_integer_buffers_are_ignored():
    model = _model()
    model[1].num_batches_tracked += 10**9
    assert non_finite_tensor(model) is None
