"""Exports, Croissant metadata and `info`, read back by the tools that consume them."""

from __future__ import annotations

import io
import json

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from PIL import Image

from mnist_idk.cli import main
from mnist_idk.features import FEATURES, data_file
from mnist_idk.idx import read_idx_file
from mnist_idk.raw import SPLITS

NAMES = FEATURES["label"].names


def build_columns(build, split):
    table = pq.read_table(build / data_file(split))
    return table.column("label").to_numpy(), table.column("image").combine_chunks().field("bytes").to_pylist()


def tree(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def export(*args):
    result = CliRunner().invoke(main, ["export", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def slice_of_build(working_build, tmp_path_factory):
    """The build's first 1000 rows and every IDK row per split: enough for imagefolder to chew on."""
    out = tmp_path_factory.mktemp("slice")
    for split in SPLITS:
        table = pq.read_table(working_build / data_file(split))
        keep = np.flatnonzero((np.arange(table.num_rows) < 1000) | (table.column("label").to_numpy() == 10))
        (out / data_file(split)).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table.take(keep), out / data_file(split))
    return out


def test_imagefolder_export_loads_with_datasets_to_the_same_labels_and_pixels(working_build, slice_of_build, tmp_path):
    out = tmp_path / "folder"
    export("--format", "imagefolder", "--from", slice_of_build, out)
    loaded = datasets.load_dataset("imagefolder", data_dir=str(out), cache_dir=str(tmp_path / "cache"))
    for split in SPLITS:
        labels, pngs = build_columns(slice_of_build, split)
        ds = loaded[split]
        assert ds.num_rows == len(labels)
        names = ds.features["label"].names  # imagefolder names classes after the directories
        assert sorted(names) == sorted(NAMES)
        # imagefolder orders files by path: class directory, then zero-padded index
        order = sorted(range(len(labels)), key=lambda i: (NAMES[labels[i]], i))
        got = [names[i] for i in ds["label"]]
        assert got == [NAMES[labels[i]] for i in order]
        for row in range(0, ds.num_rows, 97):
            expected = np.asarray(Image.open(io.BytesIO(pngs[order[row]])))
            np.testing.assert_array_equal(np.asarray(ds[row]["image"]), expected)
    assert len(list((out / "train" / "IDK").iterdir())) == int((build_columns(working_build, "train")[0] == 10).sum())
    labels, pngs = build_columns(working_build, "train")[:2]
    first_idk = int(np.flatnonzero(labels == 10)[0])
    assert (out / "train" / "IDK" / f"{first_idk:05d}.png").read_bytes() == pngs[first_idk]  # the build's own bytes


def test_idx_export_reads_back_with_11_class_labels(working_build, real_splits, tmp_path):
    for compress in (False, True):
        out = tmp_path / f"idx-{compress}"
        export("--format", "idx", "--from", working_build, *(["--gzip"] if compress else []), out)
        suffix = ".gz" if compress else ""
        for split, prefix in (("train", "train"), ("test", "t10k")):
            images = read_idx_file(out / f"{prefix}-images-idx3-ubyte{suffix}")
            labels = read_idx_file(out / f"{prefix}-labels-idx1-ubyte{suffix}")
            np.testing.assert_array_equal(images, real_splits[split].images)
            np.testing.assert_array_equal(labels, build_columns(working_build, split)[0])
            assert labels.dtype == np.uint8 and labels.max() == 10


def test_exports_are_deterministic_and_atomic(working_build, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    export("--format", "idx", "--gzip", "--from", working_build, first)
    export("--format", "idx", "--gzip", "--from", working_build, second)
    assert tree(first) == tree(second)
    before = tree(first)
    result = CliRunner().invoke(main, ["export", "--format", "idx", "--from", str(tmp_path / "nothing"), str(first)])
    assert result.exit_code == 2 and "missing" in result.output and "Traceback" not in result.output
    assert tree(first) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_croissant_validates_and_reads_records_through_mlcroissant(working_build):
    import mlcroissant as mlc

    path = working_build / "croissant.json"
    described = json.loads(path.read_text("utf-8"))
    assert described["license"].endswith("/by-sa/3.0/")
    dataset = mlc.Dataset(jsonld=str(path))  # validates the metadata and raises on errors
    classes = [record["classes/name"] for record in dataset.records("classes")]
    assert [c.decode() if isinstance(c, bytes) else c for c in classes] == NAMES
    labels, pngs = build_columns(working_build, "test")
    for row, record in enumerate(dataset.records("test")):
        assert record["test/label"] == labels[row]
        assert record["test/mnist_index"] == row
        np.testing.assert_array_equal(np.asarray(record["test/image"]), np.asarray(Image.open(io.BytesIO(pngs[row]))))
        if row == 20:
            break


def test_croissant_that_does_not_match_the_files_fails_validation(working_build, tmp_path):
    import shutil

    from mnist_idk.validate import validate_build

    from conftest import workspace

    copy = tmp_path / "copy"
    shutil.copytree(working_build, copy)
    path = copy / "croissant.json"
    path.write_text(path.read_text("utf-8").replace('"sha256": "', '"sha256": "0'), "utf-8")
    problems = validate_build(workspace(), copy, with_load_dataset=False)
    assert problems == [f"{path}: does not match the build's files and curation working; rebuild"]


def test_info_summarizes_counts_reasons_and_digests(working_build):
    result = CliRunner().invoke(main, ["info", str(working_build)])
    assert result.exit_code == 0, result.output
    labels, _ = build_columns(working_build, "train")
    assert f"IDK:{int((labels == 10).sum())}" in result.output
    assert f"0:{int((labels == 0).sum())} " in result.output
    from mnist_idk.curation import file_sha256

    assert f"{file_sha256(working_build / 'croissant.json')}  croissant.json" in result.output
    assert "unreleased" in result.output


@pytest.mark.parametrize("command", [["info"], ["export", "--format", "idx"]])
def test_commands_on_a_directory_that_is_not_a_build_fail_cleanly(tmp_path, command):
    args = [*command, str(tmp_path)] if command == ["info"] else [*command, "--from", str(tmp_path), str(tmp_path / "o")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and result.output.startswith("error:"), result.output
