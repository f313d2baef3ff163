"""Check a build against the raw files and its curation list: schema, rows, pixels, labels, card.

Everything is compared with an independent source (raw IDX pixels, the CSV lists, a fresh
``load_dataset``), never with the builder's own intermediate values, and every problem is
reported rather than the first.

Two views are checked. Ours, in this process: every PNG decoded (a strict decoder for the
canonical form, Pillow for anything else and for a sample of all) and compared with the raw
pixels, every label and reason with the lists, the card's YAML and tables with the data.
``datasets``' own, in a process of its own (``datasets_view.DatasetsView``, which a build starts
before encoding so that importing ``datasets`` overlaps it): the card as ``huggingface_hub`` and
``DatasetInfo`` read it, the Parquet metadata, and ``load_dataset`` (features, rows, labels).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from . import card, croissant, curation
from .datasets_view import DatasetsView
from .features import FEATURES_DICT, arrow_schema, data_file, label_id, yaml_features
from .parquet import binaries
from .png import decode_canonical
from .raw import SPLIT_SIZES, SPLITS, Split, load_splits
from .workspace import Workspace

PILLOW_SAMPLE = 499  # every 499th image is also decoded by Pillow, independently of the fast path


def pillow_decode(png: bytes | None) -> np.ndarray | None:
    """Pillow's reading of one PNG; None unless it is a 28x28 grayscale image."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(png)) as image:
            if image.format != "PNG" or image.mode != "L" or image.size != (28, 28):
                return None
            return np.asarray(image)  # loads: verifies the zlib stream
    except Exception:  # noqa: BLE001 - any undecodable bytes are a validation finding
        return None


def decode_array(pngs: pa.BinaryArray) -> tuple[np.ndarray, np.ndarray]:
    """``(pixels, bad)`` for a column of PNG bytes: the strict fast decoder, Pillow for what it leaves."""
    offsets = np.frombuffer(pngs.buffers()[1], np.int32)[pngs.offset : pngs.offset + len(pngs) + 1]
    data = pngs.buffers()[2] or b""
    pixels, canonical = decode_canonical(data, offsets)
    if pngs.null_count:
        canonical &= np.array(pngs.is_valid().to_pylist(), bool)
    bad = np.zeros(len(pngs), bool)
    for i in np.flatnonzero(~canonical).tolist():
        image = pillow_decode(pngs[i].as_py())
        if image is None:
            bad[i] = True
        else:
            pixels[i] = image
    return pixels, bad


def decode_all(pngs: list[bytes], workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``decode_array`` for a list of PNG bytes (``workers`` is accepted for compatibility; unused)."""
    return decode_array(binaries(pngs))


def integers(column: "pa.ChunkedArray") -> np.ndarray:
    """An integer column as numpy, nulls as -1 (``to_numpy`` would import pandas, ~0.5 s)."""
    array = column.combine_chunks()
    values = np.frombuffer(array.buffers()[1], array.type.to_pandas_dtype())[array.offset : array.offset + len(array)]
    values = values.astype(np.int64)
    if array.null_count:
        values[~np.asarray(array.is_valid().to_pylist())] = -1
    return values


def first(indices: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:limit])
    return shown + (f" (and {len(indices) - limit} more)" if len(indices) > limit else "")


def expected_columns(split: Split, cur: curation.Curation) -> tuple[np.ndarray, np.ndarray]:
    """Labels and reasons from the raw labels and the lists alone."""
    label = split.labels.astype(np.int64)
    reason = np.full(len(label), None, dtype=object)
    for entry in cur.entries[split.name]:
        label[entry.index] = label_id(entry.label)
        reason[entry.index] = entry.reason
    return label, reason


def check_split(path: Path, split: Split, cur: curation.Curation, workers: int | None = None) -> list[str]:
    problems: list[str] = []
    table = pq.ParquetFile(path).read()  # pq.read_table imports pandas
    if table.schema.remove_metadata() != arrow_schema().remove_metadata():
        problems.append(f"{path}: schema is {table.schema.remove_metadata()}, expected {arrow_schema()}")
        return problems
    try:
        stored = json.loads((table.schema.metadata or {}).get(b"huggingface", b"{}"))["info"]["features"]
    except (ValueError, KeyError, TypeError):
        stored = None
    if stored != FEATURES_DICT:
        problems.append(f"{path}: features in the Parquet metadata are {stored}, expected {FEATURES_DICT}")
    n = table.num_rows
    if n != SPLIT_SIZES[split.name]:
        problems.append(f"{path}: {n} rows, expected {SPLIT_SIZES[split.name]}")
        return problems
    index = integers(table["mnist_index"])
    if not np.array_equal(index, np.arange(n)):
        problems.append(f"{path}: mnist_index differs from the row number at rows {first(np.flatnonzero(index != np.arange(n)))}")
    pngs = table["image"].combine_chunks().field("bytes")
    pixels, bad = decode_array(pngs)
    if bad.any():
        problems.append(f"{path}: rows {first(np.flatnonzero(bad))} do not decode to a 28x28 grayscale PNG")
    differ = np.flatnonzero((pixels != split.images).any(axis=(1, 2)) & ~bad)
    if differ.size:
        problems.append(f"{path}: pixels differ from the raw images at rows {first(differ)}")
    sample = [i for i in range(0, n, PILLOW_SAMPLE) if not bad[i]]
    disagree = [i for i in sample if not np.array_equal(pillow_decode(pngs[i].as_py()), split.images[i])]
    if disagree:
        problems.append(f"{path}: Pillow decodes rows {first(np.array(disagree))} to other pixels than the raw images")
    original = integers(table["original_label"])
    if not np.array_equal(original, split.labels):
        problems.append(f"{path}: original_label differs from the raw labels at rows {first(np.flatnonzero(original != split.labels))}")
    expected_label, expected_reason = expected_columns(split, cur)
    label = integers(table["label"])
    if not np.array_equal(label, expected_label):
        problems.append(f"{path}: label differs from raw labels + {cur.version} lists at rows {first(np.flatnonzero(label != expected_label))}")
    reason = np.array(table["reason"].to_pylist(), dtype=object)
    if not np.array_equal(reason, expected_reason):
        problems.append(f"{path}: reason differs from the {cur.version} lists at rows {first(np.flatnonzero(reason != expected_reason))}")
    return problems


def front_matter(path: Path) -> dict:
    """The card's YAML block, parsed as the Hub does (``yaml.safe_load`` between ``---`` lines)."""
    text = path.read_text("utf-8")
    if not text.startswith("---\n") or "\n---\n" not in text[3:]:
        raise ValueError("no YAML block between --- lines")
    data = yaml.safe_load(text[4 : text.index("\n---\n", 3)])
    if not isinstance(data, dict):
        raise ValueError("the YAML block is not a mapping")
    return data


def check_card(out: Path, splits: dict[str, Split], cur: curation.Curation) -> list[str]:
    path = out / "README.md"
    try:
        data = front_matter(path)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        return [f"{path}: cannot read the dataset card ({exc})"]
    problems = []
    if data.get("curation_version") != cur.version:
        problems.append(f"{path}: curation_version is {data.get('curation_version')!r}, expected {cur.version!r}")
    info = data.get("dataset_info") if isinstance(data.get("dataset_info"), dict) else {}
    if info.get("features") != yaml_features():
        problems.append(f"{path}: dataset_info.features differ from the published schema")
    examples = {s.get("name"): s.get("num_examples") for s in info.get("splits") or [] if isinstance(s, dict)}
    for name in SPLITS:
        if examples.get(name) != len(splits[name].labels):
            problems.append(f"{path}: dataset_info says {name} has {examples.get(name)} examples, the file has {len(splits[name].labels)}")
    download = sum((out / data_file(name)).stat().st_size for name in SPLITS)
    if info.get("download_size") != download:
        problems.append(f"{path}: download_size is {info.get('download_size')}, the Parquet files total {download}")
    wanted = [{"split": name, "path": data_file(name)} for name in SPLITS]
    configs = data.get("configs") or [{}]
    if configs[0].get("data_files") != wanted:
        problems.append(f"{path}: configs.data_files is {configs[0].get('data_files')}, expected {wanted}")
    counts = card.class_counts_table(card.class_counts(splits, cur))
    if counts not in path.read_text("utf-8"):
        problems.append(f"{path}: the per-class count table does not match the data")
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
    splits: dict[str, Split] | None = None,
    view: DatasetsView | None = None,
) -> list[str]:
    """Every problem found in the build at ``out`` (empty when it is sound).

    ``splits`` are the raw files as ``raw.load_splits`` returns them (sha256-verified); a caller
    that already holds them saves reading them again. ``view`` is a started ``DatasetsView``
    (else one is started here when ``with_load_dataset``).
    """
    out = Path(out)
    missing = [name for name in ["README.md", *map(data_file, SPLITS)] if not (out / name).is_file()]
    if missing:
        return [f"{out}: missing {', '.join(missing)}; is this a mnist-idk build?"]
    if with_load_dataset and view is None:
        with DatasetsView() as view:
            return validate_build(ws, out, version, workers, with_load_dataset, splits, view)
    if version is None:
        version = card.recorded_version(out)
    splits = splits or load_splits(ws.raw_dir)
    cur = curation.load(ws, version, {name: s.labels for name, s in splits.items()})
    pending = view.check(out, {name: expected_columns(s, cur)[0] for name, s in splits.items()}) if with_load_dataset else None
    problems = []
    for name, split in splits.items():
        problems += check_split(out / data_file(name), split, cur, workers)
    problems += check_card(out, splits, cur)
    problems += check_croissant(ws, out, cur)
    if pending is not None:
        seen = pending()
        if not problems:  # on a build already found broken, datasets' view mostly repeats it
            problems += seen
    return problems
