# Robustness of every encoder file on every dataset (medseg robustness), and the online method
# (medseg online): `snakemake online` pretrains only as far as the robustness walk goes and trains
# the kept checkpoint downstream (the walk's mode, every seed).


# A checkpoint, so that the online walk's input function can ask for one file at a time.
checkpoint robustness:
    input:
        encoder=encoder_to_score,
        data=job_data,
    output:
        encoder_job_files(ROBUSTNESS_FILE),
    log:
        encoder_job_log("robustness"),
    wildcard_constraints:
        dataset="|".join(DATASETS),
        model="|".join(MODELS["names"]),
        scheme=scored_schemes(),
        epoch=r"\d+",
    threads: 1
    resources:
        gpu=1,
    params:
        data=job_data_folders,
        out=robustness_out,
        scoring=robustness_options,
    shell:
        "medseg robustness --encoder {input.encoder:q} --data {params.data} --out '{params.out}' {params.scoring}"
        " --batch {config[robustness][batch]} > {log} 2>&1"


rule online_choice:
    input:
        trail=online_trail,
        scores=online_scores,
    output:
        ONLINE_CHOICE,
    log:
        "logs/online/dataset={dataset}/model={model}/scheme={scheme}/mode={mode}.log",
    wildcard_constraints:
        dataset="|".join(DATASETS),
        model="|".join(MODELS["names"]),
        scheme="|".join(PRETRAIN_SCHEMES),
        mode="|".join(MODES),
    params:
        checkpoints=CHECKPOINTS,
    shell:
        "medseg online --mode {wildcards.mode} --checkpoints {params.checkpoints} --out {output} {input.trail}"
        " --scores {input.scores} > {log} 2>&1"


rule online:
    input:
        online_choices(),
