"""The Snakemake DAG: dry run of the demo, a real run of the data rules, config validation."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
import yaml
from PIL import Image

from medseg import names, paper
from medseg.data.store import open_split

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

TINY_RECIPE = {"batch": 4, "micro_batch": 4, "base_lr": 0.002, "base_lr_batch": 4, "warmup_epochs": 1, "workers": 0}
TINY_CONFIG = {
    "synthetic": {"preset": "tiny", "seed": 0},
    "datasets": {
        "acdc": {"type": "acdc", "raw": "results/raw/acdc", "size": 32},
        "covidqu": {"type": "covidqu", "raw": "results/raw/covidqu", "size": 32},
        "idrid": {
            "type": "idrid",
            "raw": "results/raw/idrid",
            "resize": [80, 160],
            "window": 32,
            "stride": 8,
            "tile": 16,
        },
    },
    "imagenet": {"raw": "results/raw/imagenet", "classes": 3, "images_per_class": 4},
    # One model and two checkpoints keep the pretraining jobs (a process start each) few.
    "models": {"names": ["unet"], "image_size": 32, "width": 0.25, "window_size": 4, "seed": 0},
    "pretraining": {
        "checkpoints": [1, 2],
        "simple": {"unet": TINY_RECIPE},
        "advanced": {"unet": TINY_RECIPE},
    },
    # One job per encoder file (5) scores it on every dataset, one trains it on every dataset, both
    # modes and one seed for one epoch.
    "downstream": {"epochs": 1, "batch": 4, "seeds": [0]},
    "one_job_per_encoder": True,
}


def snakemake(workdir: Path, config: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's Snakefile in `workdir`; stdout holds its whole log.

    `timeout` (seconds) guards a run that could hang: TimeoutExpired fails the test.
    """
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [
            str(BIN / "snakemake"),
            "--snakefile",
            str(REPO / "Snakefile"),
            "--directory",
            str(workdir),
            "--configfile",
            str(config),
            "--cores",
            "2",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=workdir,
        timeout=timeout,
    )


def job_counts(log: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake log: rule -> number of jobs."""
    table = log.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {name: int(count) for name, count in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def test_demo_dry_run(tmp_path):
    result = snakemake(tmp_path, REPO / "config" / "demo.yaml", "-n")
    assert result.returncode == 0, result.stdout
    # 3 models; 2 schemes x 3 checkpoints; 7 encoder files per model (scratch and 6 checkpoints)
    assert job_counts(result.stdout) == {
        "synthesize": 4,
        "prepare_acdc_covidqu": 2,
        "prepare_idrid": 1,
        "prepare_imagenet": 1,
        "init_encoder": 3,
        "pretrain": 3 * 2 * 3,
        "robustness": 3 * 7,
        "train_downstream": 3 * 7,
        "online_choice": 3 * 3 * 2 * 2,  # dataset x model x scheme x mode
        "collect": 1,
        "tis": 1,
        "tables": 1,
        "figures": 1,
        "all": 1,
        "total": 112,
    }, result.stdout


def test_external_encoders_are_scored_on_every_dataset(tmp_path):
    external = {"mine": {"file": str(tmp_path / "resnet50.safetensors"), "model": "unet"}}
    config = write_config(
        tmp_path / "external.yaml", {**TINY_CONFIG, "robustness": {"external": external}, "one_job_per_encoder": False}
    )
    (tmp_path / "resnet50.safetensors").write_bytes(b"")
    dry = snakemake(tmp_path, config, "-n")
    assert dry.returncode == 0, dry.stdout
    for dataset in TINY_CONFIG["datasets"]:
        assert f"dataset={dataset}, model=unet, scheme=external-mine, epoch=0" in dry.stdout
    wrong = {"mine": {**external["mine"], "model": "swin_unet"}}  # not in models.names
    bad = snakemake(
        tmp_path, write_config(tmp_path / "bad.yaml", {**TINY_CONFIG, "robustness": {"external": wrong}}), "-n"
    )
    assert bad.returncode != 0 and "robustness.external.mine" in bad.stdout


def test_real_config_dry_run_validates(tmp_path):
    # the raw paths are placeholders, so the DAG cannot be built, but the config must validate
    result = snakemake(tmp_path, REPO / "config" / "config.yaml", "-n")
    assert "Error validating config" not in result.stdout
    assert "/path/to/ACDC" in result.stdout


def test_left_out_keys_take_the_papers_values(tmp_path):
    """Keys the config leaves out reach the commands as medseg/paper.py's values."""
    recipe = {"micro_batch": 4, "workers": 0}
    config = {
        **TINY_CONFIG,
        "models": {"names": ["unet", "swin_unet"]},
        "pretraining": {
            "simple": {"unet": recipe, "swin_unet": recipe},
            "advanced": {"unet": recipe, "swin_unet": recipe},
        },
        "downstream": {},
    }
    config["datasets"] = {
        name: {key: dataset[key] for key in ("type", "raw")} for name, dataset in TINY_CONFIG["datasets"].items()
    }
    dry = snakemake(tmp_path, write_config(tmp_path / "paper.yaml", config), "-n", "-p")
    assert dry.returncode == 0, dry.stdout
    model = f"--image-size {paper.IMAGE_SIZE} --width {paper.WIDTH} --seed 0 --window-size {paper.WINDOW_SIZE} "
    assert f"medseg init --model swin_unet {model}" in dry.stdout
    assert (
        f"medseg prepare acdc --raw results/raw/acdc --out results/data/acdc --size {paper.PREPARED_SIZE} "
        in dry.stdout
    )
    idrid = paper.PREPARATION["idrid"]
    assert (
        f" --resize {' '.join(map(str, idrid['resize']))} --window {idrid['window']} --stride {idrid['stride']}"
        f" --tile {idrid['tile']} "
    ) in dry.stdout
    for scheme in names.PRETRAIN_SCHEMES:
        values = paper.pretraining_recipe(scheme, "swin_unet")
        assert (
            f"--scheme {scheme} --epoch {paper.CHECKPOINTS[-1]} {model}--planned-epochs {paper.CHECKPOINTS[-1]}"
            f" --batch {values['batch']} --micro-batch 4 --base-lr {values['base_lr']}"
            f" --base-lr-batch {values['base_lr_batch']} --warmup-epochs {values['warmup_epochs']} "
        ) in dry.stdout
    assert f" --margins {' '.join(map(str, paper.MARGINS))} " in dry.stdout
    seeds = " ".join(map(str, paper.SEEDS))
    assert f" --seed {seeds} " in dry.stdout
    assert f" --epochs {paper.EPOCHS} --batch {paper.BATCH} --lr {paper.LR} " in dry.stdout


def test_schema_lists_the_packages_model_names():
    """The schema cannot import medseg.names, so its lists of models are compared here."""
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    models = schema["properties"]["models"]["properties"]["names"]["items"]["enum"]
    recipes = schema["$defs"]["recipes"]["propertyNames"]["enum"]
    external = schema["properties"]["robustness"]["properties"]["external"]["additionalProperties"]
    assert models == recipes == external["properties"]["model"]["enum"] == list(names.MODEL_NAMES)


def test_data_rules_run_and_rerun_only_what_changed(tmp_path):
    config = write_config(tmp_path / "tiny.yaml", TINY_CONFIG)
    result = snakemake(tmp_path, config)
    assert result.returncode == 0, result.stdout
    data = tmp_path / "results" / "data"
    assert len(open_split(data / "idrid" / "train")) % 119 == 0
    assert set(np.unique(open_split(data / "acdc" / "test").masks)) == {0, 1, 2, 3}
    assert (tmp_path / "logs" / "prepare" / "acdc.log").is_file()
    assert "Nothing to be done" in snakemake(tmp_path, config, "-n").stdout
    check_raw_releases_rerun_nothing(tmp_path, config)
    check_a_nan_robustness_stops_the_online_walk(tmp_path, config)
    check_aggregation(tmp_path, config, result.stdout)
    # downstream: every dataset x encoder file x mode x seed, read back as one hive-partitioned table
    scores = ds.dataset(tmp_path / "results" / "downstream", partitioning="hive").to_table().to_pandas()
    runs = scores.groupby(["dataset", "model", "scheme", "epoch", "mode", "seed"]).ngroups
    assert runs == 3 * 5 * 2 * 1, scores
    assert set(scores["metric"]) == {"dice", "jaccard", "mcc", "ap", "hd95", "hd95_authors", "hd95_authors_skipped"}
    assert set(scores[scores["dataset"] == "acdc"]["class"]) == {
        "mean",
        "background",
        "rv_cavity",
        "myocardium",
        "lv_cavity",
    }
    history = pd.read_parquet(tmp_path / "results" / "downstream_history")
    assert len(history) == runs and history["test_dice"].notna().all()
    assert "images/s" in (tmp_path / "logs/downstream/model=unet/scheme=simple/epoch=2.log").read_text()
    # a changed downstream recipe re-runs downstream training only
    dry = snakemake(
        tmp_path,
        write_config(tmp_path / "lr2.yaml", dict(TINY_CONFIG, downstream={**TINY_CONFIG["downstream"], "lr": 0.01})),
        "-n",
    )
    # (and what reads the runs: the online choices record the kept checkpoint's Dice, the aggregation)
    aggregation = {"collect": 1, "tis": 1, "tables": 1, "figures": 1}
    expected = {"train_downstream": 5, "online_choice": 12, **aggregation, "all": 1, "total": 22}
    assert job_counts(dry.stdout) == expected, dry.stdout
    # a changed dataset re-runs its preparation, not the other datasets' or pretraining
    changed = dict(
        TINY_CONFIG, datasets={**TINY_CONFIG["datasets"], "acdc": {**TINY_CONFIG["datasets"]["acdc"], "size": 16}}
    )
    dry = snakemake(tmp_path, write_config(tmp_path / "changed.yaml", changed), "-n")
    jobs = job_counts(dry.stdout)
    assert jobs.get("prepare_acdc_covidqu") == 1 and "wildcards: dataset=acdc\n" in dry.stdout, dry.stdout
    for untouched in ("synthesize", "prepare_idrid", "prepare_imagenet", "init_encoder", "pretrain"):
        assert untouched not in jobs, dry.stdout
    # the re-run replaces the earlier output in place (Snakemake removes its files first)
    rerun = snakemake(tmp_path, tmp_path / "changed.yaml", "results/data/acdc/dataset.json")
    assert rerun.returncode == 0, rerun.stdout
    assert open_split(data / "acdc" / "train").images.shape[1:3] == (16, 16)
    # pretraining: the scratch encoder, every checkpoint of both schemes, their histories as one table
    assert (tmp_path / "results/pretrain/model=unet/scheme=scratch/epoch=0/encoder.safetensors").is_file()
    history = pd.read_parquet(tmp_path / "results" / "pretrain_history")
    assert sorted(zip(history["scheme"], history["epoch"].astype(int))) == [
        ("advanced", 1),
        ("advanced", 2),
        ("simple", 1),
        ("simple", 2),
    ]
    assert "epoch 2/2" in (tmp_path / "logs/pretrain/model=unet/scheme=simple/epoch=2.log").read_text()
    # a changed recipe re-runs exactly that scheme's chain
    lower_lr = {"unet": {**TINY_RECIPE, "base_lr": 0.001}}
    dry = snakemake(
        tmp_path,
        write_config(
            tmp_path / "lr.yaml", dict(TINY_CONFIG, pretraining={**TINY_CONFIG["pretraining"], "advanced": lower_lr})
        ),
        "-n",
    )
    jobs = job_counts(dry.stdout)
    assert jobs.get("pretrain") == 2 and "init_encoder" not in jobs, dry.stdout
    segments = re.findall(r"rule pretrain:\n(?:.*\n)*?\s+wildcards: (.*)", dry.stdout)
    assert len(segments) == 2 and all("scheme=advanced" in wildcards for wildcards in segments), segments


def check_raw_releases_rerun_nothing(workdir: Path, config: Path) -> None:
    """In a finished run: moving a raw release (the config follows it), re-linking it or touching its files
    schedules nothing; `--forcerun` re-prepares it from where the config points."""
    raw, disk = workdir / "results" / "raw", workdir / "disk2"
    disk.mkdir()
    (raw / "covidqu").rename(disk / "covidqu")
    datasets = {
        **TINY_CONFIG["datasets"],
        "covidqu": {**TINY_CONFIG["datasets"]["covidqu"], "raw": str(disk / "covidqu")},
    }
    moved = write_config(workdir / "moved.yaml", dict(TINY_CONFIG, datasets=datasets))
    for path in [*(disk / "covidqu").rglob("*"), disk / "covidqu", *(raw / "imagenet").rglob("*"), raw / "imagenet"]:
        os.utime(path)  # newer than every output
    (disk / "covidqu" / "notes.txt").write_text("a file the user added")
    dry = snakemake(workdir, moved, "-n")
    assert "Nothing to be done" in dry.stdout, dry.stdout
    (raw / "covidqu").symlink_to(disk / "covidqu")  # the old path, re-linked
    dry = snakemake(workdir, config, "-n")
    assert "Nothing to be done" in dry.stdout, dry.stdout
    prepared = "results/data/covidqu/dataset.json"
    forced = snakemake(workdir, moved, "-n", "-p", prepared, "--forcerun", prepared)
    assert f"medseg prepare covidqu --raw {disk / 'covidqu'} " in forced.stdout, forced.stdout


def check_a_nan_robustness_stops_the_online_walk(workdir: Path, config: Path) -> None:
    """A robustness file whose main-variant score is NaN stops the online target with its name, not a hang."""
    path = "results/robustness/dataset=covidqu/model=unet/scheme=simple/epoch=1/robustness.parquet"
    target = "results/online/dataset=covidqu/model=unet/scheme=simple/mode=full/choice.json"
    table = pd.read_parquet(workdir / path)
    main = (
        (table["distance"] == "cosine")
        & (table["margin"] == 0.5)
        & (table["level"] == "second_to_last")
        & ~table["pooled"]
    )
    assert main.sum() == 1
    table.loc[main, "robustness"] = float("nan")
    original, stat = (workdir / path).read_bytes(), (workdir / path).stat()
    table.to_parquet(workdir / path)
    dry = snakemake(workdir, config, "-n", target, timeout=120)
    (workdir / path).write_bytes(original)
    os.utime(workdir / path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the run is as it was
    assert dry.returncode != 0 and f"{path}: the main variant's robustness is nan" in dry.stdout, dry.stdout


def test_jobs_per_run_for_clusters_or_per_encoder_file(tmp_path):
    """one_job_per_encoder false: robustness per dataset and encoder file, downstream per run; true: per encoder file."""
    counts = {}
    for grouped in (False, True):
        config = dict(TINY_CONFIG, downstream={"seeds": [0, 1]}, one_job_per_encoder=grouped)
        dry = snakemake(tmp_path, write_config(tmp_path / f"{grouped}.yaml", config), "-n", "-p")
        assert dry.returncode == 0, dry.stdout
        counts[grouped] = {rule: job_counts(dry.stdout)[rule] for rule in ("robustness", "train_downstream")}
    assert counts == {
        False: {"robustness": 3 * 5, "train_downstream": 3 * 5 * 2 * 2},
        True: {"robustness": 5, "train_downstream": 5},
    }
    single = snakemake(tmp_path, tmp_path / "False.yaml", "-n", "-p").stdout
    assert (
        "--data results/data/acdc --mode decoder --seed 1 --scores 'results/downstream/dataset=acdc/model=unet/"
        "scheme=simple/epoch=2/mode=decoder/seed=1/scores.parquet'"
    ) in single
    grouped = snakemake(tmp_path, tmp_path / "True.yaml", "-n", "-p").stdout
    assert (
        "--data results/data/acdc results/data/covidqu results/data/idrid --mode full decoder --seed 0 1 --scores "
        "'results/downstream/dataset={dataset}/model=unet/scheme=simple/epoch=2/mode={mode}/seed={seed}/scores.parquet'"
    ) in grouped
    # the online walk asks the robustness checkpoint for one file: with jobs per dataset, that dataset's job
    online = snakemake(tmp_path, tmp_path / "False.yaml", "-n", "online")
    assert online.returncode == 0, online.stdout
    assert job_counts(online.stdout)["robustness"] == 3 * 2, online.stdout  # every dataset's first checkpoints


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"datasets": {"acdc": {"type": "acdc", "raw": "x", "sise": 32}}}, "'sise' was unexpected"),
        ({"datasets": {"acdc": {"type": "acdc", "raw": "x", "size": "big"}}}, "'big' is not of type 'integer'"),
        ({"imagenet": {"raw": "x", "clases": 3}}, "'clases' was unexpected"),
        ({"datasets": {"mine": {"type": "folder", "raw": "x"}}}, "'classes' is a required property"),
    ],
)
def test_bad_config_names_the_key(tmp_path, change, message):
    config = write_config(tmp_path / "bad.yaml", {**TINY_CONFIG, **change})
    result = snakemake(tmp_path, config, "-n")
    assert result.returncode != 0
    assert "Error validating config" in result.stdout and message in result.stdout


def test_user_folder_dataset_rule(tmp_path):
    raw = tmp_path / "mine"
    (raw / "images").mkdir(parents=True)
    (raw / "masks").mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(raw / "images" / f"{name}.png")
        Image.fromarray(rng.integers(0, 3, (20, 24), dtype=np.uint8)).save(raw / "masks" / f"{name}.png")
    (raw / "splits.csv").write_text("image,split\na.png,train\nb.png,train\nc.png,test\n")
    config = dict(
        TINY_CONFIG,
        datasets={"mine": {"type": "folder", "raw": str(raw), "classes": ["background", "x", "y"], "size": 16}},
    )
    result = snakemake(tmp_path, write_config(tmp_path / "folder.yaml", config), "results/data/mine/dataset.json")
    assert result.returncode == 0, result.stdout
    train = open_split(tmp_path / "results" / "data" / "mine" / "train")
    assert train.images.shape == (2, 16, 16, 3)
    assert list(train.index.columns[-3:]) == ["pixels_background", "pixels_x", "pixels_y"]


def test_online_target_never_pretrains_past_the_stop(tmp_path):
    """The online walk asks for one checkpoint's robustness at a time; segments after the stop never run."""
    recipe = TINY_CONFIG["pretraining"]["simple"]["unet"]
    config = {
        **TINY_CONFIG,
        "datasets": {"covidqu": TINY_CONFIG["datasets"]["covidqu"]},
        "pretraining": {"checkpoints": [1, 2, 3, 4], "simple": {"unet": recipe}, "advanced": {"unet": recipe}},
    }
    choice = tmp_path / "results/online/dataset=covidqu/model=unet/scheme=simple/mode=full/choice.json"
    result = snakemake(tmp_path, write_config(tmp_path / "online.yaml", config), str(choice.relative_to(tmp_path)))
    assert result.returncode == 0, result.stdout
    record = json.loads(choice.read_text())
    trail = [step["epoch"] for step in record["trail"]]
    scores = [step["robustness"] for step in record["trail"]]
    # On CPU pretraining is bit-for-bit reproducible, so this tiny chain's trail is fixed: it falls early.
    assert trail[-1] < 4 and scores[-1] <= scores[-2], record
    assert record["chosen_epoch"] == trail[-2] and record["pretrained_epochs"] == trail[-1]
    built = sorted(
        int(path.parent.name.removeprefix("epoch="))
        for path in (tmp_path / "results/pretrain").glob("model=unet/scheme=simple/epoch=*/state.pt")
    )
    assert built == trail, f"pretrained {built}, but the walk only needed {trail}"
    assert result.stdout.count("(Rule: pretrain)") == len(trail)  # Snakemake's "Finished jobid: N (Rule: ...)" lines
    # the kept checkpoint is trained downstream (every seed) and its Dice recorded
    assert [run["seed"] for run in record["downstream"]["runs"]] == [0], record
    scores = tmp_path / f"results/downstream/dataset=covidqu/model=unet/scheme=simple/epoch={record['chosen_epoch']}"
    assert (scores / "mode=full/seed=0/scores.parquet").is_file()
    assert result.stdout.count("(Rule: train_downstream)") == 1


def check_aggregation(workdir: Path, config: Path, log: str) -> None:
    """The run ends with every table and figure and a summary; the report holds every figure; a results
    tree with a third of the runs deleted gives incomplete cells, not an error."""
    from medseg.aggregate.figures import FIGURES
    from medseg.aggregate.tables import TABLES

    tables, figures = workdir / "results" / "tables", workdir / "results" / "figures"
    for stem in TABLES:
        assert (tables / f"{stem}.md").is_file() and (tables / f"{stem}.parquet").is_file(), stem
    for stem in FIGURES:
        assert (figures / f"{stem}.png").stat().st_size > 0 and (figures / f"{stem}.svg").is_file(), stem
    tis = pd.read_parquet(tables / "tis.parquet")
    # 3 datasets x 1 model x 2 schemes x 2 modes, every one complete
    main = tis[(tis["indicator"] == "robustness_offline") & tis["main"].fillna(False)]
    assert len(main) == 12 and main["complete"].all(), main
    assert {"rankme_offline", "rankme_online", "imagenet_accuracy", "no_pretraining"} <= set(tis["indicator"])
    assert "TIS (paper Eq. 1) over the complete cells" in log and "Incomplete cells: 0 of 12" in log, log
    report = snakemake(workdir, config, "--report", "results/report.html")
    assert report.returncode == 0, report.stdout
    html = (workdir / "results" / "report.html").read_text(errors="replace")
    for stem in FIGURES:
        assert f"{stem}.png" in html, stem
    assert "summary.html" in html and "table3a.html" in html  # the report shows the runs done
    assert "| downstream runs | 30 | 30 |" in (tables / "summary.md").read_text()
    # mid-grid: a third of the downstream runs gone
    partial = workdir / "partial"
    shutil.copytree(workdir / "results", partial, ignore=shutil.ignore_patterns("raw", "data", "pretrain", "tables"))
    runs = sorted((partial / "downstream").rglob("scores.parquet"))
    for run in runs[::3]:
        run.unlink()
    grid = ["--datasets", *TINY_CONFIG["datasets"], "--models", "unet", "--checkpoints", "1", "2", "--seeds", "0"]
    out = workdir / "partial_out"
    aggregate = subprocess.run(
        [str(BIN / "medseg"), "aggregate", "--results", str(partial), "--out", str(out), *grid],
        capture_output=True,
        text=True,
    )
    assert aggregate.returncode == 0, aggregate.stderr
    progress = pd.read_parquet(out / "tables" / "progress.parquet").set_index("stage")
    assert progress.loc["scores"].tolist() == [len(runs), len(runs) - len(runs[::3])]
    partial_tis = pd.read_parquet(out / "tables" / "tis.parquet")
    lacking = {
        (r.parts[-7].split("=")[1], r.parts[-5].split("=")[1], r.parts[-3].split("=")[1]) for r in runs[::3]
    }  # (dataset, scheme, mode) of each deleted run; scratch runs count for both schemes
    incomplete = partial_tis[~partial_tis["complete"]]
    assert len(incomplete) and "no runs" in " ".join(incomplete["notes"]), partial_tis
    for dataset, scheme, mode in lacking:
        schemes = ["simple", "advanced"] if scheme == "scratch" else [scheme]
        cells = partial_tis[
            (partial_tis["dataset"] == dataset) & partial_tis["scheme"].isin(schemes) & (partial_tis["mode"] == mode)
        ]
        assert not cells["complete"].any(), (dataset, scheme, mode)
    assert "Incomplete cells: " in aggregate.stdout and "Incomplete cells: 0 " not in aggregate.stdout
