"""Model inputs from prepared data, exactly as robustness scoring and downstream training see them.

- The input side: the models are built at one image size (paper 224) for ACDC, COVID-QU-Ex and
  folder datasets, whose images are resized to it; IDRiD's input is its tile (`test_tile` in
  dataset.json, paper 224), cut from the resized images, so no resizing happens.
- Pixels: stored values scaled by the split's `value_range` to [0, 1]; grey images repeated to
  three channels; resized bilinearly (antialiased when shrinking, like the preparation's PIL
  resize) when the stored size is not the input size.
- Masks (downstream training): class ids resized nearest-neighbour to the same side (`to_labels`).
- Normalisation: timm's IMAGENET_DEFAULT_MEAN / IMAGENET_DEFAULT_STD on [0, 1] RGB, as in
  pretraining (`medseg.pretrain.recipe`). Augmentations such as the colour jitter
  (`medseg.jitter`) run on the [0, 1] pixels, before `normalise`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from medseg.data.store import Split, read_meta, tiles
from medseg.errors import DataError

# timm.data's IMAGENET_DEFAULT_MEAN / _STD (tests/test_inputs.py checks they are equal), written out
# because importing timm costs about 4 s per process and U-Net jobs need nothing else from it.
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)

WINDOW_COLUMNS = ["image", "y0", "x0", "height", "width"]


def input_size(meta: dict, image_size: int) -> int:
    """The side of the square model input for a prepared dataset: IDRiD's tile, otherwise `image_size`."""
    if meta.get("type") == "idrid":
        return int(meta["test_tile"])
    return int(image_size)


def value_scale(meta: dict, split: str) -> float:
    """What stored values of `split` are divided by to lie in [0, 1] (255 for uint8, 1 for ACDC)."""
    low, high = meta["images"][split]["value_range"]
    if low != 0 or not high > 0:
        raise DataError(f"unexpected value range {[low, high]} of the {split} images in dataset.json")
    return float(high)


def scoring_windows(data: Path, split: str, meta: dict | None = None) -> pd.DataFrame:
    """The samples that robustness scores: one row per window (`WINDOW_COLUMNS`) of `split`.

    For ACDC, COVID-QU-Ex and folder datasets these are the rows of the split's index.parquet,
    in its order. For IDRiD every image of the split is cut into the equal `test_tile` x
    `test_tile` tiles that partition it, exactly as the test split is tiled, in the test split's
    order: image by image (the order of images.npy), then tile rows top to bottom, then tile
    columns left to right. Columns `tile_row` and `tile_col` say which tile a row is.
    """
    data = Path(data)
    meta = read_meta(data) if meta is None else meta
    index = pd.read_parquet(data / split / "index.parquet")
    if meta.get("type") != "idrid":
        return index[WINDOW_COLUMNS].reset_index(drop=True)
    height, width = meta["images"][split]["shape"][1:3]
    layout = tiles((height, width), int(meta["test_tile"]))
    side = int(meta["test_tile"])
    rows = [
        {"image": image, "y0": y0, "x0": x0, "height": side, "width": side, "tile_row": r, "tile_col": c}
        for image in sorted(index["image"].unique())
        for r, c, y0, x0 in layout
    ]
    return pd.DataFrame(rows, columns=[*WINDOW_COLUMNS, "tile_row", "tile_col"])


def read_windows(split: Split, windows: pd.DataFrame) -> np.ndarray:
    """The pixels of some windows as one (B, h, w, C) array (all windows of one size), as stored."""
    crops = [
        split.images[row.image, row.y0 : row.y0 + row.height, row.x0 : row.x0 + row.width]
        for row in windows.itertuples(index=False)
    ]
    return np.stack(crops)


def to_pixels(
    batch: np.ndarray | torch.Tensor, size: int, scale: float, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Stored (B, H, W, C) values to a float32 (B, 3, size, size) RGB batch in [0, 1] on `device`."""
    if isinstance(batch, np.ndarray) and not batch.flags.writeable:
        batch = np.array(batch)  # e.g. a slice of a read-only memory map: torch wants writable memory
    x = torch.as_tensor(batch).to(device)
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"expected (B, H, W, 1 or 3) images, got shape {tuple(x.shape)}")
    x = x.permute(0, 3, 1, 2).float() / scale  # not in place: .float() of float32 shares the caller's memory
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1).contiguous()


def to_labels(masks: np.ndarray | torch.Tensor, size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Stored (B, H, W) class ids to an int64 (B, size, size) batch on `device`, resized nearest-neighbour.

    Nearest at pixel centres (torch's "nearest-exact": output pixel x reads source pixel
    floor((x + 0.5) H / size)), so class ids are only ever copied. PIL's NEAREST, used when
    preparing, agrees except where (x + 0.5) H / size is a whole number, which it rounds down.
    """
    if isinstance(masks, np.ndarray) and not masks.flags.writeable:
        masks = np.array(masks)
    y = torch.as_tensor(masks).to(device)
    if y.ndim != 3 or y.is_floating_point():
        raise ValueError(f"expected integer (B, H, W) masks, got {y.dtype} {tuple(y.shape)}")
    if tuple(y.shape[-2:]) != (size, size):
        # Class ids are exact in float32; nearest sampling only copies them.
        y = F.interpolate(y[:, None].float(), size=(size, size), mode="nearest-exact")[:, 0]
    return y.long()


def normalise(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] RGB (B, 3, H, W) to the encoder's input: (x - ImageNet mean) / ImageNet std, as in pretraining."""
    mean = torch.tensor(IMAGENET_DEFAULT_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_DEFAULT_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
