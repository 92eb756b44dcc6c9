"""Build models, encoders and pretraining classifiers by model name, reproducibly from a seed."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from medseg.errors import MedsegError
from medseg.models.classifier import EncoderClassifier
from medseg.models.encoder import Encoder
from medseg.models.segmentation import SegmentationModel
from medseg.names import MODEL_NAMES


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model: its encoder from the size knobs, its decoder from the encoder.

    The classes are named, not imported: the module is imported when the model is built, so a
    U-Net job never imports timm (about 4 s per process).
    """

    module: str
    encoder_class: str
    decoder_class: str
    takes_window: bool = False

    def encoder(self, image_size: int, width: float, window_size: int) -> Encoder:
        build = getattr(importlib.import_module(self.module), self.encoder_class)
        return build(image_size, width, window_size) if self.takes_window else build(image_size, width)

    def decoder(self, encoder: Encoder, num_classes: int) -> nn.Module:
        return getattr(importlib.import_module(self.module), self.decoder_class)(encoder, num_classes)


MODELS: dict[str, ModelSpec] = {
    "unet": ModelSpec("medseg.models.unet", "UNetEncoder", "UNetDecoder"),
    "resnet50_attention_unet": ModelSpec("medseg.models.resnet_attention_unet", "ResNet50Encoder", "AttentionDecoder"),
    "swin_unet": ModelSpec("medseg.models.swin_unet", "SwinEncoder", "SwinDecoder", takes_window=True),
}
assert tuple(MODELS) == MODEL_NAMES

# Separate random streams per part, so an encoder is the same whether built alone or in a model.
_ENCODER_STREAM, _DECODER_STREAM, _HEAD_STREAM = range(3)


@contextlib.contextmanager
def _seeded(seed: int, stream: int) -> Iterator[None]:
    """Seed torch for the block and restore the caller's random state afterwards."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(np.random.SeedSequence([seed, stream]).generate_state(1)[0]))
        yield


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise MedsegError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)}")
    return MODELS[name]


def build_encoder(name: str, image_size: int = 224, width: float = 1.0, window_size: int = 7, seed: int = 0) -> Encoder:
    """The encoder of model `name`, initialised from `seed`.

    width multiplies the model's widths (1 = the paper's); window_size is Swin's attention window
    and is ignored by the convolutional models.
    """
    spec = _spec(name)
    with _seeded(seed, _ENCODER_STREAM):
        return spec.encoder(image_size, width, window_size)


def build_model(
    name: str, num_classes: int, image_size: int = 224, width: float = 1.0, window_size: int = 7, seed: int = 0
) -> SegmentationModel:
    """Segmentation model `name` with `num_classes` output channels; its encoder equals `build_encoder`'s."""
    encoder = build_encoder(name, image_size, width, window_size, seed)
    with _seeded(seed, _DECODER_STREAM):
        decoder = _spec(name).decoder(encoder, num_classes)
    return SegmentationModel(name, encoder, decoder, num_classes)


def build_classifier(
    name: str, num_classes: int = 1000, image_size: int = 224, width: float = 1.0, window_size: int = 7, seed: int = 0
) -> EncoderClassifier:
    """The pretraining classifier for model `name`'s encoder; its encoder equals `build_encoder`'s."""
    encoder = build_encoder(name, image_size, width, window_size, seed)
    with _seeded(seed, _HEAD_STREAM):
        return EncoderClassifier(encoder, num_classes)
