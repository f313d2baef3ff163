"""Rank MNIST images by how likely their label is wrong or undecidable, out of sample.

Every image is scored by models that never saw it: the 70,000 images (train and test pooled)
are cut into folds (a fixed random assignment from the seed) and each fold is scored by a model
fitted on the others. Every model is deterministic and fits two CPU cores:

- ``cnn`` (the default when torch is installed: ``pip install 'mnist-idk[suggest]'``; code in
  ``suggest_cnn``): two small convolutional networks, one reading deskewed pixels and one raw
  pixels, each trained for ``epochs`` epochs on one of ``cnn_folds`` folds and predicting the
  other (its own fold assignment per view), with label smoothing ``smoothing``; their
  probabilities are averaged (99.6% held out). Each network re-reads the ``reread`` share of its held-out images it doubts most as the
  mean over nine one-pixel moves (``suggest_cnn.reread``): chosen on planted flips and on the
  images the review lists, over five moves and over moves with turns. ``score`` is the
  self-confidence of the average. The neighbour vote below is still
  computed for ``knn_disagreement``, but is not in the probabilities: averaged in, it lowered
  held-out accuracy and found no more planted flips.
- ``conv`` (numpy, the default without torch, ~1 min): deskewed pixels (each digit sheared
  upright, the classic MNIST trick), one layer of ``filters`` 5x5 convolutions whose kernels are
  image patches picked at random (Coates & Ng 2011: random patches do nearly as well as learned
  ones), ReLU with a threshold, average pooling on a 4x4 grid, ridge regression to one-hot labels in closed form and
  a softmax temperature fitted on the out-of-fold scores (98.6% held-out accuracy). Its
  probabilities are averaged with those of a leave-one-out vote of the ``neighbours`` nearest
  images in deskewed PCA space (98.3%): two different views, so a quirk of one rarely reaches
  the top. ``score`` is the self-confidence of the average.
- ``rff`` (v1, ~30 s): deskewed PCA, random Fourier features (an approximation of an RBF
  kernel), the same ridge and softmax (98.1%); ``score`` is the mean of the percentile ranks of
  ``self_confidence`` and ``knn_disagreement`` (neighbours among a random ``reference`` sample).
  It was tuned on release v1.0.0, whose images are mostly ambiguous rather than mislabelled, and
  finds fewer label errors; kept as the quick model and as the benchmark's baseline.

The signals, each oriented so that larger means "look at this image":

- ``self_confidence``: 1 - p(given label). Low out-of-fold probability of its own label
  (cleanlab's self-confidence score).
- ``margin``: max p(other label) - p(given label), in [-1, 1]. Another digit beats the given one.
- ``entropy``: entropy of p, normalized to [0, 1]. The model cannot decide at all (what FiftyOne
  calls hardness); catches ambiguous images whatever their label.
- ``knn_disagreement``: share of the ``neighbours`` nearest images (deskewed PCA space, itself
  excluded) whose label differs from the given one.
- ``centroid_distance``: distance to the centroid of the given class in PCA space, divided by the
  class's median distance: the least typical members of each class (deformed strokes, outliers).

With ``target="idk"`` the same models learn the curated labels instead, the listed images as an
11th class (IDK = 10), and ``score`` is the out-of-fold p(IDK): how much an image looks like the
images the curators already list. It orders the keeps for a reader looking for more IDK images,
which the label-error score does not: among the random unread train keeps that panels read
(v1.216.0-v1.252.0), the ones they listed are no likelier to carry a doubted label than the
ones they kept. The other columns come from the 10 digits' probabilities, renormalized.

Which planted and published errors each model finds, and what did not pay, is measured by
``benchmarks/suggest_quality.py`` (figures in the README). In v1, entropy and centroid distance
pulled hard but plausibly labelled digits up, so they are in the table for the reviewer but in
no score.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from .metrics import IDK_CLASS as IDK  # the class the curated labels give a listed image
from .raw import Split, load_splits

SIGNALS = ("self_confidence", "margin", "entropy", "knn_disagreement", "centroid_distance")
COMBINED = ("self_confidence", "knn_disagreement")  # the rff model's score: mean of their ranks
MODELS = ("cnn", "conv", "rff")
TARGETS = ("label", "idk")  # what the models learn: the MNIST labels, or the curated ones with IDK
EXTRA = "pip install 'mnist-idk[suggest]'"  # what brings torch for the cnn model
COLUMNS = ("rank", "split", "index", "original", "predicted", "p_predicted", "alternative", "p_alternative", *SIGNALS,
           "score")
Progress = Callable[[str], None]
CONVOLUTIONS = 40_000_000  # responses per block of the convolution: 160 MB
DISTANCES = 20_000_000  # distances per block in the neighbour search: 80 MB whatever the data size
SAMPLE = 8  # neighbour search: the bound comes from every 8th reference point


def quiet(message: str) -> None:
    """The default progress callback: say nothing."""


class ModelUnavailable(ImportError):
    """The cnn model was asked for but torch cannot be imported; the message says what to install."""


def cnn_available() -> bool:
    """Whether torch imports (the optional extra is installed and works on this machine)."""
    try:
        from . import suggest_cnn  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def default_model(notice: Progress = quiet) -> str:
    """``cnn`` when torch is there, else ``conv``, telling ``notice`` in one line what is lost and how to get it."""
    if cnn_available():
        return "cnn"
    notice(f"torch is not installed: using the numpy model, which finds fewer label errors ({EXTRA} for the CNN)")
    return "conv"


@dataclass(frozen=True)
class Settings:
    model: str = "conv"  # one of MODELS; the CLI picks cnn when torch is installed (default_model)
    folds: int = 5
    pca_dims: int = 40
    filters: int = 128  # conv: 5x5 kernels; 64 -> 98.1%, 128 -> 98.6% held out, twice the time
    threshold: float = 0.3  # conv: ReLU(x - threshold); 0 -> 98.4%, 0.3 -> 98.6%
    random_features: int = 2000  # rff only
    neighbours: int = 10
    reference: int = 10000  # rff only: images the neighbours are drawn from (conv: all of them)
    cnn_folds: int = 2  # cnn only: 2 folds of 35,000 let a network train 6 epochs in the time 3 folds take 4
    epochs: int = 15  # cnn only: 15 -> 99.55% held out, 13 -> 99.55%, 11 -> 99.52% (plausible flips: 335.7, 334.7, 333.7 of 350)
    width: int = 16  # cnn only: channels of the first layer (then 2x, 4x)
    reread: float = 0.1  # cnn only: share of each fold re-read under nine one-pixel moves (suggest_cnn.reread)
    smoothing: float = 0.1  # cnn only: label smoothing; on planted flips 342.7 of 350 found against 342.0 without
    learning_rate: float = 6e-3  # cnn only: one-cycle peak; 6e-3 -> 99.57% held out, 4e-3 -> 99.55% (plausible flips 336.7, 335.7)
    seed: int = 0
    target: str = "label"  # one of TARGETS; "idk" needs the curated labels (score_splits(curated=...))


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
    parts: dict[str, float]  # held-out accuracy of each model in the ensemble

    @property
    def p_predicted(self) -> np.ndarray:
        """Probability of the predicted digit: how sure the model is of its reading."""
        return self.probabilities[np.arange(len(self.predicted)), self.predicted]

    @functools.cached_property
    def alternative(self) -> np.ndarray:
        """The likeliest digit other than the given label: what a reviewer compares the image with.

        Deep in a ranking the predicted digit is nearly always the label itself, so this is the
        digit the image could otherwise be (ties go to the lower digit).
        """
        return likeliest_other(self.probabilities, self.original)

    @property
    def p_alternative(self) -> np.ndarray:
        """Probability of ``alternative``."""
        return self.probabilities[np.arange(len(self.original)), self.alternative]


def likeliest_other(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per row, the likeliest digit other than its label (ties go to the lower digit)."""
    others = probabilities.copy()
    others[np.arange(len(labels)), labels] = -1
    return others.argmax(1)


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
                       progress: Progress = quiet, classes: int = 10) -> np.ndarray:
    """Ridge regression to one-hot labels; each fold predicted by the fit on the other folds.

    The Gram matrix of the whole data is the sum of the folds' Gram matrices, so each fit costs
    one subtraction and one solve instead of a pass over the data.
    """
    count = int(folds.max()) + 1
    targets = np.eye(classes, dtype=np.float32)[labels]
    grams, rights = [], []
    for f in range(count):
        progress(f"fold {f + 1}/{count}: Gram matrix")
        grams.append(features[folds == f].T @ features[folds == f])
        rights.append(features[folds == f].T @ targets[folds == f])
    gram, right = sum(grams), sum(rights)
    ridge = 1e-3 * np.trace(gram) / len(gram) * np.eye(len(gram))
    scores = np.zeros((len(labels), classes), np.float32)
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


def patch_filters(images: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` 5x5 patches with ink from random images, centred and scaled to unit norm (count, 25).

    Centred kernels ignore the patch's mean brightness, so a response measures shape, not ink.
    """
    sample = images[rng.choice(len(images), min(4000, len(images)), replace=False)].reshape(-1, 28, 28)
    patches = np.lib.stride_tricks.sliding_window_view(sample, (5, 5), axis=(1, 2)).reshape(-1, 25)
    patches = patches[patches.std(1) > 0.1]
    chosen = patches[np.sort(rng.choice(len(patches), count, replace=False))]
    chosen = chosen - chosen.mean(1, keepdims=True)
    return (chosen / np.linalg.norm(chosen, axis=1, keepdims=True)).astype(np.float32)


def convolutional_features(images: np.ndarray, filters: np.ndarray, threshold: float,
                           progress: Progress = quiet) -> np.ndarray:
    """ReLU(patch . kernel - threshold) at every 24x24 position, averaged over a 4x4 grid, standardized.

    (n, 16 * filters + 1), the last column the intercept. Pooling keeps where a stroke is only
    roughly, so a digit written a pixel or two aside gives nearly the same features.
    """
    count = len(filters)
    features = np.empty((len(images), 16 * count + 1), np.float32)
    features[:, -1] = 1
    rows = max(1, CONVOLUTIONS // (576 * count))
    reports = 0
    for start in range(0, len(images), rows):
        if start * 4 // len(images) > reports:
            reports += 1
            progress(f"convolutional features: {start}/{len(images)}")
        block = images[start:start + rows].reshape(-1, 28, 28)
        windows = np.lib.stride_tricks.sliding_window_view(block, (5, 5), axis=(1, 2)).reshape(-1, 25)
        response = windows @ filters.T  # one matrix product; kernels sum to 0: the same as centring each patch
        response -= np.float32(threshold)
        np.maximum(response, 0, out=response)
        pooled = response.reshape(len(block), 4, 6, 4, 6, count).mean((2, 4))
        features[start:start + len(block), :-1] = pooled.reshape(len(block), -1)
    features[:, :-1] /= features[:, :-1].std(0) + 1e-6
    return features


def neighbour_votes(points: np.ndarray, labels: np.ndarray, k: int, reference: np.ndarray,
                    progress: Progress = quiet) -> np.ndarray:
    """How many of each point's k nearest reference points (itself excluded) carry each digit (n, 10).

    Blockwise: distances of a block of points to all reference points by one matrix product, so
    memory stays ~80 MB whatever the data size. Selecting the k smallest of 70,000 distances per
    row is what costs, so it is done on few: the k-th smallest distance to every ``SAMPLE``-th
    reference point bounds the k-th smallest to all of them from above, and only the distances
    under that bound (about k * SAMPLE a row) are sorted. Ties go to the lower reference index.
    """
    ref = points[reference]
    ref_squared = (ref**2).sum(1)
    scaled = np.ascontiguousarray(-2 * ref.T)
    position = np.full(len(points), -1)
    position[reference] = np.arange(len(reference))
    votes = np.zeros((len(points), 10), np.float32)
    k = min(k, len(reference) - 1)
    step = max(1, min(SAMPLE, (len(reference) - 1) // (k + 1)))  # the sample keeps k finite distances
    ref_labels = labels[reference]
    rows_per_block = max(1, DISTANCES // len(reference))
    reports = 0
    for start in range(0, len(points), rows_per_block):
        if start * 4 // len(points) > reports:
            reports += 1
            progress(f"nearest neighbours: {start}/{len(points)}")
        block = slice(start, start + rows_per_block)
        distances = points[block] @ scaled
        distances += ref_squared  # |p - r|^2 - |p|^2: |p|^2 is the same for the whole row
        rows = np.flatnonzero(position[block] >= 0)
        distances[rows, position[block][rows]] = np.inf
        bound = np.partition(distances[:, ::step], k - 1, axis=1)[:, k - 1]
        row, column = np.divmod(np.flatnonzero(distances <= bound[:, None]), len(reference))
        order = np.lexsort((column, distances[row, column], row))  # by row, then distance, then index
        row, column = row[order], column[order]
        first = np.searchsorted(row, np.arange(len(distances)))
        nearest = column[first[:, None] + np.arange(k)]  # every row has at least k under its bound
        votes[block] = (ref_labels[nearest][:, :, None] == np.arange(10)).sum(1)
    return votes


def knn_disagreement(points: np.ndarray, labels: np.ndarray, k: int, reference: np.ndarray,
                     progress: Progress = quiet) -> np.ndarray:
    """Share of each point's k nearest reference points (itself excluded) with another label."""
    votes = neighbour_votes(points, labels, k, reference, progress)
    return 1 - votes[np.arange(len(labels)), labels] / votes.sum(1)


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
    """The rff model's (PCA points, random features, fold of each image, the generator to continue with)."""
    rng = np.random.default_rng(settings.seed)
    points = pca(deskew(images), settings.pca_dims)
    features = random_fourier_features(points, settings.random_features, rng)
    return points, features, rng.permutation(len(images)) % settings.folds, rng


def model_probabilities(images: np.ndarray, labels: np.ndarray, settings: Settings,
                        progress: Progress = quiet, learn: np.ndarray | None = None,
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """(out-of-fold probabilities, neighbour votes, PCA points, held-out accuracy of each part).

    The probabilities are of the classes of ``learn`` (default: ``labels``, the 10 digits); the
    neighbour votes always count the digits of ``labels``.
    """
    learn = labels if learn is None else learn
    classes = max(10, int(learn.max()) + 1)
    accuracy = {}
    if settings.model == "rff":
        progress(f"features: deskew, PCA to {settings.pca_dims} dims, {settings.random_features} random features")
        points, features, folds, rng = features_and_folds(images, settings)
        probabilities = calibrated_probabilities(out_of_fold_scores(features, learn, folds, progress, classes), learn)
        del features
        reference = np.sort(rng.choice(len(labels), min(settings.reference, len(labels)), replace=False))
        votes = neighbour_votes(points, labels, settings.neighbours, reference, progress)
        accuracy["rff"] = float((probabilities.argmax(1) == learn).mean())
        return probabilities, votes, points, accuracy
    if settings.model == "cnn":
        return cnn_probabilities(images, labels, settings, progress, learn)
    if settings.model != "conv":
        raise ValueError(f"unknown model {settings.model!r}; one of {', '.join(MODELS)}")
    rng = np.random.default_rng(settings.seed)
    progress(f"features: deskew, {settings.filters} random-patch 5x5 convolutions, pooled 4x4")
    upright = deskew(images)
    filters = patch_filters(upright, settings.filters, rng)
    folds = rng.permutation(len(labels)) % settings.folds
    features = convolutional_features(upright, filters, settings.threshold, progress)
    conv = calibrated_probabilities(out_of_fold_scores(features, learn, folds, progress, classes), learn)
    del features
    progress(f"PCA to {settings.pca_dims} dims, {settings.neighbours} nearest neighbours of every image")
    points = pca(upright, settings.pca_dims)
    del upright
    votes = neighbour_votes(points, labels, settings.neighbours, np.arange(len(labels)), progress)
    neighbours = (votes + 0.1) / (votes.sum(1, keepdims=True) + 1)  # a little mass on every digit
    accuracy["conv"] = float((conv.argmax(1) == learn).mean())
    if classes > 10:  # the vote knows no IDK: it stays out of an IDK model's probabilities
        return conv, votes, points, accuracy
    accuracy["neighbours"] = float((neighbours.argmax(1) == labels).mean())
    return (conv + neighbours) / 2, votes, points, accuracy


def cnn_probabilities(images: np.ndarray, labels: np.ndarray, settings: Settings, progress: Progress,
                      learn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """The cnn model: the mean of two networks, one reading deskewed and one raw pixels, each out of fold.

    Each view has its own fold assignment, so an image's two predictions come from networks
    trained on different images as well as different views. The neighbour vote is still
    computed: it is the ``knn_disagreement`` signal, though not part of the probabilities.
    ``learn`` is what the networks learn: ``labels``, or the curated labels with IDK.
    """
    try:
        from . import suggest_cnn
    except (ImportError, OSError) as error:
        raise ModelUnavailable(f"the cnn model needs torch: {EXTRA} ({error})") from error
    classes = max(10, int(learn.max()) + 1)
    rng = np.random.default_rng(settings.seed)
    upright = deskew(images)
    views = {"deskewed": upright, "raw": images.reshape(len(images), -1).astype(np.float32) / 255}
    accuracy, total = {}, np.zeros((len(labels), classes))
    for number, (view, pixels) in enumerate(views.items()):
        folds = rng.permutation(len(labels)) % settings.cnn_folds
        probabilities = suggest_cnn.out_of_fold_probabilities(
            pixels, learn, folds, width=settings.width, epochs=settings.epochs, seed=settings.seed * 10 + number,
            name=f"CNN on {view} pixels", reread_share=settings.reread, smoothing=settings.smoothing,
            learning_rate=settings.learning_rate, classes=classes, progress=progress)
        accuracy[f"cnn {view}"] = float((probabilities.argmax(1) == learn).mean())
        total += probabilities
    del views
    progress(f"PCA to {settings.pca_dims} dims, {settings.neighbours} nearest neighbours of every image")
    points = pca(upright, settings.pca_dims)
    votes = neighbour_votes(points, labels, settings.neighbours, np.arange(len(labels)), progress)
    return (total / len(accuracy)).astype(np.float32), votes, points, accuracy


def score(images: np.ndarray, labels: np.ndarray, split: np.ndarray, index: np.ndarray,
          settings: Settings = Settings(), progress: Progress = quiet, curated: np.ndarray | None = None) -> Scored:
    """Every signal and the ranking score for every image; ``split``/``index`` name the rows.

    ``curated`` (the labels with listed images as ``IDK``) is what a ``target="idk"`` model learns.
    """
    labels = np.asarray(labels).astype(np.int64)
    if settings.target not in TARGETS:
        raise ValueError(f"unknown target {settings.target!r}; one of {', '.join(TARGETS)}")
    learn = None
    if settings.target == "idk":
        learn = None if curated is None else np.asarray(curated).astype(np.int64)
        if learn is None or not (learn == IDK).any():
            raise ValueError("target 'idk' learns from listed images: give the curated labels, with some IDK")
    probabilities, votes, points, parts = model_probabilities(images, labels, settings, progress, learn)
    p_idk = None
    held_out = float((probabilities.argmax(1) == (labels if learn is None else learn)).mean())
    if learn is not None:  # the ranking is p(IDK); the table's digit columns read the digits alone
        p_idk = probabilities[:, IDK].copy()
        probabilities = probabilities[:, :IDK] / probabilities[:, :IDK].sum(1, keepdims=True)
    rows = np.arange(len(labels))
    given = probabilities[rows, labels]
    signals = {
        "self_confidence": 1 - given,
        "margin": probabilities[rows, likeliest_other(probabilities, labels)] - given,
        "entropy": -(probabilities * np.log(probabilities + 1e-12)).sum(1) / np.log(10),
        "knn_disagreement": 1 - votes[rows, labels] / votes.sum(1),
        "centroid_distance": centroid_distance(points, labels),
    }
    if p_idk is not None:
        ranking = p_idk
    elif settings.model == "rff":
        ranking = np.mean([percentile_rank(signals[name]) for name in COMBINED], axis=0)
    else:
        ranking = signals["self_confidence"]
    predicted = probabilities.argmax(1)
    return Scored(
        split=np.asarray(split),
        index=np.asarray(index).astype(np.int64),
        original=labels,
        predicted=predicted,
        probabilities=probabilities,
        signals=signals,
        score=ranking,
        held_out_accuracy=held_out,
        parts=parts,
    )


def score_splits(splits: Sequence[Split], settings: Settings = Settings(), progress: Progress = quiet,
                 curated: Sequence[np.ndarray] | None = None) -> Scored:
    """Score the splits pooled (more data for every fold's model), rows in the given order.

    ``curated``: each split's curated labels (IDK = 10), in the same order, for ``target="idk"``.
    """
    return score(
        np.concatenate([s.images for s in splits]),
        np.concatenate([s.labels for s in splits]),
        np.concatenate([np.full(len(s.labels), s.name) for s in splits]),
        np.concatenate([np.arange(len(s.labels)) for s in splits]),
        settings,
        progress,
        None if curated is None else np.concatenate(curated),
    )


def score_mnist(raw_dir: Path, settings: Settings = Settings(), progress: Progress = quiet) -> Scored:
    """Score all 70,000 MNIST images (train rows first, then test)."""
    return score_splits(list(load_splits(raw_dir).values()), settings, progress)


def candidates(scored: Scored, split: str = "all", exclude: Mapping[str, Iterable[int]] | None = None,
               top: int | None = None) -> np.ndarray:
    """The ranked table (a structured array with ``COLUMNS``), most suspicious first.

    ``exclude`` maps a split to indices to leave out: images already listed or reviewed.
    """
    keep = np.ones(len(scored.score), bool) if split == "all" else scored.split == split
    for name, indices in (exclude or {}).items():
        left_out = np.fromiter(indices, dtype=np.int64)
        keep &= ~((scored.split == name) & np.isin(scored.index, left_out))
    chosen = np.flatnonzero(keep)
    # Highest score first; ties in a fixed order (train before test, then by index).
    order = chosen[np.lexsort((scored.index[chosen], scored.split[chosen] != "train", -scored.score[chosen]))]
    order = order[:top] if top else order
    table = np.zeros(len(order), dtype=[("rank", "i4"), ("split", "U5"), ("index", "i4"), ("original", "i4"),
                                       ("predicted", "i4"), ("p_predicted", "f4"), ("alternative", "i4"),
                                       ("p_alternative", "f4"), *[(s, "f4") for s in SIGNALS],
                                       ("score", "f4")])
    table["rank"] = np.arange(1, len(order) + 1)
    for column in ("split", "index", "original", "predicted", "p_predicted", "alternative", "p_alternative", "score"):
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
    """Contact sheet of the table's rows, captioned: rank, split, index; label -> predicted (p)."""
    from . import sheet

    tiles = [
        sheet.Tile(splits[row["split"]].images[row["index"]], [
            f"#{row['rank']} {row['split']} {row['index']}",
            f"{row['original']} -> {row['predicted']} ({row['p_predicted']:.2f})",  # Pillow's font has no arrow
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
