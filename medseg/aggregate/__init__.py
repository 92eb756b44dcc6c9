"""Aggregation: this project's own runs into TIS tables, the paper's tables and figures, and a report.

Steps (each a rule of workflow/rules/aggregate.smk and a `medseg aggregate` step):
`collect` (the hive trees into single tables), `tis` (TIS and rank correlations, `tis.py`),
`tables` (the paper's tables as Markdown and Parquet), `figures` (the paper's figures).
"""
