"""How well does `mnist-idk suggest` find the images curators moved to IDK? And cleanlab?

    pip install cleanlab scikit-learn   # for this benchmark only; not dependencies
    python benchmarks/suggest_quality.py [--version v1.0.0] [--seed 0]

The listed images of a curation version are the hidden answers: suggest runs without excluding
them, and we count how many land in the top 1% of each split (600 train, 100 test). Then, on the
same PCA features and the same folds, cleanlab's `find_label_issues` with out-of-fold
probabilities from scikit-learn's LogisticRegression gets the same budget. Prints recall, the
models' held-out accuracy and wall times side by side; the last line is the summary.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mnist_idk import curation, suggest
from mnist_idk.raw import SPLIT_SIZES, SPLITS, load_split


def recall(ranked_split: np.ndarray, ranked_index: np.ndarray, hidden: dict[str, set[int]]) -> dict[str, int]:
    found = {}
    for split in SPLITS:
        budget = SPLIT_SIZES[split] // 100
        top = ranked_index[ranked_split == split][:budget]
        found[split] = len(hidden[split] & set(top.tolist()))
    return found


def cleanlab_ranking(points, labels, folds):
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression

    probabilities = np.zeros((len(labels), 10))
    for fold in range(folds.max() + 1):
        model = LogisticRegression(max_iter=300)
        model.fit(points[folds != fold], labels[folds != fold])
        probabilities[folds == fold] = model.predict_proba(points[folds == fold])
    issues = find_label_issues(labels, probabilities, return_indices_ranked_by="self_confidence")
    return issues, float((probabilities.argmax(1) == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="v1.0.0", help="curation version whose listed images are hidden")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; hidden answers: the images listed in {args.version}")
    listed = curation.load(args.version)
    hidden = {split: {e.index for e in listed.entries[split]} for split in SPLITS}
    sizes = {split: len(hidden[split]) for split in SPLITS}

    start = time.perf_counter()
    scored = suggest.score_mnist(settings=suggest.Settings(seed=args.seed))
    ours_time = time.perf_counter() - start
    table = suggest.candidates(scored)
    ours = recall(table["split"], table["index"], hidden)
    print(f"mnist-idk suggest: {ours_time:.1f} s, held-out accuracy {scored.held_out_accuracy:.4f}")
    for name in suggest.SIGNALS:
        order = np.lexsort((scored.index, scored.split == "test", -scored.signals[name]))
        alone = recall(scored.split[order], scored.index[order], hidden)
        print(f"  {name:<18} alone: " + ", ".join(f"{s} {alone[s]}/{sizes[s]}" for s in SPLITS))
    print("  combined score:      " + ", ".join(f"{s} {ours[s]}/{sizes[s]}" for s in SPLITS))

    splits = [load_split(name) for name in SPLITS]
    images = np.concatenate([s.images for s in splits])
    labels = np.concatenate([s.labels for s in splits]).astype(np.int64)
    points, _, folds, _ = suggest.features_and_folds(images, suggest.Settings(seed=args.seed))
    start = time.perf_counter()
    issues, accuracy = cleanlab_ranking(points, labels, folds)
    theirs_time = time.perf_counter() - start
    split_of = np.where(np.arange(len(labels)) < SPLIT_SIZES["train"], "train", "test")
    index_of = np.concatenate([np.arange(SPLIT_SIZES[s]) for s in SPLITS])
    theirs = recall(split_of[issues], index_of[issues], hidden)
    print(f"cleanlab find_label_issues + LogisticRegression (same PCA features, same folds): {theirs_time:.1f} s "
          f"(model only; features not counted), held-out accuracy {accuracy:.4f}, {len(issues)} issues flagged")
    print("  ranked issues:       " + ", ".join(f"{s} {theirs[s]}/{sizes[s]}" for s in SPLITS))
    print(
        f"recall in the top 1% — ours: train {ours['train']}/{sizes['train']}, test {ours['test']}/{sizes['test']} "
        f"in {ours_time:.1f} s; cleanlab: train {theirs['train']}/{sizes['train']}, test {theirs['test']}/{sizes['test']} "
        f"in {theirs_time:.1f} s"
    )


if __name__ == "__main__":
    main()
