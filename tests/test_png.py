"""The PNG encoder: Pillow decodes every image to exactly the input, independent of batching."""

from __future__ import annotations

import io
import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp
from PIL import Image

from mnist_idk.png import encode_batch, encode_pngs

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
