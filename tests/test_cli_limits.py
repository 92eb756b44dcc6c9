"""One set of limits: every bounded CLI option accepts exactly what the config schema accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medseg.cli import build_parser

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml").read_text())
DATASET = SCHEMA["$defs"]["dataset"]["properties"]
IMAGENET = SCHEMA["properties"]["imagenet"]["properties"]
PREPARE = ["prepare", "{kind}", "--raw", "r", "--out", "o"]

# (schema minimum, argv with {value}, kind)
BOUNDED = [
    (DATASET["size"]["minimum"], ["--size", "{value}"], "acdc"),
    (DATASET["size"]["minimum"], ["--size", "{value}"], "covidqu"),
    (DATASET["size"]["minimum"], ["--size", "{value}", "--classes", "bg", "fg"], "folder"),
    (DATASET["resize"]["items"]["minimum"], ["--resize", "{value}", "{value}"], "idrid"),
    (DATASET["window"]["minimum"], ["--window", "{value}"], "idrid"),
    (DATASET["stride"]["minimum"], ["--stride", "{value}"], "idrid"),
    (DATASET["tile"]["minimum"], ["--tile", "{value}"], "idrid"),
    (IMAGENET["classes"]["minimum"], ["--classes", "{value}"], "imagenet"),
    (IMAGENET["images_per_class"]["minimum"], ["--images-per-class", "{value}"], "imagenet"),
    (IMAGENET["val_images_per_class"]["minimum"], ["--val-images-per-class", "{value}"], "imagenet"),
]


def parses(argv: list[str]) -> bool:
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        return False
    return True


@pytest.mark.parametrize(("minimum", "option", "kind"), BOUNDED, ids=lambda x: str(x))
def test_prepare_option_minimum_equals_schema(minimum, option, kind):
    argv = [part.format(kind=kind) for part in PREPARE]
    assert parses(argv + [part.format(value=minimum) for part in option])
    assert not parses(argv + [part.format(value=minimum - 1) for part in option])


def test_class_names_follow_the_schema_pattern():
    assert DATASET["classes"]["items"]["pattern"] == "^[A-Za-z0-9_]+$"
    argv = [part.format(kind="folder") for part in PREPARE] + ["--classes", "background"]
    assert parses(argv + ["lesion_2"])
    assert not parses(argv + ["lesion-2"])
    assert DATASET["classes"]["uniqueItems"] is True  # prepare_folder refuses repeats (test_prepare_folder)


def test_models_command_refuses_impossible_values():
    assert parses(["models", "--classes", "2"])
    for argv in (["--classes", "1"], ["--classes", "0"], ["--image-size", "0"], ["--width", "0"], ["--window-size", "0"]):
        assert not parses(["models", *argv])
