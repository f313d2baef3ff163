"""Check a build against the raw files and its curation list: schema, rows, pixels, labels, card.

Everything is compared with an independent source (raw IDX pixels, the CSV lists, a fresh
``load_dataset``), never with the builder's own intermediate values, and every problem is
reported rather than the first.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
from huggingface_hub import DatasetCard
from PIL import Image

from . import card, croissant, curation
from .features import FEATURES, data_file
from .raw import SPLIT_SIZES, SPLITS, Split, load_splits
from .workspace import Workspace


def decode_batch(pngs: list[bytes]) -> np.ndarray:
    """Decode PNGs with Pillow; a non-28x28-L image yields a sentinel so the caller can name it."""
    out = np.zeros((len(pngs), 28, 28), np.uint8)
    bad = np.zeros(len(pngs), bool)
    for i, png in enumerate(pngs):
        try:
            with Image.open(io.BytesIO(png)) as image:
                if image.mode != "L" or image.size != (28, 28):
                    bad[i] = True
                    continue
                out[i] = np.asarray(image)
        except Exception:  # noqa: BLE001 - any undecodable bytes are a validation finding
            bad[i] = True
    return out, bad


def decode_all(pngs: list[bytes], workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(pngs) < 2000:
        return decode_batch(pngs)
    step = -(-len(pngs) // (workers * 4))
    with ProcessPoolExecutor(workers) as pool:
        parts = list(pool.map(decode_batch, [pngs[i : i + step] for i in range(0, len(pngs), step)]))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def first(indices: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:limit])
    return shown + (f" (and {len(indices) - limit} more)" if len(indices) > limit else "")


def check_split(path: Path, split: Split, cur: curation.Curation, workers: int | None) -> list[str]:
    problems: list[str] = []
    table = pq.read_table(path)
    if table.schema.remove_metadata() != FEATURES.arrow_schema.remove_metadata():
        problems.append(f"{path}: schema is {table.schema.remove_metadata()}, expected {FEATURES.arrow_schema}")
        return problems
    stored = datasets.Features.from_arrow_schema(table.schema)
    if stored != FEATURES:
        problems.append(f"{path}: features in the Parquet metadata are {stored}, expected {FEATURES}")
    n = table.num_rows
    if n != SPLIT_SIZES[split.name]:
        problems.append(f"{path}: {n} rows, expected {SPLIT_SIZES[split.name]}")
        return problems
    index = table["mnist_index"].to_numpy()
    if not np.array_equal(index, np.arange(n)):
        problems.append(f"{path}: mnist_index differs from the row number at rows {first(np.flatnonzero(index != np.arange(n)))}")
    pixels, bad = decode_all(table["image"].combine_chunks().field("bytes").to_pylist(), workers)
    if bad.any():
        problems.append(f"{path}: rows {first(np.flatnonzero(bad))} do not decode to a 28x28 grayscale PNG")
    differ = np.flatnonzero((pixels != split.images).any(axis=(1, 2)) & ~bad)
    if differ.size:
        problems.append(f"{path}: pixels differ from the raw images at rows {first(differ)}")
    original = table["original_label"].to_numpy()
    if not np.array_equal(original, split.labels):
        problems.append(f"{path}: original_label differs from the raw labels at rows {first(np.flatnonzero(original != split.labels))}")
    expected_label = split.labels.astype(np.int64)
    expected_reason = np.full(n, None, dtype=object)
    for entry in cur.entries[split.name]:
        expected_label[entry.index] = FEATURES["label"].str2int(entry.label)
        expected_reason[entry.index] = entry.reason
    label = table["label"].to_numpy()
    if not np.array_equal(label, expected_label):
        problems.append(f"{path}: label differs from raw labels + {cur.version} lists at rows {first(np.flatnonzero(label != expected_label))}")
    reason = np.array(table["reason"].to_pylist(), dtype=object)
    if not np.array_equal(reason, expected_reason):
        problems.append(f"{path}: reason differs from the {cur.version} lists at rows {first(np.flatnonzero(reason != expected_reason))}")
    return problems


def check_card(out: Path, splits: dict[str, Split], cur: curation.Curation) -> list[str]:
    path = out / "README.md"
    try:
        data = DatasetCard.load(path).data.to_dict()
    except Exception as exc:  # noqa: BLE001 - unreadable card is a finding
        return [f"{path}: cannot read the dataset card ({exc})"]
    problems = []
    if data.get("curation_version") != cur.version:
        problems.append(f"{path}: curation_version is {data.get('curation_version')!r}, expected {cur.version!r}")
    info = datasets.DatasetInfo._from_yaml_dict(data.get("dataset_info") or {})
    if info.features != FEATURES:
        problems.append(f"{path}: dataset_info.features differ from the published schema")
    for name in SPLITS:
        got = info.splits[name].num_examples if info.splits and name in info.splits else None
        if got != len(splits[name].labels):
            problems.append(f"{path}: dataset_info says {name} has {got} examples, the file has {len(splits[name].labels)}")
    download = sum((out / data_file(name)).stat().st_size for name in SPLITS)
    if info.download_size != download:
        problems.append(f"{path}: download_size is {info.download_size}, the Parquet files total {download}")
    wanted = [{"split": name, "path": data_file(name)} for name in SPLITS]
    configs = data.get("configs") or [{}]
    if configs[0].get("data_files") != wanted:
        problems.append(f"{path}: configs.data_files is {configs[0].get('data_files')}, expected {wanted}")
    counts = card.class_counts_table(card.class_counts(splits, cur))
    if counts not in path.read_text("utf-8"):
        problems.append(f"{path}: the per-class count table does not match the data")
    return problems


def check_load_dataset(out: Path, cur: curation.Curation, splits: dict[str, Split]) -> list[str]:
    """What users get from ``load_dataset(DIR)`` must be what we meant to publish."""
    # A throwaway cache: validating must not leave lock files or Arrow copies in the user's cache.
    with tempfile.TemporaryDirectory(prefix="mnist-idk-validate-") as cache_dir:
        loaded = datasets.load_dataset(str(out), keep_in_memory=True, cache_dir=cache_dir)
    problems = []
    if sorted(loaded) != sorted(SPLITS):
        return [f"{out}: load_dataset found splits {sorted(loaded)}, expected {list(SPLITS)}"]
    for name in SPLITS:
        ds = loaded[name]
        if ds.features != FEATURES:
            problems.append(f"{out}: load_dataset gives {name} features {ds.features}")
        labels = np.asarray(ds.data.column("label"))
        expected = card.final_labels(splits[name], cur)
        if not np.array_equal(labels, expected):
            problems.append(f"{out}: load_dataset gives other {name} labels than the lists")
    return problems


def check_croissant(ws: Workspace, out: Path, cur: curation.Curation) -> list[str]:
    """croissant.json must describe these very files (its sha256s) and this curation version."""
    path = out / croissant.FILE
    if not path.is_file():
        return [f"{path}: missing"]
    try:
        found = json.loads(path.read_text("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [f"{path}: not JSON ({exc})"]
    if found != croissant.metadata(ws, out, cur.version):
        return [f"{path}: does not match the build's files and curation {cur.version}; rebuild"]
    return []


def validate_build(
    ws: Workspace,
    out: Path,
    version: str | None = None,
    workers: int | None = None,
    with_load_dataset: bool = True,
) -> list[str]:
    """Every problem found in the build at ``out`` (empty when it is sound)."""
    out = Path(out)
    missing = [name for name in ["README.md", *map(data_file, SPLITS)] if not (out / name).is_file()]
    if missing:
        return [f"{out}: missing {', '.join(missing)}; is this a mnist-idk build?"]
    if version is None:
        version = card.recorded_version(out)
    splits = load_splits(ws.raw_dir)
    cur = curation.load(ws, version, {name: s.labels for name, s in splits.items()})
    problems = []
    for name, split in splits.items():
        problems += check_split(out / data_file(name), split, cur, workers)
    problems += check_card(out, splits, cur)
    problems += check_croissant(ws, out, cur)
    if with_load_dataset and not problems:
        problems += check_load_dataset(out, cur, splits)
    return problems
