"""Shared fixtures. Real MNIST comes from raw/mnist in the checkout (shipped in the repo)."""

from __future__ import annotations

import atexit
import csv
import os
import shutil
import tempfile

# datasets and huggingface_hub read these at import time: keep tests off the user's caches,
# and leave nothing behind in the temp directory when the session ends.
_HOME = tempfile.mkdtemp(prefix="mnist-idk-tests-hf-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ.setdefault("HF_HOME", _HOME)
os.environ.setdefault("HF_DATASETS_CACHE", os.path.join(_HOME, "datasets"))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# The suite tests this checkout: a curator's own settings (lists or raw files elsewhere, a mirror,
# a default repo id) must not leak in. Tests that need one set it with monkeypatch.
for _name in ("MNIST_IDK_LISTS_DIR", "MNIST_IDK_RAW_DIR", "MNIST_IDK_MIRRORS", "MNIST_IDK_REPO_ID"):
    os.environ.pop(_name, None)

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mnist_idk.raw import load_splits  # noqa: E402
from mnist_idk.workspace import Workspace  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RAW = REPO / "raw" / "mnist"


LIST_HEADER = "index,original,label,reason,note\n"
RECORD_HEADER = "index,original,decision,source,note\n"


def kept_rows(labels, indices) -> str:
    """Record rows deciding train ``indices`` kept (``labels``: the raw labels by split)."""
    return "".join(f"{i},{labels['train'][i]},kept,seed-v1.0.0,a plain digit\n" for i in indices)


def small_record(root: Path, labels, kept) -> Path:
    """Working lists with train 1 listed, and a record of it plus train ``kept`` decided kept."""
    (root / "reviewed").mkdir(parents=True, exist_ok=True)
    (root / "train.csv").write_text(LIST_HEADER + f"1,{labels['train'][1]},IDK,noisy,a smudge\n", "utf-8")
    (root / "test.csv").write_text(LIST_HEADER, "utf-8")
    (root / "reviewed" / "test.csv").write_text(RECORD_HEADER, "utf-8")
    (root / "reviewed" / "train.csv").write_text(
        RECORD_HEADER + f"1,{labels['train'][1]},listed,seed-v1.0.0,a smudge\n" + kept_rows(labels, kept), "utf-8")
    return root


def released_record(root: Path, labels) -> Path:
    """Release v1.0.0 of train 1 listed and 3 kept, then train 10-29 decided kept in the working record."""
    import datetime

    from mnist_idk.release import release

    small_record(root, labels, [3])
    release(workspace(root), "1.0.0", "first", labels, datetime.date(2026, 1, 1))
    return small_record(root, labels, [3, *range(10, 30)])


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, columns, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def workspace(lists: Path | None = None) -> Workspace:
    """This checkout's workspace, or one whose lists are ``lists`` (raw files: the checkout's)."""
    return Workspace.find(lists_dir=lists, raw_dir=RAW, cwd=REPO, environ={})


@pytest.fixture(scope="session")
def ws() -> Workspace:
    return workspace()


@pytest.fixture(scope="session")
def labels(real_splits):
    """The real labels by split."""
    return {name: split.labels for name, split in real_splits.items()}


@pytest.fixture(scope="session")
def real_splits():
    """The real MNIST splits, verified against their pinned digests."""
    return load_splits(RAW)


@pytest.fixture(scope="session")
def working_build(tmp_path_factory):
    """One validated build of the working lists, shared by the read-only integration tests."""
    from mnist_idk.build import build

    out = tmp_path_factory.mktemp("build") / "mnist_idk"
    build(workspace(), out)
    return out


def synthetic_images(n: int, seed: int = 0) -> np.ndarray:
    """Sparse random 'digits': mostly zeros like MNIST, so PNGs compress realistically."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    images[rng.random((n, 28, 28)) < 0.8] = 0
    return images
