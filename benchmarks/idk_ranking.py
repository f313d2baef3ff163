"""How well `suggest --target idk` orders the keeps for a reader looking for more IDK images.

    python benchmarks/idk_ranking.py [--version vX.Y.Z] [--model auto|cnn|conv|rff] [--seed 0]

The truth is the review's random samples of train's reviewed keeps that no panel had read
(``curation_lists/reviewed/random_samples.csv``: round, split, index): each was asked alone of a
blind panel of five, so whether the release lists it is a reading no ranking chose. Every image
is scored out of fold twice with the same model, as ``suggest`` does: learning the MNIST labels
(``--target label``, score 1 - p(label)) and learning the release's curated labels, listed images
as an 11th class (``--target idk``, score p(IDK)). For the samples of rounds up to the release it
prints each score's AUROC (listed against kept) and how many listed samples each puts in the top
10% of the samples, with the time of each run and the process's peak memory. About 9 minutes
with the cnn on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import resource
import sys
import time
from pathlib import Path

import numpy as np

from mnist_idk import card, curation, metrics, suggest
from mnist_idk.errors import MnistIdkError
from mnist_idk.raw import load_splits
from mnist_idk.workspace import Workspace

SAMPLES = Path("reviewed") / "random_samples.csv"


def read_samples(path: Path, sizes: dict[str, int]) -> list[tuple[str, str, int]]:
    """(round, split, index) rows; a clear error naming the line for anything else."""
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames != ["round", "split", "index"]:
            raise MnistIdkError(f"{path}:1: expected the header round,split,index, got {','.join(reader.fieldnames or [])}")
        for line, row in enumerate(reader, start=2):
            split, index = row["split"], row["index"]
            if split not in sizes or not index.isdigit() or int(index) >= sizes[split]:
                raise MnistIdkError(f"{path}:{line}: expected a split (train, test) and an index below its size, "
                                    f"got {split!r}, {index!r}")
            rows.append((curation.normalize_version(row["round"]), split, int(index)))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", help="release whose lists the idk model learns and judge the samples [default: the latest]")
    parser.add_argument("--model", default="auto", choices=["auto", *suggest.MODELS])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        ws = Workspace.find()
        version = curation.normalize_version(args.version or ws.released_versions()[-1])
        splits = load_splits(ws.raw_dir)
        chosen = curation.load(ws, version, raw_labels={name: s.labels for name, s in splits.items()})
        samples = [row for row in read_samples(ws.lists_dir / SAMPLES, {n: len(s.labels) for n, s in splits.items()})
                   if curation.parse_version(row[0]) <= curation.parse_version(version)]
    except MnistIdkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    model = suggest.default_model(lambda m: print(f"note: {m}", file=sys.stderr)) if args.model == "auto" else args.model
    curated = {name: card.final_labels(s, chosen) for name, s in splits.items()}
    offset = {name: start for name, start in zip(splits, np.cumsum([0] + [len(s.labels) for s in splits.values()]))}
    rows = np.array([offset[split] + index for _, split, index in samples])
    listed = np.array([curated[split][index] == metrics.IDK_CLASS for _, split, index in samples])
    if not 0 < listed.sum() < len(listed):
        print(f"error: {len(samples)} samples up to {version}, {int(listed.sum())} of them listed: an AUROC needs both "
              "listed and kept samples", file=sys.stderr)
        return 2
    print(f"{len(samples)} random samples of unread train keeps (rounds up to {version}), {listed.sum()} listed in "
          f"{version}; model {model}, seed {args.seed}")
    top = max(1, round(0.1 * len(samples)))
    for target in suggest.TARGETS:
        started = time.perf_counter()
        scored = suggest.score_splits(list(splits.values()), suggest.Settings(model=model, seed=args.seed, target=target),
                                      lambda message: print(f"... {message}", file=sys.stderr, flush=True),
                                      curated=list(curated.values()) if target == "idk" else None)
        seconds = time.perf_counter() - started
        score = scored.score[rows]
        best = np.argsort(-score, kind="stable")[:top]
        what = "1 - p(label)" if target == "label" else "p(IDK)"
        print(f"--target {target:5s} ({what}): AUROC {metrics.auroc(listed, score):.3f}; top {top} of the samples hold "
              f"{listed[best].sum()} of the {listed.sum()} listed; {seconds:.0f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak memory of the process: {peak:.1f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
