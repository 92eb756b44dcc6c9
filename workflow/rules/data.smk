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
            out=output_folder("raw"),
            preset=SYNTHETIC["preset"],
            seed=SYNTHETIC["seed"],
        shell:
            "medseg synth --out {params.out} --only {wildcards.dataset} --preset {params.preset} --seed {params.seed}"
            " > {log} 2>&1 && touch {output.marker}"


# ACDC and COVID-QU-Ex take the same options.
rule prepare_acdc_covidqu:
    input:
        raw_ready,
    output:
        splits=SPLIT_FILES,
        meta=DATASET_JSON,
    log:
        "logs/prepare/{dataset}.log",
    wildcard_constraints:
        dataset=datasets_of_type("acdc", "covidqu"),
    params:
        type=dataset_setting("type"),
        raw=raw_release,
        out=output_folder("meta"),
        size=dataset_setting("size"),
    shell:
        "medseg prepare {params.type} --raw {params.raw:q} --out {params.out} --size {params.size} > {log} 2>&1"


rule prepare_idrid:
    input:
        raw_ready,
    output:
        splits=SPLIT_FILES,
        meta=DATASET_JSON,
    log:
        "logs/prepare/{dataset}.log",
    wildcard_constraints:
        dataset=datasets_of_type("idrid"),
    params:
        raw=raw_release,
        out=output_folder("meta"),
        resize=dataset_setting("resize"),
        window=dataset_setting("window"),
        stride=dataset_setting("stride"),
        tile=dataset_setting("tile"),
    shell:
        "medseg prepare idrid --raw {params.raw:q} --out {params.out} --resize {params.resize}"
        " --window {params.window} --stride {params.stride} --tile {params.tile} > {log} 2>&1"


rule prepare_folder:
    input:
        raw_ready,
    output:
        splits=SPLIT_FILES,
        meta=DATASET_JSON,
    log:
        "logs/prepare/{dataset}.log",
    wildcard_constraints:
        dataset=datasets_of_type("folder"),
    params:
        raw=raw_release,
        out=output_folder("meta"),
        classes=dataset_setting("classes"),
        size=dataset_setting("size"),
    shell:
        "medseg prepare folder --raw {params.raw:q} --out {params.out}"
        " --classes {params.classes} --size {params.size} > {log} 2>&1"


rule prepare_imagenet:
    input:
        raw_ready,
    output:
        train="results/data/imagenet/train/index.parquet",
        val="results/data/imagenet/val/index.parquet",
        meta=DATASET_JSON.format(dataset="imagenet"),
    log:
        "logs/prepare/imagenet.log",
    params:
        raw=raw_release,
        out=output_folder("meta"),
        budget=imagenet_budget_options(),
    shell:
        "medseg prepare imagenet --raw {params.raw:q} --out {params.out} {params.budget} > {log} 2>&1"
