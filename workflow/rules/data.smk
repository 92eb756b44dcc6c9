# Raw releases -> results/data/{dataset}/{split}/ arrays + index.parquet (medseg prepare).
# The raw folder is a param that Snakemake does not track (see `raw_release` in common.smk):
# touching, moving or re-linking a release re-runs nothing; re-prepare one with --forcerun.


if SYNTHETIC is not None:

    # The marker, not the folder, is what preparation waits for (see `raw_ready`).
    rule synthesize:
        output:
            raw=directory("results/raw/{dataset}"),
            marker=SYNTHETIC_MARKER,
        log:
            "logs/synthesize/{dataset}.log",
        wildcard_constraints:
            dataset="|".join(SYNTHETIC_DATASETS),
        params:
            preset=SYNTHETIC["preset"],
            seed=SYNTHETIC["seed"],
        shell:
            "medseg synth --out results/raw --only {wildcards.dataset} --preset {params.preset} --seed {params.seed}"
            " > {log} 2>&1 && touch {output.marker}"


rule prepare_acdc:
    input:
        raw_ready,
    output:
        prepared_files(["train", "test"]),
    log:
        "logs/prepare/{dataset}.log",
    wildcard_constraints:
        dataset=datasets_of_type("acdc"),
    params:
        raw=raw_release,
        size=dataset_setting("size"),
    shell:
        "medseg prepare acdc --raw {params.raw:q} --out results/data/{wildcards.dataset} --size {params.size} > {log} 2>&1"


rule prepare_covidqu:
    input:
        raw_ready,
    output:
        prepared_files(["train", "test"]),
    log:
        "logs/prepare/{dataset}.log",
    wildcard_constraints:
        dataset=datasets_of_type("covidqu"),
    params:
        raw=raw_release,
        size=dataset_setting("size"),
    shell:
        "medseg prepare covidqu --raw {params.raw:q} --out results/data/{wildcards.dataset} --size {params.size} > {log} 2>&1"


rule prepare_idrid:
    input:
        raw_ready,
    output:
        prepared_files(["train", "test"]),
    log:
        "logs/prepare/{dataset}.log",
    wildcard_constraints:
        dataset=datasets_of_type("idrid"),
    params:
        raw=raw_release,
        resize=dataset_setting("resize"),
        window=dataset_setting("window"),
        stride=dataset_setting("stride"),
        tile=dataset_setting("tile"),
    shell:
        "medseg prepare idrid --raw {params.raw:q} --out results/data/{wildcards.dataset} --resize {params.resize}"
        " --window {params.window} --stride {params.stride} --tile {params.tile} > {log} 2>&1"


rule prepare_folder:
    input:
        raw_ready,
    output:
        prepared_files(["train", "test"]),
    log:
        "logs/prepare/{dataset}.log",
    wildcard_constraints:
        dataset=datasets_of_type("folder"),
    params:
        raw=raw_release,
        classes=dataset_setting("classes"),
        size=dataset_setting("size"),
    shell:
        "medseg prepare folder --raw {params.raw:q} --out results/data/{wildcards.dataset}"
        " --classes {params.classes} --size {params.size} > {log} 2>&1"


rule prepare_imagenet:
    input:
        raw_ready,
    output:
        "results/data/imagenet/train/index.parquet",
        "results/data/imagenet/val/index.parquet",
        "results/data/imagenet/dataset.json",
    log:
        "logs/prepare/imagenet.log",
    params:
        raw=raw_release,
        budget=imagenet_budget_options(),
    shell:
        "medseg prepare imagenet --raw {params.raw:q} --out results/data/imagenet {params.budget} > {log} 2>&1"
