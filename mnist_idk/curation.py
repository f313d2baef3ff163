"""Curation lists: which images move to IDK (or to another digit), why, and in which version.

A list is a CSV per split with columns ``index,original,label,reason,note``. ``original`` repeats
the raw label so that an off-by-one index or a wrong split is caught, not silently published.
The working lists (``curation_lists/{split}.csv``) are what pull requests edit; a release freezes
them under ``curation_lists/releases/vX.Y.Z/`` with a ``SHA256SUMS`` that must never change.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import MnistIdkError
from .raw import SPLIT_SIZES, SPLITS
from .workspace import WORKING, Workspace, normalize_version, parse_version  # noqa: F401 (re-exported)

COLUMNS = ("index", "original", "label", "reason", "note")
IDK = "IDK"
LABELS = tuple(str(d) for d in range(10)) + (IDK,)
REASONS = {
    "ambiguous": "plausibly two different digits",
    "deformed": "broken or distorted strokes",
    "noisy": "smudges or stray marks hide the digit",
    "mislabeled": "clearly a different digit than its label",
    "outlier": "not a digit at all, or unlike any class",
}
SUMS = "SHA256SUMS"


@dataclass(frozen=True)
class Entry:
    """One listed image: ``label`` is ``IDK`` or the corrected digit as a string."""

    split: str
    index: int
    original: int
    label: str
    reason: str
    note: str
    line: int = 0  # 1-based line in the CSV, for messages


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass
class Curation:
    """One version of the lists: ``entries[split]`` sorted by index."""

    version: str
    entries: dict[str, list[Entry]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def released(self) -> bool:
        return self.version != WORKING

    def by_index(self, split: str) -> dict[int, Entry]:
        return {e.index: e for e in self.entries[split]}


def read_list(path: Path, split: str) -> tuple[list[Entry], list[Problem]]:
    """Parse one CSV, collecting every format problem rather than stopping at the first."""
    problems: list[Problem] = []

    def problem(line: int, message: str) -> None:
        problems.append(Problem(path, line, message))

    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return [], [Problem(path, 0, "file is missing")]
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        return [], [Problem(path, line, f"not UTF-8 (byte offset {exc.start})")]
    if text.startswith("\ufeff"):
        problem(1, "starts with a byte-order mark; save as UTF-8 without BOM")
        text = text[1:]
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows or tuple(rows[0]) != COLUMNS:
        got = ",".join(rows[0]) if rows else "nothing"
        problem(1, f"header is {got!r}, expected {','.join(COLUMNS)!r}")
        return [], problems
    entries: list[Entry] = []
    for line, row in enumerate(rows[1:], start=2):
        if not row:
            problem(line, "empty line")
            continue
        if len(row) != len(COLUMNS):
            problem(line, f"{len(row)} fields, expected {len(COLUMNS)} ({','.join(COLUMNS)})")
            continue
        if any(value != value.strip() for value in row):
            problem(line, "leading or trailing whitespace in a field")
        index, original, label, reason, note = (value.strip() for value in row)
        ok = True
        if not index.isdigit() or not (0 <= int(index) < SPLIT_SIZES[split]):
            problem(line, f"index {index!r} is not an integer in 0..{SPLIT_SIZES[split] - 1}")
            ok = False
        if original not in LABELS[:10]:
            problem(line, f"original {original!r} is not a digit 0-9")
            ok = False
        if label not in LABELS:
            problem(line, f"label {label!r} is not IDK or a digit 0-9")
            ok = False
        elif label == original:
            problem(line, f"label {label} equals original; the row changes nothing")
        if reason not in REASONS:
            problem(line, f"reason {reason!r} is not one of {', '.join(REASONS)}")
        if not note:
            problem(line, "note is empty; say what you see")
        if ok:
            entries.append(Entry(split, int(index), int(original), label, reason, note, line))
    previous: Entry | None = None
    for entry in entries:
        if previous is not None and entry.index == previous.index:
            problem(entry.line, f"index {entry.index} is listed twice (also line {previous.line})")
        elif previous is not None and entry.index < previous.index:
            problem(entry.line, f"index {entry.index} comes after {previous.index}; keep rows sorted")
        previous = entry
    return entries, problems


def check_originals(entries: list[Entry], labels: np.ndarray, path: Path) -> list[Problem]:
    """``original`` must equal the raw label: this is what catches wrong indices."""
    return [
        Problem(path, e.line, f"original is {e.original} but raw {e.split} label {e.index} is {labels[e.index]}")
        for e in entries
        if int(labels[e.index]) != e.original
    ]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_release_sums(release: Path) -> list[Problem]:
    """A released list must hash to what its SHA256SUMS recorded when it was frozen."""
    sums_path = release / SUMS
    if not sums_path.is_file():
        return [Problem(sums_path, 0, "missing; every release records the sha256 of its lists")]
    problems = []
    recorded = {}
    for line_no, line in enumerate(sums_path.read_text("utf-8").splitlines(), start=1):
        digest, _, name = line.partition("  ")
        recorded[name] = digest
        target = release / name
        if not target.is_file():
            problems.append(Problem(sums_path, line_no, f"{name} is recorded but missing"))
        elif file_sha256(target) != digest:
            problems.append(
                Problem(target, 0, f"released file changed: sha256 is {file_sha256(target)}, "
                        f"recorded {digest}; released lists never change, edit the working list")
            )
    for split in SPLITS:
        if f"{split}.csv" not in recorded:
            problems.append(Problem(sums_path, 0, f"{split}.csv is not recorded"))
    return problems


def load(
    ws: Workspace,
    version: str = WORKING,
    raw_labels: dict[str, np.ndarray] | None = None,
) -> Curation:
    """Load one version of the lists; any problem (all of them, listed) raises ``MnistIdkError``."""
    version = normalize_version(version)
    directory = ws.version_dir(version)
    problems = check_release_sums(directory) if version != WORKING else []
    entries, found = read_lists(directory, raw_labels)
    if problems + found:
        raise MnistIdkError(format_problems(problems + found))
    return Curation(version, entries, {split: directory / f"{split}.csv" for split in SPLITS})


def read_lists(directory: Path, raw_labels: dict[str, np.ndarray] | None = None) -> tuple[dict[str, list[Entry]], list[Problem]]:
    """Both splits' lists in ``directory`` with every problem: format, and originals if labels are given."""
    entries: dict[str, list[Entry]] = {}
    problems: list[Problem] = []
    for split in SPLITS:
        path = directory / f"{split}.csv"
        entries[split], found = read_list(path, split)
        problems += found
        if raw_labels is not None:
            problems += check_originals(entries[split], raw_labels[split], path)
    return entries, problems


def read_in_full(ws: Workspace, every_release: bool = False) -> list[str]:
    """The releases lint reads in full: the newest (every one with ``every_release``).

    Each release was read in full when it was made, and its SHA256SUMS prove it unchanged since, so
    re-reading them all (minutes, once there are hundreds) only finds something after lint's own
    rules change.
    """
    released = ws.released_versions()
    return released if every_release else released[-1:]


def lint(ws: Workspace, raw_labels: dict[str, np.ndarray] | None = None, every_release: bool = False) -> list[Problem]:
    """Every problem in the working lists and the releases, for CI and for reviewers.

    Every release's files are checked against its SHA256SUMS; the lists of ``read_in_full``'s
    releases are read in full too.
    """
    ws.require_working("lint of the working lists")
    problems = read_lists(ws.lists_dir, raw_labels)[1]
    for version in ws.released_versions():
        problems += check_release_sums(ws.lists_dir / "releases" / version)
    for version in read_in_full(ws, every_release):
        problems += read_lists(ws.lists_dir / "releases" / version)[1]
    return problems


def format_problems(problems: list[Problem]) -> str:
    noun = "problem" if len(problems) == 1 else "problems"
    return f"{len(problems)} {noun} in the curation lists:\n" + "\n".join(map(str, problems))
