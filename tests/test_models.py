"""Tests of medseg.models: shapes, levels, frozen encoder, safetensors I/O, initialisation, sizes."""

from __future__ import annotations

import argparse
import math

import pytest
import torch
from safetensors.torch import save_file
from timm.models.swin_transformer import SwinTransformerStage, WindowAttention
from torch import nn

from medseg.errors import MedsegError
from medseg.models import build_classifier, build_encoder, build_model
from medseg.models import cli as models_cli
from medseg.models.attention import AttentionGate
from medseg.models.encoder import Level
from medseg.models.patch_expanding import PatchExpanding
from medseg.names import MODEL_NAMES

NUM_CLASSES = 4
# The demo configuration: 64x64 images, a quarter of the paper's widths, Swin window 4
# (the token grids 16/8/4/2 are tiled by 4x4 windows or covered whole).
DEMO = dict(image_size=64, width=0.25, window_size=4)

FULL_LEVELS = {
    "unet": [Level(64, 1), Level(128, 2), Level(256, 4), Level(512, 8), Level(1024, 16)],
    "resnet50_attention_unet": [Level(64, 2), Level(256, 4), Level(512, 8), Level(1024, 16), Level(2048, 32)],
    "swin_unet": [Level(96, 4), Level(192, 8), Level(384, 16), Level(768, 32)],
}
DEMO_LEVELS = {
    "unet": [Level(16, 1), Level(32, 2), Level(64, 4), Level(128, 8), Level(256, 16)],
    # timm keeps the single-convolution ResNet stem at 64 channels whatever the stage widths.
    "resnet50_attention_unet": [Level(64, 2), Level(64, 4), Level(128, 8), Level(256, 16), Level(512, 32)],
    "swin_unet": [Level(24, 4), Level(48, 8), Level(96, 16), Level(192, 32)],
}


@pytest.fixture(scope="module")
def full_size() -> dict[str, tuple[nn.Module, list[torch.Tensor], torch.Tensor]]:
    """Each default model at 224 with one forward pass (batch 1): the slow part, done once."""
    torch.manual_seed(0)
    image = torch.randn(1, 3, 224, 224)
    results = {}
    for name in MODEL_NAMES:
        model = build_model(name, NUM_CLASSES).eval()
        with torch.no_grad():
            features = model.encoder(image)
            results[name] = (model, features, model.decoder(features))
    return results


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _train_step(model: nn.Module, size: int = 64, batch: int = 2) -> None:
    generator = torch.Generator().manual_seed(0)
    image = torch.randn(batch, 3, size, size, generator=generator)
    target = torch.randint(0, NUM_CLASSES, (batch, size, size), generator=generator)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = nn.functional.cross_entropy(model(image), target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


# --- shapes and levels -------------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_full_size_output_and_levels(full_size, name):
    model, features, output = full_size[name]
    assert output.shape == (1, NUM_CLASSES, 224, 224)
    assert list(model.encoder.levels) == FULL_LEVELS[name]
    assert [f.shape for f in features] == [
        (1, level.channels, 224 // level.stride, 224 // level.stride) for level in FULL_LEVELS[name]
    ]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_demo_size_output_and_levels(name):
    model = build_model(name, NUM_CLASSES, **DEMO).eval()
    image = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.encoder(image)
        output = model.decoder(features)
    assert output.shape == (2, NUM_CLASSES, 64, 64)
    assert list(model.encoder.levels) == DEMO_LEVELS[name]
    for feature, level in zip(features, DEMO_LEVELS[name], strict=True):
        assert feature.shape == (2, level.channels, 64 // level.stride, 64 // level.stride)


@pytest.mark.parametrize("classes", [1, 2])
def test_num_classes_is_the_number_of_output_channels(classes):
    model = build_model("unet", classes, **DEMO).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, classes, 64, 64)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_level_names(name):
    encoder = build_encoder(name, **DEMO)
    depth = len(encoder.levels)
    assert encoder.level_index("last") == depth - 1
    assert encoder.level_index("second_to_last") == depth - 2
    with pytest.raises(MedsegError, match="second_to_last"):
        encoder.level_index("first")


def test_encoder_features_are_nchw_even_for_swin():
    encoder = build_encoder("swin_unet", **DEMO).eval()
    with torch.no_grad():
        features = encoder(torch.randn(1, 3, 64, 64))
    assert [f.shape[1] for f in features] == [24, 48, 96, 192]


def test_swin_levels_are_taken_after_the_blocks_as_in_the_authors_code():
    """A level ends after its two Swin blocks, before the next patch merging (paper §3.1; the
    authors' `UNet_encoder.forward`): the skips are the outputs of stages 0-2's blocks, and the
    bottleneck is the final LayerNorm after stage 3's blocks. Pinned with forward hooks."""
    model = build_model("swin_unet", NUM_CLASSES, **DEMO).eval()
    encoder, decoder = model.encoder, model.decoder
    out = {}

    def keep(name):
        def hook(module, inputs, output):
            out[name] = output

        return hook

    def keep_inputs(name):
        def hook(module, inputs):
            out[name] = inputs

        return hook

    hooks = [encoder.patch_embed.register_forward_hook(keep("embed")), encoder.norm.register_forward_hook(keep("norm"))]
    for i, stage in enumerate(encoder.stages):
        hooks.append(stage.downsample.register_forward_hook(keep(f"merge{i}")))
        hooks.append(stage.blocks.register_forward_hook(keep(f"blocks{i}")))
    hooks.append(decoder.expand.register_forward_pre_hook(keep_inputs("bottleneck")))
    for k, level in enumerate(decoder.levels):
        hooks.append(level.register_forward_pre_hook(keep_inputs(f"decoder{k}")))
    with torch.no_grad():
        features = encoder(torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
        decoder(features)
    for hook in hooks:
        hook.remove()
    nhwc = [feature.permute(0, 2, 3, 1) for feature in features]

    assert isinstance(encoder.stages[0].downsample, nn.Identity)
    assert [type(encoder.stages[i].downsample).__name__ for i in (1, 2, 3)] == ["PatchMerging"] * 3
    # The encoder levels: the blocks' outputs of stages 0-2, the LayerNorm of stage 3's blocks.
    expected = [out["blocks0"], out["blocks1"], out["blocks2"], out["norm"]]
    assert all(torch.equal(a, b) for a, b in zip(nhwc, expected, strict=True))
    assert not torch.equal(nhwc[0], out["embed"])  # not before the blocks (Cao et al.)
    assert all(not torch.equal(nhwc[i], out[f"merge{i}"]) for i in (1, 2))
    # Each level's end feeds the next patch merging; the blocks run on the merged tokens.
    assert torch.equal(out["blocks0"], encoder.stages[0].blocks(out["embed"]))
    for i in range(1, 4):
        assert torch.equal(out[f"merge{i}"], encoder.stages[i].downsample(out[f"blocks{i - 1}"]))
        assert torch.equal(out[f"blocks{i}"], encoder.stages[i].blocks(out[f"merge{i}"]))
    assert torch.equal(out["norm"], encoder.norm(out["blocks3"]))
    # The decoder's skips, deepest first, and its bottleneck are exactly those tensors.
    skips = [out[f"decoder{k}"][1] for k in range(3)]
    assert [tuple(skip.shape[1:]) for skip in skips] == [(4, 4, 96), (8, 8, 48), (16, 16, 24)]
    assert all(torch.equal(skip, level) for skip, level in zip(skips, [out["blocks2"], out["blocks1"], out["blocks0"]]))
    assert torch.equal(out["bottleneck"][0], out["norm"])
    # Robustness levels: second-to-last is stage 2's blocks' output (384 @ 14x14 at 224), last the bottleneck.
    assert torch.equal(nhwc[encoder.level_index("second_to_last")], out["blocks2"])
    assert torch.equal(nhwc[encoder.level_index("last")], out["norm"])


# --- Swin at other image sizes ------------------------------------------------------------


@pytest.mark.parametrize(("size", "window"), [(64, 4), (96, 3), (224, 7)])
def test_swin_blocks_see_the_grid_they_were_built_for(size, window):
    """timm's blocks precompute window clamping, shifts and masks for one grid: check every block."""
    model = build_model("swin_unet", NUM_CLASSES, image_size=size, width=0.25, window_size=window).eval()
    seen = {}

    def record(block, inputs):
        seen[block] = tuple(inputs[0].shape[1:3])

    stages = [m for m in model.modules() if isinstance(m, SwinTransformerStage)]
    blocks = [block for stage in stages for block in stage.blocks]
    hooks = [block.register_forward_pre_hook(record) for block in blocks]
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, NUM_CLASSES, size, size)
    for hook in hooks:
        hook.remove()
    assert len(seen) == len(blocks) == 14  # 8 encoder + 6 decoder blocks, as in Cao et al.
    for stage in stages:
        for index, block in enumerate(stage.blocks):
            grid = seen[block]
            assert grid == tuple(block.input_resolution)
            if grid[0] > window:  # tiled by full windows, every second block shifted by half a window
                assert block.window_size == (window, window) and grid[0] % window == 0
                assert block.shift_size == ((0, 0) if index % 2 == 0 else (window // 2, window // 2))
            else:  # covered by one window, no shift
                assert block.window_size == grid and block.shift_size == (0, 0)


def test_swin_refuses_other_input_sizes():
    model = build_model("swin_unet", NUM_CLASSES, **DEMO).eval()
    with pytest.raises(MedsegError, match="built for 64x64"):
        model(torch.randn(1, 3, 96, 96))


@pytest.mark.parametrize(
    ("name", "size", "width", "window", "message"),
    [
        ("swin_unet", 64, 1.0, 7, "window sizes that fit: 2, 4, 8, 16"),
        ("swin_unet", 80, 1.0, 7, "multiple of 32"),
        ("swin_unet", 224, 0.1, 7, "Swin embedding dimension 9.6"),
        ("swin_unet", 224, 1 / 24, 7, "multiple of 3"),
        ("unet", 100, 1.0, 7, "multiple of 16"),
        ("unet", 64, 0.3, 7, "U-Net base width 19.2"),
        ("resnet50_attention_unet", 48, 1.0, 7, "multiple of 32"),
        ("resnet50_attention_unet", 64, 1 / 32, 7, "decoder width 0.5"),
        ("transunet", 224, 1.0, 7, "unknown model"),
    ],
)
def test_impossible_sizes_are_clear_errors(name, size, width, window, message):
    with pytest.raises(MedsegError, match=message):
        build_model(name, NUM_CLASSES, image_size=size, width=width, window_size=window)


# --- training and the frozen encoder -------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_training_step_updates_encoder_and_decoder(name):
    model = build_model(name, NUM_CLASSES, **DEMO).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _train_step(model)
    after = model.state_dict()
    assert not torch.equal(before["decoder.head.weight"], after["decoder.head.weight"])
    changed = [k for k in before if k.startswith("encoder.") and not torch.equal(before[k], after[k])]
    assert len(changed) > len([k for k in before if k.startswith("encoder.")]) // 2


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_frozen_encoder_is_a_fixed_feature_extractor(name):
    model = build_model(name, NUM_CLASSES, **DEMO)
    model.freeze_encoder()
    model.train()
    assert model.training and model.decoder.training
    assert not any(m.training for m in model.encoder.modules())  # BatchNorm and stochastic depth off
    encoder_before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    decoder_before = {k: v.clone() for k, v in model.decoder.state_dict().items()}

    _train_step(model)

    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())
    for key, value in model.encoder.state_dict().items():  # weights and BatchNorm statistics
        assert torch.equal(value, encoder_before[key]), key
    assert any(not torch.equal(v, decoder_before[k]) for k, v in model.decoder.state_dict().items())


def test_frozen_encoder_is_deterministic_in_train_mode():
    """Stochastic depth would make two passes differ; a frozen encoder must not."""
    model = build_model("swin_unet", NUM_CLASSES, **DEMO)
    model.freeze_encoder()
    model.train()
    image = torch.randn(2, 3, 64, 64)
    first, second = model.encoder(image), model.encoder(image)
    assert all(torch.equal(a, b) for a, b in zip(first, second))


# --- encoder files -------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_safetensors_round_trip_is_exact(tmp_path, name):
    source = build_model(name, NUM_CLASSES, **DEMO).train()
    _train_step(source)  # non-trivial weights and BatchNorm statistics
    path = tmp_path / "encoder.safetensors"
    source.encoder.save(path)
    target = build_encoder(name, **DEMO, seed=1)
    target.load(path)
    expected = source.encoder.state_dict()
    loaded = target.state_dict()
    assert loaded.keys() == expected.keys()
    for key in expected:
        assert loaded[key].dtype == expected[key].dtype
        assert torch.equal(loaded[key], expected[key]), key


def test_classifier_and_segmentation_model_load_the_same_file(tmp_path):
    classifier = build_classifier("resnet50_attention_unet", num_classes=10, **DEMO, seed=3).train()
    image = torch.randn(2, 3, 64, 64)
    loss = nn.functional.cross_entropy(classifier(image), torch.tensor([1, 7]))
    loss.backward()
    torch.optim.SGD(classifier.parameters(), lr=0.1).step()
    assert classifier(image).shape == (2, 10)
    path = tmp_path / "encoder.safetensors"
    classifier.encoder.save(path)

    model = build_model("resnet50_attention_unet", NUM_CLASSES, **DEMO, seed=0)
    model.encoder.load(path)
    fresh_classifier = build_classifier("resnet50_attention_unet", num_classes=10, **DEMO, seed=0)
    fresh_classifier.encoder.load(path)
    for module in (model, classifier, fresh_classifier):
        module.eval()
    with torch.no_grad():
        for a, b, c in zip(classifier.encoder(image), model.encoder(image), fresh_classifier.encoder(image)):
            assert torch.equal(a, b) and torch.equal(a, c)


def test_loading_another_encoders_file_names_both(tmp_path):
    path = tmp_path / "encoder.safetensors"
    build_encoder("resnet50_attention_unet", **DEMO).save(path)
    with pytest.raises(MedsegError) as error:
        build_encoder("swin_unet", **DEMO).load(path)
    assert "'resnet50' (width 0.25)" in str(error.value)
    assert "'swin_t' (width 0.25, window size 4)" in str(error.value)
    with pytest.raises(MedsegError, match=r"'resnet50' \(width 0.25\) but this is 'resnet50' \(width 0.5\)"):
        build_encoder("resnet50_attention_unet", image_size=64, width=0.5).load(path)


def test_swin_file_loads_at_another_image_size(tmp_path):
    """Pretraining at 224 and fine-tuning at another size share weights when the window is the same."""
    path = tmp_path / "encoder.safetensors"
    build_encoder("swin_unet", image_size=224, width=0.25, window_size=7).save(path)
    build_encoder("swin_unet", image_size=448, width=0.25, window_size=7, seed=1).load(path)
    with pytest.raises(MedsegError, match="window size 7.*window size 4"):
        build_encoder("swin_unet", **DEMO).load(path)


def test_unreadable_encoder_files(tmp_path):
    encoder = build_encoder("unet", **DEMO)
    with pytest.raises(MedsegError, match="not found"):
        encoder.load(tmp_path / "missing.safetensors")
    (tmp_path / "garbage.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(MedsegError, match="not a readable safetensors file"):
        encoder.load(tmp_path / "garbage.safetensors")
    save_file({"x": torch.zeros(1)}, tmp_path / "foreign.safetensors")
    with pytest.raises(MedsegError, match="not written by medseg"):
        encoder.load(tmp_path / "foreign.safetensors")


# --- initialisation ------------------------------------------------------------------------


def _assert_std(weight: torch.Tensor, expected: float, what: str) -> None:
    # The sample std of n draws is within a few 1/sqrt(2n) of the true one; 10% is generous.
    assert weight.numel() >= 500, what
    assert abs(weight.float().std().item() / expected - 1) < 0.1, what
    assert abs(weight.float().mean().item()) < 0.1 * expected + 4 * expected / math.sqrt(weight.numel()), what


def _assert_norms_and_biases(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0), name
        if isinstance(module, nn.BatchNorm2d):
            assert torch.all(module.running_mean == 0) and torch.all(module.running_var == 1), name
        elif isinstance(getattr(module, "bias", None), nn.Parameter):
            assert torch.all(module.bias == 0), name


@pytest.mark.parametrize("name", ["unet", "resnet50_attention_unet"])
def test_convnet_init_is_he_normal(full_size, name):
    model = full_size[name][0]
    checked = 0
    for layer_name, layer in model.named_modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)) and layer.weight.numel() >= 500:
            if isinstance(layer, nn.ConvTranspose2d):  # kernel 2, stride 2: each output sees in_channels inputs
                fan_in = layer.in_channels
            else:
                fan_in = layer.in_channels * math.prod(layer.kernel_size)
            _assert_std(layer.weight, math.sqrt(2 / fan_in), layer_name)
            checked += 1
    assert checked > 20
    _assert_norms_and_biases(model)  # includes timm's zero-initialised last BatchNorm of each block


def test_swin_init(full_size):
    model = full_size["swin_unet"][0]
    _assert_std(model.encoder.patch_embed.proj.weight, math.sqrt(1 / 3 / 48), "patch embedding")
    _assert_std(model.decoder.final_expand.expand.weight, math.sqrt(1 / 3 / 96), "final patch expanding")
    special = {model.encoder.patch_embed.proj.weight, model.decoder.final_expand.expand.weight}
    checked = 0
    for layer_name, layer in model.named_modules():
        weight = (
            layer.relative_position_bias_table if isinstance(layer, WindowAttention) else getattr(layer, "weight", None)
        )
        if isinstance(layer, (nn.Linear, nn.Conv2d, WindowAttention)) and weight not in special:
            assert weight.abs().max() <= 2, layer_name
            if weight.numel() >= 500:
                _assert_std(weight, 0.02, layer_name)
                checked += 1
    assert checked > 50
    _assert_norms_and_biases(model)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_init_is_seeded(name):
    state = torch.random.get_rng_state()
    first = build_encoder(name, **DEMO, seed=7).state_dict()
    again = build_encoder(name, **DEMO, seed=7).state_dict()
    other = build_encoder(name, **DEMO, seed=8).state_dict()
    in_model = build_model(name, NUM_CLASSES, **DEMO, seed=7).encoder.state_dict()
    in_classifier = build_classifier(name, 10, **DEMO, seed=7).encoder.state_dict()
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random stream is untouched
    for key in first:
        assert torch.equal(first[key], again[key]) and torch.equal(first[key], in_model[key])
        assert torch.equal(first[key], in_classifier[key])
    assert any(not torch.equal(first[key], other[key]) for key in first)


# --- architecture details ----------------------------------------------------------------


def _conv_block(c_in: int, c_out: int) -> int:
    """Two bias-free 3x3 convolutions, each with BatchNorm (weight, bias)."""
    return 9 * c_in * c_out + 2 * c_out + 9 * c_out * c_out + 2 * c_out


def _swin_block(dim: int, heads: int, window: int = 7) -> int:
    """LayerNorm x2 (4d), qkv (3d^2+3d), proj (d^2+d), MLP d->4d->d (8d^2+5d), bias table."""
    return 12 * dim * dim + 13 * dim + (2 * window - 1) ** 2 * heads


def test_parameter_counts(full_size):
    """Expected numbers derived layer by layer from the paper's description, cross-checked with:
    U-Net: milesial/Pytorch-UNet's UNet(3, n, bilinear=False) has the same layers except our extra
    3x3 stem convolution (1,792) and a 64-channel instead of a 3-channel first convolution
    (+35,136); ResNet50: timm/torchvision resnet50 has 25,557,032 parameters, 2,049,000 of them
    in the 1000-class fc layer; Swin U-Net: Cao et al. report 27.17M (HuCaoFighting/Swin-Unet)."""
    c = NUM_CLASSES
    unet, resnet, swin = (full_size[name][0] for name in MODEL_NAMES)

    widths = [64, 128, 256, 512, 1024]
    unet_encoder = 3 * 9 * 64 + 64 + _conv_block(64, 64) + sum(_conv_block(a, b) for a, b in zip(widths, widths[1:]))
    up = [(a, b) for a, b in zip(widths[::-1], widths[::-1][1:])]
    unet_decoder = sum(4 * a * b + b + _conv_block(2 * b, b) for a, b in up) + 64 * c + c
    assert (_count(unet.encoder), _count(unet.decoder)) == (unet_encoder, unet_decoder) == (18_884_096, 12_190_660)

    skips, gates, outs = [1024, 512, 256, 64], [2048, 256, 128, 64], [256, 128, 64, 32]
    attention = sum(4 * s * (s // 2) + g * (s // 2) + s // 2 + s // 2 + 1 for s, g in zip(skips, gates))
    blocks = sum(_conv_block(g + s, o) for s, g, o in zip(skips, gates, outs)) + _conv_block(32, 16)
    resnet_decoder = attention + blocks + 16 * c + c
    assert (_count(resnet.encoder), _count(resnet.decoder)) == (25_557_032 - 2_049_000, resnet_decoder)
    assert resnet_decoder == 12_908_104

    dims, heads = [96, 192, 384, 768], [3, 6, 12, 24]
    swin_encoder = (
        3 * 16 * 96
        + 96
        + 2 * 96  # patch embedding: 4x4 conv, LayerNorm
        + sum(2 * _swin_block(d, h) for d, h in zip(dims, heads))
        + sum(8 * d * d + 8 * d for d in dims[:3])  # patch merging: LayerNorm(4d), 4d->2d
        + 2 * 768  # final LayerNorm
    )
    swin_decoder = (
        768 * 1536
        + 2 * 384  # bottleneck patch expanding
        + sum(2 * d * d + d + 2 * _swin_block(d, h) for d, h in zip(dims[:3], heads[:3]))  # concat linear, blocks
        + sum(2 * d * d + d for d in (384, 192))  # patch expanding
        + 2 * 96
        + 96 * 16 * 96
        + 2 * 96
        + 96 * c  # LayerNorm, final 4x patch expanding, 1x1 projection
    )
    assert (_count(swin.encoder), _count(swin.decoder)) == (swin_encoder, swin_decoder) == (20_413_386, 6_755_034)
    assert round(_count(swin) / 1e6, 2) == 27.17


def test_resnet_encoder_is_standard_resnet50(full_size):
    body = full_size["resnet50_attention_unet"][0].encoder.body
    assert all(m.bias is None for m in body.modules() if isinstance(m, nn.Conv2d))
    assert body.layer4[-1].drop_path.drop_prob == pytest.approx(0.1)
    assert [len(getattr(body, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    # Projection shortcut (1x1 convolution with the stage's stride) only where the shape changes.
    assert [getattr(body, f"layer{i}")[0].downsample[0].stride for i in range(1, 5)] == [(1, 1), (2, 2), (2, 2), (2, 2)]


def test_swin_stochastic_depth_rises_to_0_2(full_size):
    encoder = full_size["swin_unet"][0].encoder
    rates = [block.drop_path1.drop_prob for stage in encoder.stages for block in stage.blocks[1:]]
    assert rates[-1] == pytest.approx(0.2)
    assert rates == sorted(rates)


def test_attention_gate_has_one_coefficient_per_pixel():
    gate = AttentionGate(skip_channels=8, gate_channels=16)
    skip = torch.rand(2, 8, 16, 16) + 0.5
    alpha = gate(skip, torch.randn(2, 16, 8, 8)) / skip
    assert torch.allclose(alpha, alpha[:, :1].expand_as(alpha))
    assert torch.all((alpha > 0) & (alpha < 1))


def test_patch_expanding_unfolds_channels_row_offset_first():
    """Channel (i * scale + j) * out_dim + c of a token becomes channel c of sub-token (i, j)."""
    scale, out_dim = 2, 3
    layer = PatchExpanding(dim=scale * scale * out_dim, scale=scale, out_dim=out_dim)
    nn.init.eye_(layer.expand.weight)
    layer.norm = nn.Identity()
    x = torch.randn(1, 2, 5, scale * scale * out_dim)
    y = layer(x)
    assert y.shape == (1, 4, 10, out_dim)
    for i in range(scale):
        for j in range(scale):
            start = (i * scale + j) * out_dim
            assert torch.equal(y[:, i::scale, j::scale], x[..., start : start + out_dim])


# --- the `medseg models` subcommand --------------------------------------------------------


def _models_cli(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    models_cli.register(parser.add_subparsers())
    args = parser.parse_args(["models", *argv])
    args.run(args)


def test_models_subcommand_lists_models(capsys):
    _models_cli(["--image-size", "64", "--width", "0.25", "--window-size", "4", "--classes", "3"])
    out = capsys.readouterr().out
    for name in MODEL_NAMES:
        assert f"{name}: encoder" in out
    assert "'swin_t' (width 0.25, window size 4), 64x64 input, 3 classes" in out
    assert "192x2x2        last" in out
    assert out.count("second_to_last") == 3


def test_models_subcommand_reports_impossible_sizes():
    with pytest.raises(MedsegError, match="window"):
        _models_cli(["--image-size", "64", "--model", "swin_unet"])
