"""How well does `mnist-idk suggest` find the images curators moved to IDK? And cleanlab?

    pip install cleanlab scikit-learn   # for this benchmark only; not dependencies
    python benchmarks/suggest_quality.py [--seed 0]

The hidden answers are the images already curated: the v1.0.0 release (if present), the working
lists, and the 89 images of the "MNIST Visual Curation" IDK set that seeded them (issue 3; it is
hard-coded below so the benchmark runs even before any list exists). suggest scores everything
without excluding them, and we count how many land in the top 1% of each split (600 train,
100 test). Then cleanlab's `find_label_issues` gets the same budget twice: with out-of-fold
probabilities from scikit-learn's LogisticRegression on the same PCA features and the same folds
(cleanlab's usual recipe), and with our own out-of-fold probabilities (same model, cleanlab's
ranking). Prints recall, held-out accuracy, wall time and peak memory; the last line is the summary.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from mnist_idk import curation, suggest
from mnist_idk.errors import MnistIdkError
from mnist_idk.raw import SPLIT_SIZES, SPLITS, load_split

# Issue 3, quoting the "MNIST Visual Curation" dataset's IDK images (0-based indices).
SEED_IDK = {
    "train": [172, 902, 4028, 4476, 5013, 5084, 6755, 9455, 10205, 11657, 12183, 12614, 13259, 14790, 16676,
              17739, 19868, 21382, 21601, 21990, 22130, 23464, 25546, 25954, 26560, 26834, 26850, 27522, 28491,
              30604, 31301, 32244, 32573, 32738, 33506, 34404, 34521, 35062, 35616, 36348, 36766, 36934, 37427,
              40386, 40704, 41424, 42687, 43454, 45266, 45352, 45917, 48881, 48933, 48975, 49683, 51944, 52914,
              53638, 53736, 54342, 54782, 56397, 57662, 57882, 59653, 59915],
    "test": [247, 321, 582, 646, 1178, 1224, 2266, 2293, 2654, 3542, 3558, 3811, 4238, 4880, 5201, 5331, 6560,
             6906, 9634, 9679, 9716, 9729, 9890],
}


def hidden_sets() -> dict[str, dict[str, set[int]]]:
    """Name -> split -> indices: each curated set we have, plus the seed set."""
    sets = {}
    for version in ("v1.0.0", curation.WORKING):
        try:
            listed = curation.load(version)
        except MnistIdkError:
            continue
        indices = {split: {e.index for e in listed.entries[split]} for split in SPLITS}
        if any(indices.values()) and indices not in sets.values():  # working lists equal to v1.0.0: once
            sets[f"{version} lists"] = indices
    sets["seed 89"] = {split: set(SEED_IDK[split]) for split in SPLITS}
    return sets


def recall(split_of: np.ndarray, index_of: np.ndarray, hidden: dict[str, set[int]]) -> dict[str, int]:
    """Hidden images among the first 1% of each split, given rows already in ranked order."""
    found = {}
    for split in SPLITS:
        top = index_of[split_of == split][: SPLIT_SIZES[split] // 100]
        found[split] = len(hidden[split] & set(top.tolist()))
    return found


def describe(found: dict[str, int], hidden: dict[str, set[int]]) -> str:
    return ", ".join(f"{split} {found[split]}/{len(hidden[split])}" for split in SPLITS)


def ranked_by(scored: suggest.Scored, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((scored.index, scored.split != "train", -values))
    return scored.split[order], scored.index[order]


def logistic_probabilities(points: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    probabilities = np.zeros((len(labels), 10))
    for fold in range(folds.max() + 1):
        model = LogisticRegression(max_iter=300)
        model.fit(points[folds != fold], labels[folds != fold])
        probabilities[folds == fold] = model.predict_proba(points[folds == fold])
    return probabilities


def cleanlab_issues(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    from cleanlab.filter import find_label_issues

    return find_label_issues(labels, probabilities, return_indices_ranked_by="self_confidence")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sets = hidden_sets()
    print(f"machine: {os.cpu_count()} cores; hidden answers: " + "; ".join(
        f"{name} ({describe({s: len(v[s]) for s in SPLITS}, v).replace('/', ' of ')})" for name, v in sets.items()))

    splits = [load_split(name) for name in SPLITS]
    start = time.perf_counter()
    scored = suggest.score_splits(splits, suggest.Settings(seed=args.seed))
    ours_time = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(f"mnist-idk suggest: {ours_time:.1f} s for 70,000 images (features included), peak memory {peak:.2f} GiB, "
          f"held-out accuracy {scored.held_out_accuracy:.4f}")
    ranks = {name: suggest.percentile_rank(scored.signals[name]) for name in suggest.SIGNALS}
    variants = {f"{name} alone": scored.signals[name] for name in suggest.SIGNALS}
    variants["mean rank of all five"] = np.mean(list(ranks.values()), axis=0)
    variants["score (mean rank of " + " + ".join(suggest.COMBINED) + ")"] = scored.score
    for label, values in variants.items():
        print(f"  {label:<58} " + " | ".join(
            f"{name}: {describe(recall(*ranked_by(scored, values), hidden), hidden)}" for name, hidden in sets.items()))
    table = suggest.candidates(scored)
    ours = {name: recall(table["split"], table["index"], hidden) for name, hidden in sets.items()}

    labels = np.concatenate([s.labels for s in splits]).astype(np.int64)
    points, _, folds, _ = suggest.features_and_folds(np.concatenate([s.images for s in splits]),
                                                     suggest.Settings(seed=args.seed))
    split_of = np.repeat(np.array(SPLITS), [SPLIT_SIZES[s] for s in SPLITS])
    index_of = np.concatenate([np.arange(SPLIT_SIZES[s]) for s in SPLITS])
    start = time.perf_counter()
    probabilities = logistic_probabilities(points, labels, folds)
    issues = cleanlab_issues(labels, probabilities)
    theirs_time = time.perf_counter() - start
    theirs = {name: recall(split_of[issues], index_of[issues], hidden) for name, hidden in sets.items()}
    accuracy = float((probabilities.argmax(1) == labels).mean())
    print(f"cleanlab find_label_issues + LogisticRegression (same deskewed PCA features, same folds): "
          f"{theirs_time:.1f} s (features not counted), held-out accuracy {accuracy:.4f}, {len(issues)} issues flagged")
    print("  ranked issues                                              " + " | ".join(
        f"{name}: {describe(theirs[name], hidden)}" for name, hidden in sets.items()))
    start = time.perf_counter()
    issues = cleanlab_issues(labels, scored.probabilities)
    same_model_time = time.perf_counter() - start
    print(f"cleanlab find_label_issues on our out-of-fold probabilities: {same_model_time:.1f} s "
          f"(ranking only), {len(issues)} issues flagged (it flags no more than it estimates as noise)")
    print("  ranked issues                                              " + " | ".join(
        f"{name}: {describe(recall(split_of[issues], index_of[issues], hidden), hidden)}"
        for name, hidden in sets.items()))
    print("summary, recall in the top 1% of each split: " + "; ".join(
        f"{name}: ours {describe(ours[name], hidden)} vs cleanlab {describe(theirs[name], hidden)}"
        for name, hidden in sets.items())
        + f"; wall time ours {ours_time:.1f} s vs cleanlab {theirs_time:.1f} s; "
          f"accuracy ours {scored.held_out_accuracy:.4f} vs {accuracy:.4f}")


if __name__ == "__main__":
    main()
