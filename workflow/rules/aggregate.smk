# Aggregation (medseg aggregate): every run of the grid into single tables (collect), the TIS of
# every indicator (tis), the paper's tables (tables) and figures (figures), all in the report:
#   snakemake --report results/report.html


rule collect:
    input:
        scores=downstream_files(),
        histories=downstream_histories(),
        robustness=robustness_files(),
        rankme=rankme_files(),
        pretraining=pretraining_histories(),
        online=online_choices(),
    output:
        table_files(COLLECTED),
    log:
        "logs/aggregate/collect.log",
    params:
        results=RESULTS,
        grid=grid_options(),
    shell:
        "medseg aggregate collect --results {params.results} {params.grid} > {log} 2>&1"


rule tis:
    input:
        table_files(["scores", "robustness", "rankme", "pretraining"]),
    output:
        table_files(["tis", "rank"]),
    log:
        "logs/aggregate/tis.log",
    params:
        results=RESULTS,
        grid=grid_options(),
        bootstrap=config["aggregate"]["bootstrap"],
        seed=config["aggregate"]["seed"],
    shell:
        "medseg aggregate tis --results {params.results} {params.grid} --bootstrap {params.bootstrap}"
        " --seed {params.seed} > {log} 2>&1"


rule tables:
    input:
        table_files(["tis", "scores", "pretraining", "progress"]),
    output:
        **report_files(TABLE_FILE, ["summary", *TABLES], "html", "Tables"),
        markdown=table_files(["summary", *TABLES], "md"),
        parquet=table_files(TABLES),
    log:
        "logs/aggregate/tables.log",
    params:
        results=RESULTS,
    shell:
        "medseg aggregate tables --results {params.results} > {log} 2>&1"


rule figures:
    input:
        table_files(["scores", "robustness", "pretraining", "tis"]),
    output:
        **report_files(FIGURE_FILE, FIGURES, "png", "Figures"),
        svg=expand(FIGURE_FILE, name=FIGURES, ext="svg"),
    log:
        "logs/aggregate/figures.log",
    params:
        results=RESULTS,
    shell:
        "medseg aggregate figures --results {params.results} > {log} 2>&1"
