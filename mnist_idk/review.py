"""The review record: every image anyone has looked at, with the decision, and the queue of the rest.

``curation_lists/reviewed/{split}.csv`` (``index,original,decision,source,note``) records each
reviewed image once: ``listed`` (it is in the working list) or ``kept`` (it keeps its label). So
coverage is auditable and nobody reviews an image twice. ``source`` says where the candidate came
from, ``;``-separated: ``seed-vX.Y.Z``, ``published:<study>``, ``suggest:<run>@<rank>`` (a run
recorded in ``reviewed/runs.csv``), ``audit-s<seed>:<run>@<rank>`` (served in a seeded random
order instead of rank order: a random sample of what the review has not reached, which estimates
how many IDK images remain there), or ``forms-v<n>:<form>`` (an image whose holes contradict its
label, ``forms.py``).

The queue serves unreviewed candidates, published studies first, then a recorded ``suggest``
ranking in rank order. Each batch is a sheet per candidate group, every candidate drawn large
beside typical members of its label and of the digit the model (or study) prefers, and a
decisions file to fill in. ``apply`` checks a filled file like ``lint`` does and merges it into
the record and the working lists. Borderline images (``unsure``) wait in ``second_look.csv`` for
a separate pass on their own sheet; still unsure there means ``kept``.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Collection, Mapping, Sequence

import numpy as np

from . import curation, forms
from .curation import COLUMNS as LIST_COLUMNS
from .curation import IDK, REASONS, Entry, Problem, read_list
from .errors import MnistIdkError
from .raw import SPLIT_SIZES, SPLITS, Split
from .workspace import Workspace, parse_version

RECORD = "reviewed"
COLUMNS = ("index", "original", "decision", "source", "note")
DECISIONS = ("listed", "kept")
DECISION_COLUMNS = ("split", "index", "original", "predicted", "source", "decision", "reason", "note")
SECOND_LOOK = "second_look.csv"
SECOND_LOOK_COLUMNS = ("split", "index", "original", "predicted", "source", "note")
RUNS = "runs.csv"
BLIND = "blind_recheck.csv"  # the blind re-check of a random 10%: first decision, second, final
RUN_COLUMNS = ("run", "tool_version", "model", "seed", "command")
PUBLISHED = Path("published") / "candidates.csv"
PUBLISHED_COLUMNS = ("split", "index", "original", "study", "alternative", "votes_given", "votes_alternative",
                     "votes_neither")
CONSISTENCY = "consistency-v*.csv"  # protocol step 9's passes (consistency.py); every pass has these columns:
CONSISTENCY_COLUMNS = ("split", "index", "original", "recorded", "fresh", "second", "final")
BLIND_COLUMNS = ("round", "split", "index", "original", "first", "blind", "blind_reason", "blind_note", "final")
VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
_SOURCE = re.compile(r"^(seed-v\d+\.\d+\.\d+|published:[a-z0-9-]+|suggest:[a-z0-9.-]+@\d+|audit-s\d+:[a-z0-9.-]+@\d+"
                     r"|forms-v\d+:[a-z0-9+-]+)$")


@dataclass(frozen=True)
class Reviewed:
    split: str
    index: int
    original: int
    decision: str
    sources: tuple[str, ...]
    note: str
    line: int = 0


@dataclass(frozen=True)
class BlindCheck:
    """One image of a blind re-check round: the first decision, the blind one, and the final one."""
    round: str  # the release the round leads to
    split: str
    index: int
    original: int
    first: str
    blind: str
    blind_reason: str
    blind_note: str
    final: str
    line: int = 0


@dataclass(frozen=True)
class Candidate:
    split: str
    index: int
    original: int
    predicted: int | None  # the digit a model or study prefers, for the reference column
    source: str
    alternative: int | None = None  # a ranking's likeliest digit other than the label (suggest's ``alternative``)

    @property
    def reference(self) -> int | None:
        """The digit of the second reference column: the preferred one, or, where that is the label, the next."""
        return self.alternative if self.predicted in (None, self.original) else self.predicted


def record_dir(ws: Workspace) -> Path:
    return ws.lists_dir / RECORD


def source_kind(source: str) -> str:
    """``seed``, ``published``, ``suggest``, ``audit`` or ``forms``: what a source token is, without its details."""
    return source.split(":")[0].split("-v")[0].split("-s")[0]


def source_run(source: str) -> str | None:
    """The recorded run a ``suggest:`` or ``audit-s<seed>:`` source names, else None."""
    kind = source_kind(source)
    return source.split(":", 1)[1].split("@")[0] if kind in ("suggest", "audit") and ":" in source else None


def read_text(path: Path) -> tuple[str | None, list[Problem]]:
    """A CSV file's text, or None with the problem (missing, not UTF-8)."""
    try:
        return path.read_bytes().decode("utf-8"), []
    except FileNotFoundError:
        return None, [Problem(path, 0, "file is missing")]
    except UnicodeDecodeError as exc:
        return None, [Problem(path, 0, f"not UTF-8 (byte offset {exc.start})")]


def read_table(path: Path, needs: Sequence[str]) -> tuple[list[tuple[int, dict[str, str]]], list[Problem]]:
    """(line, row) of a UTF-8 CSV that has at least the columns ``needs`` (others are kept), and its problems.

    A row's line is its last one, so the number is right even when a quoted note spans lines; a
    row with too few or too many fields is a problem, not a row.
    """
    text, problems = read_text(path)
    if text is None:
        return [], problems
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header = list(reader.fieldnames or [])
    missing = [column for column in needs if column not in header]
    if missing:
        return [], [Problem(path, 1, f"header lacks {', '.join(missing)} (needs {','.join(needs)}; "
                                     f"has {','.join(header) or 'nothing'})")]
    rows = []
    for row in reader:
        if None in row or None in row.values():
            problems.append(Problem(path, reader.line_num, f"expected {len(header)} fields ({','.join(header)})"))
        else:
            rows.append((reader.line_num, row))
    return rows, problems


def read_images(path: Path) -> set[tuple[str, int]]:
    """The images of a CSV with ``split,index`` (other columns ignored): a family picked by hand, a strata file."""
    rows, problems = read_table(path, ("split", "index"))
    images = {(row["split"], parse_index(path, line, row["split"], row["index"], problems)) for line, row in rows}
    if problems:
        raise MnistIdkError("\n".join(map(str, problems)))
    return images


def read_rows(path: Path, columns: Sequence[str]) -> tuple[list[tuple[int, list[str]]], list[Problem]]:
    """(line, fields) of a CSV with exactly ``columns``; format problems with file:line."""
    text, problems = read_text(path)
    if text is None:
        return [], problems
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    if not rows or tuple(rows[0]) != tuple(columns):
        got = ",".join(rows[0]) if rows else "nothing"
        return [], [Problem(path, 1, f"header is {got!r}, expected {','.join(columns)!r}")]
    out, problems = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(columns):
            problems.append(Problem(path, line, f"{len(row)} fields, expected {len(columns)} ({','.join(columns)})"))
            continue
        if any(value != value.strip() for value in row):
            problems.append(Problem(path, line, "leading or trailing whitespace in a field"))
        out.append((line, [value.strip() for value in row]))
    return out, problems


def parse_index(path: Path, line: int, split: str, text: str, problems: list[Problem]) -> int | None:
    if split not in SPLITS:
        problems.append(Problem(path, line, f"split {split!r} is not train or test"))
        return None
    if not text.isdigit() or not int(text) < SPLIT_SIZES[split]:
        problems.append(Problem(path, line, f"index {text!r} is not an integer in 0..{SPLIT_SIZES[split] - 1}"))
        return None
    return int(text)


def parse_original(path: Path, line: int, split: str, index: int, text: str, labels, problems) -> int | None:
    if text not in tuple("0123456789"):
        problems.append(Problem(path, line, f"original {text!r} is not a digit 0-9"))
        return None
    if labels is not None and int(labels[split][index]) != int(text):
        problems.append(Problem(path, line, f"original is {text} but raw {split} label {index} is {labels[split][index]}"))
    return int(text)


def _sources(path: Path, line: int, text: str, runs: set[str] | None, problems) -> tuple[str, ...]:
    sources = tuple(s.strip() for s in text.split(";") if s.strip())
    if not sources:
        problems.append(Problem(path, line, "source is empty; say where the candidate came from"))
    for source in sources:
        if not _SOURCE.match(source):
            problems.append(Problem(path, line, f"source {source!r} is not seed-vX.Y.Z, published:<study>, "
                                                "suggest:<run>@<rank>, audit-s<seed>:<run>@<rank> or forms-v<n>:<form>"))
        elif source_run(source) is not None and runs is not None and source_run(source) not in runs:
            problems.append(Problem(path, line, f"source {source!r} names a run not recorded in {RUNS}"))
    return sources


def read_record(path: Path, split: str, labels=None, runs: set[str] | None = None) -> tuple[list[Reviewed], list[Problem]]:
    """One split's review record, with every problem (format, order, originals, sources)."""
    rows, problems = read_rows(path, COLUMNS)
    out: list[Reviewed] = []
    for line, (index, original, decision, source, note) in rows:
        position = parse_index(path, line, split, index, problems)
        digit = parse_original(path, line, split, position, original, labels, problems) if position is not None else None
        if decision not in DECISIONS:
            problems.append(Problem(path, line, f"decision {decision!r} is not listed or kept"))
        sources = _sources(path, line, source, runs, problems)
        if not note:
            problems.append(Problem(path, line, "note is empty; say what you see"))
        if position is not None and digit is not None:
            out.append(Reviewed(split, position, digit, decision, sources, note, line))
    seen: dict[int, int] = {}
    for before, after in zip([None, *out], out):
        if after.index in seen:
            problems.append(Problem(path, after.line, f"index {after.index} is recorded twice (also line {seen[after.index]})"))
        elif before is not None and after.index < before.index:
            problems.append(Problem(path, after.line, f"index {after.index} comes after {before.index}; keep rows sorted"))
        seen.setdefault(after.index, after.line)
    return out, problems


def read_record_if_any(directory: Path, split: str, labels=None,
                       runs: set[str] | None = None) -> tuple[list[Reviewed], list[Problem]]:
    """``read_record`` of ``directory/<split>.csv``; no file, no rows (versions before the record)."""
    path = directory / f"{split}.csv"
    return read_record(path, split, labels, runs) if path.is_file() else ([], [])


def read_runs(directory: Path) -> tuple[set[str], list[Problem]]:
    path = directory / RUNS
    if not path.is_file():
        return set(), []
    rows, problems = read_rows(path, RUN_COLUMNS)
    return {fields[0] for _, fields in rows}, problems


def read_blind(path: Path, labels=None) -> tuple[list[BlindCheck], list[Problem]]:
    """The blind re-check record, with every problem; rounds in version order, rows sorted in each."""
    legacy = path.is_file() and path.read_text("utf-8").startswith(",".join(BLIND_COLUMNS[1:]) + "\n")
    rows, problems = read_rows(path, BLIND_COLUMNS[1:] if legacy else BLIND_COLUMNS)
    if legacy:  # v1.1.0 froze the record before rounds were named: one round, no column
        rows = [(line, ["", *fields]) for line, fields in rows]
    out: list[BlindCheck] = []
    for line, (round_, split, index, original, first, blind, reason, note, final) in rows:
        if not legacy and not VERSION.match(round_):
            problems.append(Problem(path, line, f"round {round_!r} is not a version vX.Y.Z (the release it leads to)"))
        position = parse_index(path, line, split, index, problems)
        digit = parse_original(path, line, split, position, original, labels, problems) if position is not None else None
        for column, value in (("first", first), ("blind", blind), ("final", final)):
            if value not in DECISIONS:
                problems.append(Problem(path, line, f"{column} {value!r} is not listed or kept"))
        if blind == "listed" and reason not in REASONS:
            problems.append(Problem(path, line, f"blind_reason {reason!r} is not one of {', '.join(REASONS)}"))
        if blind != "listed" and reason:
            problems.append(Problem(path, line, f"blind_reason {reason!r} given, but the blind decision is {blind}"))
        if not note:
            problems.append(Problem(path, line, "blind_note is empty; say what the second reviewer saw"))
        if position is not None and digit is not None:
            out.append(BlindCheck(round_, split, position, digit, first, blind, reason, note, final, line))
    seen: dict[tuple[str, str, int], int] = {}
    for before, after in zip([None, *out], out):
        key = (after.round, after.split, after.index)
        if key in seen:
            problems.append(Problem(path, after.line, f"{after.split} {after.index} is re-checked twice in round "
                                                      f"{after.round} (also line {seen[key]})"))
        elif not legacy and before is not None and (version_key(after.round), after.split, after.index) < (
                version_key(before.round), before.split, before.index):
            problems.append(Problem(path, after.line, f"round {after.round} {after.split} {after.index} comes after "
                                                      f"round {before.round} {before.split} {before.index}; keep rows "
                                                      "sorted by round, split, index"))
        seen.setdefault(key, after.line)
    return out, problems


def version_key(version: str) -> tuple[int, ...]:
    """A round's sort key; () for a malformed one (lint reports it), so sorting never fails."""
    return parse_version(version) if VERSION.match(version) else ()


def load_blind(ws: Workspace, version: str = "working") -> list[BlindCheck]:
    """A version's blind re-checks (none without the file); raises on any problem."""
    path = ws.version_dir(version) / RECORD / BLIND
    if not path.is_file():
        return []
    checks, problems = read_blind(path)
    if problems:
        raise MnistIdkError("\n".join(map(str, problems)))
    return checks


@dataclass(frozen=True)
class RoundAgreement:
    """One blind re-check round: how often the second reviewer agreed, overall and by first decision."""
    round: str  # "" for v1.1.0's frozen file, which has no rounds
    checked: int
    agree: int
    listed: tuple[int, int]  # (agree, re-checked) among images first listed
    kept: tuple[int, int]  # the same among images first kept
    changed: int  # final decision differs from the first


def agreement_by_round(checks: Sequence[BlindCheck]) -> list[RoundAgreement]:
    """Per round, in order. Listed and kept apart: deep in a ranking nearly all decisions are keeps."""
    out = []
    for round_ in dict.fromkeys(c.round for c in checks):
        mine = [c for c in checks if c.round == round_]
        by_first = {first: [c for c in mine if c.first == first] for first in ("listed", "kept")}
        out.append(RoundAgreement(round_, len(mine), sum(c.first == c.blind for c in mine),
                                  *[(sum(c.first == c.blind for c in part), len(part)) for part in by_first.values()],
                                  sum(c.final != c.first for c in mine)))
    return out


def check_record(directory: Path, lists: Mapping[str, list[Entry]], labels=None) -> list[Problem]:
    """The record in ``directory/reviewed`` agrees with the lists in ``directory``; no record, no checks.

    Every listed image is recorded as ``listed``; every ``listed`` decision is in the list.
    """
    record = directory / RECORD
    if not record.is_dir():
        return []
    runs, problems = read_runs(record)
    for split in SPLITS:
        path = record / f"{split}.csv"
        rows, found = read_record(path, split, labels, runs)
        problems += found
        decided = {r.index: r for r in rows}
        for entry in lists.get(split, []):
            row = decided.get(entry.index)
            if row is None:
                problems.append(Problem(path, 0, f"{split} {entry.index} is in {split}.csv (line {entry.line}) "
                                                 "but not in the review record; record it as listed"))
            elif row.decision != "listed":
                problems.append(Problem(path, row.line, f"{split} {entry.index} is in {split}.csv (line "
                                                        f"{entry.line}) but recorded as {row.decision}"))
        listed = {e.index for e in lists.get(split, [])}
        for row in rows:
            if row.decision == "listed" and row.index not in listed:
                problems.append(Problem(path, row.line, f"{split} {row.index} is recorded as listed but is not in {split}.csv"))
    if (record / BLIND).is_file():
        problems += read_blind(record / BLIND, labels)[1]
    for path in sorted(record.glob(CONSISTENCY)):
        problems += read_consistency(path, labels)[1]
    return problems


def read_consistency(path: Path, labels=None) -> tuple[set[tuple[str, int]], list[Problem]]:
    """The images of a consistency pass's file, with every problem of its columns, images and decisions.

    ``fresh`` may be unsure; ``recorded``, ``second`` (or empty) and ``final`` are listed or kept.
    """
    rows, problems = read_table(path, CONSISTENCY_COLUMNS)
    seen: dict = {}
    for line, row in rows:
        position = parse_index(path, line, row["split"], row["index"], problems)
        if position is None:
            continue
        parse_original(path, line, row["split"], position, row["original"], labels, problems)
        first_time(path, line, row["split"], position, seen, problems)
        for column, allowed in (("recorded", DECISIONS), ("fresh", (*DECISIONS, "unsure")), ("second", (*DECISIONS, "")),
                                ("final", DECISIONS)):
            if row[column] not in allowed:
                problems.append(Problem(path, line, f"{column} {row[column]!r} is not {' or '.join(a or 'empty' for a in allowed)}"))
    return set(seen), problems


def lint(ws: Workspace, labels=None, every_release: bool = False) -> list[Problem]:
    """``curation.lint`` plus the review record of the working lists and of the releases it reads in
    full (``curation.read_in_full``: the newest, or every one with ``every_release``)."""
    problems = curation.lint(ws, labels, every_release)
    releases = [ws.lists_dir / "releases" / v for v in curation.read_in_full(ws, every_release)]
    for directory in [ws.lists_dir] + releases:
        lists, _ = curation.read_lists(directory)
        problems += check_record(directory, lists, labels)
    return problems


def load_record(ws: Workspace, version: str) -> dict[str, list[Reviewed]]:
    """The review record of a version (empty for versions that have none, such as v1.0.0)."""
    record = ws.version_dir(version) / RECORD
    out = {}
    for split in SPLITS:
        rows, problems = read_record_if_any(record, split)
        if problems:
            raise MnistIdkError("\n".join(map(str, problems)))
        out[split] = rows
    return out


# --- the queue ---------------------------------------------------------------------------------


def published_candidates(ws: Workspace) -> list[Candidate]:
    """Images named by published studies of MNIST label errors, one per image, studies merged."""
    path = ws.lists_dir / PUBLISHED
    if not path.is_file():
        return []
    rows, problems = read_rows(path, PUBLISHED_COLUMNS)
    if problems:
        raise MnistIdkError("\n".join(map(str, problems)))
    merged: dict[tuple[str, int], Candidate] = {}
    for _, (split, index, original, study, alternative, *_votes) in rows:
        key = (split, int(index))
        source = f"published:{study}"
        predicted = int(alternative) if alternative.isdigit() else None
        if key in merged:
            old = merged[key]
            source = ";".join(sorted(set(old.source.split(";")) | {source}))
            predicted = old.predicted if old.predicted is not None else predicted
        merged[key] = Candidate(split, int(index), int(original), predicted, source)
    return sorted(merged.values(), key=lambda c: (SPLITS.index(c.split), c.index))


def ranking_candidates(path: Path, run: str) -> list[Candidate]:
    """A ``suggest`` CSV in rank order, each row's source ``suggest:<run>@<rank within its split>``."""
    try:
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
    except FileNotFoundError:
        raise MnistIdkError(f"{path}: no such ranking; run `mnist-idk suggest --out {path}` first") from None
    needed = {"rank", "split", "index", "original", "predicted"}
    if not rows or not needed <= set(rows[0]):
        raise MnistIdkError(f"{path}: not a suggest ranking (needs columns {', '.join(sorted(needed))})")
    ranks: dict[str, int] = {}
    out = []
    for r in rows:  # ranks count within each split: the stopping rule is per split
        ranks[r["split"]] = ranks.get(r["split"], 0) + 1
        alternative = r.get("alternative", "")  # older rankings have no such column
        out.append(Candidate(r["split"], int(r["index"]), int(r["original"]), int(r["predicted"]),
                             f"suggest:{run}@{ranks[r['split']]}", int(alternative) if alternative.isdigit() else None))
    return out


def audit_candidates(ranking: Sequence[Candidate], seed: int) -> list[Candidate]:
    """A ranking's images in a random order fixed by ``seed``, each source ``audit-s<seed>:<run>@<rank>``.

    Reviewing the first n that nobody has reviewed is a uniform random sample of the images the
    review has not reached: its listed share estimates how many IDK images remain unreviewed, which
    the stopping rule (a yield near the end of one ranking) cannot say. The ranking should hold
    every image of the split (made with nothing left out); its predictions fill the sheets.
    """
    order = np.random.default_rng(seed).permutation(len(ranking))
    return [replace(ranking[i], source=ranking[i].source.replace("suggest:", f"audit-s{seed}:", 1)) for i in order]


def form_rows(ws: Workspace) -> list[tuple[str, int, int, str]]:
    """The forms queue's rows (split, index, original, form), in its order (``curation_lists/forms/candidates.csv``)."""
    path = ws.lists_dir / forms.CANDIDATES
    if not path.is_file():
        raise MnistIdkError(f"{path}: no forms queue yet; run `mnist-idk review forms` first")
    rows, problems = read_rows(path, forms.COLUMNS)
    if problems:
        raise MnistIdkError("\n".join(map(str, problems)))
    return [(split, int(index), int(original), form) for _, (split, index, original, form) in rows]


def form_candidates(ws: Workspace) -> list[Candidate]:
    """The forms queue as candidates to serve (``review forms`` writes it)."""
    return [Candidate(split, index, original, None, forms.source(form), forms.ALSO[original])
            for split, index, original, form in form_rows(ws)]


def form_indices(ws: Workspace, without: Collection[str] = ()) -> dict[str, set[int]]:
    """The images of the forms queue, per split; empty when there is none. ``without``: forms to leave out."""
    out: dict[str, set[int]] = {split: set() for split in SPLITS}
    if (ws.lists_dir / forms.CANDIDATES).is_file():
        for split, index, _, form in form_rows(ws):
            if form not in without:
                out[split].add(index)
    return out


def read_second_look(ws: Workspace, notes: dict | None = None) -> list[Candidate]:
    """The images set aside as unsure; ``notes`` (if given) receives each first look's note."""
    path = record_dir(ws) / SECOND_LOOK
    if not path.is_file():
        return []
    rows, problems = read_rows(path, SECOND_LOOK_COLUMNS)
    if problems:
        raise MnistIdkError("\n".join(map(str, problems)))
    if notes is not None:
        notes.update({(s, int(i)): n for _, (s, i, _o, _p, _src, n) in rows})
    return [Candidate(s, int(i), int(o), int(p) if p.isdigit() else None, src) for _, (s, i, o, p, src, _n) in rows]


def reviewed_keys(ws: Workspace) -> set[tuple[str, int]]:
    return {(split, r.index) for split in SPLITS for r in read_record_if_any(record_dir(ws), split)[0]}


def next_batch(ws: Workspace, split: str, size: int, ranking: list[Candidate] | None, second_look: bool = False,
               alone: bool = False) -> list[Candidate]:
    """The next unreviewed candidates: published first, then the ranking; or the second-look pile.

    ``alone``: serve only ``ranking`` (an audit's random order, the forms queue), no published first.
    """
    pending = read_second_look(ws)
    if second_look:
        return [c for c in pending if split in ("all", c.split)][:size]
    skip = reviewed_keys(ws) | {(c.split, c.index) for c in pending}
    out: list[Candidate] = []
    for candidate in ([] if alone else published_candidates(ws)) + (ranking or []):
        key = (candidate.split, candidate.index)
        if key in skip or split not in ("all", candidate.split):
            continue
        skip.add(key)
        out.append(candidate)
        if len(out) == size:
            break
    return out


def typical(split: Split, digit: int, count: int = 3) -> list[int]:
    """Indices of the ``count`` members of ``digit`` closest to its mean image: what it usually looks like."""
    members = np.flatnonzero(split.labels == digit)
    pixels = split.images[members].reshape(len(members), -1).astype(np.float32)
    distance = ((pixels - pixels.mean(0)) ** 2).sum(1)
    return members[np.argsort(distance, kind="stable")[:count]].tolist()


def render_batch(candidates: Sequence[Candidate], splits: Mapping[str, Split], first: int = 1,
                 names: Sequence[str] | None = None):
    """Rows of: the candidate large, then 3 typical members of its label, then of ``reference``.

    That is the digit the model (or study) prefers, or the next likeliest where it prefers the label.
    A row is captioned ``#N split index``, or by its name in ``names`` (a reader's item: no index).
    """
    from PIL import Image, ImageDraw, ImageFont

    big, small, pad, caption = 6, 3, 6, 14
    row_height = 28 * big + caption + pad
    width = pad + 28 * big + 2 * pad + 6 * (28 * small + 2) + 2 * pad
    picture = Image.new("L", (width, pad + row_height * len(candidates)), "white")
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    typical_cache: dict[tuple[str, int], list[int]] = {}
    for row, c in enumerate(candidates):
        top = pad + row * row_height
        image = Image.fromarray(splits[c.split].images[c.index], "L").resize((28 * big, 28 * big), Image.Resampling.NEAREST)
        picture.paste(image, (pad, top))
        predicted = "?" if c.predicted is None else str(c.predicted)
        if c.reference is not None and c.reference != c.predicted:
            predicted += f" (next {c.reference})"
        name = f"#{first + row} {c.split} {c.index}" if names is None else names[row]
        draw.text((pad, top + 28 * big + 1), f"{name}: label {c.original}, model/study {predicted}",
                  fill="black", font=font)
        left = pad + 28 * big + 2 * pad
        for group, digit in enumerate([c.original, c.reference]):
            if digit is None:
                continue
            key = (c.split, digit)
            typical_cache.setdefault(key, typical(splits["train"], digit))
            x0 = left + group * (3 * (28 * small + 2) + 2 * pad)
            draw.text((x0, top), f"typical {digit}", fill="black", font=font)
            for k, index in enumerate(typical_cache[key]):
                tile = Image.fromarray(splits["train"].images[index], "L").resize((28 * small, 28 * small), Image.Resampling.NEAREST)
                picture.paste(tile, (x0 + k * (28 * small + 2), top + caption))
    return picture


def write_sheets(candidates: Sequence[Candidate], splits: Mapping[str, Split], out_dir: Path, name: str,
                 per_sheet: int = 10, names: Sequence[str] | None = None) -> list[Path]:
    """``name-01.png``, ... of ``per_sheet`` rows each; row #N is the Nth candidate (captioned by ``names``)."""
    from .sheet import save_png

    if not candidates:
        raise MnistIdkError("nothing left to review in this queue")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for start in range(0, len(candidates), per_sheet):
        path = out_dir / f"{name}-{start // per_sheet + 1:02d}.png"
        save_png(render_batch(candidates[start:start + per_sheet], splits, first=start + 1,
                              names=None if names is None else names[start:start + per_sheet]), path)
        paths.append(path)
    return paths


def write_batch(candidates: Sequence[Candidate], splits: Mapping[str, Split], out_dir: Path, name: str,
                per_sheet: int = 10) -> list[Path]:
    """Sheets of ``per_sheet`` rows and one decisions CSV to fill in; returns the paths (CSV last)."""
    paths = write_sheets(candidates, splits, out_dir, name, per_sheet)
    decisions = out_dir / f"{name}.csv"
    decisions.write_text(csv_text(DECISION_COLUMNS, [
        [c.split, c.index, c.original, "" if c.predicted is None else c.predicted, c.source, "", "", ""]
        for c in candidates]), "utf-8")
    return paths + [decisions]


@dataclass(frozen=True)
class Decision:
    split: str
    index: int
    original: int
    predicted: str
    source: str
    decision: str  # listed, kept or unsure
    reason: str
    note: str
    line: int


def read_decisions(path: Path, labels, runs: set[str]) -> tuple[list[Decision], list[Problem]]:
    rows, problems = read_rows(path, DECISION_COLUMNS)
    out, seen = [], {}
    for line, (split, index, original, predicted, source, decision, reason, note) in rows:
        position = parse_index(path, line, split, index, problems)
        digit = parse_original(path, line, split, position, original, labels, problems) if position is not None else None
        _sources(path, line, source, runs, problems)
        check_decision(path, line, decision, reason, note, "listed, kept or unsure", problems)
        if position is None or digit is None or not first_time(path, line, split, position, seen, problems):
            continue
        out.append(Decision(split, position, digit, predicted, source, decision, reason, note, line))
    return out, problems


def check_decision(path: Path, line: int, decision: str, reason: str, note: str, allowed: str,
                   problems: list[Problem]) -> None:
    """A decision among ``allowed`` (e.g. "listed, kept or unsure"), a reason exactly when listed, a note always."""
    if decision not in re.split(r",\s*|\s+or\s+", allowed):
        problems.append(Problem(path, line, f"decision {decision!r} is not {allowed}"))
    if decision == "listed" and reason not in REASONS:
        problems.append(Problem(path, line, f"reason {reason!r} is not one of {', '.join(REASONS)}"))
    if decision != "listed" and reason:
        problems.append(Problem(path, line, f"reason {reason!r} given, but only listed images have one"))
    if not note:
        problems.append(Problem(path, line, "note is empty; say what you see"))


def first_time(path: Path, line: int, split: str, index: int, seen: dict, problems: list[Problem]) -> bool:
    """Record (split, index) in ``seen``; False, with a problem, if a file decides it twice."""
    if (split, index) in seen:
        problems.append(Problem(path, line, f"{split} {index} is decided twice (also line {seen[split, index]})"))
        return False
    seen[split, index] = line
    return True


def csv_text(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def apply(ws: Workspace, path: Path, labels, redecide: bool = False) -> dict[str, int]:
    """Merge a filled decisions file into the record, the working lists and the second-look pile.

    Everything is checked first (every problem, file:line); then each file is replaced by rename.
    With ``redecide``, every row must be an image already reviewed, and its new decision replaces
    the old one (a later look, a blind re-check that disagreed): sources are merged, and an
    image decided ``kept`` leaves the working list.
    """
    ws.require_working("review apply")
    runs, problems = read_runs(record_dir(ws))
    decisions, found = read_decisions(Path(path), labels, runs)
    texts, counts = merged(ws, decisions, Path(path), labels, redecide, problems + found)
    write_files(texts)
    return counts


def merged(ws: Workspace, decisions: Sequence[Decision], path: Path, labels, redecide: bool,
           problems: list[Problem]) -> tuple[dict[Path, str], dict[str, int]]:
    """The new text of every file ``decisions`` change, and the counts; raises on any problem."""
    record = record_dir(ws)
    runs, _ = read_runs(record)
    problems = list(problems)
    existing = {}
    lists = {}
    for split in SPLITS:
        rows, found = read_record_if_any(record, split, labels, runs)
        problems += found
        existing[split] = {r.index: r for r in rows}
        lists[split], found = read_list(ws.lists_dir / f"{split}.csv", split)
        problems += found
    notes: dict[tuple[str, int], str] = {}
    pending = {(c.split, c.index): c for c in read_second_look(ws, notes)}
    for d in decisions:
        if redecide:
            if d.index not in existing[d.split]:
                problems.append(Problem(Path(path), d.line, f"{d.split} {d.index} is not reviewed yet; "
                                                            "--redecide only changes recorded decisions"))
            if d.decision == "unsure":
                problems.append(Problem(Path(path), d.line, "a re-decision is listed or kept"))
            old = existing[d.split].get(d.index)
            ranked = {token.split("@")[0]: token for token in (old.sources if old else ()) if "@" in token}
            for token in d.source.split(";"):
                if "@" in token and ranked.get(token.split("@")[0], token) != token:
                    problems.append(Problem(Path(path), d.line, f"source {token} contradicts the recorded "
                                                                f"{ranked[token.split('@')[0]]}: one rank per run"))
        elif d.index in existing[d.split]:
            problems.append(Problem(Path(path), d.line, f"{d.split} {d.index} is already reviewed "
                                                        f"({existing[d.split][d.index].decision}, {record / (d.split + '.csv')}:"
                                                        f"{existing[d.split][d.index].line})"))
        if d.decision == "unsure" and (d.split, d.index) in pending:
            problems.append(Problem(Path(path), d.line, f"{d.split} {d.index} was already unsure once; a second look "
                                                        "decides: still unsure means kept"))
    if problems:
        raise MnistIdkError(f"{len(problems)} problem(s) in the decisions:\n" + "\n".join(map(str, problems)))
    counts = {"listed": 0, "kept": 0, "unsure": 0}
    for d in decisions:
        counts[d.decision] += 1
        if d.decision == "unsure":
            pending[(d.split, d.index)] = Candidate(d.split, d.index, d.original,
                                                    int(d.predicted) if d.predicted.isdigit() else None, d.source)
            continue
        pending.pop((d.split, d.index), None)
        old = existing[d.split].get(d.index)
        sources = tuple(dict.fromkeys((*(old.sources if old else ()), *d.source.split(";"))))
        existing[d.split][d.index] = Reviewed(d.split, d.index, d.original, d.decision, sources, d.note)
        if d.decision == "kept":
            lists[d.split] = [e for e in lists[d.split] if e.index != d.index]
        if d.decision == "listed":
            lists[d.split] = [e for e in lists[d.split] if e.index != d.index] + [
                Entry(d.split, d.index, d.original, IDK, d.reason, d.note)]
    texts = {}
    for split in SPLITS:
        texts[record / f"{split}.csv"] = csv_text(COLUMNS, [
            [r.index, r.original, r.decision, ";".join(r.sources), r.note] for _, r in sorted(existing[split].items())])
        texts[ws.lists_dir / f"{split}.csv"] = csv_text(LIST_COLUMNS, [
            [e.index, e.original, e.label, e.reason, e.note] for e in sorted(lists[split], key=lambda e: e.index)])
    notes.update({(d.split, d.index): d.note for d in decisions})
    texts[record / SECOND_LOOK] = csv_text(SECOND_LOOK_COLUMNS, [
        [c.split, c.index, c.original, "" if c.predicted is None else c.predicted, c.source, notes.get((c.split, c.index), "")]
        for c in sorted(pending.values(), key=lambda c: (SPLITS.index(c.split), c.index))])
    return texts, counts


def write_files(texts: Mapping[Path, str]) -> None:
    """Write every file beside its target first, then rename each into place: all or (nearly) nothing."""
    for target in texts:
        target.parent.mkdir(parents=True, exist_ok=True)
    temporary = {target: target.with_name(f".{target.name}.{os.getpid()}.tmp") for target in texts}
    try:
        for target, text in texts.items():
            temporary[target].write_text(text, "utf-8")
        for target in texts:
            os.replace(temporary[target], target)
    finally:
        for tmp in temporary.values():
            tmp.unlink(missing_ok=True)
