"""Baselines for MNIST-IDK: can standard models learn to abstain, and does the IDK class help?

    pip install scikit-learn            # for this benchmark only; not a dependency
    python benchmarks/baselines.py --version v1.0.0 [--out FILE] [--predictions-dir DIR]

Three models, each trained on the release's train split twice and scored on its test split
with ``mnist_idk.metrics`` (what ``mnist-idk evaluate`` uses):

- logistic regression on the first 50 principal components of the pixels;
- 10-nearest neighbours (Euclidean) on the same 50 components, class probability = vote share;
- the project's strongest small model, suggest's: deskewed pixels -> PCA-40 -> 2000 random
  Fourier features -> ridge regression to one-hot labels -> softmax whose temperature minimizes
  the 5-fold out-of-fold log loss on train. Fitted here on train only (suggest itself scores
  out of fold over both splits, which would see the test images).

Each model is scored three ways (``VARIANTS``):

- "MNIST-IDK, 11 classes": trained on the curated labels; predicts its most probable class.
- "MNIST-IDK, 11 classes, top p(IDK)": the same fit; predicts IDK on the test images with the
  highest p(IDK), as many as the release's IDK share of train (56/60000 -> 9 of 10000 for
  v1.0.0; fewer when scores tie at the cut), its most probable digit elsewhere.
- "MNIST, 10 digits": the "no IDK class" alternative, trained on the plain MNIST labels of the
  same images; predicts IDK on as many test images as above, those with the lowest top
  probability (a confidence threshold), its most probable digit elsewhere.

The budgeted variants abstain as often as the curators did on train and use no test label to
get there. Confidence is the probability of the predicted class. ``idk_auroc`` is how well the
IDK score ranks the test IDK images above the rest: p(IDK) with the IDK class, 1 - top
probability without.

Writes ``dataset_card/baselines/<version>.json`` (the card's "Baselines" section is rendered
from it) and prints a table; ``--predictions-dir`` also writes each model's predictions as
CSV files that ``mnist-idk evaluate`` scores to the same figures. A few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

from mnist_idk import card, curation, metrics, suggest
from mnist_idk.raw import load_splits
from mnist_idk.workspace import Workspace


def pca_fit(train: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, components) of the training pixels; project anything with ``(x - mean) @ components``."""
    mean = train.mean(0)
    centered = train - mean
    _, vectors = np.linalg.eigh((centered.T @ centered).astype(np.float64))
    return mean, vectors[:, ::-1][:, :dims].astype(np.float32)


def fourier_features(train: np.ndarray, test: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """suggest's random Fourier features, with the kernel width and weights drawn from train only."""
    rng = np.random.default_rng(seed)
    sample = train[rng.choice(len(train), 1000, replace=False)]
    squared = (sample**2).sum(1)
    distances = squared[:, None] - 2 * sample @ sample.T + squared[None, :]
    gamma = 1.0 / float(np.median(distances[distances > 0]))
    weights = rng.normal(0.0, np.sqrt(2 * gamma), (train.shape[1], count)).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, count).astype(np.float32)

    def transform(points: np.ndarray) -> np.ndarray:
        out = np.ones((len(points), count + 1), np.float32)  # last column: the intercept
        for start in range(0, len(points), 10000):
            block = slice(start, start + 10000)
            out[block, :count] = np.cos(points[block] @ weights + phase) * np.float32(np.sqrt(2.0 / count))
        return out

    return transform(train), transform(test)


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores * temperature
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def ridge_probabilities(train: np.ndarray, test: np.ndarray, label_sets: dict[str, np.ndarray],
                        folds: np.ndarray) -> dict[str, np.ndarray]:
    """Ridge to one-hot labels for each label set (one Gram matrix for all), calibrated softmax on test."""
    count = int(folds.max()) + 1
    grams = [train[folds == f].T @ train[folds == f] for f in range(count)]
    gram = sum(grams)
    ridge = 1e-3 * np.trace(gram) / len(gram) * np.eye(len(gram))
    out = {}
    for name, labels in label_sets.items():
        targets = np.eye(int(labels.max()) + 1, dtype=np.float32)[labels]
        rights = [train[folds == f].T @ targets[folds == f] for f in range(count)]
        right = sum(rights)
        held_out = np.zeros(targets.shape, np.float32)
        for f in range(count):
            weights = np.linalg.solve((gram - grams[f]).astype(np.float64) + ridge, (right - rights[f]).astype(np.float64))
            held_out[folds == f] = train[folds == f] @ weights.astype(np.float32)
        grid = np.geomspace(1, 100, 41)
        losses = [-np.mean(np.log(softmax(held_out, t)[np.arange(len(labels)), labels] + 1e-12)) for t in grid]
        weights = np.linalg.solve(gram.astype(np.float64) + ridge, right.astype(np.float64))
        out[name] = softmax(test @ weights.astype(np.float32), float(grid[int(np.argmin(losses))]))
    return out


def logistic_probabilities(train: np.ndarray, test: np.ndarray, label_sets: dict[str, np.ndarray],
                           seed: int) -> dict[str, np.ndarray]:
    from sklearn.linear_model import LogisticRegression

    out = {}
    for name, labels in label_sets.items():
        model = LogisticRegression(max_iter=200, tol=1e-3, random_state=seed)
        model.fit(train, labels)
        out[name] = model.predict_proba(test)
    return out


def knn_probabilities(train: np.ndarray, test: np.ndarray, label_sets: dict[str, np.ndarray],
                      k: int = 10) -> dict[str, np.ndarray]:
    """Vote shares of the k nearest training images (one neighbour search for every label set)."""
    from sklearn.neighbors import NearestNeighbors

    nearest = NearestNeighbors(n_neighbors=k, algorithm="brute", n_jobs=2).fit(train).kneighbors(test)[1]
    out = {}
    for name, labels in label_sets.items():
        votes = labels[nearest]
        out[name] = np.stack([(votes == c).mean(1) for c in range(int(labels.max()) + 1)], axis=1)
    return out


VARIANTS = {
    # key: (label set trained on, "trained on" column, how the model abstains)
    "idk": ("idk", "MNIST-IDK, 11 classes", "predicts IDK when IDK is its most probable class"),
    "idk-budget": ("idk", "MNIST-IDK, 11 classes, top p(IDK)", "predicts IDK on the test images with the highest p(IDK)"),
    "plain": ("plain", "MNIST, 10 digits", "predicts IDK on the test images with the lowest top probability"),
}


def decide(probabilities: np.ndarray, variant: str, abstain: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(predicted class, confidence, IDK score) of one variant; confidence = p(predicted class).

    The budgeted variants predict IDK on ``abstain`` test images (fewer if scores tie at the cut).
    """
    predicted = probabilities.argmax(1)
    if variant == "plain":
        idk_score = 1 - probabilities.max(1)
    else:
        idk_score = probabilities[:, metrics.IDK_CLASS]
        if variant == "idk-budget":
            predicted = probabilities[:, :metrics.IDK_CLASS].argmax(1)
    if variant != "idk" and abstain:
        cut = np.sort(idk_score)[::-1][abstain - 1]
        above = idk_score > cut
        ties = np.flatnonzero(idk_score == cut)
        if above.sum() + len(ties) <= abstain:
            above[ties] = True
        predicted = np.where(above, metrics.IDK_CLASS, predicted)
    if probabilities.shape[1] == 10:
        confidence = probabilities.max(1)
    else:
        confidence = probabilities[np.arange(len(predicted)), predicted]
    return predicted, confidence, idk_score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", default=None, help="release to train and score on [default: the latest]")
    parser.add_argument("--out", type=Path, help="JSON output [default: dataset_card/baselines/<version>.json]")
    parser.add_argument("--predictions-dir", type=Path, help="also write each model's test predictions as CSV")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import sklearn  # noqa: F401  (the baselines' logistic regression and neighbour search)
    except ImportError:
        print("error: this benchmark needs scikit-learn, which mnist-idk does not install: pip install scikit-learn",
              file=sys.stderr)
        return 2
    ws = Workspace.find()  # the checkout this is run in: its releases, raw files and dataset_card/
    version = curation.normalize_version(args.version or ws.released_versions()[-1])
    out = args.out or ws.baselines_dir / f"{version}.json"
    started = time.perf_counter()

    def say(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    splits = load_splits(ws.raw_dir)
    chosen = curation.load(ws, version, raw_labels={name: s.labels for name, s in splits.items()})
    train, test = splits["train"], splits["test"]
    truth = card.final_labels(test, chosen)
    label_sets = {"idk": card.final_labels(train, chosen), "plain": train.labels.astype(np.int64)}
    train_idk = int((label_sets["idk"] == metrics.IDK_CLASS).sum())
    abstain = round(train_idk / len(train.labels) * len(test.labels))

    say("features: PCA-50 of the pixels; deskew -> PCA-40 -> 2000 random Fourier features")
    pixels_train = train.images.reshape(len(train.labels), -1).astype(np.float32) / 255
    pixels_test = test.images.reshape(len(test.labels), -1).astype(np.float32) / 255
    mean, components = pca_fit(pixels_train, 50)
    pca_train, pca_test = (pixels_train - mean) @ components, (pixels_test - mean) @ components
    deskewed_train, deskewed_test = suggest.deskew(train.images), suggest.deskew(test.images)
    mean, components = pca_fit(deskewed_train, 40)
    rff_train, rff_test = fourier_features((deskewed_train - mean) @ components,
                                           (deskewed_test - mean) @ components, 2000, args.seed)
    folds = np.random.default_rng(args.seed).permutation(len(train.labels)) % 5

    models = [
        ("logistic regression", "logistic regression on PCA-50 of the pixels",
         lambda: logistic_probabilities(pca_train, pca_test, label_sets, args.seed)),
        ("10-NN", "10 nearest neighbours (Euclidean) on PCA-50 of the pixels, vote shares",
         lambda: knn_probabilities(pca_train, pca_test, label_sets)),
        ("RFF ridge (suggest's model)",
         "deskew -> PCA-40 -> 2000 random Fourier features -> ridge -> softmax (temperature from 5-fold OOF)",
         lambda: ridge_probabilities(rff_train, rff_test, label_sets, folds)),
    ]
    results = []
    for name, description, fit in models:
        say(f"{name}: fitting on both label sets")
        begin = time.perf_counter()
        probabilities = fit()
        seconds = time.perf_counter() - begin
        for variant, (labels, trained_on, abstains) in VARIANTS.items():
            predicted, confidence, idk_score = decide(probabilities[labels], variant, abstain)
            scores = metrics.score(truth, predicted, confidence)
            results.append({
                "model": name,
                "description": description,
                "labels": trained_on,
                "abstains": abstains,
                "idk_auroc": metrics.auroc(truth == metrics.IDK_CLASS, idk_score),
                "fit_seconds_both_label_sets": round(seconds, 1),
                "scores": scores.to_dict(curve=False),
            })
            if args.predictions_dir:
                args.predictions_dir.mkdir(parents=True, exist_ok=True)
                slug = f"{name.split(' (')[0].replace(' ', '-').lower()}-{variant}.csv"
                lines = ["mnist_index,prediction,confidence"] + [
                    f"{i},{metrics.CLASSES[p]},{c!r}" for i, (p, c) in enumerate(zip(predicted, confidence.tolist()))
                ]
                (args.predictions_dir / slug).write_text("\n".join(lines) + "\n", "utf-8")
    import sklearn

    report = {
        "version": version,
        "split": "test",
        "command": f"python benchmarks/baselines.py --version {version}",
        "train_images": len(train.labels),
        "train_idk": train_idk,
        "test_images": len(truth),
        "test_idk": int((truth == metrics.IDK_CLASS).sum()),
        "idk_budget": abstain,
        "seed": args.seed,
        "environment": {"python": platform.python_version(), "numpy": np.__version__, "scikit-learn": sklearn.__version__},
        "total_seconds": round(time.perf_counter() - started, 1),
        "models": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1)  # rows of the confusion matrices on one line each:
    text = re.sub(r"\[([\d,\s]+)\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    out.write_text(text + "\n", "utf-8")
    say(f"wrote {out}")
    print(card.baselines_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
