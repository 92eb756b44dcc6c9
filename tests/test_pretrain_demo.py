"""The demo's pretraining learns: config/demo.yaml's simple recipe on the demo's synthetic ImageNet.

The slowest test of the suite (about half a minute on 2 cores): the U-Net runs the whole demo
chain (its result equals the segmented chain's, see test_pretrain.py), the others two epochs.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from medseg.data.imagenet import prepare_imagenet
from medseg.models import build_encoder
from medseg.pretrain import loop
from medseg.pretrain.distributed import Context
from medseg.pretrain.settings import Job, Settings
from medseg.pretrain.state import save_scratch
from medseg.synth import synthesize

DEMO = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "demo.yaml").read_text())


@pytest.fixture(scope="module")
def demo_imagenet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    synthesize(root / "raw", "demo", only=["imagenet"])
    prepare_imagenet(root / "raw" / "imagenet", root / "imagenet")
    return root / "imagenet"


def pretrain(tmp: Path, data: Path, model: str, epochs: int) -> pd.DataFrame:
    models, pretraining = DEMO["models"], DEMO["pretraining"]
    recipe = pretraining["simple"][model]
    start = tmp / "scratch.safetensors"
    encoder = build_encoder(model, models["image_size"], models["width"], models["window_size"], models["seed"])
    save_scratch(encoder, start, models["seed"])
    settings = Settings(
        model,
        "simple",
        models["image_size"],
        models["width"],
        models["window_size"],
        models["seed"],
        max(pretraining["checkpoints"]),
        recipe["batch"],
        recipe["base_lr"],
        recipe["base_lr_batch"],
        recipe["warmup_epochs"],
        recipe["micro_batch"],
        workers=0,
        threads=1,
    )
    threads = torch.get_num_threads()
    try:
        loop.run(Job(settings, epochs, start, data, tmp / "out", tmp / "history.parquet"), Context())
    finally:
        torch.set_num_threads(threads)
    return pd.read_parquet(tmp / "history.parquet")


def test_unet_pretraining_on_the_demo_is_clearly_above_chance(tmp_path, demo_imagenet):
    history = pretrain(tmp_path, demo_imagenet, "unet", max(DEMO["pretraining"]["checkpoints"]))
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0] - 0.3
    assert history["val_top1"].iloc[-1] >= 0.25  # 10 classes: chance is 0.1


@pytest.mark.parametrize("model", ["resnet50_attention_unet", "swin_unet"])
def test_training_loss_falls_on_the_demo(tmp_path, demo_imagenet, model):
    history = pretrain(tmp_path, demo_imagenet, model, 2)
    assert history["train_loss"].iloc[1] < history["train_loss"].iloc[0]
