"""How many label errors does `mnist-idk suggest` put where curators look? Each model, and cleanlab.

    pip install cleanlab '.[suggest]'   # cleanlab for this benchmark only; the extra for the cnn model
    python benchmarks/suggest_quality.py [--flip-seed 0 1 2 3 4] [--seed 0] [--models rff conv cnn] [--flips plausible]

Nothing is excluded: every image is ranked. Three kinds of answers, counted at four budgets
(the top 0.5% and 1% of all 70,000 images, the top 100 of test, the top 600 of train; 0.5% is as
many as the planted flips, so it separates models that all find nearly every flip by 1%):

(a) planted flips: a random 0.5% of the labels changed to another digit (seeded by --flip-seed,
    printed); the models rank on the flipped labels, and we count the flipped images found.
    Several seeds: one line each, then the mean. This is what settings are tuned on.
    --flips plausible changes each to the digit the numpy conv model (out of fold, on the true
    labels) finds likeliest after the true one: harder to find, and what real errors mostly are;
    every cnn variant finds 342-344 of 350 uniform flips, so uniform flips no longer separate them.
(b) published MNIST label errors (benchmarks/published_label_errors.csv, provenance there),
    ranked on the true labels. Reported only: never used to choose settings.
(c) the images of every release and of the working lists (the early ones mostly ambiguous digits
    moved to IDK), and the 89 images of the "MNIST Visual Curation" IDK set that seeded them (issue 3).

Rankers: the v1 model (``Settings(model="rff")``), v2 (``conv``, numpy, the default without the
extra), v3 (``cnn``, the default with torch installed), and cleanlab's ``find_label_issues`` on the
best model's out-of-fold probabilities (ranked by self-confidence; it flags only as many as it
estimates to be noisy, so it can fall short of a budget). Each model runs in a fresh process, so
its wall time and peak memory are its own (time of the scoring, without imports and reading files).
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np

from mnist_idk import curation, suggest
from mnist_idk.errors import MnistIdkError
from mnist_idk.raw import SPLIT_SIZES, SPLITS, load_splits
from mnist_idk.workspace import Workspace

WS = Workspace.find()  # this checkout's lists and raw files

PUBLISHED = Path(__file__).with_name("published_label_errors.csv")
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
NAMES = {"rff": "v1 (rff)", "conv": "v2 (conv + neighbours)", "cnn": "v3 (cnn, two networks)"}
OFFSET = {"train": 0, "test": SPLIT_SIZES["train"]}  # row of (split, 0) in the pooled order


def rows_of(pairs) -> set[int]:
    return {OFFSET[split] + int(index) for split, index in pairs}


def published_sets() -> dict[str, set[int]]:
    sets: dict[str, set[int]] = {}
    with PUBLISHED.open(encoding="utf-8") as handle:
        for row in csv.DictReader(line for line in handle if not line.startswith("#")):
            sets.setdefault(row["source"], set()).update(rows_of([(row["split"], row["index"])]))
    return sets


def release_sets() -> dict[str, set[int]]:
    sets = {}
    for version in (*WS.released_versions(), curation.WORKING):
        try:
            listed = curation.load(WS, version)
        except MnistIdkError:
            continue
        rows = rows_of((split, e.index) for split in SPLITS for e in listed.entries[split])
        if rows and rows not in sets.values():  # working lists equal to v1.0.0: once
            sets[f"{version} lists"] = rows
    sets["seed 89 IDK"] = rows_of((split, i) for split in SPLITS for i in SEED_IDK[split])
    return sets


def flip(labels: np.ndarray, seed: int, likeliest: np.ndarray | None = None) -> tuple[np.ndarray, set[int]]:
    """A random 0.5% of the labels, each changed to another digit: uniformly chosen, or ``likeliest``'s.

    ``likeliest`` (plausible flips) is an independent model's likeliest digit other than the true
    one, per image: a 4 relabelled 9 rather than 2, as real label errors mostly are. The same seed
    picks the same images either way.
    """
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(labels), len(labels) // 200, replace=False)
    flipped = labels.copy()
    uniform = (labels[rows] + rng.integers(1, 10, len(rows))) % 10
    flipped[rows] = uniform if likeliest is None else likeliest[rows]
    return flipped, set(rows.tolist())


def run_model(settings: suggest.Settings, labels: np.ndarray) -> tuple[suggest.Scored, float, float]:
    """In a fresh process: (scored, wall seconds, peak GiB of that process)."""
    splits = list(load_splits(WS.raw_dir).values())
    start = time.perf_counter()
    images = np.concatenate([s.images for s in splits])
    split_of = np.repeat(np.array(SPLITS), [len(s.labels) for s in splits])
    index_of = np.concatenate([np.arange(len(s.labels)) for s in splits])
    scored = suggest.score(images, labels, split_of, index_of, settings)
    seconds = time.perf_counter() - start
    return scored, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def isolated(settings: suggest.Settings, labels: np.ndarray) -> tuple[suggest.Scored, float, float]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run_model, settings, labels).result()


def ranking(scored: suggest.Scored) -> np.ndarray:
    """Pooled rows, most suspicious first (the order of `candidates`)."""
    return np.lexsort((scored.index, scored.split != "train", -scored.score))


def cleanlab_ranking(scored: suggest.Scored) -> tuple[np.ndarray, float]:
    from cleanlab.filter import find_label_issues

    start = time.perf_counter()
    issues = find_label_issues(scored.original, scored.probabilities, return_indices_ranked_by="self_confidence")
    return np.asarray(issues), time.perf_counter() - start


def confidence_report(scored: suggest.Scored) -> str:
    """Why cleanlab flags as many as it does: its per-class thresholds against the other digits' probabilities.

    cleanlab counts an image as confidently digit j when p(j) reaches the mean p(j) of the images
    labelled j; label smoothing keeps every p under about 0.9, so that bar is high for an image
    read out of fold.
    """
    from cleanlab.count import get_confident_thresholds

    thresholds = get_confident_thresholds(scored.original, scored.probabilities)
    other = scored.predicted != scored.original
    reached = (scored.probabilities >= thresholds) & (np.arange(10) != scored.original[:, None])
    return (f"its per-class thresholds {thresholds.min():.2f}-{thresholds.max():.2f}; {int(other.sum())} images are "
            f"predicted as another digit, at a median p of {np.median(scored.probabilities.max(1)[other]):.2f}, "
            f"{int(reached.any(1).sum())} of them at or over the threshold")


def found(order: np.ndarray, answers: set[int]) -> str:
    """'a/b/c/d of n': answers among the first rows of each budget."""
    train = order[order < OFFSET["test"]]
    test = order[order >= OFFSET["test"]]
    counts = [len(answers & set(pool[:budget].tolist())) for pool, budget in
              ((order, 350), (order, 700), (test, 100), (train, 600))]
    return "/".join(map(str, counts)) + f" of {len(answers)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="suggest's seed (folds, features)")
    parser.add_argument("--flip-seed", type=int, nargs="+", default=[0], help="seeds of the planted flips")
    parser.add_argument("--models", nargs="+", choices=NAMES, default=list(NAMES), help="which models to run")
    parser.add_argument("--flips", choices=("uniform", "plausible"), default="uniform",
                        help="planted flips to a uniformly chosen other digit, or to the digit the numpy conv model "
                             "(out of fold, true labels) finds likeliest after the true one: harder, like real errors")
    args = parser.parse_args()
    try:
        import cleanlab  # noqa: F401  (its find_label_issues is one of the rankers compared)
    except ImportError:
        raise SystemExit("error: this benchmark needs cleanlab, which mnist-idk does not install: pip install cleanlab")
    labels = np.concatenate([s.labels for s in load_splits(WS.raw_dir).values()]).astype(np.int64)
    likeliest = None
    if args.flips == "plausible":
        reference, _, _ = isolated(replace(suggest.Settings(model="conv"), seed=args.seed), labels)
        likeliest = suggest.likeliest_other(reference.probabilities, labels)
    models = {NAMES[model]: replace(suggest.Settings(model=model), seed=args.seed) for model in args.models}
    last = list(models)[-1]  # the best model asked for: cleanlab ranks with its probabilities
    answers = {**published_sets(), **release_sets()}
    print(f"machine: {os.cpu_count()} cores; counts are top 0.5% (350 of all) / top 1% (700 of all) / top 100 of test / top 600 of train; "
          f"planted flip seeds {args.flip_seed} ({args.flips}), suggest seed {args.seed}")

    results: dict[str, dict[str, str]] = {}
    planted: dict[str, list[np.ndarray]] = {}
    costs = {}
    for name, settings in models.items():
        scored, seconds, peak = isolated(settings, labels)
        costs[name] = f"{seconds:.0f} s, {peak:.2f} GiB, held-out accuracy {scored.held_out_accuracy:.4f} " + (
            "(" + ", ".join(f"{part} {value:.4f}" for part, value in scored.parts.items()) + ")")
        results[name] = {list_name: found(ranking(scored), rows) for list_name, rows in answers.items()}
        print(f"  {name}: {costs[name]}; " + "; ".join(f"{k} {v}" for k, v in results[name].items()), flush=True)
        if name == last:
            order, seconds = cleanlab_ranking(scored)
            costs[f"cleanlab on {name}"] = f"{seconds:.1f} s for the ranking, {len(order)} issues flagged" + (
                "; " + confidence_report(scored))
            results[f"cleanlab on {name}"] = {list_name: found(order, rows) for list_name, rows in answers.items()}
        for flip_seed in args.flip_seed:
            noisy, rows = flip(labels, flip_seed, likeliest)
            flipped_scored, _, _ = isolated(settings, noisy)
            counts = [np.array(found(ranking(flipped_scored), rows).split(" ")[0].split("/"), int)]
            planted.setdefault(name, []).extend(counts)
            if name == last:
                order, _ = cleanlab_ranking(flipped_scored)
                planted.setdefault(f"cleanlab on {name}", []).append(
                    np.array(found(order, rows).split(" ")[0].split("/"), int))
            print(f"  planted flips seed {flip_seed} ({len(rows)} flipped): {name}: "
                  f"{'/'.join(map(str, planted[name][-1]))}", flush=True)

    total = {SPLITS[0]: 0, SPLITS[1]: 0}
    _, rows = flip(labels, args.flip_seed[0])
    for row in rows:
        total["train" if row < OFFSET["test"] else "test"] += 1
    columns = ["planted flips (mean)", *answers]
    print("\n| | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name in results:
        mean = np.mean(planted[name], axis=0)
        cells = ["/".join(f"{value:.1f}" for value in mean) + f" of {len(rows)}"]
        print(f"| {name} | " + " | ".join(cells + [results[name][c] for c in answers]) + " |")
    print(f"\nplanted flips of seed {args.flip_seed[0]}: {total['train']} in train, {total['test']} in test")
    for name, cost in costs.items():
        print(f"{name}: {cost}")


if __name__ == "__main__":
    main()
