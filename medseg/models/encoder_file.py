"""Encoder files: recognise, check and load the project's own or a timm ResNet50 state dict.

Two kinds of safetensors file are recognised; nothing is ever unpickled:

- `medseg`: an `encoder.safetensors` written by `Encoder.save` (`medseg init`, `medseg pretrain`).
  Its metadata names the encoder, its width, the Swin window and the image size it was built for.
- `timm-resnet50`: the state dict of a timm `resnet50` (e.g. public ImageNet weights a user
  already has, `timm.create_model("resnet50", pretrained=True).state_dict()` saved with
  `safetensors.torch.save_file`), scored as the encoder of `resnet50_attention_unet`. The
  classifier `fc.*` is ignored; every other tensor must be there, with the shapes of timm's
  resnet50 (the width is read from the first stage, 1 for timm's own model). It records no image
  size: the caller chooses one.

Anything else is refused with one line naming the file, and so is a file of either kind holding
a tensor that is not floating point (BatchNorm's `num_batches_tracked` counters excepted): loading
would cast it silently. A medseg file recording an image size the models do not take
(`medseg.argtypes`: MIN_MODEL_IMAGE_SIZE to MAX_MODEL_IMAGE_SIZE) is refused too. Metadata keys
other than the ones read here are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import safe_open

from medseg import paper
from medseg.argtypes import MAX_MODEL_IMAGE_SIZE, MIN_MODEL_IMAGE_SIZE
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
KINDS_HELP = "a medseg encoder.safetensors, or a timm resnet50 state dict saved as safetensors"
# safetensors dtype names of floating-point tensors start with these (F16, F32, F64, BF16, F8_*).
_FLOAT_DTYPES = ("F", "BF")
# BatchNorm's step counters are int64 in every encoder's state dict.
_COUNTER = "num_batches_tracked"


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
            slices = {key: file.get_slice(key) for key in file.keys()}
            shapes = {key: tuple(tensor.get_shape()) for key, tensor in slices.items()}
            dtypes = {key: tensor.get_dtype() for key, tensor in slices.items()}
    except FileNotFoundError:
        raise MedsegError(f"{path}: encoder file not found") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise MedsegError(
            f"{path} is not a safetensors file ({_one_line(error)}); expected {KINDS_HELP} (pickled checkpoints are never loaded)"
        ) from None
    info = _medseg_file(path, metadata, shapes) if "encoder" in metadata else _timm_file(path, shapes)
    _check_float(path, dtypes)
    return info


def _check_float(path: Path, dtypes: dict[str, str]) -> None:
    """Refuse a weight that is not floating point (loading would cast it to float without a word)."""
    for key, dtype in dtypes.items():
        if not key.endswith(_COUNTER) and not dtype.startswith(_FLOAT_DTYPES):
            raise MedsegError(
                f"{path}: tensor {key} has dtype {dtype}; an encoder's weights must be floating point "
                "(F16, BF16, F32 or F64)"
            )


def _medseg_file(path: Path, metadata: dict[str, str], shapes: dict[str, tuple[int, ...]]) -> EncoderFile:
    name = metadata["encoder"]
    if name not in ENCODER_MODELS:
        raise MedsegError(
            f"{path} holds an encoder of unknown kind {name!r}; expected one of {', '.join(ENCODER_MODELS)}"
        )
    try:
        width = float(metadata["width"])
        window = int(metadata.get("window_size", paper.WINDOW_SIZE))
        image_size = int(metadata["image_size"]) if "image_size" in metadata else None
    except (KeyError, ValueError) as error:
        raise MedsegError(f"{path} has malformed encoder metadata ({_one_line(error)}): {metadata}") from None
    if image_size is not None and not MIN_MODEL_IMAGE_SIZE <= image_size <= MAX_MODEL_IMAGE_SIZE:
        raise MedsegError(
            f"{path} records image size {image_size}; the models take {MIN_MODEL_IMAGE_SIZE} to "
            f"{MAX_MODEL_IMAGE_SIZE} (the file's metadata is damaged or was not written by medseg)"
        )
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
    return EncoderFile(path, TIMM_RESNET50, "resnet50_attention_unet", width, paper.WINDOW_SIZE, None, shapes)


def check_loadable(info: EncoderFile, image_size: int) -> None:
    """MedsegError unless `load(info, image_size)` would succeed; reads no weights.

    Commands call it for every (file, input size) before scoring or training any, so a file that
    does not fit the last dataset is refused before the first result is written.
    """
    _check_shapes(info, image_size, _expected_shapes(info, image_size))


def load(info: EncoderFile, image_size: int) -> Encoder:
    """The encoder of `info` built for `image_size` inputs, with the file's weights, in eval mode."""
    encoder = _build(info, image_size)
    _check_shapes(info, image_size, _shapes(encoder))
    if info.kind == MEDSEG:
        encoder.load(info.path)
    else:
        with safe_open(info.path, framework="pt") as file:
            tensors = {
                _TIMM_PREFIX + key: file.get_tensor(key) for key in file.keys() if not key.startswith(_TIMM_HEAD)
            }
        encoder.load_state_dict(tensors)
    return encoder.eval()


def _build(info: EncoderFile, image_size: int) -> Encoder:
    try:
        return build_encoder(info.model, image_size, info.width, info.window_size)
    except MedsegError as error:
        raise MedsegError(
            f"{info.path}: cannot build its {info.describe()} for {image_size}x{image_size} inputs: {error}"
        ) from None


def _shapes(encoder: Encoder) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in encoder.state_dict().items()}


# Checking many files of one encoder (`medseg rank`, a checkpoint series) builds it once.
_EXPECTED: dict[tuple[str, float, int, int], dict[str, tuple[int, ...]]] = {}


def _expected_shapes(info: EncoderFile, image_size: int) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes of `info`'s encoder built for `image_size` (MedsegError if it cannot be)."""
    key = (info.model, info.width, info.window_size, image_size)
    if key not in _EXPECTED:
        _EXPECTED[key] = _shapes(_build(info, image_size))
    return _EXPECTED[key]


def _check_shapes(info: EncoderFile, image_size: int, wanted: dict[str, tuple[int, ...]]) -> None:
    """MedsegError unless the file's tensors are exactly those of its encoder built for `image_size`."""
    if info.kind != MEDSEG:
        return  # a timm file's shapes were checked by `inspect`; ResNet50's do not depend on the size
    wrong = [key for key in wanted if key in info.shapes and info.shapes[key] != wanted[key]]
    if wrong and set(wanted) == set(info.shapes) and info.image_size not in (None, image_size):
        # Swin's relative position tables shrink when timm clamps the window to a small token grid.
        raise MedsegError(
            f"{info.path}: its {info.describe()} was built for image size {info.image_size} and does not fit "
            f"{image_size}x{image_size} inputs ({wrong[0]} has shape {list(info.shapes[wrong[0]])}, "
            f"{list(wanted[wrong[0]])} needed); use inputs of the size it was built for"
        )
    if wanted != info.shapes:
        raise MedsegError(
            f"{info.path} does not hold the tensors of its {info.describe()}: {_difference(wanted, info.shapes)}"
        )


def resolve_image_size(info: EncoderFile, image_size: int | None) -> int:
    """The model's image size: the option, else the size the file was built for, else the paper's."""
    if image_size is not None:
        return image_size
    return info.image_size if info.image_size is not None else paper.IMAGE_SIZE


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
        for what, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong))
        if keys
    )


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
