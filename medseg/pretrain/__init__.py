"""ImageNet pretraining of the encoders (paper §5.3, Appendix A.3): a chain of resumable segments.

`medseg init` writes the seeded epoch-0 encoder of a model (`scheme=scratch`); `medseg pretrain`
trains one segment between two consecutive checkpoints with the "simple" or "advanced" recipe
built from timm's parts, starting from the previous checkpoint's full training state.

Modules: `settings` (what a run depends on, its identity), `seeds` (all randomness derived from
(seed, epoch, position)), `data` (JPEG streaming), `recipe` (timm transforms, Mixup, erasing,
losses, optimizer, scheduler), `state` (state.pt and the resume file), `loop` (the segment),
`distributed` (DDP start-up), `cli`. Heavy imports stay inside these modules; `cli` imports none.
"""
