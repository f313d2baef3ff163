"""Build speed as users feel it: whole processes, the obvious `datasets` path against `mnist-idk`.

    python benchmarks/build.py [--reps 5] [--raw-dir raw/mnist]

Run it from a checkout (the lists and raw files are found as `mnist-idk` finds them). Each
repetition runs, in turn and each as its own process:

(a) naive: `Dataset.from_dict` with one PIL image per row and the same Features, then
    `to_parquet`, for both splits from the raw .gz files (what a tutorial would write);
(b) `mnist-idk build --no-validate`;
(c) `mnist-idk build` (the default: validates, including `load_dataset`);
(d) start-up: `python -c "import click"`, `mnist-idk --help` and every `mnist-idk COMMAND --help`.

Medians over the repetitions are compared; alternating keeps the ratios meaningful on a noisy
machine. It also measures the peak memory of a default build (PSS summed over its process tree,
sampled) and checks that the naive and our outputs load with `load_dataset` to the same pixels
and labels. The last line holds the ratios.
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

CLI = [sys.executable, "-m", "mnist_idk"]


def naive(out: Path, raw_dir: Path | None) -> None:
    """The tutorial way: PIL images into Dataset.from_dict, then to_parquet (run as its own process)."""
    import datasets
    from PIL import Image

    from mnist_idk import curation
    from mnist_idk.build import relabel
    from mnist_idk.features import FEATURES
    from mnist_idk.raw import load_splits
    from mnist_idk.workspace import Workspace

    datasets.disable_progress_bars()
    ws = Workspace.find(raw_dir=raw_dir)
    splits = load_splits(ws.raw_dir)
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


def subcommands(path: list[str], env: dict) -> list[str]:
    """Every command under ``mnist-idk PATH`` (groups' commands too), read from ``--help``."""
    text = subprocess.run([*CLI, *path, "--help"], capture_output=True, text=True, check=True, env=env).stdout
    if "Commands:" not in text:
        return []
    names = [line.split()[0] for line in text.split("Commands:")[1].splitlines() if line.startswith("  ") and line.strip()]
    found = []
    for name in names:
        found.append(" ".join([*path, name]))
        found += subcommands([*path, name], env)
    return found


def run(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


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


def peak_pss_mib(command: list[str], env: dict) -> float:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_pss_kib(process.pid))
        time.sleep(0.005)
    if process.returncode:
        raise SystemExit(f"{command} failed")
    return peak / 1024


def same_content(naive_dir: Path, our_dir: Path) -> bool:
    import datasets
    import numpy as np

    datasets.disable_progress_bars()
    cache = str(naive_dir.parent / "cache")  # inside the benchmark's temporary directory
    a = datasets.load_dataset(str(naive_dir / "data"), cache_dir=cache)
    b = datasets.load_dataset(str(our_dir), cache_dir=cache)
    for name in ("train", "test"):
        x, y = a[name].with_format("numpy"), b[name].with_format("numpy")
        if not (np.array_equal(x["image"], y["image"]) and np.array_equal(x["label"], y["label"])):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--raw-dir", type=Path, default=None)
    parser.add_argument("--naive", type=Path, help=argparse.SUPPRESS)  # internal: run (a) into this directory
    args = parser.parse_args()
    if args.naive:
        return naive(args.naive, args.raw_dir)

    env = {**os.environ, "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    raw = ["--raw-dir", str(args.raw_dir)] if args.raw_dir else []
    commands = subcommands([], env)
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cases = {
            "naive": [sys.executable, __file__, "--naive", str(out / "naive"), *raw],
            "no-validate": [*CLI, "build", "--no-validate", "-q", "--out", str(out / "fast"), *raw],
            "build": [*CLI, "build", "-q", "--out", str(out / "ours"), *raw],
            "import click": [sys.executable, "-c", "import click"],
            "--help": [*CLI, "--help"],
            **{f"{name} --help": [*CLI, *name.split(), "--help"] for name in commands},
        }
        for command in cases.values():  # warm-up: caches, .pyc files
            run(command, env)
        for _ in range(args.reps):
            for name, command in cases.items():
                times.setdefault(name, []).append(run(command, env))
        peak = peak_pss_mib(cases["build"], env)
        identical = same_content(out / "naive", out / "ours")

    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; {args.reps} alternated repetitions")
    for name, values in times.items():
        print(f"  {name:24s} median {median[name]:6.2f} s  of {[round(t, 2) for t in values]}")
    slowest_help = max((name for name in median if name.endswith("--help")), key=median.get)
    print(f"peak memory of a default build (PSS of its process tree): {peak:.0f} MiB")
    print(f"load_dataset gives identical pixels and labels: {identical}")
    print(f"ratios: naive/no-validate {median['naive'] / median['no-validate']:.1f}x, "
          f"naive/build {median['naive'] / median['build']:.1f}x, "
          f"slowest help ({slowest_help}) / import click {median[slowest_help] / median['import click']:.1f}x")


if __name__ == "__main__":
    main()
