"""The paper's numbers: the defaults of the commands and of the workflow's config, in one place.

No imports, no torch: `workflow/rules/common.smk` fills the config keys a user leaves out from
`CONFIG_DEFAULTS`, so `config/config.yaml` (the paper's experiment) does not repeat them.
"""

# Preparation (§5.2): ACDC and COVID-QU-Ex as square images (a folder dataset too, by default);
# IDRiD resized, cut into overlapping training windows and test tiles that partition each image.
PREPARED_SIZE = 256
IDRID_RESIZE = (1120, 2240)
IDRID_WINDOW = 448
IDRID_STRIDE = 112
IDRID_TILE = 224
PREPARATION = {
    "acdc": {"size": PREPARED_SIZE},
    "covidqu": {"size": PREPARED_SIZE},
    "folder": {"size": PREPARED_SIZE},
    "idrid": {"resize": list(IDRID_RESIZE), "window": IDRID_WINDOW, "stride": IDRID_STRIDE, "tile": IDRID_TILE},
}
"""The settings of a config dataset (`datasets.<name>`) that default to the paper's, by dataset type."""

# Models (§5.1, Appendix A.1): 224 x 224 inputs, the published widths, Swin-T's window.
IMAGE_SIZE = 224
WIDTH = 1.0
WINDOW_SIZE = 7

# Pretraining (§5.3): the epochs after which a checkpoint is kept.
CHECKPOINTS = (1, 5, 20, 50, 100, 150, 200, 250, 300)


def pretraining_recipe(scheme: str, model: str) -> dict[str, float]:
    """The batch, learning rate and warmup of a scheme and model (§5.3, Table A.1).

    simple: batch 4096, base LR 0.004 at 4096; warmup 5 epochs for the U-Net, 20 for the others
    (the text of §5.3; Table A.1 has the two warmups swapped). advanced: LR 0.001 x batch / 1024,
    batch 4096 for the convolutional encoders and 1024 for Swin, warmup 20.
    """
    if scheme == "simple":
        return {"batch": 4096, "base_lr": 0.004, "base_lr_batch": 4096, "warmup_epochs": 5 if model == "unet" else 20}
    batch = 1024 if model == "swin_unet" else 4096
    return {"batch": batch, "base_lr": 0.001, "base_lr_batch": 1024, "warmup_epochs": 20}


# Robustness (§4, §6, Appendix A.6): the margins of Eq. 3 and the main variant.
MARGINS = (0.0, 0.25, 0.5, 0.75, 1.0)
MAIN_DISTANCE = "cosine"
MAIN_MARGIN = 0.5
MAIN_LEVEL = "second_to_last"

# Downstream training (§5.4, Appendix A.4): SGD, lr (1 - i/N)^0.9 at step i of N, five seeds.
EPOCHS = 150
BATCH = 24
LR = 0.05
MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
POWER = 0.9
SEEDS = (0, 1, 2, 3, 4)

CONFIG_DEFAULTS = {
    "models": {"image_size": IMAGE_SIZE, "width": WIDTH, "window_size": WINDOW_SIZE},
    "robustness": {"margins": list(MARGINS)},
    "downstream": {"epochs": EPOCHS, "batch": BATCH, "lr": LR, "seeds": list(SEEDS)},
}
"""Config keys (section -> key -> value) that default to the paper's values."""
