"""A short summary of a build: what a maintainer checks before pushing it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from . import curation
from .errors import MnistIdkError
from .curation import LABELS
from .features import data_file
from .card import recorded_version
from .push import build_files
from .raw import SPLITS


def summary(out: Path) -> str:
    """Version, rows and counts per class, IDK by reason, and every file with size and sha256."""
    out = Path(out)
    version = recorded_version(out)
    names = list(LABELS)
    lines = [f"{out}: MNIST-IDK, curation {version}" + ("" if version != curation.WORKING else " (unreleased)")]
    for split in SPLITS:
        path = out / data_file(split)
        if not path.is_file():
            raise MnistIdkError(f"{path}: missing; is {out} a mnist-idk build?")
        table = pq.read_table(path, columns=["label", "reason"])
        labels = Counter(table.column("label").to_pylist())
        reasons = Counter(r for r in table.column("reason").to_pylist() if r is not None)
        lines.append(f"{split}: {table.num_rows} rows")
        lines.append("  " + "  ".join(f"{name}:{labels.get(i, 0)}" for i, name in enumerate(names)))
        if reasons:
            lines.append("  listed by reason: " + ", ".join(f"{r} {reasons[r]}" for r in curation.REASONS if r in reasons))
    lines.append("files:")
    for name, path in build_files(out).items():
        lines.append(f"  {path.stat().st_size:>12,}  {curation.file_sha256(path)}  {name}")
    return "\n".join(lines)
