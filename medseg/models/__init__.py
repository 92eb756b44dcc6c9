"""Segmentation models whose encoders pretrain as ImageNet classifiers (paper §5.1, Appendix A.1).

Models (`medseg.names.MODEL_NAMES`): `unet` (basic U-Net), `resnet50_attention_unet`, `swin_unet`. Each `SegmentationModel`
has an `.encoder` (an `Encoder`: level features, safetensors I/O) and a `.decoder`;
`EncoderClassifier` wraps the same encoder for pretraining.

The builders are imported lazily so that `medseg --help` does not import torch.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "build_model": "medseg.models.factory",
    "build_encoder": "medseg.models.factory",
    "build_classifier": "medseg.models.factory",
    "Encoder": "medseg.models.encoder",
    "Level": "medseg.models.encoder",
    "EncoderClassifier": "medseg.models.classifier",
    "SegmentationModel": "medseg.models.segmentation",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
