"""Downstream training in this process: schedule, inputs on the device, modes, learning, seeds, resuming."""

from __future__ import annotations

import math
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from medseg.data.store import open_split
from medseg.downstream import train as train_module
from medseg.downstream.data import open_task
from medseg.downstream.evaluate import evaluate, mean_dice
from medseg.downstream.recipe import make_optimizer, make_scheduler
from medseg.downstream.settings import ModelBuild, Recipe, Run
from medseg.downstream.train import HISTORY_COLUMNS, Trainer, build
from medseg.errors import Interrupted
from medseg.inputs import normalise, read_windows, to_labels, to_pixels
from medseg.models.encoder_file import inspect
from medseg.signals import StopSignals

SIZE = 32


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def acdc(prepared):
    return open_task(prepared / "acdc", SIZE)


ONE_EPOCH = Recipe(1, 8)


def make_trainer(
    task, encoder: Path, out: Path, *, model="unet", mode="full", seed=0, recipe=ONE_EPOCH, stop=None, **kwargs
) -> Trainer:
    info = inspect(encoder)
    run = Run(mode, seed, out / "scores.parquet", out / "history.parquet", out / ".scores.resume.pt")
    return Trainer(
        task,
        info,
        ModelBuild(model, task.input_size, info.width, info.window_size),
        recipe,
        run,
        stop or StopSignals(),
        **kwargs,
    )


def dice(scores: pd.DataFrame) -> float:
    return scores[(scores.metric == "dice") & (scores["class"] == "mean")].value.item()


# -- schedule ------------------------------------------------------------------------------


def test_learning_rate_is_polynomial_per_optimizer_step():
    # 0.05 (1 - i/4)^0.9 by hand: 0.75^0.9 = e^(0.9 ln 0.75) = 0.77189, 0.5^0.9 = 0.53589, 0.25^0.9 = 0.28717.
    expected = [0.05, 0.0385944, 0.0267943, 0.0143587, 0.0]
    optimizer = make_optimizer(torch.nn.Linear(1, 1), Recipe())
    scheduler = make_scheduler(optimizer, total_steps=4)
    seen = []
    for _ in range(5):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(seen, expected, rtol=1e-5, atol=1e-12)


def test_optimizer_is_the_papers_sgd():
    model = torch.nn.Linear(2, 2)
    optimizer = make_optimizer(model, Recipe())
    group = optimizer.param_groups[0]
    assert isinstance(optimizer, torch.optim.SGD)
    assert (group["lr"], group["momentum"], group["weight_decay"]) == (0.05, 0.9, 1e-4)


def test_history_lr_is_that_of_each_epochs_last_step(acdc, encoder_file, tmp_path):
    # 30 slices in batches of 8: 4 steps per epoch, N = 8; epoch e's last step is i = 4e - 1.
    trainer = make_trainer(acdc, encoder_file("unet"), tmp_path, mode="decoder", recipe=Recipe(2, 8))
    assert (trainer.steps_per_epoch, trainer.total_steps) == (4, 8)
    trainer.train()
    history = pd.read_parquet(tmp_path / "history.parquet")
    assert list(history.columns) == list(HISTORY_COLUMNS)
    np.testing.assert_allclose(history.lr, [0.05 * (1 - 3 / 8) ** 0.9, 0.05 * (1 - 7 / 8) ** 0.9], rtol=1e-9)


# -- inputs ----------------------------------------------------------------------------------


def test_batches_come_from_the_shared_input_function(prepared):
    task = open_task(prepared / "acdc", 24)  # stored at 32: resized on the way in
    split = open_split(prepared / "acdc" / "test")
    ids = torch.tensor([3, 0, 5])
    x, labels = task.test_batch(ids)
    windows = split.index.iloc[ids.numpy()]
    torch.testing.assert_close(x, normalise(to_pixels(read_windows(split, windows), 24, 1.0)))
    masks = np.stack([split.masks[i] for i in windows.image])
    torch.testing.assert_close(labels, to_labels(masks, 24))
    assert labels.shape == (3, 24, 24) and set(labels.unique().tolist()) <= {0, 1, 2, 3}


def test_labels_are_resized_nearest_and_never_mixed():
    masks = torch.tensor([[[0, 1], [2, 3]]], dtype=torch.uint8)
    big = to_labels(masks, 4)
    assert big.dtype == torch.int64
    assert big[0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    stripes = torch.arange(6, dtype=torch.uint8).repeat(6, 1)[None]
    assert to_labels(stripes, 3)[0, 0].tolist() == [1, 3, 5]  # source pixel floor((x + 0.5) * 2)


def test_idrid_trains_on_crops_of_its_windows_and_tests_on_tiles(prepared):
    task = open_task(prepared / "idrid", 64)
    meta = task.meta
    assert task.input_size == meta["test_tile"] == 16  # the tile, not --image-size
    assert task.train.side == meta["train_window"] == 32
    split = open_split(prepared / "idrid" / "train")
    ids = torch.tensor([0, 40, 237])
    images, masks = task.train.stored(ids)
    windows = split.index.iloc[ids.numpy()]
    np.testing.assert_array_equal(images.numpy(), read_windows(split, windows))
    np.testing.assert_array_equal(
        masks.numpy(),
        np.stack([split.masks[r.image, r.y0 : r.y0 + 32, r.x0 : r.x0 + 32] for r in windows.itertuples()]),
    )
    x, labels = task.train_batch(ids, torch.Generator().manual_seed(0))
    assert x.shape == (3, 3, 16, 16) and labels.shape == (3, 16, 16)
    x, labels = task.test_batch(torch.arange(4))
    assert x.shape == (4, 3, 16, 16)


def test_augmentation_repeats_with_its_generator_and_changes_with_it(acdc):
    ids = torch.arange(8)
    a = acdc.train_batch(ids, torch.Generator().manual_seed(1))
    b = acdc.train_batch(ids, torch.Generator().manual_seed(1))
    c = acdc.train_batch(ids, torch.Generator().manual_seed(2))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


# -- modes -----------------------------------------------------------------------------------


def encoder_state(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in trainer.model.encoder.state_dict().items()}


@pytest.mark.parametrize("mode", ["decoder", "full"])
def test_decoder_mode_keeps_the_encoder_and_its_batchnorm_statistics(acdc, encoder_file, tmp_path, mode):
    trainer = make_trainer(
        acdc,
        encoder_file("resnet50_attention_unet"),
        tmp_path,
        model="resnet50_attention_unet",
        mode=mode,
        recipe=Recipe(1, 8),
    )
    loaded = encoder_state(trainer)
    from safetensors.torch import load_file

    saved = load_file(encoder_file("resnet50_attention_unet"))
    assert all(torch.equal(loaded[key], saved[key]) for key in saved)  # the checkpoint's weights, not the seed's
    decoder = {key: value.clone() for key, value in trainer.model.decoder.state_dict().items()}
    trainer.train()
    after = encoder_state(trainer)
    stats = [key for key in after if "running_" in key]
    weights = [key for key in after if key not in stats and after[key].is_floating_point()]
    assert stats and weights
    changed_stats = [key for key in stats if not torch.equal(after[key], loaded[key])]
    changed_weights = [key for key in weights if not torch.equal(after[key], loaded[key])]
    if mode == "decoder":
        assert not changed_stats and not changed_weights
        assert not trainer.model.encoder.training  # frozen: stays in eval mode
    else:
        assert len(changed_stats) == len(stats) and len(changed_weights) == len(weights)
    assert any(not torch.equal(value, decoder[key]) for key, value in trainer.model.decoder.state_dict().items())


def test_the_seed_initialises_the_decoder_only(acdc, encoder_file):
    info = inspect(encoder_file("unet"))
    spec = ModelBuild("unet", SIZE, 0.25, 4)
    a, b = build(acdc, info, spec, "full", 0), build(acdc, info, spec, "full", 1)
    assert all(torch.equal(a.encoder.state_dict()[k], v) for k, v in b.encoder.state_dict().items())
    assert not all(torch.equal(a.decoder.state_dict()[k], v) for k, v in b.decoder.state_dict().items())


@pytest.mark.parametrize("model", ["resnet50_attention_unet", "swin_unet"])
def test_every_model_trains_and_is_scored(acdc, encoder_file, tmp_path, model):
    scores = make_trainer(acdc, encoder_file(model), tmp_path, model=model, recipe=Recipe(1, 16)).train()
    assert set(scores.metric) == {"dice", "jaccard", "mcc", "ap", "hd95", "hd95_authors", "hd95_authors_skipped"}
    # hd95_authors is NaN for a class the model never predicts (every sample skipped): counted instead.
    assert np.isfinite(scores[scores.metric != "hd95_authors"].value).all()


def test_binary_idrid_run_uses_one_output_channel(prepared, encoder_file, tmp_path):
    task = open_task(prepared / "idrid", SIZE)
    trainer = make_trainer(task, encoder_file("unet"), tmp_path, recipe=Recipe(1, 64))
    assert trainer.model.eval()(torch.zeros(1, 3, 16, 16)).shape == (1, 1, 16, 16)
    scores = trainer.train()
    assert set(scores["class"]) == {"background", "microaneurysm", "mean"}


# -- learning, seeds -----------------------------------------------------------------------


def test_a_short_run_raises_test_dice_well_above_the_untrained_model(acdc, encoder_file, tmp_path):
    trainer = make_trainer(acdc, encoder_file("unet"), tmp_path, recipe=Recipe(10, 8, eval_every=5))
    untrained = mean_dice(evaluate(trainer.model, acdc, 32, hd95=False))
    scores = trainer.train()
    assert untrained < 0.15 and dice(scores) > untrained + 0.25, (untrained, dice(scores))
    history = pd.read_parquet(tmp_path / "history.parquet")
    assert history.test_dice.notna().tolist() == [False] * 4 + [True] + [False] * 4 + [True]
    assert history.test_dice.iloc[-1] == pytest.approx(dice(scores))
    assert history.train_loss.iloc[-1] < history.train_loss.iloc[0]


def test_same_seed_same_scores_other_seed_other_scores(acdc, encoder_file, tmp_path):
    runs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        runs[name] = make_trainer(
            acdc, encoder_file("swin_unet"), tmp_path / name, model="swin_unet", seed=seed, recipe=Recipe(1, 8)
        ).train()
    pd.testing.assert_frame_equal(runs["a"], runs["b"])
    assert not runs["a"].value.equals(runs["c"].value)


# -- resuming, failures --------------------------------------------------------------------


def test_a_stop_mid_epoch_resumes_to_the_uninterrupted_result(acdc, encoder_file, tmp_path, monkeypatch):
    recipe, model = Recipe(3, 8, eval_every=2), "resnet50_attention_unet"
    reference = make_trainer(acdc, encoder_file(model), tmp_path / "reference", model=model, recipe=recipe)
    expected = reference.train()
    out = tmp_path / "stopped"
    real_batch = type(acdc).train_batch
    calls = []

    def signalling(self, ids, generator):  # SIGTERM arrives during step 3 of epoch 2
        calls.append(1)
        if len(calls) == 7:
            signal.raise_signal(signal.SIGTERM)
        return real_batch(self, ids, generator)

    monkeypatch.setattr(type(acdc), "train_batch", signalling)
    with StopSignals() as stop:
        trainer = make_trainer(acdc, encoder_file(model), out, model=model, recipe=recipe, stop=stop)
        with pytest.raises(Interrupted, match=r"stopped by SIGTERM at epoch 2, step 3 of 4"):
            trainer.train()
    assert (out / ".scores.resume.pt").is_file() and not (out / "scores.parquet").exists()
    monkeypatch.setattr(type(acdc), "train_batch", real_batch)
    resumed = make_trainer(acdc, encoder_file(model), out, model=model, recipe=recipe)
    assert (resumed.position.epoch, resumed.position.step) == (1, 3)
    pd.testing.assert_frame_equal(resumed.train(), expected)
    assert not (out / ".scores.resume.pt").exists()
    a, b = reference.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)
    columns = ["train_epoch", "lr", "train_loss", "test_dice"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "history.parquet")[columns],
        pd.read_parquet(tmp_path / "reference" / "history.parquet")[columns],
    )


def test_the_resume_file_is_written_every_resume_minutes_and_removed_at_the_end(
    acdc, encoder_file, tmp_path, monkeypatch
):
    saved = []
    real = train_module.state.save

    def spy(path, snapshot):
        saved.append((snapshot["epoch"], snapshot["step"]))
        real(path, snapshot)

    monkeypatch.setattr(train_module.state, "save", spy)
    make_trainer(acdc, encoder_file("unet"), tmp_path, mode="decoder", resume_minutes=0).train()
    assert saved == [(0, 1), (0, 2), (0, 3), (0, 4)]  # after every step: 0 minutes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.parquet", "scores.parquet"]


def test_a_nan_loss_stops_naming_epoch_and_step_and_writes_nothing(acdc, encoder_file, tmp_path, monkeypatch):
    real = train_module.dice_loss
    calls = []

    def poisoned(logits, target):
        calls.append(1)
        return real(logits, target) * (math.nan if len(calls) == 6 else 1.0)

    monkeypatch.setattr(train_module, "dice_loss", poisoned)
    from medseg.errors import MedsegError

    with pytest.raises(MedsegError, match=r"non-finite training loss \(nan\) at epoch 2, step 2 of 4"):
        make_trainer(acdc, encoder_file("unet"), tmp_path, recipe=Recipe(2, 8)).train()
    assert list(tmp_path.iterdir()) == []


def test_weights_made_non_finite_by_an_update_stop_the_run_though_the_loss_is_finite(acdc, encoder_file, tmp_path):
    trainer = make_trainer(acdc, encoder_file("unet"), tmp_path, recipe=Recipe(1, 8), resume_minutes=0)
    steps = []

    def overflowing(optimizer, args, kwargs):  # the 3rd update overflows one weight, as a huge learning rate does
        steps.append(1)
        if len(steps) == 3:
            with torch.no_grad():
                trainer.model.decoder.head.weight[0].fill_(math.inf)

    trainer.optimizer.register_step_post_hook(overflowing)
    from medseg.finite import NonFinite

    with pytest.raises(
        NonFinite,
        match=r"non-finite weights \(decoder.head.weight\) after the update at epoch 1, "
        r"step 3 of 4 \(optimizer step 3 of 4\)",
    ):
        trainer.train()
    # Resume files were written after steps 1 and 2 (every step: 0 minutes), never after the broken one.
    assert [p.name for p in tmp_path.iterdir()] == [".scores.resume.pt"]
    assert train_module.state.read_resume(tmp_path / ".scores.resume.pt", trainer.identity, True)["step"] == 2


def test_a_single_leftover_sample_joins_the_previous_batch():
    from medseg.downstream.train import steps_per_epoch

    assert steps_per_epoch(48, 24) == 2 and steps_per_epoch(50, 24) == 3
    assert steps_per_epoch(49, 24) == 2  # 24 + 25, never a batch of one for BatchNorm
    assert steps_per_epoch(20, 24) == 1 and steps_per_epoch(25, 24) == 1
