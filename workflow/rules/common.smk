# The config (validated, completed with the paper's values, checked), the path patterns, global
# wildcard constraints and the input and params functions of the rules, in the order of the stages.
# Plain Python and torch-free: this is parsed for every dry run and cluster job.

import copy
import functools
import os

from snakemake.utils import validate

from medseg import names, paper
from medseg.aggregate.collect import COLLECTED
from medseg.aggregate.figures import FIGURES
from medseg.aggregate.tables import TABLES


def fill_paper_values(config):
    """Fill in the keys the config leaves out: the paper's values (medseg/paper.py), every model (medseg/names.py)."""
    for section, values in paper.CONFIG_DEFAULTS.items():
        for key, value in values.items():
            config[section].setdefault(key, copy.deepcopy(value))
    for dataset in config["datasets"].values():
        for key, value in paper.PREPARATION[dataset["type"]].items():
            dataset.setdefault(key, copy.deepcopy(value))
    config["models"].setdefault("names", list(names.MODEL_NAMES))
    config["pretraining"].setdefault("checkpoints", list(paper.CHECKPOINTS))
    for scheme in names.PRETRAIN_SCHEMES:
        for model, recipe in config["pretraining"][scheme].items():
            for key, value in paper.pretraining_recipe(scheme, model).items():
                recipe.setdefault(key, value)


def check_config(config):
    """The checks across keys that the schema cannot express."""
    models = config["models"]["names"]
    for scheme in names.PRETRAIN_SCHEMES:
        for model in models:
            if model not in config["pretraining"][scheme]:
                raise ValueError(
                    f"config: pretraining.{scheme} has no settings for model {model!r} "
                    f"(listed in models.names); add pretraining.{scheme}.{model}"
                )
    for name, external in config["robustness"]["external"].items():
        if external["model"] not in models:
            raise ValueError(
                f"config: robustness.external.{name} is for model {external['model']!r}, which is not in "
                "models.names; add the model there or remove the entry"
            )


validate(config, schema="../schemas/config.schema.yaml")
fill_paper_values(config)
check_config(config)

DATASETS = config["datasets"]
SYNTHETIC = config.get("synthetic")
MODELS = config["models"]
PRETRAINING = config["pretraining"]
CHECKPOINTS = sorted(PRETRAINING["checkpoints"])
ROBUSTNESS = config["robustness"]
EXTERNAL = ROBUSTNESS["external"]
DOWNSTREAM = config["downstream"]
SEEDS = DOWNSTREAM["seeds"]
# one_job_per_encoder: a robustness or downstream job's wildcards are the encoder file's (model,
# scheme, epoch) and it covers every dataset (downstream: every dataset, mode and seed).
ONE_JOB_PER_ENCODER = config["one_job_per_encoder"]

# --- paths ---------------------------------------------------------------------------------------

DATASET_JSON = "results/data/{dataset}/dataset.json"
SPLIT_FILES = [
    f"results/data/{{dataset}}/{split}/{name}"
    for split in ("train", "test")
    for name in ("images.npy", "masks.npy", "index.parquet")
]
SYNTHETIC_DATASETS = ("acdc", "covidqu", "idrid", "imagenet")
SYNTHETIC_MARKER = "results/synthetic/{dataset}.done"

ENCODER_KEYS = ("model", "scheme", "epoch")
ENCODER_PATH = "model={model}/scheme={scheme}/epoch={epoch}"
PRETRAIN_DIR = f"results/pretrain/{ENCODER_PATH}"
ENCODER_FILE = f"{PRETRAIN_DIR}/encoder.safetensors"
PRETRAIN_LOG = f"logs/pretrain/{ENCODER_PATH}.log"
PRETRAIN_HISTORY = f"results/pretrain_history/{ENCODER_PATH}/history.parquet"

ROBUSTNESS_PATH = f"dataset={{dataset}}/{ENCODER_PATH}"
ROBUSTNESS_FILE = f"results/robustness/{ROBUSTNESS_PATH}/robustness.parquet"
# Its own hive tree: each tree holds one schema.
RANKME_FILE = f"results/rankme/{ROBUSTNESS_PATH}/rankme.parquet"
ONLINE_PATH = "dataset={dataset}/model={model}/scheme={scheme}/mode={mode}"
ONLINE_CHOICE = f"results/online/{ONLINE_PATH}/choice.json"

RUN_KEYS = ("dataset", "mode", "seed")
RUN_PATH = f"dataset={{dataset}}/{ENCODER_PATH}/mode={{mode}}/seed={{seed}}"
DOWNSTREAM_SCORES = f"results/downstream/{RUN_PATH}/scores.parquet"
DOWNSTREAM_HISTORY = f"results/downstream_history/{RUN_PATH}/history.parquet"

RESULTS = "results"
TABLE_FILE = f"{RESULTS}/tables/{{name}}.{{ext}}"
FIGURE_FILE = f"{RESULTS}/figures/{{name}}.{{ext}}"


def scratch(pattern):
    """`pattern` of the scratch encoder: the seeded initialisation, the start of both schemes."""
    return expand(pattern, scheme=names.SCRATCH, epoch=names.SCRATCH_EPOCH, allow_missing=True)[0]


SCRATCH_ENCODER = scratch(ENCODER_FILE)

# --- wildcards -----------------------------------------------------------------------------------

# Every scheme an encoder file can have; pretraining and the online method narrow it to the
# pretraining schemes and the checkpoints, preparation and synthesis `dataset` to their datasets.
SCORED_SCHEMES = [*names.PRETRAIN_SCHEMES, names.SCRATCH, *(names.EXTERNAL_PREFIX + name for name in EXTERNAL)]


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="|".join(MODELS["names"]),
    scheme="|".join(SCORED_SCHEMES),
    epoch=r"\d+",
    mode="|".join(names.MODES),
    seed=r"\d+",


# --- params helpers ------------------------------------------------------------------------------


def output_folder(name):
    """Params function: the folder of the job's output `name`."""

    def folder(wildcards, output):
        return os.path.dirname(output[name])

    return folder


def input_folders(name):
    """Params function: the folders of the job's input file or files `name`."""

    def folders(wildcards, input):
        files = input[name]
        return [os.path.dirname(path) for path in ([files] if isinstance(files, str) else files)]

    return folders


def untracked(value):
    """Params function returning `value`, which Snakemake does not track: a change re-runs nothing.

    It takes `output`, so Snakemake counts the param as derived from the job's files, and its
    params trigger skips derived params. For settings the results do not depend on.
    """

    def setting(wildcards, output):
        return value

    return setting


# --- data (workflow/rules/data.smk) --------------------------------------------------------------

# Raw releases are read-only inputs that users move between disks, so they are neither inputs nor
# tracked params of the prepare rules: touching, moving or re-linking one re-runs nothing (a changed
# release is re-prepared on purpose: snakemake --forcerun results/data/<name>/dataset.json). The
# synthetic demo data is ordered before preparation by a marker file that `synthesize` writes
# outside the raw folder.


def datasets_of_type(*kinds):
    """Regex matching the configured dataset names of these types (never matches when none)."""
    selected = [name for name, spec in DATASETS.items() if spec["type"] in kinds]
    return "|".join(selected) if selected else "(?!)"


def raw_path(name):
    """The configured raw folder of a dataset or of ImageNet."""
    return config["imagenet"]["raw"] if name == "imagenet" else DATASETS[name]["raw"]


def raw_release(wildcards, output):
    """The raw folder of the job's dataset (no wildcard: ImageNet), for the command line only.

    Taking `output` makes it untracked (see `untracked`): a new path string for the same release
    re-runs nothing.
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
    if not os.path.isdir(raw) and not os.path.exists(DATASET_JSON.format(dataset=name)):
        key = "imagenet.raw" if name == "imagenet" else f"datasets.{name}.raw"
        raise ValueError(f"config: {key}: {raw} is not a folder; give the path of the raw release")
    return []


def dataset_setting(key):
    """Params function: one setting of the job's dataset."""

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
    return expand(DATASET_JSON, dataset=[*DATASETS, "imagenet"])


# --- pretraining (workflow/rules/pretrain.smk) ---------------------------------------------------


def window_option(wildcards):
    """`--window-size` for Swin, the only model with attention windows; nothing for the others."""
    return f" --window-size {MODELS['window_size']}" if wildcards.model == "swin_unet" else ""


def recipe_setting(key):
    """Params function: one setting of the job's pretraining recipe (its scheme and model)."""

    def setting(wildcards):
        return PRETRAINING[wildcards.scheme][wildcards.model][key]

    return setting


def pretrain_threads(wildcards):
    """One core for the training process plus one per data loader worker."""
    return PRETRAINING[wildcards.scheme][wildcards.model]["workers"] + 1


def loader_workers(wildcards, threads):
    """Data loader workers: the job's threads but one (Snakemake may scale threads down to --cores)."""
    return threads - 1


def pretrain_runtime(wildcards):
    """Minutes requested for a segment (a job stopped at its limit resumes when re-run)."""
    epochs = int(wildcards.epoch) - previous_epoch(wildcards)
    minutes_per_epoch = PRETRAINING[wildcards.scheme][wildcards.model]["minutes_per_epoch"]
    return max(10, round(1.5 * epochs * minutes_per_epoch))


def previous_epoch(wildcards):
    """The checkpoint a segment starts from (0: the scratch encoder)."""
    index = CHECKPOINTS.index(int(wildcards.epoch))
    return CHECKPOINTS[index - 1] if index else names.SCRATCH_EPOCH


def previous_checkpoint(wildcards):
    """A segment starts from the previous checkpoint's state.pt, the first from the scratch encoder."""
    previous = previous_epoch(wildcards)
    if previous == names.SCRATCH_EPOCH:
        return SCRATCH_ENCODER.format(model=wildcards.model)
    return f"{PRETRAIN_DIR}/state.pt".format(model=wildcards.model, scheme=wildcards.scheme, epoch=previous)


def pretrained_checkpoints():
    """The scratch encoder and every checkpoint of both schemes, for every configured model."""
    return expand(SCRATCH_ENCODER, model=MODELS["names"]) + expand(
        ENCODER_FILE, model=MODELS["names"], scheme=names.PRETRAIN_SCHEMES, epoch=CHECKPOINTS
    )


# --- jobs per encoder file (robustness and downstream training) ------------------------------------


def encoder_to_score(wildcards):
    """The encoder file behind a robustness or downstream job's (model, scheme, epoch)."""
    scheme, epoch = wildcards.scheme, int(wildcards.epoch)
    if scheme == names.SCRATCH and epoch == names.SCRATCH_EPOCH:
        return SCRATCH_ENCODER.format(model=wildcards.model)
    if scheme.startswith(names.EXTERNAL_PREFIX) and epoch == names.SCRATCH_EPOCH:
        name = scheme.removeprefix(names.EXTERNAL_PREFIX)
        if EXTERNAL[name]["model"] != wildcards.model:
            raise ValueError(f"robustness.external.{name} is for model {EXTERNAL[name]['model']}")
        return EXTERNAL[name]["file"]
    if scheme in names.PRETRAIN_SCHEMES and epoch in CHECKPOINTS:
        return ENCODER_FILE.format(model=wildcards.model, scheme=scheme, epoch=epoch)
    raise ValueError(f"no encoder for scheme {scheme!r} at epoch {epoch} (checkpoints: {CHECKPOINTS})")


def job_data(wildcards):
    """The dataset.json of the job's dataset, or with one_job_per_encoder of every dataset."""
    return expand(DATASET_JSON, dataset=list(DATASETS) if ONE_JOB_PER_ENCODER else [wildcards.dataset])


def encoder_job_files(pattern, **values):
    """A job's files of `pattern`: its own, or with one_job_per_encoder every dataset's (and every `values`)."""
    if ONE_JOB_PER_ENCODER:
        return expand(pattern, dataset=DATASETS, **values, allow_missing=True)
    return pattern


def encoder_job_log(stage, run_path):
    """The log of a robustness or downstream job: one per encoder file, or per `run_path`."""
    return f"logs/{stage}/{ENCODER_PATH if ONE_JOB_PER_ENCODER else run_path}.log"


def job_out(pattern, run_keys):
    """Params function: a job's output `pattern` for the command line. With one_job_per_encoder, `{key}`
    of `run_keys` stays in the path and the command fills it in per dataset/run."""

    def out(wildcards):
        values = {key: getattr(wildcards, key) for key in ENCODER_KEYS}
        for key in run_keys:
            values[key] = f"{{{key}}}" if ONE_JOB_PER_ENCODER else getattr(wildcards, key)
        return pattern.format(**values)

    return out


def external_image_size(wildcards):
    """External files record no image size, so they are built at the config's; medseg files at their own."""
    return f" --image-size {MODELS['image_size']}" if wildcards.scheme.startswith(names.EXTERNAL_PREFIX) else ""


def encoder_files_of(pattern):
    """`pattern` for every dataset x model and encoder: scratch, every checkpoint of both schemes, the external files."""
    files = expand(
        pattern,
        dataset=DATASETS,
        model=MODELS["names"],
        scheme=names.SCRATCH,
        epoch=names.SCRATCH_EPOCH,
        allow_missing=True,
    )
    files += expand(
        pattern,
        dataset=DATASETS,
        model=MODELS["names"],
        scheme=names.PRETRAIN_SCHEMES,
        epoch=CHECKPOINTS,
        allow_missing=True,
    )
    for name, external in EXTERNAL.items():
        files += expand(
            pattern,
            dataset=DATASETS,
            model=external["model"],
            scheme=names.EXTERNAL_PREFIX + name,
            epoch=names.SCRATCH_EPOCH,
            allow_missing=True,
        )
    return files


# --- robustness and the online method (workflow/rules/robustness.smk) ----------------------------


def robustness_files():
    """The robustness of every encoder file on every dataset."""
    return encoder_files_of(ROBUSTNESS_FILE)


def rankme_files():
    """The RankMe of every encoder file on every dataset (written by the robustness jobs)."""
    return encoder_files_of(RANKME_FILE)


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
    from medseg.selection import online_walk

    scores = {}
    while True:
        walk = online_walk(CHECKPOINTS, scores)
        if walk.finished:
            return walk
        file = dict(dataset=dataset, model=model, scheme=scheme, epoch=walk.needed)
        path = ROBUSTNESS_FILE.format(**file)
        if walk.needed in scores:  # never ask Snakemake for the same existing file forever
            raise ValueError(f"{path}: the online walk cannot use its score {scores[walk.needed]}")
        job = {key: file[key] for key in ENCODER_KEYS} if ONE_JOB_PER_ENCODER else file
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
    return expand(
        ONLINE_CHOICE, dataset=DATASETS, model=MODELS["names"], scheme=names.PRETRAIN_SCHEMES, mode=names.MODES
    )


# --- downstream training (workflow/rules/downstream.smk) -----------------------------------------


def downstream_job_files(pattern):
    """A `train_downstream` job's files of a run pattern: the run's own, or every dataset's, mode's and seed's."""
    return encoder_job_files(pattern, mode=names.MODES, seed=SEEDS)


def job_modes(wildcards):
    """The downstream modes a job trains."""
    return list(names.MODES) if ONE_JOB_PER_ENCODER else [wildcards.mode]


def job_seeds(wildcards):
    """The seeds a downstream job trains."""
    return SEEDS if ONE_JOB_PER_ENCODER else [wildcards.seed]


def downstream_files():
    """scores.parquet of every run: every encoder file on every dataset, both modes, every seed."""
    return expand(encoder_files_of(DOWNSTREAM_SCORES), mode=names.MODES, seed=SEEDS)


def downstream_histories():
    """history.parquet of every downstream run."""
    return expand(encoder_files_of(DOWNSTREAM_HISTORY), mode=names.MODES, seed=SEEDS)


# --- aggregation (workflow/rules/aggregate.smk) --------------------------------------------------


def pretraining_histories():
    """The history of every pretraining segment."""
    return expand(PRETRAIN_HISTORY, model=MODELS["names"], scheme=names.PRETRAIN_SCHEMES, epoch=CHECKPOINTS)


def grid_options():
    """`medseg aggregate` options naming the configured grid: what the results may hold and should."""
    options = {
        "datasets": list(DATASETS),
        "models": MODELS["names"],
        "checkpoints": CHECKPOINTS,
        "seeds": SEEDS,
        "external": list(EXTERNAL),
    }
    return " ".join(f"--{key} {' '.join(map(str, values))}" for key, values in options.items() if values)


def table_files(stems, ext="parquet"):
    """results/tables/<stem>.<ext> of each stem."""
    return expand(TABLE_FILE, name=stems, ext=ext)


def report_files(pattern, stems, ext, category):
    """Named outputs <stem>=report(<file>) with the caption workflow/report/<stem>.rst, for the report."""
    return {
        stem: report(pattern.format(name=stem, ext=ext), caption=f"../report/{stem}.rst", category=category)
        for stem in stems
    }


def aggregated_results():
    """Every table (Parquet, Markdown, and HTML for the report), the summary page and figure (PNG and SVG)."""
    return (
        table_files(TABLES, ["parquet", "md", "html"])
        + table_files(["summary"], ["md", "html"])
        + expand(FIGURE_FILE, name=FIGURES, ext=["png", "svg"])
    )
