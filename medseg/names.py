"""The project's vocabulary: the names that appear in paths, options, tables and the workflow.

No imports, no torch: `workflow/rules/common.smk` reads this module on every dry run and cluster
job, and every stage takes its names from here, so there is one list of each.
"""

MODEL_NAMES = ("unet", "resnet50_attention_unet", "swin_unet")
"""The segmentation models whose encoders are pretrained and transferred (paper §5.1)."""
PRETRAIN_SCHEMES = ("simple", "advanced")
"""The two ImageNet pretraining recipes (paper §5.3)."""
SCRATCH = "scratch"
"""The scheme of the seeded random initialisation: epoch 0, shared by both pretraining schemes."""
SCRATCH_EPOCH = 0
EXTERNAL_PREFIX = "external-"
"""The workflow's scheme of a user's own encoder file: `external-<name>`, epoch 0."""
MODES = ("full", "decoder")
"""Downstream training: every weight, or the decoder only on a frozen encoder (paper §5.4)."""
LEVELS = ("last", "second_to_last")
"""The encoder levels robustness reads (paper §7)."""
POOLINGS = ("pooled", "unpooled")
"""Features averaged over space, or flattened (paper §7)."""
DISTANCES = ("cosine", "l2", "correlation")
"""The feature distances of Eq. 3 (paper Appendix A.6)."""
