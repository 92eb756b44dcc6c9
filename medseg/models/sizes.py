"""Validation of the size knobs (image size, width multiplier, Swin window size)."""

from __future__ import annotations

from medseg.errors import MedsegError


def scaled_width(base: int, width: float, multiple_of: int, what: str) -> int:
    """`base * width` as an int, or a MedsegError if that is not a positive multiple of `multiple_of`."""
    value = base * width
    if value <= 0 or value != int(value) or int(value) % multiple_of:
        expected = "a positive whole number" if multiple_of == 1 else f"a positive multiple of {multiple_of}"
        raise MedsegError(f"width {width:g} gives {what} {value:g}; it must be {expected} (width 1 gives {base})")
    return int(value)


def check_image_size(model: str, image_size: int, multiple_of: int) -> None:
    """Every level must halve exactly, or skip connections would not line up."""
    if image_size <= 0 or image_size % multiple_of:
        raise MedsegError(f"{model} needs an image size that is a multiple of {multiple_of}, got {image_size}")


def check_window_size(image_size: int, grids: list[int], window_size: int) -> None:
    """A Swin window must tile each stage's token grid, or cover it whole.

    timm shrinks a window larger than the grid to the grid (global attention, no shift), as the
    original Swin does; a window that neither divides nor covers the grid would be padded with
    tokens that take part in attention, which the Swin architecture does not define.
    """
    bad = [grid for grid in grids if grid > window_size and grid % window_size]
    if window_size <= 0 or bad:
        fits = sorted(w for w in range(2, max(grids) + 1) if all(grid <= w or grid % w == 0 for grid in grids))
        raise MedsegError(
            f"Swin window size {window_size} does not fit image size {image_size}: the token "
            f"grids are {'/'.join(map(str, grids))} per side and a window must divide each grid "
            f"or be at least as large; window sizes that fit: {', '.join(map(str, fits))}"
        )
