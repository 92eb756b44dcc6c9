"""Readable names for tables, figures and the paper audit's report; a name not listed is shown as it is."""

MODEL_NAMES = {"unet": "basic U-Net", "resnet50_attention_unet": "R50 Attn. U-Net", "swin_unet": "Swin U-Net"}
DATASET_NAMES = {"acdc": "ACDC", "covidqu": "COVID-QU", "idrid": "IDRiD"}
MODE_NAMES = {"full": "full training", "decoder": "decoder only"}
DISTANCE_NAMES = {"cosine": "cosine distance", "correlation": "correlation", "l2": "L2 distance"}
