# ImageNet pretraining (medseg init, medseg pretrain): the seeded epoch-0 encoder, then one job per
# segment between consecutive checkpoints, each continuing from the previous checkpoint's state.


rule init_encoder:
    output:
        SCRATCH_ENCODER,
    log:
        "logs/pretrain/model={model}/scheme=scratch/epoch=0.log",
    wildcard_constraints:
        model="|".join(MODELS["names"]),
    params:
        options=model_options,
    shell:
        "medseg init --model {wildcards.model} {params.options} --out {output} > {log} 2>&1"


rule pretrain:
    input:
        start=previous_checkpoint,
        train="results/data/imagenet/train/index.parquet",
        val="results/data/imagenet/val/index.parquet",
        meta="results/data/imagenet/dataset.json",
    output:
        encoder=f"{PRETRAIN_DIR}/encoder.safetensors",
        state=f"{PRETRAIN_DIR}/state.pt",
        history="results/pretrain_history/model={model}/scheme={scheme}/epoch={epoch}/history.parquet",
    log:
        "logs/pretrain/model={model}/scheme={scheme}/epoch={epoch}.log",
    wildcard_constraints:
        model="|".join(MODELS["names"]),
        scheme="|".join(PRETRAIN_SCHEMES),
        epoch="|".join(str(epoch) for epoch in CHECKPOINTS),
    threads: pretrain_threads
    resources:
        gpu=1,
        runtime=pretrain_runtime,
    params:
        options=pretrain_options,
    # Loader workers = threads - 1 (Snakemake may scale threads down to --cores). The raw folder
    # comes from the config and is no param: moving the images must not re-run pretraining.
    shell:
        "medseg pretrain --model {wildcards.model} --scheme {wildcards.scheme} --epoch {wildcards.epoch}"
        " {params.options} --start {input.start} --data results/data/imagenet --raw {config[imagenet][raw]:q}"
        " --out $(dirname {output.state}) --history {output.history} --workers $(({threads} - 1))"
        " --threads {threads} --resume-minutes {config[pretraining][resume_minutes]} > {log} 2>&1"
