"""Dataset preparation: raw releases (ACDC, COVID-QU-Ex, IDRiD, ImageNet, user folders) to
memory-mappable arrays plus an `index.parquet` per split under `results/data/{dataset}/`.

Layout of a prepared segmentation dataset (docs/data.md, "Prepared data"):

    {out}/dataset.json             type, class names, channels, settings, split sizes
    {out}/{split}/images.npy       (N, H, W, C) uint8, or float32 in [0, 1] for ACDC
    {out}/{split}/masks.npy        (N, H, W) uint8 class ids
    {out}/{split}/index.parquet    one row per sample: the window of images.npy it reads
"""
