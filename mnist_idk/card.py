"""The dataset card: YAML the Hub and ``datasets`` read, and a body whose every number is computed.

The YAML is what ``huggingface_hub.DatasetCardData`` with ``datasets``' ``MetadataConfigs`` and
``DatasetInfosDict`` would write (a test compares the bytes), assembled here as plain data because
importing ``datasets`` would cost a build ~0.8 s; ``load_dataset`` reads the same features and
splits back, which validation checks.
"""

from __future__ import annotations

import html
import json
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
from .sheet import CARD_PER_REASON, CARD_SHEET, reason_sheet
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


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def baselines_table(report: dict) -> str:
    """One row per model and label set from a ``benchmarks/baselines.py`` report (also its printout)."""
    rows = []
    for m in report["models"]:
        s, rc = m["scores"], m["scores"].get("risk_coverage") or {}
        rows.append([m["model"], m["labels"], _share(s["digit_accuracy"]), _share(s["idk_precision"]),
                     _share(s["idk_recall"]), _share(s["idk_f1"]),
                     "n/a" if m.get("idk_auroc") is None else f"{m['idk_auroc']:.3f}",
                     f"{rc['aurc']:.5f}" if rc else "n/a", _share(rc.get("selective_accuracy", {}).get("0.95"))])
    return table(["model", "trained on", "accuracy on digits", "IDK precision", "IDK recall", "IDK F1",
                  "IDK AUROC", "AURC", "selective acc. @95%"], rows)


def baselines_section(ws: Workspace, version: str) -> str:
    """The card's "Baselines" section from ``dataset_card/baselines/<version>.json``; "" if there is none."""
    path = ws.baselines_dir / f"{version}.json"
    if not path.is_file():
        return ""
    try:
        report = json.loads(path.read_text("utf-8"))
        rows = baselines_table(report)
    except (ValueError, KeyError, TypeError) as exc:
        raise MnistIdkError(f"{path}: not a baselines report from benchmarks/baselines.py ({exc!r})") from None
    if report.get("version") != version:
        raise MnistIdkError(f"{path}: reports version {report.get('version')!r}, expected {version!r}")
    return f"""## Baselines

Standard models trained on the train split ({report["train_images"]} images, {report["train_idk"]} IDK) and
scored on test ({report["test_images"]} images, {report["test_idk"]} IDK). Each model is fitted twice: on
the 11 classes of this release ("MNIST-IDK"), and on the plain MNIST labels ("MNIST", the "no IDK
class" alternative). The 11-class fit is scored as it predicts, and again predicting IDK on the
{report["idk_budget"]} test images with the highest p(IDK) ("top p(IDK)": IDK's share of train); the
10-digit fit predicts IDK on the {report["idk_budget"]} test images with the lowest top probability (a
confidence threshold). A prediction is correct when it equals the curated label. IDK AUROC:
how well p(IDK), or one minus the top probability for the 10-digit fit, ranks the test IDK
images first. AURC: area under the risk-coverage curve when answering the most confident
images first (lower is better); confidence is the probability of the predicted class.

{rows}

Reproduce with `{report["command"]}` from the
[project repository]({PROJECT_URL}) (scikit-learn {report["environment"]["scikit-learn"]}, seed {report["seed"]}).
Score your own model: write a CSV with `mnist_index,prediction,confidence` (one row per test
image; prediction `0`-`9` or `IDK`; confidence optional, higher = surer) and run
`mnist-idk evaluate predictions.csv --version {version}`.
"""


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


def reason_sheets(cur: Curation) -> str:
    """Links to the complete per-reason sheets, with their counts."""
    counts = {r: sum(e.reason == r for entries in cur.entries.values() for e in entries) for r in REASONS}
    links = [f"[{r} ({n})]({reason_sheet(r).as_posix()})" for r, n in counts.items() if n]
    return ("Every listed image, one sheet per reason: " + ", ".join(links) + ".") if links else ""


def review_section(ws: Workspace, version: str) -> str:
    """How much of MNIST this version's review record covers, by split and source; "" without a record."""
    from . import review

    record = review.load_record(ws, version)
    if not any(record.values()):
        return ""
    kinds = sorted({review.source_kind(s) for rows in record.values() for r in rows for s in r.sources})
    rows = []
    for split, reviewed in record.items():
        cells = [split, len(reviewed), sum(r.decision == "listed" for r in reviewed)]
        for kind in kinds:
            mine = [r for r in reviewed if any(review.source_kind(s) == kind for s in r.sources)]
            cells.append(f"{len(mine)} ({sum(r.decision == 'listed' for r in mine)})")
        rows.append(cells)
    total = sum(len(v) for v in record.values())
    listed = sum(r.decision == "listed" for v in record.values() for r in v)
    head = (f"## How this version was reviewed\n\nReviewed **{total:,}** of the 70,000 images, one by one, "
            f"drawn large beside typical members of their label; **{listed:,}** are listed. Every decision, "
            "kept images included, is in the review record (`curation_lists/reviewed/`) with what was seen. "
            "Candidates came from published studies of MNIST label errors (`published`), the previous "
            "release (`seed`), and an out-of-sample model ranking (`suggest`), reviewed in rank order; a "
            "score only ordered the queue"
            + ("; after that, unreviewed images drawn at random (`audit`)" if "audit" in kinds else "")
            + ("; and every image whose holes contradict its label's form (`forms`)" if "forms" in kinds else "")
            + ". Reviewed (listed) by source:\n\n")
    return (head + table(["split", "reviewed", "listed", *kinds], rows) + "\n\n" + audit_paragraph(ws, record)
            + blind_paragraph(ws, version))


def audit_paragraph(ws: Workspace, record: dict) -> str:
    """What a random audit of the unreviewed images says is left there; "" without an audit."""
    from . import coverage, review

    queue = review.form_indices(ws)
    parts, stratified = [], False
    for split, reviewed in record.items():
        left = coverage.left(split, reviewed, queue[split])
        estimate = left.estimate()
        if estimate is not None:
            middle, (low, high) = estimate
            unreviewed = left.unreviewed + left.forms_unreviewed
            forms_part = ""
            if left.forms_reviewed:
                whole, (whole_low, whole_high) = coverage.left(split, reviewed, set()).estimate()  # without the queue
                forms_part = (f" (audit images outside the forms queue; the queue: {left.forms_reviewed:,} reviewed, "
                              f"{left.forms_listed} listed, {left.forms_unreviewed:,} to go; counted without the "
                              f"queue, {whole:,.0f} ({whole_low:,.0f}-{whole_high:,.0f}))")
                stratified = True
            parts.append(f"{split}: {left.audit_listed} of {left.audited:,} listed, so about {middle:,.0f} IDK "
                         f"images (95% interval {low:,.0f}-{high:,.0f}) among its {unreviewed:,} unreviewed "
                         f"ones{forms_part}")
    if not parts:
        return ""
    caveat = (" Where a form was chosen after the audit had found images of it, counting the audit apart from the "
              "queue flatters the estimate, and counting it without the queue overcounts once the queue is reviewed "
              "to the end: what is left lies between." if stratified else "")
    return ("**What the review has not reached** (`audit`): after the ranked review, images nobody had reviewed "
            "were drawn at random and reviewed the same way, so their listed share estimates how many images "
            "of the unreviewed rest a careful reviewer would list. " + "; ".join(parts) + "." + caveat + "\n\n")


def blind_paragraph(ws: Workspace, version: str) -> str:
    """Each round's blind re-check, listed and kept apart; "" without one."""
    from . import review

    rounds = review.agreement_by_round(review.load_blind(ws, version))
    if not rounds:
        return ""

    def share(agree: int, count: int) -> str:
        return f"{agree} of {count} ({agree / count:.0%})" if count else "-"

    rows = [[r.round or "v1.1.0", r.checked, share(r.agree, r.checked), share(*r.listed), share(*r.kept), r.changed]
            for r in rounds]
    return ("Each round, a share of a set of decisions drawn at random (the decisions since the last release, or "
            "older ones that a round takes on, turned over or disagreed on: the CHANGELOG says which; listed and "
            "kept apart, so that the listings can be re-checked at a larger share, up to all of them) was decided "
            "again by a reviewer who saw neither the recorded decision nor the record "
            "(`curation_lists/reviewed/blind_recheck.csv`); where the two disagreed, the image was decided once "
            "more. Most decisions deep in a ranking are keeps, so the agreement on images first listed (listed "
            "when drawn) is given apart:\n\n"
            + table(["round", "re-checked", "agree", "first listed: agree", "first kept: agree",
                     "changed when decided once more"], rows) + "\n\n")


def listed_block(listed: list[list[object]]) -> str:
    """The table of listed images; folded when it is long, so the card stays readable."""
    text = table(["split", "index", "original", "label", "reason", "note"], listed)
    if len(listed) <= 100:
        return text
    return f"<details>\n<summary>All {len(listed)} listed images</summary>\n\n{text}\n\n</details>"


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
        per_reason=CARD_PER_REASON,
        reason_sheets=reason_sheets(cur),
        review=review_section(ws, cur.version),
        reason_table=table(["reason", "meaning"], [[f"`{r}`", m] for r, m in REASONS.items()]),
        repo_id=repo_id(),
        class_counts=class_counts_table(class_counts(splits, cur)),
        reason_counts=idk_breakdown(cur, "reason"),
        digit_counts=idk_breakdown(cur, "original"),
        changelog=changelog_section(ws, cur.version),
        baselines=baselines_section(ws, cur.version),
        listed_table=listed_block(listed),
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
