"""The blind re-check: a random share of a round's decisions, decided again without the first one.

A round is named for the release it leads to. ``draw`` picks, among the decisions recorded since
the previous release, a random share of the listed ones and of the kept ones (a tenth of each by
default) not yet re-checked in this round (so a later draw tops the
round up after more decisions), and writes them as review sheets plus a CSV that carries no trace
of the first decision: a second reviewer fills it in. ``compare`` sets the two side by side.
Where they disagree, the curator decides once more, seeing both (``record(..., redecided)``);
then every row goes into ``reviewed/blind_recheck.csv`` and the re-decisions into the record and
the working lists, in one atomic step, as ``review apply --redecide`` would.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import review
from .curation import Problem
from .errors import MnistIdkError
from .raw import SPLITS, Split
from .review import BlindCheck, Candidate, Decision, Reviewed
from .workspace import Workspace, normalize_version

FRACTION = 0.1
SHEET_COLUMNS = ("round", "split", "index", "original", "predicted", "decision", "reason", "note")


@dataclass(frozen=True)
class Share:
    """How much of one split's listed (or kept) decisions since a release a round re-checks."""
    split: str
    first: str  # the recorded decision this stratum holds: listed or kept
    decisions: int  # recorded since the release
    checked: int  # of them, already re-checked in this round
    drawn: int  # drawn now


def draw(ws: Workspace, since: str, round_: str, split: str = "all", fraction: float = FRACTION, seed: int = 0,
         predicted: Mapping[tuple[str, int], int] | None = None,
         listed_fraction: float | None = None, skip_rechecked: bool = False,
         changed: bool = False, disagreed: str | None = None) -> tuple[list[Candidate], list[Share]]:
    """A random share of the decisions recorded since release ``since``, less those this round has.

    Listed and kept decisions are drawn separately (strata): ``fraction`` of the kept ones and
    ``listed_fraction`` (default ``fraction``) of the listed ones. Deep in a ranking nearly every
    decision is a keep, so a plain random tenth measures agreement on keeps; a larger
    ``listed_fraction`` measures the decisions that change the dataset. Deterministic for a seed.
    ``predicted`` (split, index) -> digit fills the sheets' second reference column.
    ``skip_rechecked`` leaves out images an earlier round already re-checked, so a round can take
    on older decisions (``since`` an early release) without drawing the later ones again.
    ``changed`` also draws images reviewed before ``since`` whose decision has changed since: a
    round that re-checks what the last one's re-decisions turned over, stratified by the decision
    now in the record (the one a second reviewer is compared with).
    ``disagreed`` (a round) draws instead from the images that round's blind re-check disagreed
    on, whatever their decision now: a third look at the contested ones, those that stood too
    (with ``skip_rechecked``, less those a round other than that one re-checked).
    """
    round_, since = normalize_version(round_), normalize_version(since)
    if since not in ws.released_versions():
        raise MnistIdkError(f"--since {since}: no such release in {ws.lists_dir / 'releases'}")
    shares_of = {"listed": fraction if listed_fraction is None else listed_fraction, "kept": fraction}
    before = review.load_record(ws, since)
    now = review.load_record(ws, "working")
    checks = review.load_blind(ws)
    checked = {(c.split, c.index) for c in checks if c.round == round_}
    contested = None
    if disagreed is not None:
        disagreed = normalize_version(disagreed)
        contested = {(c.split, c.index) for c in checks if c.round == disagreed and c.first != c.blind}
        if not contested:
            raise MnistIdkError(f"--disagreed {disagreed}: no disagreement of that round in the blind record")
    # With --disagreed, the contested round's own re-check is what made the pool, not a reason to skip.
    elsewhere = {(c.split, c.index) for c in checks if c.round not in (round_, disagreed)} - checked \
        if skip_rechecked else set()
    rng = random.Random(seed)
    chosen: list[Candidate] = []
    shares = []
    for name in SPLITS:
        if split not in ("all", name):
            continue
        old = {r.index: r.decision for r in before[name]}
        if contested is not None:
            eligible = [r for r in now[name] if (name, r.index) in contested]
        else:
            eligible = [r for r in now[name] if r.index not in old or (changed and old[r.index] != r.decision)]
        eligible = [r for r in eligible if (name, r.index) not in elsewhere]
        for first, share in shares_of.items():
            pool = [r for r in eligible if r.decision == first]
            done = sum((name, r.index) in checked for r in pool)
            want = max(0, round(share * len(pool)) - done)
            fresh = [r for r in pool if (name, r.index) not in checked]
            picked = rng.sample(fresh, min(want, len(fresh)))
            chosen += [Candidate(name, r.index, r.original, (predicted or {}).get((name, r.index)), "blind")
                       for r in picked]
            shares.append(Share(name, first, len(pool), done, len(picked)))
    # By split and index: the sheet's order says nothing of the stratum an image came from.
    chosen.sort(key=lambda c: (SPLITS.index(c.split), c.index))
    return chosen, shares


def write(candidates: Sequence[Candidate], round_: str, splits: Mapping[str, Split], out_dir: Path,
          per_sheet: int = 10) -> list[Path]:
    """Sheets ``blind-<round>-NN.png`` and ``blind-<round>.csv`` to fill in; the CSV last."""
    name = f"blind-{round_}"
    paths = review.write_sheets(candidates, splits, out_dir, name, per_sheet)
    sheet = out_dir / f"{name}.csv"
    sheet.write_text(review.csv_text(SHEET_COLUMNS, [
        [round_, c.split, c.index, c.original, "" if c.predicted is None else c.predicted, "", "", ""]
        for c in candidates]), "utf-8")
    return paths + [sheet]


@dataclass(frozen=True)
class Blind:
    """One filled row of a blind sheet."""
    round: str
    split: str
    index: int
    original: int
    predicted: int | None
    decision: str
    reason: str
    note: str
    line: int


@dataclass(frozen=True)
class Comparison:
    round: str
    rows: list[tuple[Blind, Reviewed]]  # the blind decision and the recorded (first) one
    set_aside: tuple[Blind, ...] = ()  # panels with no majority, left out at the curator's word

    @property
    def disagreements(self) -> list[tuple[Blind, Reviewed]]:
        return [(b, r) for b, r in self.rows if b.decision != r.decision]

    @property
    def agree(self) -> int:
        return len(self.rows) - len(self.disagreements)

    def checks(self, final: Mapping[tuple[str, int], str] | None = None) -> list[BlindCheck]:
        """The rows as ``blind_recheck.csv`` records them; ``final`` the re-decisions (else the first decision)."""
        return [BlindCheck(self.round, b.split, b.index, b.original, first.decision, b.decision, b.reason, b.note,
                           (final or {}).get((b.split, b.index), first.decision)) for b, first in self.rows]


def read_sheet(path: Path, labels, allow_no_majority: bool = False) -> tuple[list[Blind], list[Problem]]:
    """The filled rows; a panel with no majority is a problem unless ``allow_no_majority``."""
    rows, problems = review.read_rows(path, SHEET_COLUMNS)
    out, seen = [], {}
    for line, (round_, split, index, original, predicted, decision, reason, note) in rows:
        position = review.parse_index(path, line, split, index, problems)
        digit = review.parse_original(path, line, split, position, original, labels, problems) \
            if position is not None else None
        undecided = no_majority(decision, note)
        if undecided and not allow_no_majority:
            problems.append(Problem(path, line, f"{split} {index}: the panel has no majority ({note.split(':')[0]}): "
                                                "no reading to record; give it to a new panel (--set-aside-no-majority "
                                                "records the other rows and leaves it out)"))
        elif not undecided:
            review.check_decision(path, line, decision, reason, note, "listed or kept", problems)
        if position is None or digit is None or not review.first_time(path, line, split, position, seen, problems):
            continue
        out.append(Blind(round_, split, position, digit, int(predicted) if predicted.isdigit() else None,
                         decision, reason, note, line))
    rounds = sorted({b.round for b in out})
    if len(rounds) > 1:
        problems.append(Problem(path, 0, f"one round per sheet; found {', '.join(rounds)}"))
    return out, problems


def compare(ws: Workspace, path: Path, labels, set_aside_no_majority: bool = False) -> Comparison:
    """Each filled blind row beside the recorded decision; every problem (file:line) raises.

    A panel with no majority (three unsure, two kept) has no reading to record: it is a problem,
    unless ``set_aside_no_majority``, when the row is left out of the round (and reported) so that
    a new panel can read it; the readers' votes stay in their own files.
    """
    rows, problems = read_sheet(Path(path), labels, set_aside_no_majority)
    undecided = [no_majority(b.decision, b.note) for b in rows]
    aside = tuple(b for b, u in zip(rows, undecided) if u)
    rows = [b for b, u in zip(rows, undecided) if not u]
    record = review.load_record(ws, "working")
    recorded = {(r.split, r.index): r for split in SPLITS for r in record[split]}
    round_ = rows[0].round if rows else ""
    if rows and not review.VERSION.match(round_):
        problems.append(Problem(Path(path), rows[0].line, f"round {round_!r} is not a version vX.Y.Z"))
    done = {(c.split, c.index): c.line for c in review.load_blind(ws) if c.round == round_}
    pairs = []
    for b in rows:
        first = recorded.get((b.split, b.index))
        if first is None:
            problems.append(Problem(Path(path), b.line, f"{b.split} {b.index} is not in the review record; "
                                                        "only recorded decisions are re-checked"))
        elif (b.split, b.index) in done:
            problems.append(Problem(Path(path), b.line, f"{b.split} {b.index} is already re-checked in round "
                                                        f"{round_} ({review.BLIND}:{done[b.split, b.index]})"))
        else:
            pairs.append((b, first))
    if not rows and not problems:
        problems.append(Problem(Path(path), 0, "no rows to compare"))
    if problems:
        raise MnistIdkError(f"{len(problems)} problem(s) in the blind sheet:\n" + "\n".join(map(str, problems)))
    return Comparison(round_, pairs, aside)


def write_disagreements(comparison: Comparison, splits: Mapping[str, Split], sheet: Path) -> list[Path]:
    """The disagreements on their own sheets, and a decisions CSV (``review apply`` format) to fill in.

    Written beside ``sheet`` and named after it (``blind-v1.4.0-b.csv`` -> ``disagreements-v1.4.0-b``),
    so the parts of one round in one folder keep their own; a CSV already holding decisions is never
    overwritten (running ``record`` again without ``--redecided`` would lose them).
    """
    target = disagreements_path(sheet)
    if target.is_file():
        refuse_if_decided(target, review.read_rows(target, review.DECISION_COLUMNS)[0], sheet,
                          ", or move it away to write the disagreements again")
    candidates = [Candidate(b.split, b.index, b.original, b.predicted, ";".join(first.sources))
                  for b, first in comparison.disagreements]
    return review.write_batch(candidates, splits, target.parent, target.stem, per_sheet=10)


def no_majority(decision: str, note: str) -> bool:
    """A panel's row whose readers reached no majority (three unsure, two kept): nothing to record."""
    return decision == "unsure" and bool(votes_of(note))


def votes_of(note: str) -> str:
    """"K/K/L" from a panel's note ("3 blind readers K/K/L: ..."), or "" for one reader's own note."""
    match = re.match(r"\d+ blind readers ([LKU/]+):", note)
    return match.group(1) if match else ""


def disagreements_path(sheet: Path) -> Path:
    """Where ``record`` writes a sheet's disagreements: beside it, ``blind-X.csv`` -> ``disagreements-X.csv``."""
    return Path(sheet).parent / f"disagreements-{Path(sheet).stem.removeprefix('blind-')}.csv"


def refuse_if_decided(target: Path, rows: Sequence[tuple[int, list[str]]], sheet: Path, hint: str = "") -> None:
    """Raise if the disagreements CSV ``target`` already holds a decision: it is to be recorded, not rewritten."""
    if any(fields[review.DECISION_COLUMNS.index("decision")] for _, fields in rows):
        raise MnistIdkError(f"{target} already holds decisions: record them with `mnist-idk review blind record "
                            f"{sheet} --redecided {target}`{hint}")


def record(ws: Workspace, comparison: Comparison, redecided: Path | None, labels) -> dict[str, int]:
    """Record the round's rows; the disagreements need ``redecided``, a filled decisions CSV of exactly them.

    Every row goes into ``blind_recheck.csv`` (``final``: the first decision where the two agree,
    else the one decided once more); the re-decisions replace the recorded ones. One atomic step.
    """
    ws.require_working("review blind record")
    disagreements = {(b.split, b.index): first for b, first in comparison.disagreements}
    runs, problems = review.read_runs(review.record_dir(ws))
    again: list[Decision] = []
    if redecided is not None:
        again, found = review.read_decisions(Path(redecided), labels, runs)
        problems += found
        for d in again:
            if (d.split, d.index) not in disagreements:
                problems.append(Problem(Path(redecided), d.line, f"{d.split} {d.index} is not a disagreement of this "
                                                                 "blind sheet"))
            if d.decision == "unsure":
                problems.append(Problem(Path(redecided), d.line, "decide once more: listed or kept (still unsure "
                                                                 "means kept)"))
    missing = sorted(set(disagreements) - {(d.split, d.index) for d in again})
    if missing:
        where = Path(redecided) if redecided is not None else Path("--redecided")
        problems.append(Problem(where, 0, f"{len(missing)} disagreement(s) not decided once more: "
                                          + ", ".join(f"{s} {i}" for s, i in missing)))
    texts, _ = review.merged(ws, again, Path(redecided or "."), labels, True, problems)
    final = {(d.split, d.index): d.decision for d in again}
    path = review.record_dir(ws) / review.BLIND
    checks = review.load_blind(ws) + comparison.checks(final)
    checks.sort(key=lambda c: (review.version_key(c.round), c.split, c.index))
    texts[path] = review.csv_text(review.BLIND_COLUMNS, [
        [c.round, c.split, c.index, c.original, c.first, c.blind, c.blind_reason, c.blind_note, c.final]
        for c in checks])
    review.write_files(texts)
    changed = [d for d in again if d.decision != disagreements[d.split, d.index].decision]
    return {"rows": len(comparison.rows), "agree": comparison.agree, "decided once more": len(again),
            "changed": len(changed), "now listed": sum(d.decision == "listed" for d in changed),
            "now kept": sum(d.decision == "kept" for d in changed)}
