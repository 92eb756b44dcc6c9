# ImageNet pretraining (medseg init, medseg pretrain): the seeded epoch-0 encoder, then one job per
# segment between consecutive checkpoints, each continuing from the previous checkpoint's state.


rule init_encoder:
    output:
        SCRATCH_ENCODER,
    log:
        scratch(PRETRAIN_LOG),
    params:
        image_size=MODELS["image_size"],
        width=MODELS["width"],
        window=window_option,
        seed=MODELS["seed"],
    shell:
        "medseg init --model {wildcards.model} --image-size {params.image_size} --width {params.width}"
        " --seed {params.seed}{params.window} --out {output} > {log} 2>&1"


rule pretrain:
    input:
        start=previous_checkpoint,
        train=rules.prepare_imagenet.output.train,
        val=rules.prepare_imagenet.output.val,
        meta=rules.prepare_imagenet.output.meta,
    output:
        encoder=ENCODER_FILE,
        state=f"{PRETRAIN_DIR}/state.pt",
        history=PRETRAIN_HISTORY,
    log:
        PRETRAIN_LOG,
    wildcard_constraints:
        scheme="|".join(names.PRETRAIN_SCHEMES),
        epoch="|".join(str(epoch) for epoch in CHECKPOINTS),
    threads: pretrain_threads
    resources:
        gpu=1,
        runtime=pretrain_runtime,
    # The raw folder (JPEGs are read from it), the workers and the resume interval are untracked:
    # moving the images or changing how the work is laid out must not re-run pretraining.
    params:
        image_size=MODELS["image_size"],
        width=MODELS["width"],
        window=window_option,
        seed=MODELS["seed"],
        planned_epochs=CHECKPOINTS[-1],
        batch=recipe_setting("batch"),
        micro_batch=recipe_setting("micro_batch"),
        base_lr=recipe_setting("base_lr"),
        base_lr_batch=recipe_setting("base_lr_batch"),
        warmup_epochs=recipe_setting("warmup_epochs"),
        data=input_folders("meta"),
        raw=raw_release,
        out=output_folder("state"),
        workers=loader_workers,
        resume_minutes=untracked(PRETRAINING["resume_minutes"]),
    shell:
        "medseg pretrain --model {wildcards.model} --scheme {wildcards.scheme} --epoch {wildcards.epoch}"
        " --image-size {params.image_size} --width {params.width} --seed {params.seed}{params.window}"
        " --planned-epochs {params.planned_epochs} --batch {params.batch} --micro-batch {params.micro_batch}"
        " --base-lr {params.base_lr} --base-lr-batch {params.base_lr_batch} --warmup-epochs {params.warmup_epochs}"
        " --start {input.start} --data {params.data} --raw {params.raw:q} --out {params.out}"
        " --history {output.history} --workers {params.workers} --threads {threads}"
        " --resume-minutes {params.resume_minutes} > {log} 2>&1"
