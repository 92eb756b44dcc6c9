# medseg: robustness of ImageNet checkpoints as a transferability indicator.
# Without --configfile the embedded CPU demo on synthetic data runs; the paper's grid is
#   snakemake --configfile config/config.yaml --profile profiles/local
# (one workstation; a Slurm profile is planned).
# Keep this file light: it is parsed for every dry run and every cluster job (no torch).

from snakemake.utils import min_version

# The version pyproject.toml pins and the tests run.
min_version("9.27.1")

if not config:

    configfile: "config/demo.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/robustness.smk"
include: "workflow/rules/downstream.smk"
include: "workflow/rules/aggregate.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        prepared_datasets(),
        pretrained_checkpoints(),
        robustness_files(),
        downstream_files(),
        aggregated_results(),


# The answer of a run: runs done, TIS per indicator, where the tables, figures and report are.
onsuccess:
    shell("medseg aggregate summary --results {RESULTS} || true")
