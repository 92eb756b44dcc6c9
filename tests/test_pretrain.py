"""Pretraining segments in-process on the tiny ImageNet: equal however cut, identity checks, failures, init."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from medseg.cli import main
from medseg.errors import MedsegError
from medseg.finite import NonFinite
from medseg.models import build_encoder
from medseg.pretrain import loop
from medseg.pretrain.distributed import Context
from medseg.pretrain.settings import Settings
from medseg.signals import StopSignals

# 24 training images of 4 classes: batch 8 = 2 accumulated micro-batches of 4, 3 updates per epoch.
TINY = dict(
    image_size=32,
    width=0.25,
    window_size=4,
    seed=0,
    planned_epochs=3,
    batch=8,
    base_lr=0.002,
    base_lr_batch=8,
    warmup_epochs=1,
    micro_batch=4,
    workers=0,
    threads=1,
)


def scratch(tmp: Path, model: str) -> Path:
    path = tmp / "scratch" / model / "encoder.safetensors"
    if not path.exists():
        assert (
            main(
                [
                    "init",
                    "--model",
                    model,
                    "--image-size",
                    "32",
                    "--width",
                    "0.25",
                    "--window-size",
                    "4",
                    "--out",
                    str(path),
                ]
            )
            == 0
        )
    return path


def job(tmp: Path, data: Path, name: str, epoch: int, start: Path, **changes) -> loop.Job:
    settings = Settings(**(dict(model="unet", scheme="simple") | TINY | changes))
    return loop.Job(
        settings,
        epoch,
        start,
        data,
        tmp / name / f"epoch={epoch}",
        tmp / "history" / name / f"epoch={epoch}" / "history.parquet",
    )


def train(j: loop.Job) -> loop.Job:
    threads = torch.get_num_threads()
    try:
        loop.run(j, Context())
    finally:
        torch.set_num_threads(threads)
    return j


def tensors(j: loop.Job) -> dict[str, torch.Tensor]:
    return load_file(j.out / "encoder.safetensors")


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    different = [key for key in a if not torch.equal(a[key], b[key])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def imagenet(prepared) -> Path:
    return prepared / "imagenet"


@pytest.mark.parametrize(("model", "scheme"), [("unet", "simple"), ("swin_unet", "advanced")])
def test_segments_equal_one_job_bit_for_bit(tmp_path, imagenet, model, scheme):
    start = scratch(tmp_path, model)
    whole = train(job(tmp_path, imagenet, "whole", 2, start, model=model, scheme=scheme))
    first = train(job(tmp_path, imagenet, "cut", 1, start, model=model, scheme=scheme))
    # the second segment also uses loader workers: the random draws do not depend on them
    second = train(job(tmp_path, imagenet, "cut", 2, first.out / "state.pt", model=model, scheme=scheme, workers=2))
    assert_same_tensors(tensors(whole), tensors(second))
    assert not torch.equal(
        tensors(whole)["stem.weight" if model == "unet" else "patch_embed.proj.weight"],
        load_file(start)["stem.weight" if model == "unet" else "patch_embed.proj.weight"],
    )
    whole_state = torch.load(whole.out / "state.pt", weights_only=True)
    cut_state = torch.load(second.out / "state.pt", weights_only=True)
    assert_same_tensors(whole_state["model"], cut_state["model"])
    assert whole_state["epoch"] == 2 and whole_state["update"] == 0
    history = pd.read_parquet(whole.history)
    assert list(history.columns) == list(loop.HISTORY_COLUMNS) and history["train_epoch"].tolist() == [1, 2]
    cut = pd.concat([pd.read_parquet(first.history), pd.read_parquet(second.history)], ignore_index=True)
    columns = ["train_epoch", "lr", "train_loss", "val_loss", "val_top1", "val_top5"]
    pd.testing.assert_frame_equal(history[columns], cut[columns])
    assert not (whole.out / "resume.pt").exists()
    # the chain's histories read as one table, the checkpoint from the path
    table = pd.read_parquet(tmp_path / "history" / "cut")
    assert sorted(table["epoch"].astype(int)) == [1, 2]


def test_both_schemes_start_from_the_scratch_encoder(tmp_path, imagenet):
    start = scratch(tmp_path, "resnet50_attention_unet")
    expected = build_encoder("resnet50_attention_unet", 32, 0.25, seed=0).state_dict()
    assert_same_tensors(load_file(start), dict(expected))
    for scheme in ("simple", "advanced"):
        j = job(tmp_path, imagenet, scheme, 1, start, model="resnet50_attention_unet", scheme=scheme, planned_epochs=2)
        segment = loop.Segment(j, Context(), StopSignals())
        assert_same_tensors(dict(segment.model.encoder.state_dict()), load_file(start))


def test_a_resume_file_continues_to_the_same_weights(tmp_path, imagenet, monkeypatch):
    start = scratch(tmp_path, "unet")
    reference = train(job(tmp_path, imagenet, "reference", 2, start))
    interrupted = job(tmp_path, imagenet, "interrupted", 2, start, resume_minutes=0)
    finish = loop.Segment._finish_epoch

    def crash_in_epoch_2(self, position, epoch):
        if epoch == 2:
            raise RuntimeError("killed")
        return finish(self, position, epoch)

    monkeypatch.setattr(loop.Segment, "_finish_epoch", crash_in_epoch_2)
    with pytest.raises(RuntimeError, match="killed"):
        train(interrupted)
    resume = interrupted.out / "resume.pt"
    assert resume.is_file() and not (interrupted.out / "state.pt").exists()
    monkeypatch.setattr(loop.Segment, "_finish_epoch", finish)
    train(interrupted)
    assert_same_tensors(tensors(reference), tensors(interrupted))
    assert not resume.exists()
    resumed = pd.read_parquet(interrupted.history)
    assert resumed["train_epoch"].tolist() == [1, 2]
    assert resumed["train_loss"].tolist() == pd.read_parquet(reference.history)["train_loss"].tolist()


def test_a_stale_resume_file_is_ignored(tmp_path, imagenet, caplog):
    start = scratch(tmp_path, "unet")
    j = job(tmp_path, imagenet, "stale", 1, start, planned_epochs=2)
    j.out.mkdir(parents=True)
    torch.save(
        {"format": "medseg-pretrain-state/1", "identity": {"model": "other"}, "segment": {}}, j.out / "resume.pt"
    )
    train(j)
    assert "ignoring the resume file" in caplog.text and (j.out / "state.pt").is_file()


def test_a_state_of_another_configuration_is_refused(tmp_path, imagenet):
    start = scratch(tmp_path, "unet")
    first = train(job(tmp_path, imagenet, "a", 1, start))
    state = first.out / "state.pt"
    for change, named in [
        ({"scheme": "advanced"}, "scheme simple (this run: advanced)"),
        ({"seed": 1}, "seed 0 (this run: 1)"),
        ({"base_lr": 0.001}, "lr 0.002 (this run: 0.001)"),
    ]:
        with pytest.raises(MedsegError, match=r"a/epoch=1/state.pt was written by a different") as error:
            train(job(tmp_path, imagenet, "b", 2, state, **change))
        assert named in str(error.value)
    with pytest.raises(MedsegError, match="unet.*resnet50"):
        train(job(tmp_path, imagenet, "b", 2, state, model="resnet50_attention_unet"))


def test_missing_corrupt_and_foreign_starts_are_refused(tmp_path, imagenet):
    missing = tmp_path / "nothing" / "state.pt"
    with pytest.raises(MedsegError, match=f"{missing}: pretraining state not found"):
        train(job(tmp_path, imagenet, "x", 2, missing))
    corrupt = tmp_path / "corrupt" / "state.pt"
    corrupt.parent.mkdir()
    corrupt.write_bytes(b"not a state")
    with pytest.raises(MedsegError, match=f"{corrupt} is not a readable pretraining state"):
        train(job(tmp_path, imagenet, "x", 2, corrupt))
    swin = scratch(tmp_path, "swin_unet")
    with pytest.raises(MedsegError, match=f"{swin} was saved from encoder 'swin_t'"):
        train(job(tmp_path, imagenet, "x", 1, swin))
    with pytest.raises(MedsegError, match="initialised for image size 32 but this run uses 64"):
        train(job(tmp_path, imagenet, "x", 1, scratch(tmp_path, "unet"), image_size=64))


def test_a_segmentation_dataset_is_refused_as_imagenet(tmp_path, prepared):
    with pytest.raises(MedsegError, match="holds a prepared covidqu dataset, not ImageNet"):
        train(job(tmp_path, prepared / "covidqu", "x", 1, scratch(tmp_path, "unet")))


def assert_nothing_written(j: loop.Job) -> None:
    assert not (j.out / "state.pt").exists() and not (j.out / "encoder.safetensors").exists()
    assert not j.history.exists()


def test_a_non_finite_loss_stops_without_a_checkpoint(tmp_path, imagenet):
    j = job(tmp_path, imagenet, "nan", 2, scratch(tmp_path, "unet"), base_lr=1e30, warmup_epochs=0)
    with pytest.raises(NonFinite, match=r"non-finite training loss .* at epoch \d+, update \d+ of 3"):
        train(j)
    assert_nothing_written(j)


def test_a_learning_rate_that_breaks_only_the_statistics_stops_without_a_checkpoint(tmp_path, imagenet):
    # At this learning rate the training loss stays finite (about 1e13, then 1e21) while the BatchNorm
    # running variances overflow: validation gave NaN and the checkpoint was written, exit 0.
    j = job(tmp_path, imagenet, "huge", 2, scratch(tmp_path, "unet"), base_lr=3e4, warmup_epochs=0)
    with pytest.raises(NonFinite, match=r"at epoch \d, update \d of 3 .*lower the learning rate|after epoch \d"):
        train(j)
    assert_nothing_written(j)


def test_a_non_finite_validation_loss_stops_without_a_checkpoint(tmp_path, imagenet, monkeypatch):
    monkeypatch.setattr(loop.Segment, "_validate", lambda self: (float("nan"), 0.0, 0.0))
    j = job(tmp_path, imagenet, "val", 1, scratch(tmp_path, "unet"))
    with pytest.raises(NonFinite, match=r"non-finite validation loss \(nan\) after epoch 1; stopped without"):
        train(j)
    assert_nothing_written(j)


def test_too_few_images_for_a_batch(tmp_path, imagenet):
    with pytest.raises(MedsegError, match="24 training images do not fill one batch of 32"):
        train(job(tmp_path, imagenet, "big", 1, scratch(tmp_path, "unet"), batch=32))


def test_init_is_reproducible_and_the_cli_runs_a_segment(tmp_path, imagenet, capsys):
    a, b = scratch(tmp_path / "a", "unet"), scratch(tmp_path / "b", "unet")
    assert_same_tensors(load_file(a), load_file(b))
    out = tmp_path / "cli" / "epoch=1"
    args = [
        "pretrain",
        "--model",
        "unet",
        "--scheme",
        "simple",
        "--epoch",
        "1",
        "--start",
        str(a),
        "--data",
        str(imagenet),
        "--out",
        str(out),
        "--history",
        str(tmp_path / "cli_history.parquet"),
        "--image-size",
        "32",
        "--width",
        "0.25",
        "--planned-epochs",
        "2",
        "--batch",
        "8",
        "--micro-batch",
        "8",
        "--warmup-epochs",
        "0",
        "--workers",
        "0",
        "--threads",
        "1",
    ]
    assert main(args) == 0
    assert (out / "encoder.safetensors").is_file() and (out / "state.pt").is_file()
    from_state = [*args[:8], str(out / "state.pt"), *args[9:]]
    elsewhere = [*from_state[:12], str(tmp_path / "cli" / "again"), *from_state[13:]]
    assert main(elsewhere) == 2  # a start at epoch 1 cannot reach epoch 1
    assert "must start from an earlier one" in capsys.readouterr().err
    saved = (out / "state.pt").read_bytes()
    assert main([*from_state[:6], "2", *from_state[7:]]) == 2  # --out is the folder of --start
    assert (
        f"--out {out} is the folder of --start {out / 'state.pt'}: checkpoint 2 would replace"
        in capsys.readouterr().err
    )
    assert (out / "state.pt").read_bytes() == saved


def test_the_encoder_files_record_their_checkpoint_and_still_load_anywhere(tmp_path, imagenet):
    from medseg.models.encoder_file import open_encoder
    from medseg.pretrain.state import SCRATCH

    start = scratch(tmp_path, "unet")
    first = train(job(tmp_path, imagenet, "a", 1, start, planned_epochs=2))
    checkpoint = first.out / "encoder.safetensors"
    assert build_encoder("unet", 32, 0.25).load(start) == {
        "encoder": "unet_encoder",
        "width": "0.25",
        "image_size": "32",
        "scheme": SCRATCH,
        "epoch": "0",
        "seed": "0",
    }
    # the descriptive keys do not stop robustness, downstream training or a model from loading them
    assert (
        build_encoder("unet", 64, 0.25).load(checkpoint).items()
        >= {"scheme": "simple", "epoch": "1", "seed": "0"}.items()
    )
    info, encoder = open_encoder(checkpoint, 32)
    assert info.model == "unet" and torch.equal(encoder.state_dict()["stem.weight"], tensors(first)["stem.weight"])
    # a file without them (older medseg, or an encoder saved by hand) loads too
    plain = tmp_path / "plain.safetensors"
    build_encoder("unet", 32, 0.25).save(plain)
    build_encoder("unet", 32, 0.25).load(plain)
    open_encoder(plain, 32)
    with pytest.raises(ValueError, match="not descriptive encoder metadata"):
        build_encoder("unet", 32, 0.25).save(plain, about={"width": "1"})


def test_a_first_segment_starts_only_from_the_scratch_encoder_of_its_seed(tmp_path, imagenet):
    start = scratch(tmp_path, "unet")
    first = train(job(tmp_path, imagenet, "a", 1, start, planned_epochs=3))
    checkpoint = first.out / "encoder.safetensors"
    # checkpoint 1's encoder as the start of checkpoint 3 would train 3 epochs from epoch 0 with two warmups
    with pytest.raises(
        MedsegError,
        match=rf"{checkpoint} is the encoder of checkpoint 1 \(simple scheme\), not a "
        rf"scratch encoder: continue from that checkpoint's {first.out / 'state.pt'}",
    ):
        train(job(tmp_path, imagenet, "b", 3, checkpoint, planned_epochs=3))
    other_seed = tmp_path / "seed1" / "encoder.safetensors"
    assert (
        main(
            [
                "init",
                "--model",
                "unet",
                "--image-size",
                "32",
                "--width",
                "0.25",
                "--seed",
                "1",
                "--out",
                str(other_seed),
            ]
        )
        == 0
    )
    with pytest.raises(
        MedsegError,
        match=rf"{other_seed} is the scratch encoder of seed 1 but this run uses seed 0: "
        r"start from the file of `medseg init --seed 0`",
    ):
        train(job(tmp_path, imagenet, "b", 1, other_seed, planned_epochs=3))
    plain = tmp_path / "plain.safetensors"
    build_encoder("unet", 32, 0.25).save(plain)  # the right weights, but nothing says they are epoch 0 of seed 0
    with pytest.raises(
        MedsegError, match=rf"{plain} does not record that it is a scratch encoder .* `medseg init --seed 0`"
    ):
        train(job(tmp_path, imagenet, "b", 1, plain, planned_epochs=3))
    assert not (tmp_path / "b").exists()


def test_outputs_are_checked_before_the_first_batch(tmp_path, imagenet, monkeypatch, capsys):
    def no_training(*_):
        raise AssertionError("trained before checking the outputs")

    monkeypatch.setattr(loop.Segment, "_train_epoch", no_training)
    start = scratch(tmp_path, "unet")
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    base = [
        "pretrain",
        "--model",
        "unet",
        "--scheme",
        "simple",
        "--epoch",
        "1",
        "--image-size",
        "32",
        "--width",
        "0.25",
        "--start",
        str(start),
        "--data",
        str(imagenet),
        "--planned-epochs",
        "2",
        "--batch",
        "8",
        "--micro-batch",
        "4",
        "--warmup-epochs",
        "0",
        "--workers",
        "0",
        "--threads",
        "1",
    ]
    out, history = tmp_path / "out", tmp_path / "history.parquet"
    for outputs, message in [
        (["--out", str(a_file), "--history", str(history)], f"{a_file} is a file; give a folder to write into"),
        (
            ["--out", "/proc/x", "--history", str(history)],
            "cannot write in /proc (the nearest existing folder of /proc/x)",
        ),
        (
            ["--out", str(out), "--history", str(tmp_path)],
            f"{tmp_path} is a folder; give the path of the file to write",
        ),
        (["--out", str(out), "--history", "/proc/x/history.parquet"], "cannot write in /proc"),
    ]:
        assert main([*base, *outputs]) == 2, outputs
        assert f"medseg: error: {message}" in capsys.readouterr().err
    (out / "state.pt").mkdir(parents=True)  # a folder where a file goes
    assert main([*base, "--out", str(out), "--history", str(history)]) == 2
    assert f"{out / 'state.pt'} is a folder" in capsys.readouterr().err
    assert not (out / "encoder.safetensors").exists() and not history.exists()
    # and in-process (the same check), before any data is read
    with pytest.raises(MedsegError, match="is a folder; give the path of the file to write"):
        train(loop.Job(Settings(model="unet", scheme="simple", **TINY), 1, start, tmp_path / "no_data", out, history))
    assert main(["init", "--model", "unet", "--out", str(tmp_path)]) == 2
    assert f"{tmp_path} is a folder; give the path of the file to write" in capsys.readouterr().err
