"""Croissant 1.0 metadata (``croissant.json``) for a build, so dataset search engines and
``mlcroissant`` read MNIST-IDK without glue.

It describes the Parquet files (with their sha256, relative to the build), one record set per
split with the five columns, and the class names as an enumeration that ``label`` references.
No timestamps: the same build gives the same bytes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import card, curation
from .curation import LABELS
from .features import data_file
from .raw import SPLITS
from .workspace import Workspace

FILE = "croissant.json"
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileObject": "cr:fileObject",
    "fileProperty": "cr:fileProperty",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
CITATION = (
    "@article{lecun1998gradient, title={Gradient-based learning applied to document recognition}, "
    "author={LeCun, Yann and Bottou, L{\\'e}on and Bengio, Yoshua and Haffner, Patrick}, "
    "journal={Proceedings of the IEEE}, volume={86}, number={11}, pages={2278--2324}, year={1998}}"
)
COLUMNS = {
    "image": ("sc:ImageObject", "The 28x28 grayscale MNIST image (PNG).", {"transform": {"jsonPath": "bytes"}}),
    "label": ("sc:Integer", "Curated class id: 0-9 for the digits, 10 for IDK (see the classes record set).", {}),
    "original_label": ("sc:Integer", "The label in the official MNIST files (0-9).", {}),
    "mnist_index": ("sc:Integer", "Position of the image in the official MNIST split.", {}),
    "reason": ("sc:Text", "Why the label changed (ambiguous, deformed, noisy, mislabeled, outlier); "
               "empty when unchanged.", {}),
}


def _field(record_set: str, column: str, source_id: str) -> dict:
    data_type, description, extra = COLUMNS[column]
    field = {
        "@type": "cr:Field",
        "@id": f"{record_set}/{column}",
        "name": column,
        "description": description,
        "dataType": data_type,
        "source": {"fileObject": {"@id": source_id}, "extract": {"column": column}, **extra},
    }
    if column == "label":
        field["references"] = {"field": {"@id": "classes/id"}}
    return field


def release_date(ws: Workspace, version: str) -> str | None:
    """The date of the version's CHANGELOG heading (``## v1.0.0 (2026-11-24)``), not today's."""
    path = ws.changelog
    text = path.read_text("utf-8") if path.is_file() else ""
    match = re.search(rf"^## {re.escape(version)} \((\d{{4}}-\d{{2}}-\d{{2}})\)", text, re.M)
    return match.group(1) if match else None


def metadata(ws: Workspace, out: Path, version: str) -> dict:
    """The Croissant description of the build at ``out`` (its Parquet files must exist)."""
    names = list(LABELS)
    files = [
        {
            "@type": "cr:FileObject",
            "@id": f"{split}-parquet",
            "name": f"{split}-parquet",
            "description": f"The {split} split.",
            "contentUrl": data_file(split),
            "encodingFormat": "application/x-parquet",
            "contentSize": f"{(out / data_file(split)).stat().st_size} B",
            "sha256": curation.file_sha256(out / data_file(split)),
        }
        for split in SPLITS
    ]
    classes = {
        "@type": "cr:RecordSet",
        "@id": "classes",
        "name": "classes",
        "description": "The 11 classes: the ten digits and IDK.",
        "dataType": "sc:Enumeration",
        "key": {"@id": "classes/id"},
        "field": [
            {"@type": "cr:Field", "@id": "classes/id", "name": "id", "dataType": "sc:Integer"},
            {"@type": "cr:Field", "@id": "classes/name", "name": "name", "dataType": "sc:Text"},
        ],
        "data": [{"classes/id": i, "classes/name": name} for i, name in enumerate(names)],
    }
    record_sets = [classes] + [
        {
            "@type": "cr:RecordSet",
            "@id": split,
            "name": split,
            "description": f"Rows of the {split} split, in official MNIST order.",
            "field": [_field(split, column, f"{split}-parquet") for column in COLUMNS],
        }
        for split in SPLITS
    ]
    described = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": "MNIST-IDK",
        "description": (
            "MNIST with an 11th class, IDK, for the handwritten digits that no careful person can call; "
            f"curation version {version}."
        ),
        "version": version.lstrip("v") if version != curation.WORKING else "0.0.0",
        "license": "https://creativecommons.org/licenses/by-sa/3.0/",
        "url": f"https://huggingface.co/datasets/{card.repo_id()}",
        "citeAs": CITATION,
        "keywords": ["mnist", "abstention", "selective classification", "label noise"],
        "distribution": files,
        "recordSet": record_sets,
    }
    published = release_date(ws, version)
    if published:
        described["datePublished"] = published
    return described


def write(ws: Workspace, out: Path, version: str) -> Path:
    path = out / FILE
    path.write_text(json.dumps(metadata(ws, out, version), indent=2, sort_keys=True) + "\n", "utf-8")
    return path
