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
        encoder_job_log("downstream", RUN_PATH),
    threads: 1
    resources:
        gpu=1,
    # `{dataset}`, `{mode}` and `{seed}` left in the output paths (one_job_per_encoder) are filled
    # in per run by `medseg train`. The resume interval is untracked: results do not depend on it.
    params:
        data=input_folders("data"),
        modes=job_modes,
        seeds=job_seeds,
        scores=job_out(DOWNSTREAM_SCORES, RUN_KEYS),
        history=job_out(DOWNSTREAM_HISTORY, RUN_KEYS),
        epochs=DOWNSTREAM["epochs"],
        batch=DOWNSTREAM["batch"],
        lr=DOWNSTREAM["lr"],
        eval_every=DOWNSTREAM["eval_every"],
        external_image_size=external_image_size,
        resume_minutes=untracked(DOWNSTREAM["resume_minutes"]),
    shell:
        "medseg train --model {wildcards.model} --encoder {input.encoder:q} --data {params.data}"
        " --mode {params.modes} --seed {params.seeds} --scores '{params.scores}' --history '{params.history}'"
        " --epochs {params.epochs} --batch {params.batch} --lr {params.lr} --eval-every {params.eval_every}"
        "{params.external_image_size} --threads {threads} --resume-minutes {params.resume_minutes} > {log} 2>&1"
