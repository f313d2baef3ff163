"""Build speed: the obvious `datasets` path against `mnist_idk.build`, measured in one run.

    python benchmarks/build.py [--reps 3] [--raw-dir raw/mnist]

(a) naive: `Dataset.from_dict` with one PIL image per row and the same Features, then
    `to_parquet` (what a tutorial would write); (b) ours: `mnist_idk.build(validate=False)`.
Both start from the raw .gz files and write both splits (70k images). Also times validation
(every image decoded and compared), measures the peak memory of a build (PSS summed over the process tree, sampled),
and checks that both outputs load with `load_dataset` to the same pixels and labels.
The last line is the ratio naive/ours.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import datasets
import numpy as np
from PIL import Image

from mnist_idk.build import build, relabel
from mnist_idk import curation
from mnist_idk.features import FEATURES
from mnist_idk.raw import SPLITS, load_split
from mnist_idk.workspace import Workspace
from mnist_idk.validate import validate_build

datasets.disable_progress_bars()


def naive(out: Path, ws: Workspace) -> None:
    """The tutorial way: PIL images into Dataset.from_dict, then to_parquet."""
    splits = {name: load_split(name, ws.raw_dir) for name in SPLITS}
    cur = curation.load(ws, curation.WORKING, raw_labels={n: s.labels for n, s in splits.items()})
    for name, split in splits.items():
        labels, reasons = relabel(split, cur)
        ds = datasets.Dataset.from_dict(
            {
                "image": [Image.fromarray(image) for image in split.images],
                "label": labels.tolist(),
                "original_label": split.labels.tolist(),
                "mnist_index": list(range(len(labels))),
                "reason": reasons,
            },
            features=FEATURES,
        )
        ds.to_parquet(str(out / "data" / f"{name}-00000-of-00001.parquet"))


def timed(function, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            function(Path(tmp) / "out")
            times.append(time.perf_counter() - start)
    return times


def tree_pss_kib(pid: int) -> int:
    """Memory of ``pid`` and its descendants (PSS: pages shared after fork counted once)."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/smaps_rollup").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in status.splitlines() if line.startswith("Pss:"))
        stack += [int(c) for c in children]
    return total


def peak_rss_mib(raw_dir: Path | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        code = ("from mnist_idk import Workspace, build; "
                f"build(Workspace.find(raw_dir={raw_dir and str(raw_dir)!r}), {str(Path(tmp) / 'out')!r}, validate=False)")
        env = {**os.environ, "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
        process = subprocess.Popen([sys.executable, "-c", code], env=env)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_pss_kib(process.pid))
            time.sleep(0.01)
        if process.returncode:
            raise SystemExit("the build subprocess failed")
        return peak / 1024


def same_content(naive_dir: Path, our_dir: Path) -> bool:
    cache = str(naive_dir.parent / "cache")  # inside the benchmark's temporary directory
    a = datasets.load_dataset(str(naive_dir / "data"), cache_dir=cache)
    b = datasets.load_dataset(str(our_dir), cache_dir=cache)
    for name in SPLITS:
        x, y = a[name].with_format("numpy"), b[name].with_format("numpy")
        if not (np.array_equal(x["image"], y["image"]) and np.array_equal(x["label"], y["label"])):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--raw-dir", type=Path, default=None)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; datasets {datasets.__version__}")

    ws = Workspace.find(raw_dir=args.raw_dir)
    ours_times = timed(lambda out: build(ws, out, validate=False), args.reps)
    naive_times = timed(lambda out: naive(out, ws), args.reps)
    with tempfile.TemporaryDirectory() as tmp:
        ours_dir, naive_dir = Path(tmp) / "ours", Path(tmp) / "naive"
        build(ws, ours_dir, validate=False)
        naive(naive_dir, ws)
        start = time.perf_counter()
        problems = validate_build(ws, ours_dir, with_load_dataset=False)
        validate_time = time.perf_counter() - start
        identical = same_content(naive_dir, ours_dir)
    ours, slow = statistics.median(ours_times), statistics.median(naive_times)
    print(f"naive datasets build: median {slow:.2f} s of {[round(t, 2) for t in naive_times]}")
    print(f"mnist-idk build:      median {ours:.2f} s of {[round(t, 2) for t in ours_times]}")
    print(f"validation (70k decoded + compared): {validate_time:.2f} s, {len(problems)} problems "
          f"({'faster' if validate_time <= slow else 'SLOWER'} than the naive build)")
    print(f"peak memory of a build (PSS of the process tree): {peak_rss_mib(args.raw_dir):.0f} MiB")
    print(f"load_dataset gives identical pixels and labels: {identical}")
    print(f"ratio naive/ours: {slow / ours:.1f}x")


if __name__ == "__main__":
    main()
