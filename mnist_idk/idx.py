"""Read and write LeCun's IDX format: a 4-byte magic, big-endian dims, then the array.

The magic is two zero bytes, a type code and the number of dimensions. Reading is strict: the
byte count must match the dims exactly, because a silently truncated MNIST is worse than none.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .errors import IdxError

#: IDX type code -> big-endian numpy dtype.
DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in DTYPES.items()}


def parse_idx(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array in native byte order; raise ``IdxError`` on any defect."""
    if len(data) < 4:
        raise IdxError(f"file is {len(data)} bytes, expected a 4-byte magic number", len(data), source)
    if data[0] != 0 or data[1] != 0:
        raise IdxError(f"magic starts with {data[:2].hex()}, expected 0000", 0, source)
    code, ndim = data[2], data[3]
    if code not in DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in DTYPES)
        raise IdxError(f"unknown type code 0x{code:02X}, expected one of {known}", 2, source)
    if ndim == 0:
        raise IdxError("number of dimensions is 0, expected at least 1", 3, source)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(
            f"file ends inside the header: {ndim} dimensions need {header} bytes", len(data), source
        )
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = DTYPES[code]
    expected = header + int(np.prod(dims, dtype=np.uint64)) * dtype.itemsize
    if len(data) < expected:
        raise IdxError(
            f"truncated: dims {dims} of {dtype.name} need {expected} bytes, file has {len(data)}",
            len(data),
            source,
        )
    if len(data) > expected:
        raise IdxError(
            f"{len(data) - expected} trailing bytes after the data for dims {dims}", expected, source
        )
    array = np.frombuffer(data, dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=False)


def to_idx(array: np.ndarray) -> bytes:
    """Serialize an array (any dtype IDX supports) to IDX bytes."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    code = _CODES[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, DTYPES[code]).tobytes()


def read_idx_file(path: str | Path) -> np.ndarray:
    """Read an IDX file, gzip'd (``.gz``) or not."""
    path = Path(path)
    return parse_idx(read_bytes(path), str(path))


def read_bytes(path: Path) -> bytes:
    """The content of ``path``, decompressed if it is gzip'd (by magic, not by name)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise IdxError(f"not a valid gzip stream ({exc})", 0, str(path)) from None


def write_idx_file(path: str | Path, array: np.ndarray, compress: bool = False) -> None:
    """Write ``array`` as IDX (gzip'd if ``compress``; mtime 0 so the bytes are reproducible)."""
    data = to_idx(array)
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)  # 9 is 2% smaller, 3x slower
    Path(path).write_bytes(data)
