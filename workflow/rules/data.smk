# Raw releases -> results/data/{dataset}/{split}/ arrays + index.parquet (medseg prepare).


rule synthesize:
    output:
        directory("results/raw/{dataset}"),
    params:
        preset=config["synthetic"]["preset"],
        seed=config["synthetic"]["seed"],
    wildcard_constraints:
        dataset="|".join(SYNTHETIC_DATASETS),
    log:
        "logs/synthesize/{dataset}.log",
    shell:
        "medseg synth --out results/raw --only {wildcards.dataset} --preset {params.preset} --seed {params.seed} > {log} 2>&1"


rule prepare_acdc:
    input:
        raw=raw_folder,
    output:
        prepared_files(["train", "test"]),
    params:
        size=dataset_setting("size"),
    wildcard_constraints:
        dataset=datasets_of_type("acdc"),
    log:
        "logs/prepare/{dataset}.log",
    shell:
        "medseg prepare acdc --raw {input.raw:q} --out results/data/{wildcards.dataset} --size {params.size} > {log} 2>&1"


rule prepare_covidqu:
    input:
        raw=raw_folder,
    output:
        prepared_files(["train", "test"]),
    params:
        size=dataset_setting("size"),
    wildcard_constraints:
        dataset=datasets_of_type("covidqu"),
    log:
        "logs/prepare/{dataset}.log",
    shell:
        "medseg prepare covidqu --raw {input.raw:q} --out results/data/{wildcards.dataset} --size {params.size} > {log} 2>&1"


rule prepare_idrid:
    input:
        raw=raw_folder,
    output:
        prepared_files(["train", "test"]),
    params:
        resize=dataset_setting("resize"),
        window=dataset_setting("window"),
        stride=dataset_setting("stride"),
        tile=dataset_setting("tile"),
    wildcard_constraints:
        dataset=datasets_of_type("idrid"),
    log:
        "logs/prepare/{dataset}.log",
    shell:
        "medseg prepare idrid --raw {input.raw:q} --out results/data/{wildcards.dataset} --resize {params.resize}"
        " --window {params.window} --stride {params.stride} --tile {params.tile} > {log} 2>&1"


rule prepare_folder:
    input:
        raw=raw_folder,
    output:
        prepared_files(["train", "test"]),
    params:
        classes=dataset_setting("classes"),
        size=dataset_setting("size"),
    wildcard_constraints:
        dataset=datasets_of_type("folder"),
    log:
        "logs/prepare/{dataset}.log",
    shell:
        "medseg prepare folder --raw {input.raw:q} --out results/data/{wildcards.dataset}"
        " --classes {params.classes} --size {params.size} > {log} 2>&1"


rule prepare_imagenet:
    input:
        raw=config["imagenet"]["raw"],
    output:
        "results/data/imagenet/train/index.parquet",
        "results/data/imagenet/val/index.parquet",
        "results/data/imagenet/dataset.json",
    params:
        budget=imagenet_budget_options(),
    log:
        "logs/prepare/imagenet.log",
    shell:
        "medseg prepare imagenet --raw {input.raw:q} --out results/data/imagenet {params.budget} > {log} 2>&1"
