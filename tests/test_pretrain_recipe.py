"""The pretraining recipes: learning-rate schedule, mixing and erasing rates, transforms, optimizer, seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from medseg import seeds
from medseg.errors import MedsegError
from medseg.models import build_classifier, build_encoder
from medseg.paper import pretraining_recipe as paper_recipe
from medseg.pretrain import recipe
from medseg.pretrain.settings import BATCHNORM_MODELS, Settings


def settings(**changes) -> Settings:
    base = dict(
        model="unet",
        scheme="simple",
        image_size=32,
        width=0.25,
        window_size=4,
        seed=0,
        planned_epochs=10,
        batch=64,
        base_lr=0.004,
        base_lr_batch=4096,
        warmup_epochs=2,
        micro_batch=16,
    )
    return Settings(**(base | changes))


def lrs_of_updates(s: Settings, updates_per_epoch: int, updates: list[int]) -> list[float]:
    """The learning rate each listed update (0-based) trains with, stepping as the loop does."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=s.lr)
    scheduler = recipe.make_scheduler(optimizer, s, updates_per_epoch)
    found = {}
    for update in range(max(updates) + 1):
        found[update] = optimizer.param_groups[0]["lr"]
        scheduler.step_update(update + 1)
    return [found[u] for u in updates]


def test_warmup_and_cosine_learning_rates_equal_hand_computed_values():
    s = settings(batch=1024, base_lr=0.001, base_lr_batch=1024 // 4)  # linear scaling: peak 0.004
    assert s.lr == pytest.approx(0.004)
    per_epoch, warmup, total = 5, 2 * 5, 10 * 5
    peak, floor = 0.004, recipe.MIN_LR
    expected = {
        0: 0.0,  # warmup starts at 0
        1: peak * 1 / warmup,
        7: peak * 7 / warmup,
        warmup: peak,  # the warmup is a prefix: the peak is reached when it ends
        30: floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * (30 - warmup) / (total - warmup))),
        total - 1: floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * (total - 1 - warmup) / (total - warmup))),
    }
    got = lrs_of_updates(s, per_epoch, list(expected))
    assert got == pytest.approx(list(expected.values()), rel=1e-12, abs=1e-15)


def test_the_schedule_continues_after_reloading_its_state():
    s = settings()
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=s.lr)
    scheduler = recipe.make_scheduler(optimizer, s, 7)
    scheduler.step_update(23)
    fresh = recipe.make_scheduler(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=s.lr), s, 7)
    fresh.load_state_dict(scheduler.state_dict())
    fresh.step_update(23)
    assert fresh.optimizer.param_groups[0]["lr"] == optimizer.param_groups[0]["lr"] == lrs_of_updates(s, 7, [23])[0]


def test_paper_recipes():
    assert paper_recipe("simple", "unet") == {
        "batch": 4096,
        "base_lr": 0.004,
        "base_lr_batch": 4096,
        "warmup_epochs": 5,
    }
    assert paper_recipe("simple", "swin_unet")["warmup_epochs"] == 20
    advanced_conv, advanced_swin = (
        paper_recipe("advanced", "resnet50_attention_unet"),
        paper_recipe("advanced", "swin_unet"),
    )
    assert settings(**advanced_conv).lr == pytest.approx(0.004)
    assert settings(**advanced_swin).lr == pytest.approx(0.001) and advanced_swin["batch"] == 1024


def test_mixing_and_erasing_rates_per_sample():
    """Algorithm 1: CutMix 0.5, mixup 0.4, unmixed 0.1 per image; then erasing with p 0.25 (black)."""
    n = 10_000
    seeds.seed_globals(1)
    # Every pixel distinct and non-zero, so the kind of change to each image is visible.
    images = torch.randint(1, 256, (n, 3, 8, 8), dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,))
    augment = recipe.BatchAugment("advanced", 10, torch.device("cpu"))
    original = images.float() / 255
    mixed, targets = augment.pixels(images.clone(), labels)
    partner = original.flip(0)
    erased = (mixed == 0).all(dim=1)  # black in all channels
    changed = (mixed != original) & ~erased[:, None]
    from_partner = (mixed == partner) & ~erased[:, None]
    kind = np.full(n, "none", dtype=object)
    some_change = changed.flatten(1).any(dim=1)
    # CutMix copies a box of the partner's pixels exactly; mixup changes (nearly) every pixel.
    cutmix = some_change & (from_partner | ~changed).flatten(1).all(dim=1)
    kind[(some_change & ~cutmix).numpy()] = "mixup"
    kind[cutmix.numpy()] = "cutmix"
    rates = {name: float(np.mean(kind == name)) for name in ("cutmix", "mixup", "none")}
    tolerance = 4 * math.sqrt(0.25 / n) + 0.005  # sampling error, and a few CutMix boxes of area 0
    assert rates["cutmix"] == pytest.approx(0.5, abs=tolerance)
    assert rates["mixup"] == pytest.approx(0.4, abs=tolerance)
    assert rates["none"] == pytest.approx(0.1, abs=tolerance)
    erase_rate = float(erased.flatten(1).any(dim=1).float().mean())
    assert erase_rate == pytest.approx(0.25, abs=4 * math.sqrt(0.25 * 0.75 / n) + 0.01)
    # Soft targets: label smoothing 0.1 over the mix, rows sum to 1, unmixed rows are 0.91 / 0.01.
    assert targets.shape == (n, 10) and torch.allclose(targets.sum(1), torch.ones(n))
    # (an erased image may hide a small CutMix box: look at images left whole only)
    unmixed = torch.from_numpy(kind == "none") & ~erased.flatten(1).any(dim=1)
    assert torch.allclose(targets[unmixed].max(1).values, torch.tensor(0.91))


def test_simple_recipe_keeps_hard_labels_and_normalises():
    augment = recipe.BatchAugment("simple", 10, torch.device("cpu"))
    images = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    x, targets = augment(images, torch.tensor([3, 4]))
    assert targets.tolist() == [3, 4]
    assert torch.allclose(
        x[0, :, 0, 0], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    )
    assert isinstance(recipe.train_loss("simple"), torch.nn.Module)


def test_transforms_crop_to_the_image_size_and_validate_on_the_centre():
    image = Image.fromarray(np.arange(40 * 60 * 3, dtype=np.uint8).reshape(40, 60, 3))
    for scheme in ("simple", "advanced"):
        out = recipe.train_transform(scheme, 32)(image)
        assert out.dtype == torch.uint8 and out.shape == (3, 32, 32)
    steps = recipe.train_transform("simple", 32).transforms
    assert steps[0].scale == recipe.CROP_AREA and steps[1].p == 0.5 and len(steps) == 3  # no colour jitter
    val = recipe.eval_transform(32)(image)
    assert val.shape == (3, 32, 32)
    # shorter side 40 -> 32 (so 60 -> 48), then the centre 32 x 32
    expected = np.asarray(image.resize((48, 32), Image.BILINEAR))[:, 8:40].transpose(2, 0, 1)
    assert np.abs(val.numpy().astype(int) - expected.astype(int)).max() <= 1


def test_rand_augment_is_the_increasing_variant_of_deit_swin_and_convnext():
    from timm.data.auto_augment import RandAugment

    [rand_augment] = [
        step for step in recipe.train_transform("advanced", 32).transforms if isinstance(step, RandAugment)
    ]
    names = {op.name for op in rand_augment.ops}
    assert rand_augment.num_layers == 2 and {op.magnitude for op in rand_augment.ops} == {9}
    assert {op.magnitude_std for op in rand_augment.ops} == {0.5}
    # "inc1": the ops whose strength would otherwise fall (or not rise) with the magnitude
    assert {
        "SolarizeIncreasing",
        "PosterizeIncreasing",
        "ColorIncreasing",
        "ContrastIncreasing",
        "BrightnessIncreasing",
        "SharpnessIncreasing",
    } <= names
    assert not names & {"Solarize", "Posterize", "Color", "Contrast", "Brightness", "Sharpness"}


def test_transforms_are_reproducible_from_the_sample_seed():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8))
    transform = recipe.train_transform("advanced", 32)
    seeds.seed_globals(seeds.sample_seed(0, 3, 17))
    first = transform(image)
    seeds.seed_globals(seeds.sample_seed(0, 3, 18))
    other = transform(image)
    seeds.seed_globals(seeds.sample_seed(0, 3, 17))
    assert torch.equal(transform(image), first) and not torch.equal(other, first)


def test_optimizer_is_adamw_without_decay_on_biases_norms_and_position_tables():
    model = build_classifier("swin_unet", 4, 32, 0.25, 4)
    optimizer = recipe.make_optimizer(model, 0.001)
    assert isinstance(optimizer, torch.optim.AdamW)
    decay = {
        id(p)
        for group in optimizer.param_groups
        if group["weight_decay"] == recipe.WEIGHT_DECAY
        for p in group["params"]
    }
    for name, parameter in model.named_parameters():
        exempt = parameter.ndim <= 1 or "relative_position_bias_table" in name
        assert (id(parameter) in decay) != exempt, name
    assert all(group["betas"] == recipe.BETAS for group in optimizer.param_groups)


def test_epoch_order_and_seeds_depend_only_on_their_keys():
    first = seeds.epoch_order(0, 1, 100)
    assert sorted(first.tolist()) == list(range(100))
    assert np.array_equal(first, seeds.epoch_order(0, 1, 100))
    assert not np.array_equal(first, seeds.epoch_order(0, 2, 100))
    assert seeds.step_seed(0, 1, 2, 3) != seeds.step_seed(0, 1, 2, 4)


def test_impossible_batches_are_refused():
    with pytest.raises(MedsegError, match="not a multiple of micro-batch 16 x 3 device"):
        settings(batch=64, micro_batch=16).accumulation(3)
    assert settings(batch=64, micro_batch=16).accumulation(2) == 2
    with pytest.raises(MedsegError, match="micro-batch must be even"):
        settings(scheme="advanced", micro_batch=3, batch=3).check()
    with pytest.raises(MedsegError, match="warmup of 10 epochs"):
        settings(warmup_epochs=10).check()


@pytest.mark.parametrize("model", ["unet", "resnet50_attention_unet", "swin_unet"])
def test_micro_batch_1_is_refused_for_batchnorm_encoders_only(model):
    encoder = build_encoder(model, 32, 0.25, 4)
    has_batchnorm = any(isinstance(layer, torch.nn.BatchNorm2d) for layer in encoder.modules())
    assert has_batchnorm == (model in BATCHNORM_MODELS)
    one = settings(model=model, micro_batch=1, batch=2)
    if has_batchnorm:  # a traceback from BatchNorm ("Expected more than 1 value per channel") otherwise
        with pytest.raises(
            MedsegError,
            match=rf"micro-batch 1 cannot train the {model} encoder: its BatchNorm needs "
            r"at least 2 images per forward pass.*use --micro-batch 2 or more",
        ):
            one.check()
    else:
        one.check()
    settings(model=model, micro_batch=2, batch=2).check()
