"""The build writes Parquet and card YAML without importing ``datasets``; ``datasets`` still defines both.

Each test produces the same thing with ``datasets``/``huggingface_hub`` themselves and with our
code, and compares bytes.
"""

from __future__ import annotations

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.info import DatasetInfosDict
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard, DatasetCardData

from mnist_idk import card, parquet
from mnist_idk.build import split_table
from mnist_idk.features import FEATURES, arrow_schema, data_file, yaml_features
from mnist_idk.png import encode_pngs
from mnist_idk.raw import SPLITS, Split

from conftest import synthetic_images

LIST_HEADER = "index,original,label,reason,note\n"


def datasets_parquet(table: pa.Table, path) -> bytes:
    dataset = datasets.Dataset(table, info=datasets.DatasetInfo(features=FEATURES))
    dataset.to_parquet(str(path))
    return path.read_bytes()


def ours(table: pa.Table, path) -> bytes:
    parquet.write(table, arrow_schema(), path)
    return path.read_bytes()


def test_schema_and_yaml_features_are_datasets_own():
    assert FEATURES.arrow_schema.equals(arrow_schema(), check_metadata=True)
    assert FEATURES._to_yaml_list() == yaml_features()


def test_columns_built_from_buffers_equal_pa_array():
    values = ["a", None, "ünïcode", "", None]
    assert parquet.strings(values).equals(pa.array(values, pa.string()))
    assert parquet.binaries([b"x", b"", b"yz"]).equals(pa.array([b"x", b"", b"yz"], pa.binary()))
    assert parquet.numbers(np.array([3, 1], np.uint8), pa.int64()).equals(pa.array([3, 1], pa.int64()))


def synthetic_table(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    split = Split("test", synthetic_images(n, seed), labels)
    lists = type("C", (), {"entries": {"test": []}})()
    table = split_table(split, lists, parquet.binaries(encode_pngs(split.images, workers=1)))
    reasons = [None if rng.random() < 0.9 else "ambiguous" for _ in range(n)]
    return table.set_column(4, "reason", pa.array(reasons, pa.string()))


def test_parquet_bytes_equal_datasets_writer_on_a_synthetic_table(tmp_path):
    for n, seed in [(1, 0), (300, 1), (5000, 2)]:
        table = synthetic_table(n, seed)
        assert ours(table, tmp_path / "a.parquet") == datasets_parquet(table, tmp_path / "b.parquet"), n


def test_parquet_bytes_equal_datasets_writer_on_the_real_build(working_build, tmp_path):
    for name in SPLITS:
        built = (working_build / data_file(name)).read_bytes()
        table = pq.read_table(working_build / data_file(name)).replace_schema_metadata(None).cast(arrow_schema())
        assert datasets_parquet(table, tmp_path / f"{name}.parquet") == built, name
        meta = pq.ParquetFile(working_build / data_file(name)).metadata
        assert meta.num_row_groups == 1 and b"content_defined_chunking" in meta.metadata


def reference_card_yaml(splits, cur, num_bytes, out) -> str:
    """The card YAML the way the libraries write it (what card.py did before it stopped importing datasets)."""
    data = DatasetCardData(
        license="cc-by-sa-3.0",
        language=["en"],
        pretty_name="MNIST-IDK",
        task_categories=["image-classification"],
        task_ids=["multi-class-image-classification"],
        size_categories=["10K<n<100K"],
        source_datasets=["extended|mnist"],
        annotations_creators=["expert-generated"],
        tags=["mnist", "abstention", "selective-classification", "label-noise"],
        curation_version=cur.version,
    )
    MetadataConfigs(
        {"default": {"data_files": [{"split": name, "path": data_file(name)} for name in splits]}}
    ).to_dataset_card_data(data)
    info = datasets.DatasetInfo(
        features=FEATURES,
        splits=datasets.SplitDict(
            {name: datasets.SplitInfo(name, num_bytes[name], len(s.labels)) for name, s in splits.items()}
        ),
        download_size=sum((out / data_file(name)).stat().st_size for name in splits),
        dataset_size=sum(num_bytes.values()),
    )
    DatasetInfosDict({"default": info}).to_dataset_card_data(data)
    return data.to_yaml()


def test_card_bytes_equal_what_huggingface_hub_and_datasets_write(working_build, real_splits, ws):
    from mnist_idk import curation

    cur = curation.load(ws, "working", {n: s.labels for n, s in real_splits.items()})
    front = (working_build / "README.md").read_text("utf-8")
    yaml_dict = DatasetCard.load(working_build / "README.md").data.to_dict()
    num_bytes = {s["name"]: s["num_bytes"] for s in yaml_dict["dataset_info"]["splits"]}
    expected = reference_card_yaml(real_splits, cur, num_bytes, working_build)
    assert card.to_yaml(card.card_data(real_splits, cur, num_bytes, working_build)) == expected
    # ... and the whole README is what DatasetCard itself would save.
    assert str(DatasetCard(front)) == front and front.startswith(f"---\n{expected}\n---\n\n")
