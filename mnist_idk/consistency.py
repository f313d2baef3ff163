"""Protocol step 9, the consistency pass: recorded decisions looked at again by lines drawn later.

A pass takes a population of recorded decisions (one decision, one split, a band of a ranking's
doubt 1 - p(label), leaving out every image an earlier pass covered), draws a seeded random sample
in a random order and serves it on sheets without the recorded decision (``draw``). Each fresh look
that differs from the record, or is unsure, comes back for a second look beside the rule's images;
a decision that holds there replaces the record (``review apply --redecide``), and the blind
re-check follows (``review blind draw --changed``). ``record`` then writes both looks of every image
and what the record says now into ``reviewed/consistency-<round>.csv``, so a pass can be audited
and the next one knows what is covered.
"""

from __future__ import annotations

import csv
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from . import review
from .curation import Problem
from .errors import MnistIdkError
from .raw import SPLITS, Split
from .review import Candidate, Reviewed
from .workspace import Workspace, normalize_version

ORDER = "order.csv"  # what was drawn, in the order shown: the pass's own record until ``record``
ORDER_COLUMNS = ("n", "round", "part", "split", "index", "original", "recorded", "stratum", "doubt", "predicted", "alternative")
FRESH_COLUMNS = ("split", "index", "original", "predicted", "decision", "reason", "note")
SECOND = "second.csv"
SECOND_COLUMNS = ("split", "index", "decision", "reason", "note")
RECORD_COLUMNS = ("split", "index", "original", "stratum", "part", "recorded", "fresh", "fresh_note", "second",
                  "second_note", "final")
PART = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class Drawn:
    """One image of a pass, as ``order.csv`` keeps it."""
    n: int
    split: str
    index: int
    original: int
    recorded: str  # the decision when drawn
    stratum: str
    doubt: float
    predicted: int
    alternative: int


@dataclass(frozen=True)
class Population:
    size: int  # recorded decisions in the stratum, earlier passes left out
    covered: int  # in the stratum but covered by an earlier pass
    drawn: list[Drawn]


def covered(ws: Workspace) -> set[tuple[str, int]]:
    """Every image some consistency pass has looked at; a damaged pass file raises (lint lists it)."""
    out = set()
    for path in sorted(review.record_dir(ws).glob(review.CONSISTENCY)):
        images, problems = review.read_consistency(path)
        if problems:
            raise MnistIdkError(f"{len(problems)} problem(s) in an earlier pass (`mnist-idk lint` lists them):\n"
                                + "\n".join(map(str, problems[:5])))
        out |= images
    return out


def read_ranking(path: Path) -> dict[tuple[str, int], dict[str, str]]:
    """A ``suggest`` CSV by (split, index): the doubt and the digits the sheets compare with."""
    try:
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file))
    except FileNotFoundError:
        raise MnistIdkError(f"{path}: no such ranking; make one with `mnist-idk suggest --include-reviewed "
                            f"--out {path}`") from None
    except UnicodeDecodeError as exc:
        raise MnistIdkError(f"{path}: not UTF-8 (byte offset {exc.start})") from None
    needed = {"split", "index", "original", "predicted", "alternative", "self_confidence"}
    if not rows or not needed <= set(rows[0]):
        raise MnistIdkError(f"{path}: not a suggest ranking (needs columns {', '.join(sorted(needed))})")
    out = {}
    for line, r in enumerate(rows, start=2):
        try:
            float(r["self_confidence"]), int(r["predicted"]), int(r["alternative"])
            out[r["split"], int(r["index"])] = r
        except (TypeError, ValueError):
            raise MnistIdkError(f"{path}:{line}: index, predicted and alternative must be integers and "
                                "self_confidence a number; re-run `mnist-idk suggest`") from None
    return out


def draw(ws: Workspace, ranking: Path, round_: str, part: str, decision: str = "all", split: str = "all",
         doubt: tuple[float, float] = (0.0, 1.0), sample: int | None = None, seed: int = 0,
         only: set[tuple[str, int]] | None = None) -> Population:
    """A seeded random sample (all, without ``sample``) of the recorded decisions in one stratum, in random order.

    The stratum: ``decision`` (listed, kept or all), ``split``, and ``doubt`` low <= 1 - p(label) < high
    by ``ranking`` (high 1 includes 1), within ``only`` if given. The ranking must hold every image of
    the population, so make it with ``--include-reviewed`` and nothing left out.
    """
    normalize_version(round_)
    if not PART.match(part):
        raise MnistIdkError(f"part {part!r}: use lower-case letters, digits and dashes (e.g. keeps-sample)")
    low, high = doubt
    if not 0 <= low < high <= 1:
        raise MnistIdkError(f"doubt band {low:g}-{high:g}: need 0 <= low < high <= 1")
    scores = read_ranking(ranking)
    done = covered(ws)
    stratum = f"{'any' if decision == 'all' else decision} ({'both splits' if split == 'all' else split}, " \
              f"doubt {low:g}-{high:g}{', of a chosen family' if only is not None else ''})"
    population, skipped, missing = [], 0, []
    for rows in review.load_record(ws, "working").values():
        for r in rows:
            if decision not in ("all", r.decision) or split not in ("all", r.split) or (
                    only is not None and (r.split, r.index) not in only):
                continue
            row = scores.get((r.split, r.index))
            if row is None:
                missing.append(f"{r.split} {r.index}")
                continue
            value = float(row["self_confidence"])
            if not (low <= value < high or (high == 1 and value == 1)):
                continue
            if (r.split, r.index) in done:
                skipped += 1
                continue
            population.append((r, row, value))
    if missing:
        raise MnistIdkError(f"{ranking}: {len(missing)} recorded image(s) are not ranked ({', '.join(missing[:5])}"
                            f"{', ...' if len(missing) > 5 else ''}); rank with --include-reviewed and empty lists")
    if not population:
        raise MnistIdkError(f"no recorded decision in {stratum} that an earlier pass has not covered")
    rng = random.Random(seed)
    chosen = rng.sample(population, min(sample, len(population)) if sample else len(population))
    drawn = [Drawn(n, r.split, r.index, r.original, r.decision, stratum, value, int(row["predicted"]),
                   int(row["alternative"])) for n, (r, row, value) in enumerate(chosen, start=1)]
    return Population(len(population), skipped, drawn)


def write(population: Population, round_: str, part: str, splits: Mapping[str, Split], out_dir: Path,
          per_sheet: int = 10) -> list[Path]:
    """``order.csv``, sheets ``consistency-<round>-<part>-NN.png`` and the fresh-look CSV to fill in (last)."""
    if out_dir.exists():
        raise MnistIdkError(f"{out_dir} already exists: a pass in progress is never overwritten; "
                            "choose another --out or --part")
    name = f"consistency-{round_}-{part}"
    candidates = [Candidate(d.split, d.index, d.original, d.predicted, "consistency", d.alternative)
                  for d in population.drawn]
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted draw: ours, never the user's
    staging.mkdir(parents=True)
    try:
        sheets = review.write_sheets(candidates, splits, staging, name, per_sheet)
        (staging / ORDER).write_text(review.csv_text(ORDER_COLUMNS, [
            [d.n, round_, part, d.split, d.index, d.original, d.recorded, d.stratum, f"{d.doubt:.4f}", d.predicted, d.alternative]
            for d in population.drawn]), "utf-8")
        (staging / f"{name}.csv").write_text(review.csv_text(FRESH_COLUMNS, [
            [d.split, d.index, d.original, d.predicted, "", "", ""] for d in population.drawn]), "utf-8")
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out_dir / p.name for p in sheets] + [out_dir / ORDER, out_dir / f"{name}.csv"]


def _read_order(path: Path) -> tuple[list[tuple[int, list[str]]], list[Problem]]:
    rows, problems = review.read_rows(path, ORDER_COLUMNS)
    if not rows and not problems:
        problems.append(Problem(path, 1, "no images drawn"))
    return rows, problems


def _looks(path: Path, columns, allowed: str, problems: list[Problem]) -> dict[tuple[str, int], tuple[str, str, int]]:
    """(decision, note, line) by image of a filled fresh- or second-look CSV."""
    rows, found = review.read_rows(path, columns)
    problems += found
    out, seen = {}, {}
    for line, fields in rows:
        values = dict(zip(columns, fields))
        position = review.parse_index(path, line, values["split"], values["index"], problems)
        review.check_decision(path, line, values["decision"], values["reason"], values["note"], allowed, problems)
        if position is not None and review.first_time(path, line, values["split"], position, seen, problems):
            out[values["split"], position] = (values["decision"], values["note"], line)
    return out


def record(ws: Workspace, pass_dir: Path) -> tuple[Path, dict[str, int]]:
    """Write (or update) ``reviewed/consistency-<round>.csv`` with this pass's images; every problem raises.

    Every fresh look must be filled in; every one that is unsure or differs from the recorded decision
    needs a second look (``second.csv``: split,index,decision,reason,note; still unsure means kept). The
    final column is what the record says now, after ``review apply --redecide`` and the blind re-check.
    """
    ws.require_working("review consistency record")
    order_rows, problems = _read_order(pass_dir / ORDER)
    if problems:
        raise MnistIdkError("\n".join(map(str, problems)))
    round_, part = order_rows[0][1][1], order_rows[0][1][2]
    fresh_path = pass_dir / f"consistency-{round_}-{part}.csv"
    fresh = _looks(fresh_path, FRESH_COLUMNS, "listed, kept or unsure", problems)
    second_path = pass_dir / SECOND
    second = _looks(second_path, SECOND_COLUMNS, "listed or kept", problems) if second_path.exists() else {}
    current: dict[tuple[str, int], Reviewed] = {(r.split, r.index): r for rows in review.load_record(ws, "working").values()
                                                for r in rows}
    rows, counts = [], {"images": 0, "second looks": 0, "changed": 0}
    for line, fields in order_rows:
        d = dict(zip(ORDER_COLUMNS, fields))
        key = (d["split"], int(d["index"]))
        now = current.get(key)
        if now is None:
            problems.append(Problem(pass_dir / ORDER, line, f"{d['split']} {d['index']} is not in the review record"))
            continue
        look = fresh.get(key)
        if look is None:
            problems.append(Problem(fresh_path, 0, f"{d['split']} {d['index']} (#{d['n']}) has no fresh look"))
            continue
        again = second.pop(key, None)
        if again is None and look[0] != d["recorded"]:
            problems.append(Problem(fresh_path, look[2], f"{key[0]} {key[1]}: the fresh look ({look[0]}) differs from "
                                                         f"the recorded {d['recorded']}; give it a second look in {SECOND}"))
        counts["images"] += 1
        counts["second looks"] += again is not None
        counts["changed"] += now.decision != d["recorded"]
        rows.append([d["split"], d["index"], d["original"], d["stratum"], part, d["recorded"], look[0], look[1],
                     again[0] if again else "", again[1] if again else "", now.decision])
    for (split, index), (_, _, line) in second.items():
        problems.append(Problem(second_path, line, f"{split} {index} is not in this pass ({ORDER})"))
    if problems:
        raise MnistIdkError(f"{len(problems)} problem(s) in the pass:\n" + "\n".join(map(str, problems)))
    target = review.record_dir(ws) / f"consistency-{round_}.csv"
    kept_rows = []
    if target.exists():
        with open(target, newline="", encoding="utf-8") as file:
            kept_rows = [[r.get(c, "") for c in RECORD_COLUMNS] for r in csv.DictReader(file) if r.get("part") != part]
    merged = sorted(kept_rows + rows, key=lambda r: (SPLITS.index(r[0]), int(r[1])))
    review.write_files({target: review.csv_text(RECORD_COLUMNS, merged)})
    return target, counts
