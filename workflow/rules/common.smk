# Config validation, wildcard constraints and input functions shared by all rules.
# Plain Python only: this is parsed for every dry run and cluster job.

import functools
import os

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

DATASETS = config["datasets"]
SEGMENTATION_FILES = ("images.npy", "masks.npy", "index.parquet")
SYNTHETIC_DATASETS = ("acdc", "covidqu", "idrid", "imagenet")


def datasets_of_type(kind):
    """Regex matching the configured dataset names of one type (never matches when none)."""
    names = [name for name, spec in DATASETS.items() if spec["type"] == kind]
    return "|".join(names) if names else "(?!)"


def prepared_files(splits):
    """Output patterns of a prepare rule: the per-split files and dataset.json."""
    files = [f"results/data/{{dataset}}/{split}/{name}" for split in splits for name in SEGMENTATION_FILES]
    return files + ["results/data/{dataset}/dataset.json"]


# Raw releases are read-only inputs that users move between disks, so they are neither inputs nor
# tracked params of the prepare rules: touching, moving or re-linking one re-runs nothing (a changed
# release is re-prepared on purpose: snakemake --forcerun prepare_acdc). The synthetic demo data is
# ordered before preparation by a marker file that `synthesize` writes outside the raw folder.
SYNTHETIC = config.get("synthetic")
SYNTHETIC_MARKER = "results/synthetic/{dataset}.done"


def raw_path(name):
    """The configured raw folder of a dataset or of ImageNet."""
    return config["imagenet"]["raw"] if name == "imagenet" else DATASETS[name]["raw"]


def raw_release(wildcards, output):
    """The raw folder of the job's dataset (no wildcard: ImageNet), for the command line only.

    Taking `output` makes Snakemake count this param as derived from the job's files, and its
    params trigger skips derived params: a new path string for the same release re-runs nothing.
    """
    return raw_path(getattr(wildcards, "dataset", "imagenet"))


def raw_ready(wildcards):
    """A prepare rule's input: the marker of the dataset's synthetic raw data, or nothing.

    The marker's path does not depend on `raw`, so moving the synthetic folder re-runs nothing,
    while re-synthesized data (a new preset or seed) is newer than the prepared files and is
    re-prepared. A real release that is missing stops the DAG here, before any job, unless the
    dataset is prepared already (its raw folder is not needed again).
    """
    name = getattr(wildcards, "dataset", "imagenet")
    kind = "imagenet" if name == "imagenet" else DATASETS[name]["type"]
    if SYNTHETIC is not None and name in SYNTHETIC_DATASETS and kind == name:
        return SYNTHETIC_MARKER.format(dataset=name)
    raw = raw_path(name)
    if not os.path.isdir(raw) and not os.path.exists(f"results/data/{name}/dataset.json"):
        key = "imagenet.raw" if name == "imagenet" else f"datasets.{name}.raw"
        raise ValueError(f"config: {key}: {raw} is not a folder; give the path of the raw release")
    return []


def dataset_setting(key):
    """Params function reading one setting of the dataset named by the wildcard."""

    def setting(wildcards):
        return DATASETS[wildcards.dataset][key]

    return setting


def imagenet_budget_options():
    """`medseg prepare imagenet` options for the configured budget (unset keys: all)."""
    flags = {
        "classes": "--classes",
        "images_per_class": "--images-per-class",
        "val_images_per_class": "--val-images-per-class",
    }
    budget = config["imagenet"]
    return " ".join(f"{flag} {budget[key]}" for key, flag in flags.items() if budget.get(key) is not None)


def prepared_datasets():
    """The dataset.json of every configured dataset and of ImageNet."""
    names = list(DATASETS) + ["imagenet"]
    return expand("results/data/{dataset}/dataset.json", dataset=names)


# --- pretraining (workflow/rules/pretrain.smk) ---------------------------------------------------

MODELS = config["models"]
PRETRAINING = config["pretraining"]
PRETRAIN_SCHEMES = ("simple", "advanced")
CHECKPOINTS = sorted(PRETRAINING["checkpoints"])
PRETRAIN_DIR = "results/pretrain/model={model}/scheme={scheme}/epoch={epoch}"
SCRATCH_ENCODER = "results/pretrain/model={model}/scheme=scratch/epoch=0/encoder.safetensors"

for _scheme in PRETRAIN_SCHEMES:
    for _model in MODELS["names"]:
        if _model not in PRETRAINING[_scheme]:
            raise ValueError(
                f"config: pretraining.{_scheme} has no settings for model {_model!r} "
                f"(listed in models.names); add pretraining.{_scheme}.{_model}"
            )


def model_options(wildcards):
    """`medseg init`/`pretrain` options that build the model (the window only matters for Swin)."""
    options = f"--image-size {MODELS['image_size']} --width {MODELS['width']} --seed {MODELS['seed']}"
    if wildcards.model == "swin_unet":
        options += f" --window-size {MODELS['window_size']}"
    return options


def pretrain_recipe(wildcards):
    """The configured recipe entry of the job's scheme and model."""
    return PRETRAINING[wildcards.scheme][wildcards.model]


def pretrain_options(wildcards):
    """Every option the segment's results depend on (a change re-runs the chain)."""
    recipe = pretrain_recipe(wildcards)
    return (
        f"{model_options(wildcards)} --planned-epochs {CHECKPOINTS[-1]} --batch {recipe['batch']}"
        f" --micro-batch {recipe['micro_batch']} --base-lr {recipe['base_lr']}"
        f" --base-lr-batch {recipe['base_lr_batch']} --warmup-epochs {recipe['warmup_epochs']}"
    )


def pretrain_threads(wildcards):
    """One core for the training process plus one per data loader worker."""
    return pretrain_recipe(wildcards).get("workers", 8) + 1


def pretrain_runtime(wildcards):
    """Minutes requested for a segment (a job stopped at its limit resumes when re-run)."""
    epochs = int(wildcards.epoch) - previous_epoch(wildcards)
    return max(10, round(1.5 * epochs * pretrain_recipe(wildcards).get("minutes_per_epoch", 60)))


def previous_epoch(wildcards):
    index = CHECKPOINTS.index(int(wildcards.epoch))
    return CHECKPOINTS[index - 1] if index else 0


def previous_checkpoint(wildcards):
    """A segment starts from the previous checkpoint's state.pt, the first from the scratch encoder."""
    previous = previous_epoch(wildcards)
    if previous == 0:
        return SCRATCH_ENCODER.format(model=wildcards.model)
    return f"{PRETRAIN_DIR}/state.pt".format(model=wildcards.model, scheme=wildcards.scheme, epoch=previous)


def pretrained_checkpoints():
    """The scratch encoder and every checkpoint of both schemes, for every configured model."""
    return expand(SCRATCH_ENCODER, model=MODELS["names"]) + expand(
        f"{PRETRAIN_DIR}/encoder.safetensors", model=MODELS["names"], scheme=PRETRAIN_SCHEMES, epoch=CHECKPOINTS
    )


# --- robustness (workflow/rules/robustness.smk) --------------------------------------------------

ROBUSTNESS = config["robustness"]
EXTERNAL = ROBUSTNESS["external"]
ROBUSTNESS_FILE = "results/robustness/dataset={dataset}/model={model}/scheme={scheme}/epoch={epoch}/robustness.parquet"
ONLINE_CHOICE = "results/online/dataset={dataset}/model={model}/scheme={scheme}/mode={mode}/choice.json"
MODES = ("full", "decoder")


# --- jobs per encoder file (robustness and downstream training) ------------------------------

# one_job_per_encoder: a robustness or downstream job's wildcards are the encoder file's (model,
# scheme, epoch) and it covers every dataset (downstream: every dataset, mode and seed).
ONE_JOB_PER_ENCODER = config["one_job_per_encoder"]
ENCODER_KEYS = ("model", "scheme", "epoch")


def job_datasets(wildcards):
    """The datasets a robustness or downstream job covers."""
    return list(DATASETS) if ONE_JOB_PER_ENCODER else [wildcards.dataset]


def job_data(wildcards):
    """The dataset.json of the job's dataset(s)."""
    return expand("results/data/{dataset}/dataset.json", dataset=job_datasets(wildcards))


def job_data_folders(wildcards):
    """`--data` of the job's command."""
    return " ".join(f"results/data/{name}" for name in job_datasets(wildcards))


def encoder_job_files(pattern, **values):
    """A job's files of `pattern`: its own, or with one_job_per_encoder every dataset's (and every `values`)."""
    if ONE_JOB_PER_ENCODER:
        return expand(pattern, dataset=DATASETS, **values, allow_missing=True)
    return pattern


def encoder_job_log(stage):
    """The log of a robustness or downstream job: per job wildcards."""
    if ONE_JOB_PER_ENCODER:
        return f"logs/{stage}/model={{model}}/scheme={{scheme}}/epoch={{epoch}}.log"
    if stage == "downstream":
        return f"logs/{stage}/{RUN_KEYS}.log"
    return f"logs/{stage}/dataset={{dataset}}/model={{model}}/scheme={{scheme}}/epoch={{epoch}}.log"


def job_path_values(wildcards, run_keys):
    """Values for a job's output path: the encoder file's wildcards, and for `run_keys` `{key}`
    placeholders that the command fills in per dataset/run when a job covers several, else the
    job's wildcards."""
    values = {key: getattr(wildcards, key) for key in ENCODER_KEYS}
    if ONE_JOB_PER_ENCODER:
        return values | {key: f"{{{key}}}" for key in run_keys}
    return values | {key: getattr(wildcards, key) for key in run_keys}


def robustness_out(wildcards):
    """`--out` of a robustness job."""
    return ROBUSTNESS_FILE.format(**job_path_values(wildcards, ["dataset"]))


for _name, _external in EXTERNAL.items():
    if _external["model"] not in MODELS["names"]:
        raise ValueError(
            f"config: robustness.external.{_name} is for model {_external['model']!r}, which is not in "
            "models.names; add the model there or remove the entry"
        )


def scored_schemes():
    """Regex of the `scheme` wildcard of robustness files: the pretrained, the scratch and external ones."""
    return "|".join([*PRETRAIN_SCHEMES, "scratch", *(f"external-{name}" for name in EXTERNAL)])


def encoder_to_score(wildcards):
    """The encoder file behind a robustness file's (model, scheme, epoch)."""
    scheme, epoch = wildcards.scheme, int(wildcards.epoch)
    if scheme == "scratch" and epoch == 0:
        return SCRATCH_ENCODER.format(model=wildcards.model)
    if scheme.startswith("external-") and epoch == 0:
        external = EXTERNAL[scheme.removeprefix("external-")]
        if external["model"] != wildcards.model:
            raise ValueError(f"robustness.external.{scheme.removeprefix('external-')} is for model {external['model']}")
        return external["file"]
    if scheme in PRETRAIN_SCHEMES and epoch in CHECKPOINTS:
        return f"{PRETRAIN_DIR}/encoder.safetensors".format(model=wildcards.model, scheme=scheme, epoch=epoch)
    raise ValueError(f"no encoder for scheme {scheme!r} at epoch {epoch} (checkpoints: {CHECKPOINTS})")


def external_image_size(wildcards):
    """External files record no image size, so they are built at the config's; medseg files at their own."""
    return f" --image-size {MODELS['image_size']}" if wildcards.scheme.startswith("external-") else ""


def robustness_options(wildcards):
    """The options scores depend on."""
    margins = " ".join(str(margin) for margin in ROBUSTNESS["margins"])
    return f"--margins {margins} --seed {ROBUSTNESS['seed']}{external_image_size(wildcards)}"


def encoder_files_of(pattern):
    """`pattern` for every dataset x model and encoder: scratch, every checkpoint of both schemes, the external files."""
    files = expand(pattern, dataset=DATASETS, model=MODELS["names"], scheme="scratch", epoch=0, allow_missing=True)
    files += expand(
        pattern, dataset=DATASETS, model=MODELS["names"], scheme=PRETRAIN_SCHEMES, epoch=CHECKPOINTS, allow_missing=True
    )
    for name, external in EXTERNAL.items():
        files += expand(
            pattern, dataset=DATASETS, model=external["model"], scheme=f"external-{name}", epoch=0, allow_missing=True
        )
    return files


def robustness_files():
    """The robustness of every encoder file on every dataset."""
    return encoder_files_of(ROBUSTNESS_FILE)


def finished_online_walk(wildcards):
    """The online walk of the wildcards' (dataset, model, scheme, mode); see `_finished_online_walk`."""
    return _finished_online_walk(wildcards.dataset, wildcards.model, wildcards.scheme, wildcards.mode)


# Cached: both inputs of `online_choice` ask for the walk, and a finished walk never changes during
# a run (a walk that is not finished raises, and exceptions are not cached).
@functools.lru_cache(maxsize=None)
def _finished_online_walk(dataset, model, scheme, mode):
    """The online walk of (dataset, model, scheme, mode), asking for one robustness file at a time.

    `robustness` is a Snakemake checkpoint: asking for a file that does not exist yet stops this
    function, Snakemake builds that one file (and the pretraining segment behind it), then calls
    the function again. So pretraining segments after the walk stops are never scheduled. A file
    whose score is not a finite number stops the workflow with its name (`main_score`).
    """
    from medseg.robustness.online import main_score
    from medseg.robustness.selection import online_walk

    scores = {}
    while True:
        walk = online_walk(CHECKPOINTS, scores)
        if walk.finished:
            return walk
        job = dict(model=model, scheme=scheme, epoch=walk.needed)
        if not ONE_JOB_PER_ENCODER:
            job["dataset"] = dataset
        path = ROBUSTNESS_FILE.format(**job, dataset=dataset)
        if walk.needed in scores:  # never ask Snakemake for the same existing file forever
            raise ValueError(f"{path}: the online walk cannot use its score {scores[walk.needed]}")
        checkpoints.robustness.get(**job)  # stops here until the file exists
        scores[walk.needed] = main_score(path, mode)


def online_trail(wildcards):
    """The robustness files the online walk read."""
    keys = dict(dataset=wildcards.dataset, model=wildcards.model, scheme=wildcards.scheme)
    return [ROBUSTNESS_FILE.format(**keys, epoch=epoch) for epoch in finished_online_walk(wildcards).trail]


def online_scores(wildcards):
    """The downstream scores of the checkpoint the online walk keeps: the walk's mode, every seed."""
    chosen = finished_online_walk(wildcards).chosen
    keys = dict(dataset=wildcards.dataset, model=wildcards.model, scheme=wildcards.scheme, mode=wildcards.mode)
    return expand(DOWNSTREAM_SCORES, **keys, epoch=chosen, seed=SEEDS)


def online_choices():
    """The online choice of every dataset, model, scheme and downstream mode."""
    return expand(ONLINE_CHOICE, dataset=DATASETS, model=MODELS["names"], scheme=PRETRAIN_SCHEMES, mode=MODES)


# --- downstream training (workflow/rules/downstream.smk) ----------------------------------------

DOWNSTREAM = config["downstream"]
SEEDS = DOWNSTREAM["seeds"]
RUN_KEYS = "dataset={dataset}/model={model}/scheme={scheme}/epoch={epoch}/mode={mode}/seed={seed}"
DOWNSTREAM_SCORES = f"results/downstream/{RUN_KEYS}/scores.parquet"
DOWNSTREAM_HISTORY = f"results/downstream_history/{RUN_KEYS}/history.parquet"
DOWNSTREAM_KEYS = ("dataset", "mode", "seed")


def downstream_job_files(pattern):
    """A `train_downstream` job's files of a run pattern: the run's own, or every dataset's, mode's and seed's."""
    return encoder_job_files(pattern, mode=MODES, seed=SEEDS)


def downstream_runs(wildcards):
    """`medseg train` options naming the job's runs and their output files (`{dataset}`, `{mode}` and
    `{seed}` left in the paths are filled in per run by `medseg train`)."""
    keys = job_path_values(wildcards, DOWNSTREAM_KEYS)
    modes, seeds = (MODES, SEEDS) if ONE_JOB_PER_ENCODER else ([wildcards.mode], [wildcards.seed])
    return (
        f"--data {job_data_folders(wildcards)} --mode {' '.join(modes)} --seed {' '.join(map(str, seeds))}"
        f" --scores '{DOWNSTREAM_SCORES.format(**keys)}' --history '{DOWNSTREAM_HISTORY.format(**keys)}'"
    )


def downstream_recipe(wildcards):
    """The options the trained weights depend on (besides the encoder file and the data)."""
    return (
        f"--epochs {DOWNSTREAM['epochs']} --batch {DOWNSTREAM['batch']} --lr {DOWNSTREAM['lr']}"
        f" --eval-every {DOWNSTREAM['eval_every']}{external_image_size(wildcards)}"
    )


def downstream_files():
    """scores.parquet of every run: every encoder file on every dataset, both modes, every seed."""
    return expand(encoder_files_of(DOWNSTREAM_SCORES), mode=MODES, seed=SEEDS)
