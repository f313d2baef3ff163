"""The published schema, written out as data so that building needs no ``datasets`` import.

``datasets`` still defines it: ``FEATURES`` (a ``datasets.Features``, imported on first use,
~0.8 s) is built from ``FEATURES_DICT``, and tests check that its Arrow schema and card YAML are
exactly ``arrow_schema()`` and ``yaml_features()``.
"""

from __future__ import annotations

import json

from .curation import LABELS

# ``datasets.Features.to_dict()`` of the published schema.
FEATURES_DICT = {
    "image": {"_type": "Image"},
    "label": {"names": list(LABELS), "_type": "ClassLabel"},
    "original_label": {"names": list(LABELS[:10]), "_type": "ClassLabel"},
    "mnist_index": {"dtype": "int32", "_type": "Value"},
    "reason": {"dtype": "string", "_type": "Value"},
}
IDK_ID = LABELS.index("IDK")  # 10


def label_id(name: str) -> int:
    """``ClassLabel.str2int`` for the ``label`` column."""
    return LABELS.index(name)


def arrow_schema():
    """``FEATURES.arrow_schema``: storage types plus the ``huggingface`` metadata ``datasets`` reads back."""
    import pyarrow as pa

    fields = [
        pa.field("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        pa.field("label", pa.int64()),
        pa.field("original_label", pa.int64()),
        pa.field("mnist_index", pa.int32()),
        pa.field("reason", pa.string()),
    ]
    return pa.schema(fields).with_metadata({"huggingface": json.dumps({"info": {"features": FEATURES_DICT}})})


def yaml_features() -> list[dict]:
    """``FEATURES._to_yaml_list()``: the schema as the card's ``dataset_info.features``."""
    def class_label(names):
        return {"class_label": {"names": {str(i): name for i, name in enumerate(names)}}}

    return [
        {"name": "image", "dtype": "image"},
        {"name": "label", "dtype": class_label(LABELS)},
        {"name": "original_label", "dtype": class_label(LABELS[:10])},
        {"name": "mnist_index", "dtype": "int32"},
        {"name": "reason", "dtype": "string"},
    ]


def data_file(split: str) -> str:
    """Where ``push_to_hub`` puts a one-shard split."""
    return f"data/{split}-00000-of-00001.parquet"


def __getattr__(name: str):
    if name == "FEATURES":  # imports datasets: only validation's load check and tests need it
        import datasets

        globals()["FEATURES"] = features = datasets.Features.from_dict(FEATURES_DICT)
        return features
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
