"""What changed between two versions of the curation lists: the reviewer's table and the changelog's.

A side can be a release (``v1.0.0``), the working lists (``working``), a git revision of the
checkout (``HEAD``, ``origin/main``: how CI compares a pull request with its base), or a CSV
file (one split, named by the file: ``train.csv``/``test.csv``, or by ``--split``).
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import card, curation
from .curation import Entry
from .errors import MnistIdkError
from .raw import SPLITS
from .workspace import Workspace

KINDS = ("added", "removed", "relabelled", "note")  # in the order a reader wants them


@dataclass(frozen=True)
class Difference:
    split: str
    index: int
    kind: str  # one of KINDS
    old: Entry | None
    new: Entry | None

    @property
    def entry(self) -> Entry:
        return self.new or self.old  # type: ignore[return-value]


Lists = dict[str, list[Entry]]


def read_side(ws: Workspace, spec: str, split: str | None = None) -> Lists:
    """The lists that ``spec`` names; CSV paths give one split, the other sides give all."""
    path = Path(spec)
    if spec.endswith(".csv"):
        if not path.is_file():
            raise MnistIdkError(f"{path}: no such file")
        split = split or path.stem
        if split not in SPLITS:
            raise MnistIdkError(f"{path}: cannot tell the split from the file name; pass --split train|test")
        return {split: _checked(path, split)}
    if spec in (curation.WORKING, *ws.released_versions()) or spec.lstrip("v")[:1].isdigit():
        entries, problems = curation.read_lists(ws.version_dir(spec))
        if problems:
            raise MnistIdkError(curation.format_problems(problems))
        return entries
    if not ws.has_working:
        raise MnistIdkError(f"{spec!r} is not a release ({', '.join(ws.released_versions())}) or a CSV file; "
                            "git revisions need a checkout")
    return _from_git(spec, ws.lists_dir)


def _checked(path: Path, split: str) -> list[Entry]:
    entries, problems = curation.read_list(path, split)
    if problems:
        raise MnistIdkError(curation.format_problems(problems))
    return entries


def _from_git(revision: str, root: Path) -> Lists:
    """The working lists as committed at a git revision of the checkout that holds ``root``."""
    lists: Lists = {}
    with tempfile.TemporaryDirectory(prefix="mnist-idk-diff-") as tmp:
        for name in SPLITS:
            shown = subprocess.run(
                ["git", "show", f"{revision}:./{name}.csv"], cwd=root, capture_output=True, timeout=60
            )
            if shown.returncode:
                message = shown.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["git failed"]
                raise MnistIdkError(
                    f"{revision!r} is not a release, 'working', a CSV file or a git revision with "
                    f"{root.name}/{name}.csv ({message[0]})"
                )
            path = Path(tmp) / f"{name}.csv"
            path.write_bytes(shown.stdout)
            lists[name] = _checked(path, name)
    return lists


def diff(old: Lists, new: Lists) -> list[Difference]:
    """Differences by split and index, for the splits both sides have."""
    found = []
    for split in [s for s in SPLITS if s in old and s in new]:
        before = {e.index: e for e in old[split]}
        after = {e.index: e for e in new[split]}
        for index in sorted(before.keys() | after.keys()):
            a, b = before.get(index), after.get(index)
            if a is None:
                found.append(Difference(split, index, "added", None, b))
            elif b is None:
                found.append(Difference(split, index, "removed", a, None))
            elif (a.label, a.reason, a.original) != (b.label, b.reason, b.original):
                found.append(Difference(split, index, "relabelled", a, b))
            elif a.note != b.note:
                found.append(Difference(split, index, "note", a, b))
    return found


def _row(d: Difference) -> list[str]:
    old = f"{d.old.label} {d.old.reason}" if d.old else "-"
    new = f"{d.new.label} {d.new.reason}" if d.new else "-"
    return [d.kind, d.split, str(d.index), str(d.entry.original), old, new, d.entry.note]


def caption(d: Difference) -> list[str]:
    """A contact-sheet caption: the change and where, then the label before -> after (``9 -> IDK (noisy)``).

    The same wording as the other sheets' ``IDK (reason)``; an image that is not listed on a side
    shows its MNIST digit there, so a removal reads back to the digit it returns to.
    """
    def side(e: Entry | None) -> str:
        return f"{e.label} ({e.reason})" if e else str(d.entry.original)

    return [f"{d.kind}: {d.split} {d.index}", f"{side(d.old)} -> {side(d.new)}"]


HEADER = ["change", "split", "index", "original", "before", "after", "note"]


def to_markdown(differences: list[Difference]) -> str:
    if not differences:
        return "No changes."
    rows = [[card.escape(cell) for cell in _row(d)] for d in differences]
    return card.table(HEADER, rows)


def to_text(differences: list[Difference]) -> str:
    if not differences:
        return "no changes"
    rows = [HEADER] + [_row(d) for d in differences]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows)


def summary(differences: list[Difference]) -> str:
    """E.g. "2 added, 1 relabelled, 16 notes changed" (the CHANGELOG line of a release)."""
    counts = {kind: sum(d.kind == kind for d in differences) for kind in KINDS}

    def words(kind: str, n: int) -> str:
        return kind if kind != "note" else "note changed" if n == 1 else "notes changed"

    return ", ".join(f"{n} {words(kind, n)}" for kind, n in counts.items() if n) or "no changes"
