"""Writing a prepared dataset: atomically, never into or over the raw data, never over a user's files.

An output folder is replaced only when it is new, empty, or holds nothing but files that
`medseg prepare` of the same dataset type writes (an earlier output, recognised by its
`dataset.json`, or the leftovers of one after Snakemake removed its outputs before a re-run).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

from medseg.atomic import atomic_dir
from medseg.data.store import IMAGES, INDEX, MASKS, META, write_meta, write_split
from medseg.errors import DataError

SPLIT_FILES = (IMAGES, MASKS, INDEX)


def check_output(raw: Path, out: Path, kind: str, splits: Iterable[str]) -> None:
    """Fail, naming the folder, unless `out` may be (re)placed by `medseg prepare kind`."""
    raw_path, out_path = Path(raw).resolve(), Path(out).resolve()
    if out_path == raw_path or out_path.is_relative_to(raw_path):
        raise DataError(f"--out {out} is inside --raw {raw}; choose an output folder outside the raw release")
    if raw_path.is_relative_to(out_path):
        raise DataError(
            f"--out {out} contains --raw {raw}; replacing it would delete the raw data, "
            "choose an output folder that is not above the raw release"
        )
    if Path.cwd().resolve().is_relative_to(out_path):
        raise DataError(
            f"--out {out} is the current folder or above it; give a new subfolder such as results/data/{kind}"
        )
    if not out_path.exists():
        return
    if not out_path.is_dir():
        raise DataError(f"--out {out} is a file; give a folder (it is created if missing)")
    allowed = {Path(META)} | {Path(split) for split in splits}
    allowed |= {Path(split) / name for split in splits for name in SPLIT_FILES}
    for path in sorted(out_path.rglob("*")):
        relative = path.relative_to(out_path)
        if relative not in allowed or (path.is_dir() and relative.parent != Path(".")) or path.is_symlink():
            raise DataError(
                f"--out {out} holds {path}, which `medseg prepare {kind}` did not write; nothing "
                "was changed. Give a new or empty output folder, or move that folder away yourself"
            )
    meta = out_path / META
    if meta.is_file():
        try:
            previous = json.loads(meta.read_text()).get("type")
        except (ValueError, UnicodeDecodeError, AttributeError):
            previous = None
        if previous != kind:
            raise DataError(
                f"--out {out} holds a prepared {previous or 'unknown'} dataset ({meta}), not {kind}; "
                "nothing was changed. Give another output folder"
            )


def write_prepared(
    raw: Path,
    out: Path,
    splits: Iterable[str],
    prepare_split: Callable[[str], tuple[list, list, list]],
    classes: list[str],
    type: str,
    **meta,
) -> dict[str, int]:
    """Prepare each split with `prepare_split(split) -> (images, masks, rows)` and write the
    dataset atomically, with `dataset.json` holding the classes, split sizes, the images'
    dtype and value range per split, and `meta`.

    `out` is checked first (`check_output`): raw data and a user's files are never replaced.
    """
    splits = list(splits)
    check_output(raw, out, type, splits)
    with atomic_dir(out) as tmp:
        counts, arrays = {}, {}
        for split in splits:
            images, masks, rows = prepare_split(split)
            arrays[split] = write_split(tmp / split, images, masks, rows, classes)
            counts[split] = len(rows)
        write_meta(tmp, type=type, classes=classes, splits=counts, images=arrays, **meta)
    return counts
