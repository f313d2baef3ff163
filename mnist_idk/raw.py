"""The four raw MNIST files: where they are, what their content must hash to, and loading a split.

Digests are of the *decompressed* content, so any gzip of the right bytes is accepted (the copies
in ``raw/mnist`` are recompressed and differ from the mirrors' ``.gz`` files byte for byte).
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import MnistIdkError
from .idx import parse_idx, read_bytes

SPLITS = ("train", "test")
SPLIT_SIZES = {"train": 60000, "test": 10000}
IMAGE_SHAPE = (28, 28)


@dataclass(frozen=True)
class RawFile:
    name: str  # as on the mirrors, without ".gz"
    sha256: str  # of the decompressed content
    size: int  # decompressed bytes


RAW_FILES: dict[tuple[str, str], RawFile] = {
    ("train", "images"): RawFile(
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        47040016,
    ),
    ("train", "labels"): RawFile(
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        60008,
    ),
    ("test", "images"): RawFile(
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        7840016,
    ),
    ("test", "labels"): RawFile(
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        10008,
    ),
}

@dataclass(frozen=True)
class Split:
    """One official split: images (n, 28, 28) uint8 and labels (n,) uint8, in official order."""

    name: str
    images: np.ndarray
    labels: np.ndarray


def load_splits(raw_dir: Path) -> dict[str, Split]:
    """Both splits, verified, in official order."""
    return {name: load_split(name, raw_dir) for name in SPLITS}


def find_raw_file(raw_dir: Path, raw: RawFile) -> Path:
    """The file for ``raw`` in ``raw_dir``, gzip'd or not."""
    for candidate in (raw_dir / raw.name, raw_dir / f"{raw.name}.gz"):
        if candidate.is_file():
            return candidate
    raise MnistIdkError(
        f"{raw_dir}: missing {raw.name} (or {raw.name}.gz); run `mnist-idk fetch --dest {raw_dir}`"
    )


def read_verified(raw_dir: Path, raw: RawFile, verify: bool = True) -> tuple[Path, bytes]:
    """The decompressed content of ``raw``, checked against its pinned sha256."""
    path = find_raw_file(raw_dir, raw)
    data = read_bytes(path)
    if verify:
        digest = hashlib.sha256(data).hexdigest()
        if digest != raw.sha256:
            raise MnistIdkError(
                f"{path}: sha256 of the decompressed content is {digest}, expected {raw.sha256}"
            )
    return path, data


def load_split(split: str, raw_dir: Path, verify: bool = True) -> Split:
    """Load and check one split: counts agree, labels in 0..9, images 28x28 uint8."""
    if split not in SPLITS:
        raise MnistIdkError(f"unknown split {split!r}, expected one of {', '.join(SPLITS)}")
    raw_dir = Path(raw_dir)
    image_path, image_bytes = read_verified(raw_dir, RAW_FILES[split, "images"], verify)
    label_path, label_bytes = read_verified(raw_dir, RAW_FILES[split, "labels"], verify)
    images = parse_idx(image_bytes, str(image_path))
    labels = parse_idx(label_bytes, str(label_path))
    return check_split(split, images, labels, image_path, label_path)


def load_split_streaming(
    split: str, raw_dir: Path, on_images: Callable[[np.ndarray], None], rows: int = 10000
) -> Split:
    """``load_split`` that hands over the images in batches while the file is still being gunzipped.

    Work on the first images (PNG encoding) then overlaps the decompression of the rest.
    ``on_images`` sees every image exactly once, in order. Anything unexpected (a header or
    size that is not the pinned file's, a digest mismatch) falls back to ``load_split``, whose
    errors are the precise ones.
    """
    raw_dir = Path(raw_dir)
    pinned = RAW_FILES[split, "images"]
    path = find_raw_file(raw_dir, pinned)
    images = np.empty((SPLIT_SIZES[split], *IMAGE_SHAPE), np.uint8)
    delivered = 0

    def deliver(batch: np.ndarray) -> None:
        nonlocal delivered
        on_images(batch)
        delivered += len(batch)

    try:
        _stream_images(path, images, pinned, deliver, rows)
    except (ValueError, OSError, EOFError, zlib.error):
        whole = load_split(split, raw_dir)  # raises the precise error, or the file is fine after all
        on_images(whole.images[delivered:])
        return whole
    label_path, label_bytes = read_verified(raw_dir, RAW_FILES[split, "labels"])
    return check_split(split, images, parse_idx(label_bytes, str(label_path)), path, label_path)


def _stream_images(path: Path, images: np.ndarray, pinned: RawFile, on_images, rows: int) -> None:
    header = struct.pack(">IIII", 0x803, len(images), *IMAGE_SHAPE)
    size = IMAGE_SHAPE[0] * IMAGE_SHAPE[1]
    digest, inflate, buffer = hashlib.sha256(), zlib.decompressobj(wbits=31), bytearray()
    done, header_seen = 0, False
    with path.open("rb") as file:
        while True:
            chunk = file.read(1 << 20)
            data = inflate.decompress(chunk) if chunk else inflate.flush()
            digest.update(data)
            buffer += data
            if not header_seen and len(buffer) >= len(header):
                if bytes(buffer[: len(header)]) != header:
                    raise ValueError("not the pinned file")
                del buffer[: len(header)]
                header_seen = True
            ready = min(len(buffer) // size, len(images) - done) if header_seen else 0
            if ready and (ready >= rows or not chunk):
                view = np.frombuffer(buffer, np.uint8, count=ready * size)
                images[done : done + ready] = view.reshape(ready, *IMAGE_SHAPE)
                del view
                del buffer[: ready * size]
                on_images(images[done : done + ready])
                done += ready
            if not chunk:
                break
    if not inflate.eof or inflate.unused_data or buffer or done != len(images) or digest.hexdigest() != pinned.sha256:
        raise ValueError("not the pinned file")


def check_split(split: str, images, labels, image_path, label_path) -> Split:
    """Reject arrays that are valid IDX but not an MNIST split."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise MnistIdkError(
            f"{image_path}: images are {images.dtype} {images.shape}, expected uint8 (n, 28, 28)"
        )
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise MnistIdkError(f"{label_path}: labels are {labels.dtype} {labels.shape}, expected uint8 (n,)")
    if len(images) != len(labels):
        raise MnistIdkError(
            f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels"
        )
    bad = np.flatnonzero(labels > 9)
    if bad.size:
        offset = 8 + int(bad[0])
        raise MnistIdkError(
            f"{label_path}: at byte offset {offset}: label {labels[bad[0]]}, expected 0..9"
        )
    return Split(split, images, labels)
