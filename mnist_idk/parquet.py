"""Write a split's Parquet file exactly as ``datasets``' ``Dataset.to_parquet`` would, with pyarrow alone.

Importing ``datasets`` costs ~0.8 s, more than the rest of a build's serial work, so the layout
of ``datasets.io.parquet.ParquetDatasetWriter`` (datasets 5) is reproduced here: the Features'
schema and metadata, row groups of at most ~100 MB uncompressed, the page index,
content-defined chunking (recorded in the key-value metadata), embedded image bytes stored
PLAIN and uncompressed, every other column snappy with dictionaries. A test writes the same table
with ``datasets`` and with this and compares the files byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MAX_ROW_GROUP_BYTES = 100 * 10**6  # datasets.config.MAX_ROW_GROUP_SIZE ("100MB")
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}  # config.DEFAULT_CDC_OPTIONS
EMBEDDED = ("image",)  # columns whose feature embeds file bytes (datasets' require_storage_embed)


# Columns are assembled from buffers: ``pa.array`` and ``Table.from_pydict`` import pandas (~0.5 s)
# to check whether their input is a pandas object.


def numbers(values: np.ndarray, pa_type: pa.DataType) -> pa.Array:
    """A non-null integer column of ``pa_type`` holding ``values``."""
    data = np.ascontiguousarray(values, dtype=pa_type.to_pandas_dtype())
    return pa.Array.from_buffers(pa_type, len(data), [None, pa.py_buffer(data)])


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


def packed_binaries(data: bytes, lengths: np.ndarray) -> pa.Array:
    """A non-null binary column whose values are ``data`` cut at ``lengths``."""
    if int(lengths.sum()) != len(data):
        raise ValueError("lengths do not add up to the data")
    return pa.Array.from_buffers(pa.binary(), len(lengths), [None, pa.py_buffer(_offsets(lengths)), pa.py_buffer(data)])


def binaries(values: list[bytes]) -> pa.Array:
    """A non-null binary column."""
    return packed_binaries(b"".join(values), np.fromiter(map(len, values), np.int64, len(values)))


def strings(values: list[str | None]) -> pa.Array:
    """A string column; ``None`` is null."""
    encoded = [b"" if v is None else v.encode("utf-8") for v in values]
    valid = np.array([v is not None for v in values], bool)
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    offsets = _offsets(np.fromiter(map(len, encoded), np.int64, len(encoded)))
    return pa.Array.from_buffers(pa.string(), len(values), [bitmap, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))],
                                 null_count=int((~valid).sum()))


def _leaves(name: str, pa_type: pa.DataType) -> list[str]:
    if pa.types.is_struct(pa_type):
        return [leaf for field in pa_type for leaf in _leaves(f"{name}.{field.name}", field.type)]
    if pa.types.is_list(pa_type) or pa.types.is_large_list(pa_type) or pa.types.is_fixed_size_list(pa_type):
        return _leaves(f"{name}.list.element", pa_type.value_type)
    return [name]


def column_options(schema: pa.Schema) -> dict:
    """datasets' ``get_parquet_column_options``: per-leaf compression, dictionary and encoding."""
    compression, use_dictionary, column_encoding = {}, [], {}
    for field in schema:
        embed = field.name in EMBEDDED
        for leaf in _leaves(field.name, field.type):
            compression[leaf] = "none" if embed else "snappy"
            if embed:
                column_encoding[leaf] = "PLAIN"
            else:
                use_dictionary.append(leaf)
    return {"compression": compression, "use_dictionary": use_dictionary, "column_encoding": column_encoding}


def write(table: pa.Table, schema: pa.Schema, path: Path) -> int:
    """Write ``table`` (already of ``schema``'s types) to ``path``; returns its Arrow size in bytes."""
    num_bytes = table.nbytes
    # datasets' estimate for rows of embedded bytes: the table's size less the (null) path column.
    estimate = num_bytes - sum(table.column(name).combine_chunks().field("path").nbytes for name in EMBEDDED)
    batch_size = max(1, len(table) * MAX_ROW_GROUP_BYTES // estimate) if estimate > 0 else 1
    with pq.ParquetWriter(
        str(path), schema=schema, use_content_defined_chunking=CDC_OPTIONS, write_page_index=True,
        **column_options(schema),
    ) as writer:
        for offset in range(0, len(table), batch_size):
            writer.write_table(table.slice(offset, batch_size))
        writer.add_key_value_metadata({"content_defined_chunking": json.dumps(CDC_OPTIONS)})
    return num_bytes
