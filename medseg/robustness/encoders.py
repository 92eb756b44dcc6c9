"""Open any encoder file robustness can score: the project's own, or a timm ResNet50 state dict.

Two kinds of safetensors file are recognised; nothing is ever unpickled:

- `medseg`: an `encoder.safetensors` written by `Encoder.save` (`medseg init`, `medseg pretrain`).
  Its metadata names the encoder, its width, the Swin window and the image size it was built for.
- `timm-resnet50`: the state dict of a timm `resnet50` (e.g. public ImageNet weights a user
  already has, `timm.create_model("resnet50", pretrained=True).state_dict()` saved with
  `safetensors.torch.save_file`), scored as the encoder of `resnet50_attention_unet`. The
  classifier `fc.*` is ignored; every other tensor must be there, with the shapes of timm's
  resnet50 (the width is read from the first stage, 1 for timm's own model). It records no image
  size: the caller chooses one.

Anything else is refused with one line naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import safe_open

from medseg.errors import MedsegError
from medseg.models.encoder import Encoder
from medseg.models.factory import build_encoder

# Encoder names in medseg metadata -> the model they belong to.
ENCODER_MODELS = {"unet_encoder": "unet", "resnet50": "resnet50_attention_unet", "swin_t": "swin_unet"}
TIMM_RESNET50 = "timm-resnet50"
MEDSEG = "medseg"
# Where timm's resnet50 sits inside ResNet50Encoder, and the keys that are not part of the encoder.
_TIMM_PREFIX = "body."
_TIMM_HEAD = "fc."
_TIMM_FIRST_STAGE = "layer1.0.conv1.weight"
DEFAULT_WINDOW = 7
KINDS_HELP = "a medseg encoder.safetensors, or a timm resnet50 state dict saved as safetensors"


@dataclass(frozen=True)
class EncoderFile:
    """What a file holds, read from its header only (no tensor is loaded)."""

    path: Path
    kind: str
    model: str
    width: float
    window_size: int
    image_size: int | None
    shapes: dict[str, tuple[int, ...]]

    def describe(self) -> str:
        window = f", window {self.window_size}" if self.model == "swin_unet" else ""
        return f"{self.model} encoder (width {self.width:g}{window}; {self.kind} file)"


def inspect(path: Path) -> EncoderFile:
    """Recognise an encoder file by its metadata and tensor names; MedsegError if it is neither kind."""
    path = Path(path)
    try:
        with safe_open(path, framework="pt") as file:
            metadata = file.metadata() or {}
            shapes = {key: tuple(file.get_slice(key).get_shape()) for key in file.keys()}
    except FileNotFoundError:
        raise MedsegError(f"{path}: encoder file not found") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise MedsegError(
            f"{path} is not a safetensors file ({_one_line(error)}); expected {KINDS_HELP} (pickled checkpoints are never loaded)"
        ) from None
    if "encoder" in metadata:
        return _medseg_file(path, metadata, shapes)
    return _timm_file(path, shapes)


def _medseg_file(path: Path, metadata: dict[str, str], shapes: dict[str, tuple[int, ...]]) -> EncoderFile:
    name = metadata["encoder"]
    if name not in ENCODER_MODELS:
        raise MedsegError(
            f"{path} holds an encoder of unknown kind {name!r}; expected one of {', '.join(ENCODER_MODELS)}"
        )
    try:
        width = float(metadata["width"])
        window = int(metadata.get("window_size", DEFAULT_WINDOW))
        image_size = int(metadata["image_size"]) if "image_size" in metadata else None
    except (KeyError, ValueError) as error:
        raise MedsegError(f"{path} has malformed encoder metadata ({_one_line(error)}): {metadata}") from None
    return EncoderFile(path, MEDSEG, ENCODER_MODELS[name], width, window, image_size, shapes)


def _timm_file(path: Path, shapes: dict[str, tuple[int, ...]]) -> EncoderFile:
    unknown = MedsegError(
        f"{path} is an encoder file of unknown kind: no medseg encoder metadata and not a timm resnet50 "
        f"state dict; expected {KINDS_HELP}"
    )
    first = shapes.get(_TIMM_FIRST_STAGE)
    if first is None or len(first) != 4:
        raise unknown
    width = first[0] / 64
    try:
        expected = {
            key.removeprefix(_TIMM_PREFIX): tuple(value.shape)
            for key, value in build_encoder("resnet50_attention_unet", 32, width).state_dict().items()
        }
    except MedsegError:
        raise unknown from None
    body = {key: shape for key, shape in shapes.items() if not key.startswith(_TIMM_HEAD)}
    if body != expected:
        raise MedsegError(f"{unknown} ({_difference(expected, body)})")
    return EncoderFile(path, TIMM_RESNET50, "resnet50_attention_unet", width, DEFAULT_WINDOW, None, shapes)


def load(info: EncoderFile, image_size: int) -> Encoder:
    """The encoder of `info` built for `image_size` inputs, with the file's weights, in eval mode."""
    try:
        encoder = build_encoder(info.model, image_size, info.width, info.window_size)
    except MedsegError as error:
        raise MedsegError(f"{info.path}: cannot build its {info.describe()} for {image_size}x{image_size} inputs: {error}") from None
    if info.kind == MEDSEG:
        wanted = {key: tuple(value.shape) for key, value in encoder.state_dict().items()}
        wrong = [key for key in wanted if key in info.shapes and info.shapes[key] != wanted[key]]
        if wrong and set(wanted) == set(info.shapes) and info.image_size not in (None, image_size):
            # Swin's relative position tables shrink when timm clamps the window to a small token grid.
            raise MedsegError(
                f"{info.path}: its {info.describe()} was built for image size {info.image_size} and does not fit "
                f"{image_size}x{image_size} inputs ({wrong[0]} has shape {list(info.shapes[wrong[0]])}, "
                f"{list(wanted[wrong[0]])} needed); use inputs of the size it was built for"
            )
        if wanted != info.shapes:
            raise MedsegError(f"{info.path} does not hold the tensors of its {info.describe()}: {_difference(wanted, info.shapes)}")
        encoder.load(info.path)
    else:
        with safe_open(info.path, framework="pt") as file:
            tensors = {
                _TIMM_PREFIX + key: file.get_tensor(key) for key in file.keys() if not key.startswith(_TIMM_HEAD)
            }
        encoder.load_state_dict(tensors)
    return encoder.eval()


def open_encoder(path: Path, image_size: int) -> tuple[EncoderFile, Encoder]:
    """`inspect` then `load`."""
    info = inspect(path)
    return info, load(info, image_size)


def _difference(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]) -> str:
    """One line: which tensors are missing, unexpected or of the wrong shape (the first three of each)."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    wrong = sorted(key for key in set(found) & set(expected) if found[key] != expected[key])
    return "; ".join(
        f"{what}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
        for what, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong)) if keys
    )


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())

