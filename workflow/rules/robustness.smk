# Robustness and RankMe of every encoder file on every dataset (medseg robustness), and the online method
# (medseg online): `snakemake online` pretrains only as far as the robustness walk goes and trains
# the kept checkpoint downstream (the walk's mode, every seed).


# A checkpoint, so that the online walk's input function can ask for one file at a time.
checkpoint robustness:
    input:
        encoder=encoder_to_score,
        data=job_data,
    output:
        robustness=encoder_job_files(ROBUSTNESS_FILE),
        rankme=encoder_job_files(RANKME_FILE),
    log:
        encoder_job_log("robustness", ROBUSTNESS_PATH),
    threads: 1
    resources:
        gpu=1,
    # The batch size changes the scores by float32 rounding only, so it is untracked.
    params:
        data=input_folders("data"),
        out=job_out(ROBUSTNESS_FILE, ["dataset"]),
        rankme=job_out(RANKME_FILE, ["dataset"]),
        margins=ROBUSTNESS["margins"],
        seed=ROBUSTNESS["seed"],
        external_image_size=external_image_size,
        batch=untracked(ROBUSTNESS["batch"]),
    shell:
        "medseg robustness --encoder {input.encoder:q} --data {params.data} --out '{params.out}'"
        " --rankme '{params.rankme}'"
        " --margins {params.margins} --seed {params.seed}{params.external_image_size} --batch {params.batch}"
        " > {log} 2>&1"


rule online_choice:
    input:
        trail=online_trail,
        scores=online_scores,
    output:
        ONLINE_CHOICE,
    log:
        f"logs/online/{ONLINE_PATH}.log",
    wildcard_constraints:
        scheme="|".join(names.PRETRAIN_SCHEMES),
    params:
        checkpoints=CHECKPOINTS,
    shell:
        "medseg online --mode {wildcards.mode} --checkpoints {params.checkpoints} --out {output} {input.trail}"
        " --scores {input.scores} > {log} 2>&1"


rule online:
    input:
        online_choices(),
