"""The published schema, defined once with ``datasets.Features`` and shared by build and validate."""

from __future__ import annotations

import datasets

from .curation import LABELS

FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=list(LABELS)),
        "original_label": datasets.ClassLabel(names=list(LABELS[:10])),
        "mnist_index": datasets.Value("int32"),
        "reason": datasets.Value("string"),
    }
)
IDK_ID = LABELS.index("IDK")  # 10


def data_file(split: str) -> str:
    """Where ``push_to_hub`` puts a one-shard split."""
    return f"data/{split}-00000-of-00001.parquet"
