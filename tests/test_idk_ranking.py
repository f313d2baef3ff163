"""benchmarks/idk_ranking.py's inputs: the review's random samples, read with clear errors."""

from __future__ import annotations

import importlib.util

import pytest

from mnist_idk.errors import MnistIdkError

from conftest import REPO

spec = importlib.util.spec_from_file_location("idk_ranking", REPO / "benchmarks" / "idk_ranking.py")
idk_ranking = importlib.util.module_from_spec(spec)
spec.loader.exec_module(idk_ranking)
SIZES = {"train": 60000, "test": 10000}


def test_the_recorded_random_samples_are_distinct_train_images_of_released_rounds():
    path = REPO / "curation_lists" / idk_ranking.SAMPLES
    rows = idk_ranking.read_samples(path, SIZES)
    assert len(rows) >= 360 and len({(split, index) for _, split, index in rows}) == len(rows)
    released = {p.name for p in (REPO / "curation_lists" / "releases").iterdir()}
    assert {version for version, _, _ in rows} <= released
    assert {split for _, split, _ in rows} == {"train"}


@pytest.mark.parametrize("text, message", [
    ("round,index\nv1.0.0,3\n", ":1: expected the header round,split,index"),
    ("round,split,index\nv1.0.0,train,3\nv1.0.0,train,60000\n", ":3: expected a split (train, test) and an index"),
    ("round,split,index\nv1.0.0,valid,3\n", ":2: expected a split"),
    ("round,split,index\nv1.0,train,3\n", "is not of the form vX.Y.Z"),
])
def test_a_broken_samples_file_is_named_with_its_line(tmp_path, text, message):
    path = tmp_path / "random_samples.csv"
    path.write_text(text, "utf-8")
    with pytest.raises(MnistIdkError, match=message.replace("(", r"\(").replace(")", r"\)")):
        idk_ranking.read_samples(path, SIZES)


def test_a_version_before_any_listed_sample_is_one_error_line(monkeypatch, capsys):
    """No AUROC without listed and kept samples: exit 2 and say why, before any model is trained."""
    from conftest import RAW

    monkeypatch.setenv("MNIST_IDK_RAW_DIR", str(RAW))
    monkeypatch.delenv("MNIST_IDK_LISTS_DIR", raising=False)
    monkeypatch.chdir(REPO)
    assert idk_ranking.main(["--version", "v1.200.0"]) == 2
    err = capsys.readouterr().err
    assert err == ("error: 0 samples up to v1.200.0, 0 of them listed: an AUROC needs both listed and kept "
                   "samples\n")
