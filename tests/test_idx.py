"""IDX reader/writer: round trips for every dtype, strict errors with offsets, and fuzzing."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mnist_idk.errors import IdxError
from mnist_idk.idx import DTYPES, parse_idx, read_idx_file, to_idx, write_idx_file

NATIVE_DTYPES = [dtype.newbyteorder("=") for dtype in DTYPES.values()]


@pytest.mark.parametrize("code", sorted(DTYPES))
def test_header_layout_matches_the_idx_spec(code):
    array = np.zeros((2, 3), DTYPES[code])
    data = to_idx(array)
    assert data[:4] == bytes([0, 0, code, 2])
    assert data[4:12] == (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    assert len(data) == 12 + 6 * DTYPES[code].itemsize


def test_multibyte_values_are_big_endian():
    assert to_idx(np.array([1], np.int32))[-4:] == b"\x00\x00\x00\x01"
    assert parse_idx(b"\x00\x00\x0b\x01\x00\x00\x00\x01\x01\x02")[0] == 0x0102


@given(st.sampled_from(NATIVE_DTYPES).flatmap(lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=4, max_side=5))))
def test_round_trip_any_dtype_and_shape(array):
    back = parse_idx(to_idx(array))
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize(
    ("data", "offset", "words"),
    [
        (b"", 0, "4-byte magic"),
        (b"\x01\x00\x08\x01", 0, "expected 0000"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x00", 2, "unknown type code 0x07"),
        (b"\x00\x00\x08\x00", 3, "number of dimensions is 0"),
        (b"\x00\x00\x08\x02\x00\x00\x00\x01", 8, "ends inside the header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02", 10, "truncated"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", 9, "1 trailing bytes"),
        (b"\x00\x00\x0c\x01\x00\x00\x00\x01\x00\x00\x00", 11, "truncated"),
    ],
)
def test_defects_raise_with_offset(data, offset, words):
    with pytest.raises(IdxError) as info:
        parse_idx(data, "f.idx")
    assert info.value.offset == offset
    assert words in str(info.value)
    assert str(info.value).startswith(f"f.idx: at byte offset {offset}:")


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_fuzz_any_bytes_parse_or_raise_idx_error(data):
    try:
        array = parse_idx(data)
    except IdxError:
        return
    assert to_idx(array) == data  # whatever parses must be exactly what it claims


@settings(max_examples=300)
@given(st.sampled_from(sorted(DTYPES)), st.lists(st.integers(0, 4), min_size=1, max_size=3), st.binary(max_size=80))
def test_fuzz_well_formed_headers_with_random_payloads(code, dims, payload):
    header = bytes([0, 0, code, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    try:
        array = parse_idx(header + payload)
    except IdxError as error:
        assert error.offset <= len(header + payload)
        return
    assert array.shape == tuple(dims)


def test_files_gzip_or_plain(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx_file(tmp_path / "a", array)
    write_idx_file(tmp_path / "a.gz", array, compress=True)
    np.testing.assert_array_equal(read_idx_file(tmp_path / "a"), array)
    np.testing.assert_array_equal(read_idx_file(tmp_path / "a.gz"), array)
    assert gzip.decompress((tmp_path / "a.gz").read_bytes()) == (tmp_path / "a").read_bytes()
    write_idx_file(tmp_path / "b.gz", array, compress=True)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()  # no timestamp


def test_corrupt_gzip_is_an_idx_error(tmp_path):
    good = gzip.compress(to_idx(np.zeros(100, np.uint8)))
    (tmp_path / "bad.gz").write_bytes(good[:-12])
    with pytest.raises(IdxError, match="bad.gz.*not a valid gzip stream"):
        read_idx_file(tmp_path / "bad.gz")
