"""Rank MNIST images by how likely their label is wrong or undecidable, out of sample.

Every image is scored by a model that never saw it: the 70,000 images (train and test pooled)
are cut into ``folds`` folds (a fixed random assignment from the seed) and each fold is scored by
a model fitted on the others. The model is deliberately simple and fast on two CPU cores:
deskewed pixels (each digit sheared upright, the classic MNIST trick: 97.2% -> 98.1% here),
PCA, random Fourier features (an approximation of an RBF kernel) and ridge regression to one-hot
labels solved in closed form; its outputs become probabilities through one softmax temperature
fitted on the out-of-fold scores. About 98% held-out accuracy: good enough that what disagrees
with it is worth a look.

The signals, each oriented so that larger means "look at this image":

- ``self_confidence``: 1 - p(given label). Low out-of-fold probability of its own label
  (cleanlab's self-confidence score).
- ``margin``: max p(other label) - p(given label), in [-1, 1]. Another digit beats the given one.
- ``entropy``: entropy of p, normalized to [0, 1]. The model cannot decide at all (what FiftyOne
  calls hardness); catches ambiguous images whatever their label.
- ``knn_disagreement``: share of the ``neighbours`` nearest images (in PCA space, among a fixed
  random reference sample of ``reference`` images) whose label differs from the given one.
  Independent of the fitted model.
- ``centroid_distance``: distance to the centroid of the given class in PCA space, divided by the
  class's median distance: the least typical members of each class (deformed strokes, outliers).

``score`` is the mean of the percentile ranks of ``self_confidence`` and ``knn_disagreement``:
one view through the model, one without it, so a quirk of the model alone does not reach the
top. The other three signals are in the table for the reviewer but not in the score. Measured by
``benchmarks/suggest_quality.py`` (the 76 images of release v1.0.0 hidden, top 1% of each split):
this score finds 26 + 9 of them, self-confidence alone 25 + 8, kNN disagreement alone 24 + 8,
margin alone 23 + 8, entropy alone 14 + 1, centroid distance alone 5 + 2, and the mean rank of
all five only 11 + 3: entropy and atypicality pull up hard but plausibly labelled digits.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from . import curation
from .raw import SPLITS, Split, load_split

SIGNALS = ("self_confidence", "margin", "entropy", "knn_disagreement", "centroid_distance")
COMBINED = ("self_confidence", "knn_disagreement")
COLUMNS = ("rank", "split", "index", "original", "predicted", *SIGNALS, "score")
Progress = Callable[[str], None]
BLOCK = 2000  # rows per matrix product in the neighbour search: ~80 MB of distances at a time


def quiet(message: str) -> None:
    """The default progress callback: say nothing."""


@dataclass(frozen=True)
class Settings:
    folds: int = 5
    pca_dims: int = 40
    random_features: int = 2000
    neighbours: int = 10
    reference: int = 10000  # images the neighbours are drawn from (all 70k: 65 s instead of 6 s)
    seed: int = 0


@dataclass(frozen=True)
class Scored:
    """Signals for every scored image, in input order (train rows, then test rows)."""

    split: np.ndarray  # str
    index: np.ndarray
    original: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray  # (n, 10) out-of-fold, calibrated
    signals: dict[str, np.ndarray]
    score: np.ndarray
    held_out_accuracy: float


def deskew(images: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1], each image sheared so its main axis is vertical and centred (n, 784).

    Slant is the largest variation between writers of the same digit; removing it lets a small
    model spend its capacity on shape. Shear x by cov(x, y) / var(y) about the centre of mass,
    with linear interpolation along each row.
    """
    out = np.empty((len(images), 28 * 28), np.float32)
    grid = np.arange(28, dtype=np.float32)
    for start in range(0, len(images), 10000):
        x = images[start:start + 10000].astype(np.float32) / 255
        row_mass, column_mass = x.sum(2), x.sum(1)
        total = row_mass.sum(1) + 1e-6
        centre_y, centre_x = row_mass @ grid / total, column_mass @ grid / total
        dy = grid[None, :] - centre_y[:, None]
        covariance = (dy * (x @ grid - centre_x[:, None] * row_mass)).sum(1) / total
        shear = covariance / ((row_mass * dy**2).sum(1) / total + 1e-6)
        source = grid[None, None, :] + (shear[:, None] * dy + (centre_x - 13.5)[:, None])[:, :, None]
        left = np.floor(source)
        weight = source - left
        left = left.astype(np.int64)
        padded = np.zeros((len(x), 28, 30), np.float32)  # a zero column each side: outside is blank
        padded[:, :, 1:29] = x
        a = np.take_along_axis(padded, np.clip(left, -1, 28) + 1, axis=2)
        b = np.take_along_axis(padded, np.clip(left + 1, -1, 28) + 1, axis=2)
        out[start:start + len(x)] = (a + (b - a) * weight).reshape(len(x), -1)
    return out


def pca(pixels: np.ndarray, dims: int) -> np.ndarray:
    """Project on the top principal components (eigenvectors of the pixel covariance)."""
    centered = pixels - pixels.mean(axis=0)
    _, vectors = np.linalg.eigh((centered.T @ centered).astype(np.float64))
    return centered @ vectors[:, ::-1][:, :dims].astype(np.float32)


def random_fourier_features(points: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """cos(xW + b) with Gaussian W: dot products approximate an RBF kernel (Rahimi & Recht 2007).

    The kernel width is the median squared distance of a sample of points (the usual heuristic),
    so no tuning is needed when the data change.
    """
    sample = points[rng.choice(len(points), min(1000, len(points)), replace=False)]
    squared = (sample**2).sum(1)
    distances = squared[:, None] - 2 * sample @ sample.T + squared[None, :]
    gamma = 1.0 / max(float(np.median(distances[distances > 0])), 1e-12)
    weights = rng.normal(0.0, np.sqrt(2 * gamma), (points.shape[1], count)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, count).astype(np.float32)
    features = np.empty((len(points), count + 1), np.float32)
    features[:, count] = 1  # the intercept
    for start in range(0, len(points), 10000):
        block = slice(start, start + 10000)
        features[block, :count] = np.cos(points[block] @ weights + phase) * np.float32(np.sqrt(2.0 / count))
    return features


def out_of_fold_scores(features: np.ndarray, labels: np.ndarray, folds: np.ndarray,
                       progress: Progress = quiet) -> np.ndarray:
    """Ridge regression to one-hot labels; each fold predicted by the fit on the other folds.

    The Gram matrix of the whole data is the sum of the folds' Gram matrices, so each fit costs
    one subtraction and one solve instead of a pass over the data.
    """
    count = int(folds.max()) + 1
    targets = np.eye(10, dtype=np.float32)[labels]
    grams, rights = [], []
    for f in range(count):
        progress(f"fold {f + 1}/{count}: Gram matrix")
        grams.append(features[folds == f].T @ features[folds == f])
        rights.append(features[folds == f].T @ targets[folds == f])
    gram, right = sum(grams), sum(rights)
    ridge = 1e-3 * np.trace(gram) / len(gram) * np.eye(len(gram))
    scores = np.zeros((len(labels), 10), np.float32)
    for f, (fold_gram, fold_right) in enumerate(zip(grams, rights)):
        progress(f"fold {f + 1}/{count}: fit on the other folds, score this one")
        weights = np.linalg.solve((gram - fold_gram).astype(np.float64) + ridge, (right - fold_right).astype(np.float64))
        scores[folds == f] = features[folds == f] @ weights.astype(np.float32)
    return scores


def calibrated_probabilities(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Softmax with the temperature that minimizes the out-of-fold log loss (a grid: deterministic)."""
    def softmax(t: float) -> np.ndarray:
        z = scores * t
        z = np.exp(z - z.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    grid = np.geomspace(1, 100, 41)
    losses = [-np.mean(np.log(softmax(t)[np.arange(len(labels)), labels] + 1e-12)) for t in grid]
    return softmax(float(grid[int(np.argmin(losses))]))


def knn_disagreement(points: np.ndarray, labels: np.ndarray, k: int, reference: np.ndarray,
                     progress: Progress = quiet) -> np.ndarray:
    """Share of each point's k nearest reference points (itself excluded) with another label.

    Blockwise: distances of ``BLOCK`` points to all reference points by one matrix product, so
    memory stays ~80 MB whatever the data size.
    """
    ref = points[reference]
    ref_squared = (ref**2).sum(1)
    position = np.full(len(points), -1)
    position[reference] = np.arange(len(reference))
    out = np.zeros(len(points), np.float32)
    k = min(k, len(reference) - 1)
    step = max(len(points) // 4, BLOCK)
    for start in range(0, len(points), BLOCK):
        if start and start % step < BLOCK:
            progress(f"nearest neighbours: {start}/{len(points)}")
        block = slice(start, start + BLOCK)
        distances = ref_squared[None, :] - 2 * points[block] @ ref.T  # |q|^2 is constant per row
        rows = np.flatnonzero(position[block] >= 0)
        distances[rows, position[block][rows]] = np.inf
        nearest = np.argpartition(distances, k, axis=1)[:, :k]
        out[block] = (labels[reference][nearest] != labels[block, None]).mean(1)
    return out


def centroid_distance(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Distance to the given class's centroid over that class's median distance."""
    out = np.zeros(len(points), np.float32)
    for digit in np.unique(labels):
        members = labels == digit
        distance = np.linalg.norm(points[members] - points[members].mean(0), axis=1)
        out[members] = distance / max(float(np.median(distance)), 1e-12)
    return out


def percentile_rank(values: np.ndarray) -> np.ndarray:
    """0 for the smallest value, 1 for the largest; ties broken by position (deterministic)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    return ranks / max(len(values) - 1, 1)


def features_and_folds(images: np.ndarray, settings: Settings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    """(PCA points, random features, fold of each image, the generator to continue with).

    Public so the benchmark can give cleanlab exactly the same inputs.
    """
    rng = np.random.default_rng(settings.seed)
    points = pca(deskew(images), settings.pca_dims)
    features = random_fourier_features(points, settings.random_features, rng)
    return points, features, rng.permutation(len(images)) % settings.folds, rng


def score(images: np.ndarray, labels: np.ndarray, split: np.ndarray, index: np.ndarray,
          settings: Settings = Settings(), progress: Progress = quiet) -> Scored:
    """Every signal and the combined score for every image; ``split``/``index`` name the rows."""
    labels = np.asarray(labels).astype(np.int64)
    progress(f"features: deskew, PCA to {settings.pca_dims} dims, {settings.random_features} random features")
    points, features, folds, rng = features_and_folds(images, settings)
    probabilities = calibrated_probabilities(out_of_fold_scores(features, labels, folds, progress), labels)
    del features
    rows = np.arange(len(labels))
    given = probabilities[rows, labels]
    others = probabilities.copy()
    others[rows, labels] = -1
    reference = np.sort(rng.choice(len(labels), min(settings.reference, len(labels)), replace=False))
    signals = {
        "self_confidence": 1 - given,
        "margin": others.max(1) - given,
        "entropy": -(probabilities * np.log(probabilities + 1e-12)).sum(1) / np.log(10),
        "knn_disagreement": knn_disagreement(points, labels, settings.neighbours, reference, progress),
        "centroid_distance": centroid_distance(points, labels),
    }
    predicted = probabilities.argmax(1)
    return Scored(
        split=np.asarray(split),
        index=np.asarray(index).astype(np.int64),
        original=labels,
        predicted=predicted,
        probabilities=probabilities,
        signals=signals,
        score=np.mean([percentile_rank(signals[name]) for name in COMBINED], axis=0),
        held_out_accuracy=float((predicted == labels).mean()),
    )


def score_splits(splits: Sequence[Split], settings: Settings = Settings(), progress: Progress = quiet) -> Scored:
    """Score the splits pooled (more data for every fold's model), rows in the given order."""
    return score(
        np.concatenate([s.images for s in splits]),
        np.concatenate([s.labels for s in splits]),
        np.concatenate([np.full(len(s.labels), s.name) for s in splits]),
        np.concatenate([np.arange(len(s.labels)) for s in splits]),
        settings,
        progress,
    )


def score_mnist(raw_dir: Path | None = None, settings: Settings = Settings(), progress: Progress = quiet) -> Scored:
    """Score all 70,000 MNIST images (train rows first, then test)."""
    return score_splits([load_split(name, raw_dir) for name in SPLITS], settings, progress)


def candidates(scored: Scored, split: str = "all", exclude: curation.Curation | None = None,
               top: int | None = None) -> np.ndarray:
    """The ranked table (a structured array with ``COLUMNS``), most suspicious first.

    Images listed in ``exclude`` are left out: they have been reviewed already.
    """
    keep = np.ones(len(scored.score), bool) if split == "all" else scored.split == split
    if exclude is not None:
        for name, entries in exclude.entries.items():
            listed = np.array([e.index for e in entries], dtype=np.int64)
            keep &= ~((scored.split == name) & np.isin(scored.index, listed))
    chosen = np.flatnonzero(keep)
    # Highest score first; ties in a fixed order (train before test, then by index).
    order = chosen[np.lexsort((scored.index[chosen], scored.split[chosen] != "train", -scored.score[chosen]))]
    order = order[:top] if top else order
    table = np.zeros(len(order), dtype=[("rank", "i4"), ("split", "U5"), ("index", "i4"), ("original", "i4"),
                                       ("predicted", "i4"), *[(s, "f4") for s in SIGNALS], ("score", "f4")])
    table["rank"] = np.arange(1, len(order) + 1)
    for column in ("split", "index", "original", "predicted", "score"):
        table[column] = getattr(scored, column)[order]
    for name in SIGNALS:
        table[name] = scored.signals[name][order]
    return table


def write_csv(table: np.ndarray, path: Path) -> None:
    """Write the table (4 decimals), atomically: temp file beside it, then rename."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in table.tolist():
        writer.writerow([f"{value:.4f}" if isinstance(value, float) else value for value in row])
    replace_atomically(Path(path), lambda temporary: temporary.write_text(buffer.getvalue(), "utf-8"))


def write_sheet(table: np.ndarray, splits: Mapping[str, Split], path: Path, columns: int = 10) -> None:
    """Contact sheet of the table's rows, captioned with rank, label, prediction and scores."""
    from . import sheet

    tiles = [
        sheet.Tile(splits[row["split"]].images[row["index"]], [
            f"#{row['rank']} {row['split']} {row['index']}: {row['original']}",
            f"model {row['predicted']} p={1 - row['self_confidence']:.2f} nn={row['knn_disagreement']:.1f}",
        ])
        for row in table
    ] or [sheet.Tile(np.zeros((28, 28), np.uint8), ["no candidates"])]
    replace_atomically(Path(path), lambda temporary: sheet.save_png(sheet.render(tiles, columns=columns), temporary))


def replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write to a temp file beside ``path`` and rename it into place: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
