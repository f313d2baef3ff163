"""Exports of a build for tools that read other layouts, written atomically and reproducibly.

- ``imagefolder``: ``{split}/{class}/{mnist_index:05d}.png``, the layout of FiftyOne's
  ImageClassificationDirectoryTree and of ``load_dataset("imagefolder", data_dir=...)``. The PNG
  bytes are the build's own, copied, not re-encoded.
- ``idx``: the four classic IDX files with 11-class labels (10 = IDK), for torchvision-style and
  C loaders; optionally gzip'd.

The build is the source of truth: everything is read from its Parquet files.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from . import idx
from .errors import MnistIdkError
from .curation import LABELS
from .features import data_file
from .raw import RAW_FILES, SPLITS
from .staging import make_staging, replace_dir

FORMATS = ("imagefolder", "idx")


def _table(build: Path, split: str):
    path = Path(build) / data_file(split)
    if not path.is_file():
        raise MnistIdkError(f"{path}: missing; run `mnist-idk build` first or pass the build directory")
    return pq.read_table(path, columns=["image", "label", "mnist_index"])


def write_imagefolder(build: Path, staging: Path) -> None:
    names = list(LABELS)
    for split in SPLITS:
        table = _table(build, split)
        pngs = table.column("image").combine_chunks().field("bytes").to_pylist()
        labels = table.column("label").to_numpy()
        indices = table.column("mnist_index").to_numpy()
        for name in names:
            (staging / split / name).mkdir(parents=True)
        for png, label, index in zip(pngs, labels, indices):
            (staging / split / names[label] / f"{index:05d}.png").write_bytes(png)


def write_idx(build: Path, staging: Path, compress: bool) -> None:
    from .validate import decode_all

    suffix = ".gz" if compress else ""
    for split in SPLITS:
        table = _table(build, split)
        images, bad = decode_all(table.column("image").combine_chunks().field("bytes").to_pylist())
        if bad.any():
            raise MnistIdkError(f"{build / data_file(split)}: row {int(np.argmax(bad))} is not a 28x28 grayscale PNG")
        labels = table.column("label").to_numpy().astype(np.uint8)
        idx.write_idx_file(staging / (RAW_FILES[split, "images"].name + suffix), images, compress)
        idx.write_idx_file(staging / (RAW_FILES[split, "labels"].name + suffix), labels, compress)


def export(build: Path, out: Path, fmt: str, compress: bool = False) -> Path:
    """Write ``fmt`` of the build at ``build`` into ``out``, replacing it only when complete."""
    if fmt not in FORMATS:
        raise MnistIdkError(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
    out = Path(out)
    staging = make_staging(out)
    try:
        if fmt == "imagefolder":
            write_imagefolder(build, staging)
        else:
            write_idx(build, staging, compress)
        replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
