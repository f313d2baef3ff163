"""How well a model does on MNIST-IDK: the agreed figures, from label arrays, with no I/O.

Classes are the dataset's label ids: ``0``-``9`` for digits and ``10`` (``IDK_CLASS``) for IDK.
``truth`` is the curated label of each image (original MNIST label, overridden by the release's
list: ``card.final_labels``), ``predicted`` the model's class, ``confidence`` optionally how sure
the model is (higher = surer; any real numbers, only their order matters).

The convention everywhere: **a prediction is correct when it equals the curated label.** So
predicting IDK on an IDK image is correct; predicting IDK on a digit, or a digit on an IDK image,
is an error. IDK is a class like the others, which is what lets a model trained with it and a
model that abstains by a threshold be scored on the same scale.

- ``digit_accuracy``: share of the images whose curated label is a digit that are predicted as
  that digit (an IDK prediction there counts as wrong, so abstaining is not free).
- ``idk_precision`` / ``idk_recall`` / ``idk_f1``: IDK treated as the positive class. Precision
  is ``None`` when the model never predicts IDK, recall ``None`` when no image is IDK; F1 is
  2TP / (2TP + FP + FN), ``None`` only when neither happens. ``idk_precision_interval`` and
  ``idk_recall_interval`` are 95% Wilson score intervals (``wilson``): a test split holds a few
  dozen IDK images, so one more found moves recall by several points.
- ``confusion``: 11x11 counts, rows = curated label, columns = prediction.
- With confidence, selective classification: rank images by confidence, most confident first;
  at coverage k/n the model answers only the top k, and its **risk** is the error rate among
  them (errors as above, over all 11 classes). ``aurc`` is the mean risk over k = 1..n (area
  under the risk-coverage curve; lower is better; 0 for a perfect model, the error rate for a
  constant confidence). ``selective_accuracy[c]`` is 1 - risk at k = ceil(c n). Ties in
  confidence are resolved by expectation (the errors of a tied group are spread evenly over
  it), so the figures never depend on row order.
- ``auroc``: how well a score (p(IDK), say) ranks positives above negatives; the benchmarks
  report it for IDK against the rest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .curation import LABELS
from .errors import MnistIdkError

CLASSES = LABELS  # ('0', ..., '9', 'IDK'): names of the class ids 0..10
IDK_CLASS = 10
COVERAGES = (0.90, 0.95, 0.99)


@dataclass(frozen=True)
class RiskCoverage:
    """The risk-coverage curve at every k = 1..n: ``coverage[i] = (i + 1) / n``."""

    coverage: list[float]
    risk: list[float]
    aurc: float
    selective_accuracy: dict[str, float]  # {"0.90": ..., "0.95": ..., "0.99": ...}


@dataclass(frozen=True)
class Scores:
    """Every figure for one model on one split (see the module docstring for definitions)."""

    images: int
    digit_images: int
    idk_images: int
    idk_predicted: int
    accuracy: float  # over all images, IDK included
    digit_accuracy: float | None  # None when no image is a digit
    idk_precision: float | None
    idk_recall: float | None
    idk_f1: float | None
    confusion: list[list[int]]  # rows: curated label 0..10, columns: prediction 0..10
    risk_coverage: RiskCoverage | None = field(default=None)
    idk_precision_interval: tuple[float, float] | None = None  # 95% Wilson; None with the point value
    idk_recall_interval: tuple[float, float] | None = None

    def to_dict(self, curve: bool = True) -> dict:
        """Plain JSON-ready values; ``curve=False`` drops the per-image curve, keeps AURC etc."""
        data = asdict(self)
        if data["risk_coverage"] is not None and not curve:
            del data["risk_coverage"]["coverage"], data["risk_coverage"]["risk"]
        return data


def as_classes(values, what: str = "values") -> np.ndarray:
    """Class ids (int64) from ids 0..10 or names '0'..'9', 'IDK'; anything else is an error."""
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        ids = array.astype(np.int64)
    else:
        lookup = {name: i for i, name in enumerate(CLASSES)}
        ids = np.array([lookup.get(str(v), -1) for v in array.ravel()], np.int64).reshape(array.shape)
    bad = np.flatnonzero((ids < 0) | (ids > IDK_CLASS))
    if len(bad):
        raise MnistIdkError(f"{what}: {str(array.ravel()[bad[0]])!r} at position {bad[0]} is not a class "
                            f"(expected 0-9 or IDK)")
    return ids


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% for z = 1.96); ``None`` for no trials.

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 of n, which is
    where IDK recall on a few dozen images often lands.
    """
    if trials == 0:
        return None
    share, z2 = successes / trials, z * z
    centre = (share + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(share * (1 - share) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    # At 0 or n of n the exact end is 0 or 1; computed, it can miss by a rounding error.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def auroc(positive, score) -> float | None:
    """P(a positive scores above a negative), ties counting half; ``None`` without both kinds.

    The area under the ROC curve from ranks (Mann-Whitney U), so it is exact and O(n log n):
    how well a score such as p(IDK) puts the images a list holds ahead of the rest.
    """
    positive = np.asarray(positive, bool)
    score = np.asarray(score, np.float64)
    if positive.shape != score.shape:
        raise MnistIdkError(f"auroc: {len(positive)} labels but {len(score)} scores")
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    # The mean 1-based rank of each group of equal scores.
    mean_rank = np.cumsum(counts) - (counts - 1) / 2
    rank_sum = mean_rank[inverse.ravel()][positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def risk_coverage(correct: np.ndarray, confidence: np.ndarray) -> RiskCoverage:
    """The risk-coverage curve of per-image correctness ranked by confidence (ties by expectation)."""
    correct = np.asarray(correct, bool)
    confidence = np.asarray(confidence, np.float64)
    n = len(correct)
    if n == 0:
        raise MnistIdkError("no images to score")
    order = np.argsort(-confidence, kind="stable")
    ranked_conf, ranked_err = confidence[order], (~correct[order]).astype(np.float64)
    # Group ties: within a group of equal confidence, each position gets the group's mean error.
    starts = np.r_[0, np.flatnonzero(np.diff(ranked_conf) != 0) + 1]
    sizes = np.diff(np.r_[starts, n])
    group_mean = np.add.reduceat(ranked_err, starts) / sizes
    expected_err = np.repeat(group_mean, sizes)
    k = np.arange(1, n + 1)
    risk = np.cumsum(expected_err) / k
    selective = {f"{c:.2f}": float(1 - risk[max(math.ceil(c * n), 1) - 1]) for c in COVERAGES}
    return RiskCoverage(
        coverage=(k / n).tolist(),
        risk=risk.tolist(),
        aurc=float(risk.mean()),
        selective_accuracy=selective,
    )


def score(truth, predicted, confidence=None) -> Scores:
    """All figures for ``predicted`` against the curated labels ``truth`` (same length, same order).

    ``truth``/``predicted``: class ids 0..10 or names '0'..'9', 'IDK'. ``confidence``: optional
    finite numbers, higher = surer; adds the risk-coverage curve, AURC and selective accuracy.
    """
    truth = as_classes(truth, "truth")
    predicted = as_classes(predicted, "predicted")
    if truth.shape != predicted.shape or truth.ndim != 1:
        raise MnistIdkError(f"truth has shape {truth.shape} but predicted has {predicted.shape}; expected two equal 1-d arrays")
    if len(truth) == 0:
        raise MnistIdkError("no images to score")
    confusion = np.zeros((11, 11), np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    correct = truth == predicted
    digit = truth != IDK_CLASS
    true_idk, pred_idk = ~digit, predicted == IDK_CLASS
    tp = int((true_idk & pred_idk).sum())
    fp, fn = int((pred_idk & digit).sum()), int((true_idk & ~pred_idk).sum())
    curve = None
    if confidence is not None:
        confidence = np.asarray(confidence, np.float64)
        if confidence.shape != truth.shape:
            raise MnistIdkError(f"confidence has shape {confidence.shape}, expected {truth.shape}")
        if not np.isfinite(confidence).all():
            bad = int(np.flatnonzero(~np.isfinite(confidence))[0])
            raise MnistIdkError(f"confidence at position {bad} is {confidence[bad]}, expected a finite number")
        curve = risk_coverage(correct, confidence)
    return Scores(
        images=len(truth),
        digit_images=int(digit.sum()),
        idk_images=int(true_idk.sum()),
        idk_predicted=int(pred_idk.sum()),
        accuracy=float(correct.mean()),
        digit_accuracy=float(correct[digit].mean()) if digit.any() else None,
        idk_precision=tp / (tp + fp) if tp + fp else None,
        idk_recall=tp / (tp + fn) if tp + fn else None,
        idk_f1=2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None,
        confusion=confusion.tolist(),
        risk_coverage=curve,
        idk_precision_interval=wilson(tp, tp + fp),
        idk_recall_interval=wilson(tp, tp + fn),
    )
