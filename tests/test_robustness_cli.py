"""End-to-end tests of `medseg robustness` and `medseg rank` on the tiny prepared datasets."""

from __future__ import annotations

import logging
import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, safe_open, save_file

from medseg.cli import main
from medseg.data.store import open_split
from medseg.errors import MedsegError
from medseg.inputs import normalise, read_windows, scoring_windows, to_pixels
from medseg.jitter import apply_jitter, identity_factors
from medseg.models import build_encoder
from medseg.models.encoder_file import TIMM_RESNET50, inspect, load
from medseg.names import POOLINGS
from medseg.robustness import score as score_module
from medseg.robustness.distances import DISTANCES, robustness
from medseg.robustness.features import representations
from medseg.robustness.score import COLUMNS, RANKME_COLUMNS, jitter_factors, open_dataset, rankme, score_file

LEVELS = ("last", "second_to_last")
N_ACDC = 30  # training slices of the tiny ACDC


@pytest.fixture(scope="module")
def unet_run(prepared, encoder_file, tmp_path_factory):
    """`medseg robustness` of the U-Net on ACDC with --save-features (run once for several tests)."""
    out = tmp_path_factory.mktemp("unet_run")
    rc = main(
        [
            "robustness",
            "--encoder",
            str(encoder_file("unet")),
            "--data",
            str(prepared / "acdc"),
            "--out",
            str(out / "robustness.parquet"),
            "--save-features",
            str(out / "features.safetensors"),
            "--batch",
            "8",
        ]
    )
    assert rc == 0
    return pd.read_parquet(out / "robustness.parquet"), load_file(out / "features.safetensors")


def _table_from_features(features: dict[str, torch.Tensor], margins) -> pd.DataFrame:
    negative = features["negative"]
    rows = []
    for distance, fn in DISTANCES.items():
        for margin in margins:
            for level in LEVELS:
                for pooling in POOLINGS:
                    q, k = features[f"query.{level}.{pooling}"], features[f"key.{level}.{pooling}"]
                    value, mean = robustness(fn(q, k).numpy(), fn(q, k[negative]).numpy(), margin)
                    rows.append(
                        {
                            "distance": distance,
                            "margin": margin,
                            "level": level,
                            "pooled": pooling == "pooled",
                            "robustness": value,
                            "hinge_mean": mean,
                        }
                    )
    return pd.DataFrame(rows)


def _error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("medseg: error:")]
    assert len(lines) == 1
    return lines[0]


def test_every_variant_is_written(unet_run):
    table, _ = unet_run
    assert list(table.columns) == COLUMNS
    assert len(table) == 3 * 5 * 2 * 2
    assert set(table.distance) == {"cosine", "l2", "correlation"}
    assert sorted(set(table.margin)) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert set(table.level) == set(LEVELS) and set(table.pooled) == {True, False}
    assert not table.duplicated(["distance", "margin", "level", "pooled"]).any()
    assert (table.n_images == N_ACDC).all() and (table.seconds > 0).all()
    np.testing.assert_allclose(table.robustness, 1 - table.hinge_mean)
    assert table.pooled.dtype == bool and table.n_images.dtype == np.int64


def test_saved_features_reproduce_the_parquet(unet_run):
    table, features = unet_run
    encoder = build_encoder("unet", 32, 0.25)
    for level in LEVELS:
        channels = encoder.levels[encoder.level_index(level)].channels
        stride = encoder.levels[encoder.level_index(level)].stride
        for view in ("query", "key"):
            assert features[f"{view}.{level}.pooled"].shape == (N_ACDC, channels)
            assert features[f"{view}.{level}.unpooled"].shape == (N_ACDC, channels * (32 // stride) ** 2)
            assert features[f"{view}.{level}.pooled"].dtype == torch.float32
    negative = features["negative"]
    assert negative.dtype == torch.int64 and sorted(negative.tolist()) == list(range(N_ACDC))
    assert not (negative == torch.arange(N_ACDC)).any()
    expected = _table_from_features(features, [0.0, 0.25, 0.5, 0.75, 1.0])
    merged = table.merge(expected, on=["distance", "margin", "level", "pooled"], suffixes=("", "_saved"))
    assert len(merged) == len(table)
    np.testing.assert_allclose(merged.robustness, merged.robustness_saved, rtol=0, atol=1e-9)
    np.testing.assert_allclose(merged.hinge_mean, merged.hinge_mean_saved, rtol=0, atol=1e-9)


def test_saved_rows_follow_the_index_order(prepared, encoder_file, unet_run):
    """Row i is sample i of index.parquet, jittered with the i-th factors: recompute two rows directly."""
    _, features = unet_run
    split = open_split(prepared / "acdc" / "train")
    windows = scoring_windows(prepared / "acdc", "train")
    encoder = load(inspect(encoder_file("unet")), 32)
    query_factors, key_factors = jitter_factors(N_ACDC, 0)
    for i in (0, 17):
        pixels = to_pixels(read_windows(split, windows.iloc[[i]]), 32, 1.0)
        for view, factors in (("query", query_factors), ("key", key_factors)):
            reps = representations(encoder, normalise(apply_jitter(pixels, factors[[i]])))
            for (level, pooling), tensor in reps.items():
                torch.testing.assert_close(features[f"{view}.{level}.{pooling}"][i], tensor[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model", ["unet", "resnet50_attention_unet"])
def test_results_depend_on_the_batch_size_only_through_rounding(prepared, encoder_file, model, capsys):
    """The encoders' float32 outputs for one image differ with the batch shape (other CPU kernels at
    batch 1; the README gives measured differences), so --help promises rounding, not equality."""
    dataset = open_dataset(prepared / "acdc")
    tables = [score_file(encoder_file(model), dataset, batch=batch)[2].table() for batch in (1, 7, 64)]
    for other in tables[1:]:
        np.testing.assert_allclose(other.robustness, tables[0].robustness, rtol=0, atol=1e-5)
    with pytest.raises(SystemExit):
        main(["robustness", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "results depend on these only through floating-point rounding" in text
    assert "robustness values of different batch sizes differ in float32 rounding only" in text
    assert "do not depend" not in text


def test_swin_pooled_features_average_over_space(prepared, encoder_file, tmp_path):
    features_file = tmp_path / "swin.safetensors"
    rc = main(
        [
            "robustness",
            "--encoder",
            str(encoder_file("swin_unet", 64)),
            "--data",
            str(prepared / "acdc"),
            "--out",
            str(tmp_path / "swin.parquet"),
            "--save-features",
            str(features_file),
        ]
    )
    assert rc == 0
    features = load_file(features_file)
    encoder = build_encoder("swin_unet", 64, 0.25, 4)
    for level in LEVELS:
        info = encoder.levels[encoder.level_index(level)]
        side = 64 // info.stride
        for view in ("query", "key"):
            pooled = features[f"{view}.{level}.pooled"]
            unpooled = features[f"{view}.{level}.unpooled"].view(N_ACDC, info.channels, side, side)
            assert pooled.shape == (N_ACDC, info.channels)  # one value per channel, not per token
            torch.testing.assert_close(pooled, unpooled.mean(dim=(2, 3)), atol=1e-6, rtol=1e-5)
    assert side > 1  # the last level still has several tokens at 64


def test_identity_jitter_makes_the_hinge_the_negative_term(prepared, encoder_file, monkeypatch):
    monkeypatch.setattr(score_module, "jitter_factors", lambda n, seed: (identity_factors(n), identity_factors(n)))
    dataset = open_dataset(prepared / "acdc")
    scores = score_file(encoder_file("unet"), dataset, batch=8)[2]
    for positive in scores.positive.values():
        np.testing.assert_allclose(positive, 0.0, atol=1e-5)  # q = k+
    table = scores.table()
    for row in table.itertuples():
        negative = scores.negative_distance[(row.level, "pooled" if row.pooled else "unpooled", row.distance)]
        expected = np.maximum(0.0, row.margin - negative).mean()
        assert row.hinge_mean == pytest.approx(expected, abs=1e-5)


def test_timm_resnet50_state_dict_scores(prepared, tmp_path):
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet50", pretrained=False)
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    path = tmp_path / "resnet50_timm.safetensors"
    save_file(state, path)
    info = inspect(path)
    assert info.kind == TIMM_RESNET50 and info.model == "resnet50_attention_unet" and info.width == 1
    encoder = load(info, 32)
    torch.testing.assert_close(encoder.body.conv1.weight, state["conv1.weight"])
    torch.testing.assert_close(encoder.body.layer4[2].bn3.running_var, state["layer4.2.bn3.running_var"])
    out = tmp_path / "robustness.parquet"
    assert (
        main(
            [
                "robustness",
                "--encoder",
                str(path),
                "--data",
                str(prepared / "acdc"),
                "--out",
                str(out),
                "--image-size",
                "32",
            ]
        )
        == 0
    )
    table = pd.read_parquet(out)
    assert len(table) == 60 and np.isfinite(table.robustness).all()


def test_idrid_scores_the_tiles_of_the_training_images(prepared, encoder_file, tmp_path):
    features_file = tmp_path / "features.safetensors"
    out = tmp_path / "robustness.parquet"
    assert (
        main(
            [
                "robustness",
                "--encoder",
                str(encoder_file("unet")),
                "--data",
                str(prepared / "idrid"),
                "--out",
                str(out),
                "--save-features",
                str(features_file),
                "--batch",
                "64",
            ]
        )
        == 0
    )
    table = pd.read_parquet(out)
    tiles = 2 * 50  # two training images of 5 x 10 tiles of 16 pixels
    assert (table.n_images == tiles).all()
    features = load_file(features_file)
    assert features["query.last.unpooled"].shape == (tiles, 256 * 1 * 1)  # the U-Net at the tile size 16


def test_rank_prints_best_first_and_keeps_every_variant(prepared, encoder_file, unet_run, tmp_path, capsys):
    out = tmp_path / "rank.csv"
    files = [encoder_file("unet"), encoder_file("resnet50_attention_unet")]
    assert (
        main(
            [
                "rank",
                "--data",
                str(prepared / "acdc"),
                *map(str, files),
                "--mode",
                "decoder",
                "--out",
                str(out),
                "--margins",
                "0.25",
                "--batch",
                "16",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "cosine, margin 0.5, second_to_last, pooled" in printed
    ranked = [line.split() for line in printed.splitlines() if re.match(r"\s+\d+\s+[-\d.]+\s+\S", line)]
    assert [int(row[0]) for row in ranked] == [1, 2]
    values = [float(row[1]) for row in ranked]
    assert values == sorted(values, reverse=True)
    table = pd.read_csv(out)
    assert len(table) == 2 * 3 * 2 * 2 * 2  # margins 0.25 and the main variant's 0.5
    main_rows = table[
        (table.distance == "cosine") & (table.margin == 0.5) & (table.level == "second_to_last") & table.pooled
    ]
    by_file = dict(zip(main_rows.encoder, main_rows.robustness))
    assert [row[2] for row in ranked] == sorted(by_file, key=by_file.get, reverse=True)
    # The same seed gives every file the same views: rank's values equal `medseg robustness`'s.
    alone = unet_run[0]
    alone = alone[
        (alone.distance == "cosine") & (alone.margin == 0.5) & (alone.level == "second_to_last") & alone.pooled
    ]
    assert alone.robustness.iloc[0] == pytest.approx(by_file[str(files[0])], abs=1e-6)


# --- failures: one line naming the file, exit status 2 ---------------------------------------


def _unknown_tensors(path):
    save_file({"weight": torch.zeros(2, 2)}, path)


def _unknown_encoder_name(path):
    save_file({"weight": torch.zeros(2, 2)}, path, metadata={"encoder": "vit_b", "width": "1"})


def _pickle(path):
    torch.save({"conv1.weight": torch.zeros(1)}, path)


def _medseg_metadata_other_tensors(path):
    save_file(
        {"weight": torch.zeros(2, 2)}, path, metadata={"encoder": "unet_encoder", "width": "0.25", "image_size": "32"}
    )


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (_unknown_tensors, "unknown kind"),
        (_unknown_encoder_name, "unknown kind 'vit_b'"),
        (_pickle, "not a safetensors file"),
        (_medseg_metadata_other_tensors, "does not hold the tensors"),
    ],
)
def test_unknown_encoder_files_are_refused(prepared, tmp_path, capsys, make, expected):
    path = tmp_path / "encoder.safetensors"
    make(path)
    rc = main(
        ["robustness", "--encoder", str(path), "--data", str(prepared / "acdc"), "--out", str(tmp_path / "r.parquet")]
    )
    assert rc == 2
    line = _error_line(capsys)
    assert str(path) in line and expected in line
    assert not (tmp_path / "r.parquet").exists()


def test_a_dataset_of_one_image_is_refused(prepared, encoder_file, tmp_path, capsys):
    data = tmp_path / "one"
    shutil.copytree(prepared / "acdc", data)
    index = data / "train" / "index.parquet"
    pd.read_parquet(index).iloc[:1].to_parquet(index, index=False)
    encoder = encoder_file("unet")
    rc = main(["robustness", "--encoder", str(encoder), "--data", str(data), "--out", str(tmp_path / "r.parquet")])
    assert rc == 2
    line = _error_line(capsys)
    assert str(index) in line and "at least 2" in line


def test_nan_features_are_refused(prepared, tmp_path, capsys):
    encoder = build_encoder("unet", 32, 0.25)
    with torch.no_grad():
        encoder.stem.weight[0, 0, 0, 0] = float("nan")
    path = tmp_path / "diverged.safetensors"
    encoder.save(path)
    rc = main(
        ["robustness", "--encoder", str(path), "--data", str(prepared / "acdc"), "--out", str(tmp_path / "r.parquet")]
    )
    assert rc == 2
    line = _error_line(capsys)
    assert str(path) in line and "NaN or inf" in line
    assert not (tmp_path / "r.parquet").exists()


def test_rank_names_the_bad_file(prepared, encoder_file, tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    _unknown_tensors(bad)
    rc = main(["rank", "--data", str(prepared / "acdc"), str(encoder_file("unet")), str(bad)])
    assert rc == 2
    assert str(bad) in _error_line(capsys)


def test_swin_at_a_size_its_windows_do_not_fit_is_refused(prepared, encoder_file, tmp_path, capsys):
    # Built at 64 with window 4; at 32 timm clamps the window of the small token grids.
    rc = main(
        [
            "robustness",
            "--encoder",
            str(encoder_file("swin_unet", 64)),
            "--data",
            str(prepared / "acdc"),
            "--out",
            str(tmp_path / "r.parquet"),
            "--image-size",
            "32",
        ]
    )
    assert rc == 2
    line = _error_line(capsys)
    assert str(encoder_file("swin_unet", 64)) in line and "image size 64" in line


def test_missing_dataset_is_refused(encoder_file, tmp_path, capsys):
    rc = main(
        [
            "robustness",
            "--encoder",
            str(encoder_file("unet")),
            "--data",
            str(tmp_path / "nothing"),
            "--out",
            str(tmp_path / "r.parquet"),
        ]
    )
    assert rc == 2
    assert "dataset.json" in _error_line(capsys)


def test_prepared_imagenet_is_refused(prepared, encoder_file, tmp_path, capsys):
    rc = main(
        [
            "robustness",
            "--encoder",
            str(encoder_file("unet")),
            "--data",
            str(prepared / "imagenet"),
            "--out",
            str(tmp_path / "r.parquet"),
        ]
    )
    assert rc == 2
    assert "is prepared ImageNet (an index only); robustness scoring needs a segmentation dataset" in _error_line(
        capsys
    )
    assert not (tmp_path / "r.parquet").exists()


def test_several_datasets_in_one_process_equal_single_runs(prepared, encoder_file, unet_run, tmp_path):
    out = tmp_path / "dataset={dataset}" / "robustness.parquet"
    rc = main(
        [
            "robustness",
            "--encoder",
            str(encoder_file("unet")),
            "--data",
            str(prepared / "covidqu"),
            str(prepared / "acdc"),
            "--out",
            str(out),
            "--batch",
            "8",
        ]
    )
    assert rc == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "dataset=acdc" / "robustness.parquet").drop(columns="seconds"),
        unet_run[0].drop(columns="seconds"),
    )
    assert len(pd.read_parquet(tmp_path / "dataset=covidqu" / "robustness.parquet")) == len(unet_run[0])


def test_rankme_is_written_and_leaves_robustness_unchanged(prepared, encoder_file, unet_run, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    out, ranks = tmp_path / "robustness" / "{dataset}.parquet", tmp_path / "rankme" / "{dataset}.parquet"
    datasets = [str(prepared / "covidqu"), str(prepared / "acdc")]
    base = ["robustness", "--encoder", str(encoder_file("unet")), "--data", *datasets, "--batch", "8"]
    assert main([*base, "--out", str(out), "--rankme", str(ranks)]) == 0
    table = pd.read_parquet(tmp_path / "rankme" / "acdc.parquet")
    assert list(table.columns) == RANKME_COLUMNS and list(table.level) == list(LEVELS)
    encoder = build_encoder("unet", 32, 0.25)
    channels = [encoder.levels[encoder.level_index(level)].channels for level in LEVELS]
    assert list(table.n_features) == channels and (table.n_images == N_ACDC).all()
    assert table.n_images.dtype == np.int64 and table.n_features.dtype == np.int64
    assert ((table.rankme >= 1) & (table.rankme <= np.minimum(N_ACDC, table.n_features))).all()
    assert (table.seconds > 0).all() and table.seconds.nunique() == 1
    # The values are RankMe of the pooled features of the unjittered samples, in one batch here.
    split, windows = open_split(prepared / "acdc" / "train"), scoring_windows(prepared / "acdc", "train")
    pixels = to_pixels(read_windows(split, windows), 32, 1.0)
    features = representations(load(inspect(encoder_file("unet")), 32), normalise(pixels))
    expected = [rankme(features[(level, "pooled")].numpy()) for level in LEVELS]
    np.testing.assert_allclose(table.rankme, expected, rtol=1e-5)
    assert len(pd.read_parquet(tmp_path / "rankme" / "covidqu.parquet")) == len(LEVELS)
    # The third pass changes no robustness value.
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "robustness" / "acdc.parquet").drop(columns="seconds"),
        unet_run[0].drop(columns="seconds"),
    )
    cost = r"rankme: [\d.]+ s for 30 images \(\d+ % of the [\d.]+ s of the two robustness passes\)"
    assert re.search(cost, caplog.text), caplog.text


def test_rankme_needs_the_placeholder_and_its_own_file(prepared, encoder_file, tmp_path, capsys, scored):
    base = ["robustness", "--encoder", str(encoder_file("unet")), "--data", str(prepared / "acdc")]
    out = str(tmp_path / "{dataset}.parquet")
    assert main([*base, str(prepared / "covidqu"), "--out", out, "--rankme", str(tmp_path / "rankme.parquet")]) == 2
    assert "--rankme " + str(tmp_path / "rankme.parquet") + " has no {dataset}, but 2 datasets" in _error_line(capsys)
    assert main([*base, "--out", out, "--rankme", out]) == 2
    assert "is also --out: each needs its own file" in _error_line(capsys)
    assert main([*base, "--out", out, "--rankme", str(tmp_path / "rankme.csv")]) == 2
    assert "rankme.csv: expected a file name ending in .parquet" in _error_line(capsys)
    assert scored == [] and not list(tmp_path.iterdir())


def test_no_third_pass_without_rankme(prepared, encoder_file, tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the RankMe pass ran without --rankme")

    monkeypatch.setattr(score_module, "rankme_pass", fail)
    out = tmp_path / "robustness.parquet"
    assert (
        main(
            [
                "robustness",
                "--encoder",
                str(encoder_file("unet")),
                "--data",
                str(prepared / "covidqu"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert out.exists() and list(tmp_path.iterdir()) == [out]


def test_several_datasets_need_the_placeholder_and_all_exist(prepared, encoder_file, tmp_path, capsys):
    base = ["robustness", "--encoder", str(encoder_file("unet")), "--data", str(prepared / "acdc")]
    assert main([*base, str(prepared / "covidqu"), "--out", str(tmp_path / "r.parquet")]) == 2
    assert "r.parquet has no {dataset}, but 2 datasets are scored" in _error_line(capsys)
    # a missing second dataset is refused before the first is scored
    assert main([*base, str(tmp_path / "nothing"), "--out", str(tmp_path / "{dataset}.parquet")]) == 2
    assert "dataset.json" in _error_line(capsys)
    assert not (tmp_path / "acdc.parquet").exists()


def test_a_folder_as_output_is_refused_before_scoring(prepared, encoder_file, tmp_path, capsys):
    (tmp_path / "acdc.parquet").mkdir()
    rc = main(
        [
            "robustness",
            "--encoder",
            str(encoder_file("unet")),
            "--data",
            str(prepared / "covidqu"),
            str(prepared / "acdc"),
            "--out",
            str(tmp_path / "{dataset}.parquet"),
        ]
    )
    assert rc == 2
    assert "acdc.parquet is a folder; give the path of the file to write" in _error_line(capsys)
    assert not (tmp_path / "covidqu.parquet").exists()


@pytest.fixture
def scored(monkeypatch):
    """Records the encoder files `score_file` is called with (the commands import it when they run)."""
    calls = []
    original = score_module.score_file

    def record(path, *args, **kwargs):
        calls.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(score_module, "score_file", record)
    return calls


def test_an_encoder_that_does_not_fit_a_later_dataset_is_refused_before_scoring(
    prepared, encoder_file, tmp_path, capsys, scored
):
    # ResNet50 built at 32 fits ACDC at 32 but not the IDRiD tile (16; ResNet50 needs a multiple of 32).
    rc = main(
        [
            "robustness",
            "--encoder",
            str(encoder_file("resnet50_attention_unet")),
            "--data",
            str(prepared / "acdc"),
            str(prepared / "idrid"),
            "--out",
            str(tmp_path / "{dataset}.parquet"),
        ]
    )
    assert rc == 2
    line = _error_line(capsys)
    assert str(encoder_file("resnet50_attention_unet")) in line and "16x16 inputs" in line and "multiple of 32" in line
    assert scored == [] and not (tmp_path / "acdc.parquet").exists()


def test_rank_checks_every_file_before_scoring(prepared, encoder_file, tmp_path, capsys, scored):
    empty = tmp_path / "empty.safetensors"
    empty.touch()
    files = [str(encoder_file("unet")), str(encoder_file("resnet50_attention_unet"))]
    base = ["rank", "--data", str(prepared / "acdc"), *files]
    assert main([*base, str(empty)]) == 2
    line = _error_line(capsys)
    assert str(empty) in line and "not a safetensors file" in line
    # a file that cannot load at the dataset's input size (Swin built at 64, scored at 32)
    assert main([*base, str(encoder_file("swin_unet", 64)), "--image-size", "32"]) == 2
    line = _error_line(capsys)
    assert str(encoder_file("swin_unet", 64)) in line and "image size 64" in line
    assert scored == []


def test_rank_checks_its_output_before_scoring(prepared, encoder_file, tmp_path, capsys, scored):
    (tmp_path / "rank.csv").mkdir()
    encoder = encoder_file("unet")
    rc = main(["rank", "--data", str(prepared / "acdc"), str(encoder), "--out", str(tmp_path / "rank.csv")])
    assert rc == 2
    assert "rank.csv is a folder; give the path of the file to write" in _error_line(capsys)
    assert scored == []


def _resave(source, target, change_tensors=lambda t: t, change_metadata=lambda m: m):
    """Copy a safetensors file with its tensors and metadata changed."""
    with safe_open(source, framework="pt") as file:
        metadata = file.metadata()
    save_file(change_tensors(load_file(source)), target, metadata=change_metadata(metadata))


def test_integer_weights_are_refused(prepared, encoder_file, tmp_path, capsys):
    path = tmp_path / "integer.safetensors"
    _resave(encoder_file("unet"), path, lambda t: t | {"stem.weight": t["stem.weight"].to(torch.int64)})
    rc = main(
        ["robustness", "--encoder", str(path), "--data", str(prepared / "acdc"), "--out", str(tmp_path / "r.parquet")]
    )
    assert rc == 2
    line = _error_line(capsys)
    assert str(path) in line and "tensor stem.weight has dtype I64" in line and "floating point" in line
    assert not (tmp_path / "r.parquet").exists()
    # Half precision is a float, and BatchNorm's int64 step counters are not weights.
    half = tmp_path / "half.safetensors"
    _resave(encoder_file("unet"), half, lambda t: {k: v.half() if v.is_floating_point() else v for k, v in t.items()})
    assert "I64" in _dtypes(half).values() and "F16" in _dtypes(half).values()
    assert inspect(half).model == "unet"


def test_integer_weights_of_a_timm_file_are_refused(tmp_path):
    timm = pytest.importorskip("timm")
    state = {key: value.contiguous() for key, value in timm.create_model("resnet50").state_dict().items()}
    state["layer1.0.bn1.running_var"] = state["layer1.0.bn1.running_var"].to(torch.int32)
    path = tmp_path / "resnet50_timm.safetensors"
    save_file(state, path)
    with pytest.raises(MedsegError, match=r"tensor layer1\.0\.bn1\.running_var has dtype I32"):
        inspect(path)


def _dtypes(path) -> dict[str, str]:
    with safe_open(path, framework="pt") as file:
        return {key: file.get_slice(key).get_dtype() for key in file.keys()}


@pytest.mark.parametrize("size", ["100000", "8"])
def test_an_image_size_the_models_do_not_take_is_refused(prepared, encoder_file, tmp_path, capsys, size):
    path = tmp_path / "encoder.safetensors"
    _resave(encoder_file("unet"), path, change_metadata=lambda m: m | {"image_size": size})
    rc = main(
        ["robustness", "--encoder", str(path), "--data", str(prepared / "acdc"), "--out", str(tmp_path / "r.parquet")]
    )
    assert rc == 2
    line = _error_line(capsys)
    assert str(path) in line and f"records image size {size}; the models take 16 to 4096" in line


def test_unknown_metadata_keys_are_ignored(encoder_file, tmp_path):
    path = tmp_path / "encoder.safetensors"
    extra = {"epoch": "0", "seed": "3", "scheme": "scratch"}
    _resave(encoder_file("swin_unet", 64), path, change_metadata=lambda m: m | extra)
    info = inspect(path)
    assert (info.model, info.width, info.window_size, info.image_size) == ("swin_unet", 0.25, 4, 64)
