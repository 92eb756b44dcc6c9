# Robustness of every encoder file on every dataset (medseg robustness), and the online method
# (medseg online): `snakemake online` pretrains only as far as the robustness walk goes.


# A checkpoint, so that the online walk's input function can ask for one file at a time.
checkpoint robustness:
    input:
        encoder=encoder_to_score,
        data="results/data/{dataset}/dataset.json",
    output:
        ROBUSTNESS_FILE,
    params:
        scoring=robustness_options,
    wildcard_constraints:
        dataset="|".join(DATASETS),
        model="|".join(MODELS["names"]),
        scheme=scored_schemes(),
        epoch=r"\d+",
    threads: 1
    resources:
        gpu=1,
    log:
        "logs/robustness/dataset={dataset}/model={model}/scheme={scheme}/epoch={epoch}.log",
    shell:
        "medseg robustness --encoder {input.encoder:q} --data $(dirname {input.data}) --out {output} {params.scoring}"
        " --batch {config[robustness][batch]} > {log} 2>&1"


rule online_choice:
    input:
        online_trail,
    output:
        ONLINE_CHOICE,
    params:
        checkpoints=CHECKPOINTS,
    wildcard_constraints:
        dataset="|".join(DATASETS),
        model="|".join(MODELS["names"]),
        scheme="|".join(PRETRAIN_SCHEMES),
        mode="|".join(MODES),
    log:
        "logs/online/dataset={dataset}/model={model}/scheme={scheme}/mode={mode}.log",
    shell:
        "medseg online --mode {wildcards.mode} --checkpoints {params.checkpoints} --out {output} {input} > {log} 2>&1"


rule online:
    input:
        online_choices(),
