"""The PNG encoder: Pillow decodes every image to exactly the input, independent of batching."""

from __future__ import annotations

import io
import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from mnist_idk.png import decode_canonical, encode_batch, encode_pngs

from conftest import synthetic_images


def decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.mode == "L"
        image.load()  # verifies the IDAT CRC and the zlib stream's adler32
        return np.asarray(image)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.uint8, (3, 28, 28)))
def test_pillow_decodes_exact_pixels(images):
    for png, image in zip(encode_batch(images), images):
        np.testing.assert_array_equal(decode(png), image)


def test_image_bytes_do_not_depend_on_batching_or_workers():
    images = synthetic_images(3000, seed=1)
    alone = [encode_batch(images[i : i + 1])[0] for i in range(0, 3000, 97)]
    serial = encode_batch(images)
    parallel = encode_pngs(images, workers=2)
    assert serial == parallel
    assert alone == serial[::97]


def test_every_real_image_round_trips(real_splits):
    for split in real_splits.values():
        pngs = encode_pngs(split.images)
        decoded = np.stack([decode(png) for png in pngs])
        np.testing.assert_array_equal(decoded, split.images)


def test_zlib_stream_is_valid_on_its_own():
    png = encode_batch(synthetic_images(1))[0]
    length = int.from_bytes(png[33:37], "big")
    assert png[37:41] == b"IDAT"
    assert len(zlib.decompress(png[41 : 41 + length])) == 28 * 29


def pillow_or_none(png: bytes):
    try:
        with Image.open(io.BytesIO(png)) as image:
            if image.format != "PNG" or image.mode != "L" or image.size != (28, 28):
                return None
            return np.asarray(image)
    except Exception:  # noqa: BLE001
        return None


def fast(pngs: list[bytes]):
    offsets = np.zeros(len(pngs) + 1, np.int64)
    np.cumsum([len(p) for p in pngs], out=offsets[1:])
    return decode_canonical(b"".join(pngs), offsets)


def test_fast_decoder_reads_what_the_encoder_writes():
    images = synthetic_images(300, seed=3)
    pixels, canonical = fast(encode_batch(images))
    assert canonical.all() and np.array_equal(pixels, images)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fast_decoder_accepts_only_what_pillow_decodes_to_the_same_pixels(data):
    """Corrupt valid PNGs (flip, cut, insert, rewrite a chunk's CRC); the fast path never disagrees with Pillow."""
    image = data.draw(hnp.arrays(np.uint8, (1, 28, 28)))
    png = bytearray(encode_batch(image)[0])
    kind = data.draw(st.sampled_from(["flip", "cut", "insert", "recrc", "filter"]))
    if kind == "flip":
        at = data.draw(st.integers(0, len(png) - 1))
        png[at] ^= data.draw(st.integers(1, 255))
    elif kind == "cut":
        at = data.draw(st.integers(0, len(png) - 1))
        png = png[:at] + png[at + data.draw(st.integers(1, 8)):]
    elif kind == "insert":
        at = data.draw(st.integers(0, len(png)))
        png[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    elif kind == "recrc":  # a valid-CRC IDAT whose zlib stream is damaged: only zlib can tell
        stream = bytearray(png[41:-16])
        stream[data.draw(st.integers(0, len(stream) - 1))] ^= data.draw(st.integers(1, 255))
        png[41:-16] = stream
        png[-16:-12] = zlib.crc32(bytes(stream), zlib.crc32(b"IDAT")).to_bytes(4, "big")
    else:  # a valid PNG that uses a row filter: not canonical, left to Pillow
        raw = bytearray(zlib.decompress(bytes(png[41:-16])))
        raw[0] = 1  # Sub filter on row 0: still decodes, to other pixels
        stream = zlib.compress(bytes(raw))
        png = png[:33] + len(stream).to_bytes(4, "big") + b"IDAT" + stream + \
            zlib.crc32(stream, zlib.crc32(b"IDAT")).to_bytes(4, "big") + png[-12:]
    pixels, canonical = fast([bytes(png)])
    if canonical[0]:
        reference = pillow_or_none(bytes(png))
        assert reference is not None and np.array_equal(reference, pixels[0])


def test_validation_decode_equals_pillow_on_corrupted_and_filtered_pngs():
    from mnist_idk.validate import decode_all

    images = synthetic_images(40, seed=5)
    pngs = encode_batch(images)
    pngs[3] = pngs[3][:60]  # truncated inside the pixel data
    pngs[4] = pngs[4][:-20]  # no IEND, no adler32: Pillow still reads every pixel
    pngs[7] = pngs[7].replace(b"IDAT", b"IDAx")  # unknown critical chunk order
    raw = bytearray(zlib.decompress(pngs[9][41:-16]))
    raw[29] = 2  # Up filter on row 1: valid PNG, other pixels
    stream = zlib.compress(bytes(raw))
    pngs[9] = pngs[9][:33] + len(stream).to_bytes(4, "big") + b"IDAT" + stream + \
        zlib.crc32(stream, zlib.crc32(b"IDAT")).to_bytes(4, "big") + pngs[9][-12:]
    pixels, bad = decode_all(pngs)
    for i, png in enumerate(pngs):
        reference = pillow_or_none(png)
        assert bad[i] == (reference is None), i
        if reference is not None:
            np.testing.assert_array_equal(pixels[i], reference)
    assert bad[3] and not bad[9]
