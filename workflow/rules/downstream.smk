# Downstream segmentation training (medseg train): every encoder file (scratch, checkpoints,
# external files) on every dataset, both modes, every seed, scored on the test split.


rule train_downstream:
    input:
        encoder=encoder_to_score,
        data=job_data,
    output:
        scores=downstream_job_files(DOWNSTREAM_SCORES),
        history=downstream_job_files(DOWNSTREAM_HISTORY),
    log:
        encoder_job_log("downstream"),
    wildcard_constraints:
        dataset="|".join(DATASETS),
        model="|".join(MODELS["names"]),
        scheme=scored_schemes(),
        epoch=r"\d+",
        mode="|".join(MODES),
        seed=r"\d+",
    threads: 1
    resources:
        gpu=1,
    params:
        runs=downstream_runs,
        recipe=downstream_recipe,
    shell:
        "medseg train --model {wildcards.model} --encoder {input.encoder:q} {params.runs} {params.recipe}"
        " --threads {threads}"
        " --resume-minutes {config[downstream][resume_minutes]} > {log} 2>&1"
