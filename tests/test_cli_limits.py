"""One set of limits: every bounded CLI option accepts exactly what the config schema accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medseg.argtypes import MAX_MODEL_IMAGE_SIZE, MIN_MODEL_IMAGE_SIZE
from medseg.cli import build_parser

SCHEMA = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml").read_text()
)
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
    for argv in (
        ["--classes", "1"],
        ["--classes", "0"],
        ["--image-size", "0"],
        ["--width", "0"],
        ["--window-size", "0"],
    ):
        assert not parses(["models", *argv])


MODELS = SCHEMA["properties"]["models"]["properties"]
RECIPE = SCHEMA["$defs"]["recipe"]["properties"]
CHECKPOINT_MINIMUM = SCHEMA["properties"]["pretraining"]["properties"]["checkpoints"]["items"]["minimum"]
PRETRAIN = [
    "pretrain",
    "--model",
    "unet",
    "--scheme",
    "simple",
    "--epoch",
    "1",
    "--start",
    "s",
    "--data",
    "d",
    "--out",
    "o",
    "--history",
    "h",
    "--planned-epochs",
    "2",
]


@pytest.mark.parametrize(
    ("minimum", "option"),
    [
        (MODELS["image_size"]["minimum"], "--image-size"),
        (MODELS["window_size"]["minimum"], "--window-size"),
        (MODELS["seed"]["minimum"], "--seed"),
        (CHECKPOINT_MINIMUM, "--epoch"),
        (CHECKPOINT_MINIMUM, "--planned-epochs"),
        (RECIPE["batch"]["minimum"], "--batch"),
        (RECIPE["micro_batch"]["minimum"], "--micro-batch"),
        (RECIPE["base_lr_batch"]["minimum"], "--base-lr-batch"),
        (RECIPE["warmup_epochs"]["minimum"], "--warmup-epochs"),
        (RECIPE["workers"]["minimum"], "--workers"),
    ],
)
def test_pretrain_option_minimum_equals_schema(minimum, option):
    assert parses(PRETRAIN + [option, str(minimum)])
    assert not parses(PRETRAIN + [option, str(minimum - 1)])


@pytest.mark.parametrize(("key", "option"), [(MODELS["width"], "--width"), (RECIPE["base_lr"], "--base-lr")])
def test_pretrain_positive_numbers_equal_schema(key, option):
    assert key["exclusiveMinimum"] == 0
    assert parses(PRETRAIN + [option, "0.001"]) and not parses(PRETRAIN + [option, "0"])


def test_models_image_size_minimum_equals_schema():
    minimum = MODELS["image_size"]["minimum"]
    assert parses(["models", "--image-size", str(minimum)]) and not parses(["models", "--image-size", str(minimum - 1)])


def test_resume_minutes_minimum_equals_schema():
    assert SCHEMA["properties"]["pretraining"]["properties"]["resume_minutes"]["minimum"] == 0
    assert parses(PRETRAIN + ["--resume-minutes", "0"]) and not parses(PRETRAIN + ["--resume-minutes", "-1"])


DOWNSTREAM = SCHEMA["properties"]["downstream"]["properties"]
TRAIN = [
    "train",
    "--data",
    "d",
    "--encoder",
    "e.safetensors",
    "--model",
    "unet",
    "--scores",
    "s.parquet",
    "--history",
    "h.parquet",
]


@pytest.mark.parametrize(
    ("minimum", "option"),
    [
        (DOWNSTREAM["epochs"]["minimum"], "--epochs"),
        (DOWNSTREAM["batch"]["minimum"], "--batch"),
        (DOWNSTREAM["seeds"]["items"]["minimum"], "--seed"),
        (DOWNSTREAM["eval_every"]["minimum"], "--eval-every"),
        (DOWNSTREAM["resume_minutes"]["minimum"], "--resume-minutes"),
    ],
)
def test_train_option_minimum_equals_schema(minimum, option):
    assert parses(TRAIN + [option, str(minimum)])
    assert not parses(TRAIN + [option, str(minimum - 1)])


def test_train_learning_rate_is_positive_as_in_the_schema():
    assert DOWNSTREAM["lr"]["exclusiveMinimum"] == 0
    assert parses(TRAIN + ["--lr", "0.001"]) and not parses(TRAIN + ["--lr", "0"])


def test_train_accepts_both_modes_only():
    assert parses(TRAIN + ["--mode", "full", "decoder"]) and not parses(TRAIN + ["--mode", "encoder"])


ROBUSTNESS = ["robustness", "--encoder", "e.safetensors", "--data", "d", "--out", "r.parquet"]
RANK = ["rank", "--data", "d", "e.safetensors"]


@pytest.mark.parametrize("command", [["models"], PRETRAIN, TRAIN, ROBUSTNESS, RANK], ids=lambda command: command[0])
def test_every_image_size_option_has_the_schema_limits(command):
    """One pair of constants bounds every --image-size, the schema's models.image_size and the encoder files."""
    assert (MODELS["image_size"]["minimum"], MODELS["image_size"]["maximum"]) == (
        MIN_MODEL_IMAGE_SIZE,
        MAX_MODEL_IMAGE_SIZE,
    )
    for size, accepted in (
        (MIN_MODEL_IMAGE_SIZE - 1, False),
        (MIN_MODEL_IMAGE_SIZE, True),
        (MAX_MODEL_IMAGE_SIZE, True),
        (MAX_MODEL_IMAGE_SIZE + 1, False),
    ):
        assert parses([*command, "--image-size", str(size)]) == accepted, size
