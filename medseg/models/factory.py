"""Build models, encoders and pretraining classifiers by model name, reproducibly from a seed."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from medseg.errors import MedsegError
from medseg.models import MODEL_NAMES
from medseg.models.classifier import EncoderClassifier
from medseg.models.encoder import Encoder
from medseg.models.resnet_attention_unet import AttentionDecoder, ResNet50Encoder
from medseg.models.segmentation import SegmentationModel
from medseg.models.swin_unet import SwinDecoder, SwinEncoder
from medseg.models.unet import UNetDecoder, UNetEncoder


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model: its encoder from the size knobs, its decoder from the encoder."""

    encoder: Callable[[int, float, int], Encoder]
    decoder: Callable[[Encoder, int], nn.Module]


MODELS: dict[str, ModelSpec] = {
    "unet": ModelSpec(lambda size, width, window: UNetEncoder(size, width), UNetDecoder),
    "resnet50_attention_unet": ModelSpec(lambda size, width, window: ResNet50Encoder(size, width), AttentionDecoder),
    "swin_unet": ModelSpec(SwinEncoder, SwinDecoder),
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
