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
