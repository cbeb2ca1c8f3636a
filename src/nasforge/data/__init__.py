"""Datasets and splits, read from real files in NASFORGE_DATA; nothing is ever downloaded."""

from nasforge._lazy import export_lazily

export_lazily(
    globals(),
    {
        "load_dataset": "nasforge.data.datasets",
        "split_train_val": "nasforge.data.datasets",
        "ImageDataset": "nasforge.data.datasets",
        "DataSource": "nasforge.data.datasets",
        "find_data": "nasforge.data.paths",
    },
)
