"""What ``datasets`` and ``huggingface_hub`` read from a build, checked in a process of its own.

Importing ``datasets`` costs ~0.8 s, as much as the rest of a build's validation, so
``DatasetsView`` starts a fresh interpreter that imports it (and warms ``load_dataset`` up on a
one-row build) while the build encodes; ``validate`` then hands it the finished build and the
labels the lists call for. This module imports nothing heavy itself: the parent needs only
``DatasetsView``.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

from .features import arrow_schema, data_file


def _import_datasets() -> None:
    import datasets

    datasets.disable_progress_bars()
    from huggingface_hub import DatasetCard  # noqa: F401

    from .features import FEATURES  # noqa: F401


def _warm_up() -> None:
    """Import ``datasets`` and everything ``load_dataset`` imports on first use (~0.2 s), on a one-row build."""
    import datasets
    import pyarrow as pa

    from . import parquet

    _import_datasets()
    row = {"image": {"bytes": b"", "path": None}, "label": 0, "original_label": 0, "mnist_index": 0, "reason": None}
    with tempfile.TemporaryDirectory(prefix="mnist-idk-warm-up-") as tmp:
        (Path(tmp) / "data").mkdir()
        parquet.write(pa.Table.from_pylist([row], schema=arrow_schema()), arrow_schema(), Path(tmp) / data_file("train"))
        datasets.load_dataset(tmp, keep_in_memory=True, cache_dir=str(Path(tmp) / "cache"))


def datasets_problems(out: str, labels: dict) -> list[str]:
    """What ``datasets`` and ``huggingface_hub`` read from the build at ``out``, against ``labels`` (split -> final label ids)."""
    import datasets
    import numpy as np
    import pyarrow.parquet as pq
    from huggingface_hub import DatasetCard

    from .features import FEATURES

    _import_datasets()
    out = Path(out)
    problems = []
    for name in labels:
        stored = datasets.Features.from_arrow_schema(pq.read_schema(out / data_file(name)))
        if stored != FEATURES:
            problems.append(f"{out / data_file(name)}: datasets reads features {stored} from the Parquet metadata")
    path = out / "README.md"
    try:
        yaml_info = DatasetCard.load(path).data.to_dict().get("dataset_info") or {}
        info = datasets.DatasetInfo._from_yaml_dict(yaml_info)
    except Exception as exc:  # noqa: BLE001 - an unreadable card is a finding
        return problems + [f"{path}: huggingface_hub/datasets cannot read the card ({exc})"]
    if info.features != FEATURES:
        problems.append(f"{path}: datasets reads other features from dataset_info: {info.features}")
    for name, expected in labels.items():
        got = info.splits[name].num_examples if info.splits and name in info.splits else None
        if got != len(expected):
            problems.append(f"{path}: datasets reads {got} examples for {name} from dataset_info, expected {len(expected)}")
    # A throwaway cache: validating must not leave lock files or Arrow copies in the user's cache.
    try:
        with tempfile.TemporaryDirectory(prefix="mnist-idk-validate-") as cache_dir:
            loaded = datasets.load_dataset(str(out), keep_in_memory=True, cache_dir=cache_dir)
    except Exception as exc:  # noqa: BLE001 - a build datasets cannot load is a finding
        return problems + [f"{out}: load_dataset fails: {type(exc).__name__}: {exc}"]
    if sorted(loaded) != sorted(labels):
        return problems + [f"{out}: load_dataset found splits {sorted(loaded)}, expected {list(labels)}"]
    for name, expected in labels.items():
        ds = loaded[name]
        if ds.features != FEATURES:
            problems.append(f"{out}: load_dataset gives {name} features {ds.features}")
        if ds.num_rows != len(expected):
            problems.append(f"{out}: load_dataset gives {ds.num_rows} {name} rows, expected {len(expected)}")
        elif not np.array_equal(np.asarray(ds.data.column("label")), expected):
            problems.append(f"{out}: load_dataset gives other {name} labels than the lists")
    return problems


class DatasetsView:
    """A fresh interpreter that imports ``datasets`` as soon as it starts, then runs ``datasets_problems``.

    Start it before the slow work so the import overlaps it. A plain subprocess (this process is
    not forked) talking pickles over its stdin and stdout; the request is written by a short-lived
    thread, since the process reads it only once warm. Use as a context manager; ``check`` may be
    called once.
    """

    def __init__(self) -> None:
        package_parent = str(Path(__file__).resolve().parent.parent)
        code = f"import sys; sys.path.insert(0, {package_parent!r}); from mnist_idk.datasets_view import _serve; _serve()"
        self._process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def check(self, out: Path, labels: dict) -> Callable[[], list[str]]:
        """Send the request now; the returned function waits for the problems."""
        request = pickle.dumps((str(out), labels), protocol=pickle.HIGHEST_PROTOCOL)

        def send() -> None:
            try:
                self._process.stdin.write(request)
                self._process.stdin.close()
            except (OSError, ValueError):
                pass  # it died; wait() says so

        sender = threading.Thread(target=send, daemon=True)
        sender.start()

        def wait() -> list[str]:
            result = self._process.stdout.read()
            sender.join()
            if self._process.wait() != 0 or not result:
                return [f"{out}: the datasets check failed (exit status {self._process.returncode}; see its message above)"]
            return pickle.loads(result)

        return wait

    def __enter__(self) -> "DatasetsView":
        return self

    def __exit__(self, *exc_info) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            stream.close()


def _serve() -> None:
    """The body of ``DatasetsView``'s process: import, read one request, answer it on stdout."""
    answer = sys.stdout.buffer
    sys.stdout = sys.stderr  # whatever datasets prints must not corrupt the answer
    _warm_up()
    request = sys.stdin.buffer.read()
    if not request:
        return  # the build failed or was not validated after all
    out, labels = pickle.loads(request)
    answer.write(pickle.dumps(datasets_problems(out, labels)))
    answer.flush()
