"""`suggest`: planted label flips rank at the top, the same seed gives the same CSV, listed images stay out."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from click.testing import CliRunner

from mnist_idk import curation, suggest
from mnist_idk.cli import main

SMALL = suggest.Settings(folds=5, pca_dims=20, random_features=400, neighbours=10, reference=1500)


def synthetic_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Ten random stroke patterns ('digits'), each image a shifted, noisy copy of its class's."""
    rng = np.random.default_rng(seed)
    prototypes = (rng.random((10, 28, 28)) < 0.25) * rng.integers(120, 256, (10, 28, 28))
    labels = np.arange(n) % 10
    images = prototypes[labels] * (rng.random((n, 28, 28)) < 0.8) + rng.integers(0, 40, (n, 28, 28))
    return np.clip(images, 0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def planted():
    images, labels = synthetic_digits(3000, seed=1)
    rng = np.random.default_rng(2)
    flipped = rng.choice(len(labels), 30, replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, 10, len(flipped))) % 10
    return images, noisy, flipped


def scored(images, labels, seed=0):
    predicted, signals, score, accuracy = suggest.score_images(images, labels, suggest.Settings(**{**SMALL.__dict__, "seed": seed}))
    return suggest.Scored(np.full(len(labels), "train"), np.arange(len(labels)), labels.astype(np.int64), predicted,
                          signals, score, accuracy)


def test_planted_label_flips_rank_at_the_top(planted):
    images, labels, flipped = planted
    result = scored(images, labels)
    assert result.held_out_accuracy > 0.9
    top = suggest.candidates(result, top=len(flipped))["index"]
    assert len(set(top.tolist()) & set(flipped.tolist())) >= 0.9 * len(flipped)
    # each flipped image is predicted as its true class, not its planted label
    assert (result.predicted[flipped] != labels[flipped]).mean() > 0.9


def test_same_seed_same_csv_other_seed_other_scores(planted, tmp_path):
    images, labels, _ = planted
    paths = []
    for run, seed in enumerate((7, 7, 8)):
        paths.append(tmp_path / f"run{run}.csv")
        suggest.write_csv(suggest.candidates(scored(images, labels, seed)), paths[-1])
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()
    rows = list(csv.DictReader(paths[0].open()))
    assert list(rows[0]) == list(suggest.COLUMNS)
    assert [int(r["rank"]) for r in rows] == list(range(1, len(labels) + 1))
    assert all(float(a["score"]) >= float(b["score"]) for a, b in zip(rows, rows[1:]))


def test_cli_on_real_mnist_leaves_listed_images_out(tmp_path, real_splits):
    out, picture = tmp_path / "c.csv", tmp_path / "c.png"
    result = CliRunner().invoke(main, ["suggest", "--top", "40", "--out", str(out), "--sheet", str(picture)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 40 and picture.stat().st_size > 0
    listed = curation.load("working")
    excluded = {(split, e.index) for split in ("train", "test") for e in listed.entries[split]}
    assert not excluded & {(r["split"], int(r["index"])) for r in rows}
    for r in rows:
        assert int(r["original"]) == real_splits[r["split"]].labels[int(r["index"])]
    assert "held-out accuracy of the model: 0.9" in result.output
