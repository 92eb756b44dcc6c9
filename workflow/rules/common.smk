# Config validation, wildcard constraints and input functions shared by all rules.
# Plain Python only: this is parsed for every dry run and cluster job.

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


def raw_folder(wildcards):
    """The raw release folder of a dataset (results/raw/... is made by `synthesize`)."""
    return DATASETS[wildcards.dataset]["raw"]


def dataset_setting(key):
    """Params function reading one setting of the dataset named by the wildcard."""

    def setting(wildcards):
        return DATASETS[wildcards.dataset][key]

    return setting


def imagenet_budget_options():
    """`medseg prepare imagenet` options for the configured budget (unset keys: all)."""
    flags = {"classes": "--classes", "images_per_class": "--images-per-class",
             "val_images_per_class": "--val-images-per-class"}
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


def robustness_options(wildcards):
    """The options scores depend on; external files record no image size, so they get the config's."""
    margins = " ".join(str(margin) for margin in ROBUSTNESS["margins"])
    options = f"--margins {margins} --seed {ROBUSTNESS['seed']}"
    if wildcards.scheme.startswith("external-"):
        options += f" --image-size {MODELS['image_size']}"
    return options


def robustness_files():
    """Every dataset x model: the scratch encoder, every checkpoint of both schemes, the external files."""
    files = expand(ROBUSTNESS_FILE, dataset=DATASETS, model=MODELS["names"], scheme="scratch", epoch=0)
    files += expand(ROBUSTNESS_FILE, dataset=DATASETS, model=MODELS["names"], scheme=PRETRAIN_SCHEMES, epoch=CHECKPOINTS)
    for name, external in EXTERNAL.items():
        files += expand(ROBUSTNESS_FILE, dataset=DATASETS, model=external["model"], scheme=f"external-{name}", epoch=0)
    return files


def online_trail(wildcards):
    """The robustness files the online walk reads, asked for one checkpoint at a time.

    `robustness` is a Snakemake checkpoint: asking for a file that does not exist yet stops this
    function, Snakemake builds that one file (and the pretraining segment behind it), then calls
    the function again. So pretraining segments after the walk stops are never scheduled.
    """
    from medseg.robustness.online import main_score
    from medseg.robustness.selection import online_walk

    scores = {}
    while True:
        walk = online_walk(CHECKPOINTS, scores)
        if walk.finished:
            return [
                ROBUSTNESS_FILE.format(dataset=wildcards.dataset, model=wildcards.model, scheme=wildcards.scheme, epoch=epoch)
                for epoch in walk.trail
            ]
        found = checkpoints.robustness.get(
            dataset=wildcards.dataset, model=wildcards.model, scheme=wildcards.scheme, epoch=walk.needed
        ).output[0]
        scores[walk.needed] = main_score(found, wildcards.mode)


def online_choices():
    """The online choice of every dataset, model, scheme and downstream mode."""
    return expand(ONLINE_CHOICE, dataset=DATASETS, model=MODELS["names"], scheme=PRETRAIN_SCHEMES, mode=MODES)
