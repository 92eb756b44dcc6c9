"""Robustness of encoder checkpoints (paper Eq. 3) and the rules that choose a checkpoint by it.

`selection` holds the selection rules (offline argmax, online walk) and the paper's main
variant per downstream mode; the workflow's online input function and the TIS module import
them from there. The robustness computation itself lives beside it. Nothing heavy is imported
here.
"""
