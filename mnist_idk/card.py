"""The dataset card: YAML the Hub and ``datasets`` read, and a body whose every number is computed.

The YAML is what ``huggingface_hub.DatasetCardData`` with ``datasets``' ``MetadataConfigs`` and
``DatasetInfosDict`` would write (a test compares the bytes), assembled here as plain data because
importing ``datasets`` would cost a build ~0.8 s; ``load_dataset`` reads the same features and
splits back, which validation checks.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from string import Template
from typing import Mapping

import numpy as np
import yaml

from . import curation
from .curation import REASONS, Curation
from .errors import MnistIdkError
from .features import data_file, label_id, yaml_features
from .raw import Split
from .sheet import CARD_SHEET
from .workspace import Workspace

DEFAULT_REPO_ID = "mnist-idk/mnist_idk"
PROJECT_URL = "https://github.com/mnist-idk/mnist-idk"


def repo_id() -> str:
    return os.environ.get("MNIST_IDK_REPO_ID") or DEFAULT_REPO_ID


def escape(text: str) -> str:
    """Make CSV text inert inside a Markdown table cell: no HTML, no pipes, no line breaks."""
    text = html.escape(" ".join(text.split()), quote=False)  # quotes are harmless in a cell
    return re.sub(r"([|\\`*_\[\]])", r"\\\1", text)


def table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def final_labels(split: Split, cur: Curation) -> np.ndarray:
    labels = split.labels.astype(np.int64)
    for entry in cur.entries[split.name]:
        labels[entry.index] = label_id(entry.label)
    return labels


def class_counts(splits: Mapping[str, Split], cur: Curation) -> dict[str, dict[str, list[int]]]:
    """``{split: {"before": [11 counts], "after": [11 counts]}}`` (index 10 is IDK)."""
    return {
        name: {
            "before": np.bincount(split.labels, minlength=11).tolist(),
            "after": np.bincount(final_labels(split, cur), minlength=11).tolist(),
        }
        for name, split in splits.items()
    }


def class_counts_table(counts: dict[str, dict[str, list[int]]]) -> str:
    header = ["split", ""] + list(curation.LABELS) + ["total"]
    rows = []
    for name, both in counts.items():
        for when in ("before", "after"):
            rows.append([name, when, *both[when], sum(both[when])])
    return table(header, rows)


def idk_breakdown(cur: Curation, key: str) -> str:
    """IDK counts per split by ``reason`` or by ``original`` digit."""
    values = list(REASONS) if key == "reason" else list(range(10))
    rows = []
    for split, entries in cur.entries.items():
        idk = [e for e in entries if e.label == curation.IDK]
        rows.append([split, *(sum(getattr(e, key) == v for e in idk) for v in values), len(idk)])
    return table(["split", *map(str, values), "total"], rows)


def changelog_section(ws: Workspace, version: str) -> str:
    """This version's CHANGELOG entry (the text under its ``## vX.Y.Z`` heading)."""
    if version == curation.WORKING:
        return "Unreleased working lists: not a published version."
    path = ws.changelog
    text = path.read_text("utf-8") if path.is_file() else ""
    match = re.search(rf"^## {re.escape(version)}\b.*?$(.*?)(?=^## |\Z)", text, re.M | re.S)
    body = match.group(1).strip() if match else ""
    return re.sub(r"^#", "###", body, flags=re.M) or f"No changelog entry for {version}."


def card_data(splits: Mapping[str, Split], cur: Curation, num_bytes: Mapping[str, int], out: Path) -> dict:
    """The card's YAML as data, in the order ``DatasetCardData.to_dict()`` gives it."""
    download_size = sum((out / data_file(name)).stat().st_size for name in splits)
    return {
        "annotations_creators": ["expert-generated"],
        "language": ["en"],
        "license": "cc-by-sa-3.0",
        "size_categories": ["10K<n<100K"],
        "source_datasets": ["extended|mnist"],
        "task_categories": ["image-classification"],
        "task_ids": ["multi-class-image-classification"],
        "pretty_name": "MNIST-IDK",
        "tags": ["mnist", "abstention", "selective-classification", "label-noise"],
        "curation_version": cur.version,
        "configs": [
            {"config_name": "default", "data_files": [{"split": name, "path": data_file(name)} for name in splits]}
        ],
        "dataset_info": {
            "features": yaml_features(),
            "splits": [
                {"name": name, "num_bytes": num_bytes[name], "num_examples": len(s.labels)}
                for name, s in splits.items()
            ],
            "download_size": download_size,
            "dataset_size": sum(num_bytes.values()),
        },
    }


def to_yaml(data: dict) -> str:
    """``DatasetCardData.to_yaml()``: huggingface_hub's ``yaml.dump`` settings."""
    return yaml.dump(data, sort_keys=False, allow_unicode=True).strip()


def render(ws: Workspace, splits: Mapping[str, Split], cur: Curation, num_bytes: Mapping[str, int],
           out: Path) -> str:
    """The whole README.md: YAML front matter, then the template filled with computed tables."""
    listed = [
        [split, e.index, e.original, e.label, e.reason, escape(e.note)]
        for split, entries in cur.entries.items()
        for e in entries
    ]
    body = Template(ws.template.read_text("utf-8")).substitute(
        version=cur.version,
        unreleased_note="" if cur.released else " (unreleased working lists; do not cite)",
        sheet_path=CARD_SHEET.as_posix(),
        reason_table=table(["reason", "meaning"], [[f"`{r}`", m] for r, m in REASONS.items()]),
        repo_id=repo_id(),
        class_counts=class_counts_table(class_counts(splits, cur)),
        reason_counts=idk_breakdown(cur, "reason"),
        digit_counts=idk_breakdown(cur, "original"),
        changelog=changelog_section(ws, cur.version),
        listed_table=table(["split", "index", "original", "label", "reason", "note"], listed),
        project_url=PROJECT_URL,
    )
    return f"---\n{to_yaml(card_data(splits, cur, num_bytes, out))}\n---\n\n{body}"


def write_card(ws: Workspace, out: Path, splits: Mapping[str, Split], cur: Curation,
               num_bytes: Mapping[str, int]) -> Path:
    path = out / "README.md"
    path.write_text(render(ws, splits, cur, num_bytes, out), "utf-8")
    return path


def recorded_version(out: Path) -> str:
    """The curation version a build's card records (``curation_version`` in its YAML)."""
    from huggingface_hub import DatasetCard

    path = Path(out) / "README.md"
    try:
        version = DatasetCard.load(path).data.to_dict().get("curation_version")
    except (OSError, ValueError) as exc:
        raise MnistIdkError(f"{path}: cannot read the dataset card ({exc}); is {out} a mnist-idk build?") from None
    if not version:
        raise MnistIdkError(f"{path}: no curation_version in the card's YAML; is {out} a mnist-idk build?")
    return str(version)
