"""Downstream segmentation training and evaluation (paper §5.4, Appendices A.4 and A.5).

Pure parts, usable on their own: `loss` (the output-channel convention, class probabilities
and predictions from logits, the Dice loss of Eq. A.2), `augment` (batched on-device geometric
augmentation with per-sample parameters: ACDC/COVID-QU-Ex rotation and flip, IDRiD's rotated
crop of Algorithm 2) and `metrics` (Dice of Eq. A.3, Jaccard, MCC, average precision and HD95
accumulated over a test set into the long `scores.parquet` table).

Training (`medseg train`): `settings` (the A.4 recipe, a run, its identity), `data` (a prepared
dataset held on the device; batches through the shared `medseg.inputs` function, augmented there),
`recipe` (SGD and torch's PolynomialLR), `evaluate` (the test split into `SegmentationMetrics`),
`state` (the resume file), `train` (one run: the loop, resuming, outputs) and `cli`. Nothing heavy
is imported here; `cli` imports torch only when it runs.
"""
