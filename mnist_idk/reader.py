"""Hand a sheet to a reader who must not know which images they are: numbered items, the key kept apart.

A panel round runs ``draw`` (a family of images under question beside controls the record
agrees on), ``make`` (a folder per reader), ``fill`` (their majority back into the sheet) and
``tally`` (the decisions by stratum, and whether the family was kept more often than its controls).

A blind re-check or a consistency pass is blind only if the second reader cannot look the images
up; but sheets caption each image with its index, and curation_lists/README.md names hundreds of
indices with their decisions. ``make`` turns any sheet to fill in (a CSV with split, index,
original, decision, reason and note, as ``review blind draw`` and ``review consistency draw``
write) into a reader's folder: the images in a seeded random order as ``itemNN`` (large PNG and
pixel text), sheets beside typical digits captioned by item only, optional rule images, the
instructions and a ``decisions.csv`` to fill. The key (item -> split, index) goes outside that
folder. ``fill`` maps the reader's decisions back into the sheet, which is then recorded as usual.
"""

from __future__ import annotations

import random
import re
import shutil
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from math import comb
from pathlib import Path

import numpy as np
from PIL import Image

from . import review
from .blind import SHEET_COLUMNS, disagreements_path, refuse_if_decided, votes_of
from .curation import REASONS, Problem, parse_version
from .errors import MnistIdkError
from .metrics import wilson
from .raw import SPLITS, Split
from .review import Candidate
from .sheet import save_png

KEY_COLUMNS = ("item", "split", "index")
DECISION_COLUMNS = ("item", "label", "decision", "reason", "note")
FILLED = ("decision", "reason", "note")  # what a reader writes; empty on a sheet not yet filled in
SHEET_NEEDS = ("split", "index", "original", *FILLED)
REF_COLUMNS = ("name", "split", "index", "text")
STRATA_COLUMNS = ("split", "index", "stratum")
CONTROLS = {"listed": "control-listed", "kept": "control-kept"}  # the decision a control holds -> its stratum
SCALE = 12  # 28 x 12 = 336 pixels: large enough to count strokes by eye
# The definition, as curation_lists/README.md gives it under "What IDK means" (a test keeps them equal).
DEFINITION = ("An image belongs to `IDK` when **a careful person, looking at it alone, cannot say which digit it "
              "is** — not \"it is ugly\", not \"a model gets it wrong\", but \"I would not bet on one digit\". A "
              "messy digit that still reads as one digit keeps its label. A stray mark that sits apart from a clear "
              "digit is not enough. When in doubt, keep the label (leave the image out of `IDK`): the point of the "
              "class is that models learn to abstain on images where abstaining is right.")


@dataclass(frozen=True)
class Look:
    """One reader's decision on one image, and the line of their decisions.csv it came from."""
    decision: str
    reason: str
    note: str
    line: int


@dataclass(frozen=True)
class Item:
    name: str  # item01, item02, ...
    split: str
    index: int
    original: int
    predicted: int | None  # the sheet's second reference digit, if it has one


def item_name(n: int, count: int) -> str:
    return f"item{n:0{max(2, len(str(count)))}d}"


def read_csv(path: Path, needs: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(line, row) of a UTF-8 CSV that has at least ``needs``, values stripped; problems raise, naming file and line."""
    rows, problems = review.read_table(Path(path), needs)
    if problems:
        raise MnistIdkError("\n".join(map(str, problems)))
    return [(line, {k: v.strip() for k, v in row.items()}) for line, row in rows]


def read_sheet(path: Path, labels: Mapping[str, np.ndarray]) -> list[tuple[str, int, int, int | None]]:
    """The sheet's images (split, index, original, predicted), checked against the raw labels, none decided yet."""
    rows = read_csv(path, SHEET_NEEDS)
    problems: list[Problem] = []
    images, seen = [], {}
    for line, row in rows:
        position = review.parse_index(path, line, row["split"], row["index"], problems)
        if position is None:
            continue
        digit = review.parse_original(path, line, row["split"], position, row["original"], labels, problems)
        if any(row[c] for c in FILLED):
            problems.append(Problem(path, line, "already decided: a reader's folder is made from a sheet not yet "
                                                "filled in"))
        if digit is not None and review.first_time(path, line, row["split"], position, seen, problems):
            predicted = row.get("predicted", "")
            images.append((row["split"], position, digit, int(predicted) if predicted.isdigit() else None))
    if not images and not problems:
        problems.append(Problem(path, 0, "no images to hand out"))
    if problems:
        raise MnistIdkError(f"{len(problems)} problem(s) in the sheet:\n" + "\n".join(map(str, problems)))
    return images


def read_refs(path: Path, splits: Mapping[str, Split]) -> list[tuple[str, str, int, str]]:
    """Rule images (name,split,index,text): the images a family's rules cite, shown by name."""
    rows = read_csv(path, REF_COLUMNS)
    problems: list[Problem] = []
    out = []
    for line, row in rows:
        position = review.parse_index(path, line, row["split"], row["index"], problems)
        if not row["name"] or not row["name"].replace("-", "").replace("_", "").isalnum() or row["name"].startswith("item"):
            problems.append(Problem(path, line, f"name {row['name']!r}: use letters, digits, - and _, not item..."))
        elif position is not None:
            out.append((row["name"], row["split"], position, row["text"]))
    if len({name for name, *_ in out}) < len(out):
        problems.append(Problem(path, 0, "each reference needs its own name"))
    if problems:
        raise MnistIdkError(f"{len(problems)} problem(s) in the references:\n" + "\n".join(map(str, problems)))
    return out


def pixels(image: np.ndarray) -> str:
    """The 28 rows of pixel values 0-255, rows and columns numbered: what a reader counts strokes on."""
    lines = ["    " + "".join(f"{column:4d}" for column in range(image.shape[1]))]
    lines += [f"{row:2d}: " + "".join(f"{v:4d}" for v in values) for row, values in enumerate(image)]
    return "\n".join(lines) + "\n"


def instructions(items: list[Item], refs: list[tuple[str, str, int, str]], rules: str) -> str:
    labels = sorted({i.original for i in items})
    reasons = "\n".join(f"  - `{code}`: {text}" for code, text in REASONS.items())
    parts = [
        f"# A blind reading of {len(items)} MNIST digits (labelled {', '.join(map(str, labels))})",
        "Decide, for each image `itemNN`, whether it is listed as IDK (\"I don't know\") or kept as its "
        "label, by the definition below. Nobody's earlier decision is shown to you; do not look for one: "
        "work only in this folder, and write nothing outside it (no scratch files in shared places such as "
        "/tmp: other readers work beside you, and a file one of them overwrites could show you their item).",
        "## The definition\n" + DEFINITION,
    ]
    if rules:
        parts.append("## The rules for this family\n" + rules.strip())
    if refs:
        parts.append("## Rule images\n" + "\n".join(f"- `{name}`: {text}" for name, _, _, text in refs))
    parts.append(
        "## What is here\n"
        f"- `itemNN.png`: the image, {SCALE} times larger; `itemNN.txt`: its pixel values 0-255 (row 0 at the top, "
        "column 0 at the left), to count strokes and gaps on.\n"
        "- `sheet-NN.png`: the items beside three typical digits of their label and of the digit a model "
        "prefers (or the next likeliest).\n"
        + ("- `REF-<name>.png` and `.txt`: the rule images.\n" if refs else "")
        + "- `decisions.csv`: one row per item to fill in.")
    parts.append(
        "## What to write in decisions.csv\n"
        "- `decision`: `listed` (IDK), `kept` (its label) or `unsure` (say why in the note).\n"
        "- `reason`, only when listed, the first that applies:\n" + reasons + "\n"
        "- `note`: what you see, in a sentence (and any counts you made).\n"
        "Keep the columns as they are (another column, e.g. `measurements`, may be added); write the file "
        "with a CSV writer so commas in notes are quoted.")
    return "\n\n".join(parts) + "\n"


def make(sheet: Path, splits: Mapping[str, Split], out_dir: Path, key: Path, seed: int = 0,
         refs: Path | None = None, rules: str = "", per_sheet: int = 10) -> list[Path]:
    """A reader's folder for ``sheet`` in ``out_dir`` (never overwritten) and its ``key``; the paths written.

    The folder is staged beside its place and renamed in, so an interrupted run leaves nothing
    half-written; the key, outside the folder, is written last.
    """
    out_dir, key = Path(out_dir), Path(key)
    if out_dir.exists():
        raise MnistIdkError(f"{out_dir} already exists: a reader's folder is never overwritten; choose another --out")
    if key.exists():
        raise MnistIdkError(f"{key} already exists: it may be the key of another reader's folder; choose another --key")
    if key.resolve().is_relative_to(out_dir.resolve()):
        raise MnistIdkError(f"{key}: the key must not be inside the reader's folder {out_dir}")
    images = read_sheet(Path(sheet), {name: split.labels for name, split in splits.items()})
    references = read_refs(Path(refs), splits) if refs is not None else []
    cited = {(s, i) for _, s, i, _ in references} & {(split, index) for split, index, _, _ in images}
    if cited:
        raise MnistIdkError(f"{refs}: a rule image is also an item ({', '.join(f'{s} {i}' for s, i in sorted(cited))}); "
                            "a reader would see its decision")
    random.Random(seed).shuffle(images)
    items = [Item(item_name(n, len(images)), *image) for n, image in enumerate(images, 1)]
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run: ours, never the user's
    staging.mkdir(parents=True)
    try:
        for name, split, index in [(i.name, i.split, i.index) for i in items] + [
                (f"REF-{n}", s, i) for n, s, i, _ in references]:
            image = splits[split].images[index].reshape(28, 28)
            save_png(Image.fromarray(image, "L").resize((28 * SCALE, 28 * SCALE), Image.Resampling.NEAREST),
                     staging / f"{name}.png")
            (staging / f"{name}.txt").write_text(pixels(image), "utf-8")
        candidates = [Candidate(i.split, i.index, i.original, i.predicted, "reader") for i in items]
        review.write_sheets(candidates, splits, staging, "sheet", per_sheet, names=[i.name for i in items])
        (staging / "decisions.csv").write_text(
            review.csv_text(DECISION_COLUMNS, [[i.name, i.original, "", "", ""] for i in items]), "utf-8")
        (staging / "INSTRUCTIONS.md").write_text(instructions(items, references, rules), "utf-8")
        written = sorted(p.name for p in staging.iterdir())
        staging.rename(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    review.write_files({key: review.csv_text(KEY_COLUMNS, [[i.name, i.split, i.index] for i in items])})
    return [out_dir / name for name in written] + [key]


def _image(row: Mapping[str, str]) -> tuple[str, int | str]:
    """(split, index) of a row, the index as a number where it is one (so 012 and 12 are one image)."""
    return row["split"], int(row["index"]) if row["index"].isdigit() else row["index"]


def read_reader(key: Path, decisions: Path,
                problems: list[Problem]) -> tuple[set[tuple[str, int | str]], dict[tuple[str, int | str], Look]]:
    """One reader's images (from the key) and decisions by image (split, index); problems (file:line) appended.

    The key's images come back even when the decisions cannot be read, so that a panel's keys can
    be compared without a reader who is not done yet causing a second, misleading problem.
    """
    key_rows = read_csv(key, KEY_COLUMNS)
    where = {}
    for line, row in key_rows:
        if review.parse_index(key, line, row["split"], row["index"], problems) is not None:
            where[row["item"]] = _image(row)
    rows = read_csv(decisions, ("item", *FILLED))
    if rows and not any(row[c] for _, row in rows for c in FILLED):
        problems.append(Problem(decisions, 0, f"none of its {len(rows)} items is decided yet (is the reader done?)"))
        return set(where.values()), {}
    decided: dict[tuple[str, int | str], Look] = {}
    for line, row in rows:
        image = where.get(row["item"])
        if image is None:
            problems.append(Problem(decisions, line, f"item {row['item']!r} is not in the key {key}"))
        elif image in decided:
            problems.append(Problem(decisions, line, f"{row['item']} is decided twice (also line {decided[image].line})"))
        else:
            review.check_decision(decisions, line, row["decision"], row["reason"], row["note"],
                                  "listed, kept or unsure", problems)
            decided[image] = Look(row["decision"], row["reason"], row["note"], line)
    missing = [item for item, image in where.items() if image not in decided]
    if missing:
        problems.append(Problem(decisions, 0, f"{len(missing)} item(s) not decided: {', '.join(missing[:10])}"
                                              f"{', ...' if len(missing) > 10 else ''}"))
    return set(where.values()), decided


def majority(looks: Sequence[Look]) -> tuple[str, str, str]:
    """(decision, reason, note) of a panel: listed or kept when more than half say so, else unsure.

    One reader's look is theirs as it is. For several, the reason is the listing readers' most
    common one, and the note gives every reader's decision and note, in reader order.
    """
    if len(looks) == 1:
        return looks[0].decision, looks[0].reason, looks[0].note
    counts = Counter(look.decision for look in looks)
    decision = next((d for d in ("listed", "kept") if counts[d] * 2 > len(looks)), "unsure")
    reasons = Counter(look.reason for look in looks if look.decision == "listed")
    reason = max(REASONS, key=lambda r: (reasons[r], -list(REASONS).index(r))) if decision == "listed" else ""
    votes = "/".join(look.decision[0].upper() for look in looks)
    note = f"{len(looks)} blind readers {votes}: " + "; ".join(
        f"({n}) {look.decision}{' ' + look.reason if look.reason else ''}: {look.note}" for n, look in enumerate(looks, 1))
    return decision, reason, note


def fill(sheet: Path, readers: Sequence[tuple[Path, Path]]) -> Counter:
    """Write the readers' decisions into ``sheet``: each reader a (key, decisions) pair; several, their majority.

    Every problem raises first, and nothing is written. Returns how many rows got each decision.
    """
    sheet = Path(sheet)
    if not readers:
        raise MnistIdkError("no reader's decisions to fill in")
    problems: list[Problem] = []
    read = [read_reader(Path(key), Path(decisions), problems) for key, decisions in readers]
    panels = [decided for _, decided in read]
    images = read[0][0]  # the keys' images, not what was decided: a reader not done has said so already
    for (key, _), (named, _) in zip(readers[1:], read[1:]):
        if named != images:
            problems.append(Problem(Path(key), 0, f"holds other images than {readers[0][0]}: each reader reads the "
                                                  "same sheet"))
    sheet_rows = read_csv(sheet, SHEET_NEEDS)
    header = list(sheet_rows[0][1]) if sheet_rows else list(SHEET_NEEDS)  # the sheet's own columns, in order
    on_sheet = {_image(r): (line, r) for line, r in sheet_rows}
    filled = []
    for image in sorted(images, key=str):
        if image not in on_sheet:
            problems.append(Problem(sheet, 0, f"{image[0]} {image[1]} of the key is not on this sheet"))
        elif any(on_sheet[image][1][c] for c in FILLED):
            filled.append(on_sheet[image][0])
    if filled:  # one line, not one per image: the usual cause is one `fill` per reader of a panel
        problems.append(Problem(sheet, min(filled), f"{len(filled)} of the key's {len(images)} images are already "
                                                    "filled in (a sheet is filled once: give every reader's "
                                                    "decisions to one `fill`)"))
    if problems:
        problems.sort(key=lambda p: (str(p.path), p.line))
        raise MnistIdkError(f"{len(problems)} problem(s); nothing written:\n" + "\n".join(map(str, problems)))
    out, counts = [], Counter()
    for _, r in sheet_rows:
        image = _image(r)
        if image in images:
            decision, reason, note = majority([panel[image] for panel in panels])
            r = {**r, "decision": decision, "reason": reason, "note": note}
            counts[decision] += 1
        out.append([r[c] for c in header])
    review.write_files({sheet: review.csv_text(header, out)})
    return counts


def kept_more_often(kept: int, total: int, control_kept: int, control_total: int) -> float:
    """One-sided Fisher exact p that a stratum's kept share exceeds a control stratum's.

    The chance, drawing ``total`` readings at random from both strata's together, of at least
    ``kept`` keeps: small when the panel keeps this stratum more often than the controls, which is
    what a round that retires a rule needs to show (a lenient panel keeps the controls too).
    """
    keeps, everyone = kept + control_kept, total + control_total
    if not (0 <= kept <= total and 0 <= control_kept <= control_total) or everyone == 0:
        raise ValueError("counts must satisfy 0 <= kept <= total")
    ways = comb(everyone, total)
    return sum(comb(keeps, k) * comb(everyone - keeps, total - k)
               for k in range(kept, min(total, keeps) + 1)) / ways


def beyond_controls(kept: int, readers: int, control_kept: int, control_votes: int) -> tuple[float, float]:
    """(rate, p) for one image: do its readers vote one way more often than they vote so on controls?

    Written for keeps (``alone`` passes listing votes the same way): ``rate`` is the upper end of
    the 95% Wilson interval of the readers' keep rate on listed controls (every reader's vote
    counted), a lenient guess at how often they keep a listing that should stand; ``p`` is the
    chance that ``readers`` readers, each keeping at that rate, keep the image at least ``kept``
    times. For a few images asked one by one, where a family's share against the controls' share
    has no power (3 of 4 against 1 of 15 is p = 0.016).
    """
    if not (0 <= kept <= readers and 0 <= control_kept <= control_votes) or control_votes == 0:
        raise ValueError("counts must satisfy 0 <= kept <= readers and 0 <= control_kept <= control_votes > 0")
    rate = wilson(control_kept, control_votes)[1]
    p = sum(comb(readers, k) * rate ** k * (1 - rate) ** (readers - k) for k in range(kept, readers + 1))
    return rate, min(1.0, p)


def _by_stratum(sheet: Path, strata: Path) -> dict[str, list[dict[str, str]]]:
    """A filled sheet's rows by stratum (a CSV split,index,stratum naming each image of the sheet)."""
    sheet, strata = Path(sheet), Path(strata)
    rows = read_csv(strata, ("split", "index", "stratum"))
    where = {_image(row): row["stratum"] for _, row in rows}
    decided = read_csv(sheet, SHEET_NEEDS)
    if decided and not any(row["decision"] for _, row in decided):  # one line, not one per row
        raise MnistIdkError(f"{sheet}: none of its {len(decided)} rows is decided yet (fill the sheet first: "
                            "`review reader fill`)")
    problems: list[Problem] = []
    out: dict[str, list[dict[str, str]]] = {}
    for line, row in decided:
        stratum = where.get(_image(row))
        if stratum is None:
            problems.append(Problem(sheet, line, f"{row['split']} {row['index']} has no stratum in {strata}"))
        elif row["decision"] not in ("listed", "kept", "unsure"):
            problems.append(Problem(sheet, line, f"decision {row['decision']!r} is not listed, kept or unsure "
                                                 "(fill the sheet first)"))
        else:
            out.setdefault(stratum, []).append(row)
    if problems:
        raise MnistIdkError(f"{len(problems)} problem(s):\n" + "\n".join(map(str, problems)))
    return out


def tally(sheet: Path, strata: Path) -> dict[str, Counter]:
    """Decisions of a filled sheet by stratum (a CSV split,index,stratum naming each image of the sheet)."""
    return {stratum: Counter(row["decision"] for row in rows) for stratum, rows in _by_stratum(sheet, strata).items()}


def votes(sheet: Path, strata: Path) -> dict[str, list[tuple[str, int, str]]]:
    """Every reader's vote on each image of a filled sheet, by stratum: (split, index, "K/K/L").

    A sheet filled by one reader has one vote an image, its decision's letter.
    """
    return {stratum: [(row["split"], int(row["index"]), votes_of(row["note"]) or row["decision"][0].upper())
                      for row in rows] for stratum, rows in _by_stratum(sheet, strata).items()}


@dataclass(frozen=True)
class Panel:
    """A panel round's images, each with its stratum (the family's, or a control's), by split and index."""
    images: list[tuple[Candidate, str]]
    eligible: dict[str, int]  # control stratum -> how many images it was drawn from


def read_family(path: Path) -> dict[tuple[str, int], str]:
    """A family file: split,index and an optional stratum (default ``family``), e.g. one per rule under question."""
    rows, problems = review.read_table(Path(path), ("split", "index"))
    family: dict[tuple[str, int], str] = {}
    lines: dict[tuple[str, int], int] = {}
    for line, row in rows:
        position = review.parse_index(path, line, row["split"], row["index"], problems)
        stratum = (row.get("stratum") or "family").strip()
        if stratum in CONTROLS.values():
            problems.append(Problem(path, line, f"stratum {stratum!r} is the name of a control stratum"))
        elif (row["split"], position) in lines:
            problems.append(Problem(path, line, f"{row['split']} {position} is named twice (also line "
                                                f"{lines[row['split'], position]})"))
        elif position is not None:
            family[row["split"], position] = stratum
            lines[row["split"], position] = line
    if not family and not problems:
        problems.append(Problem(path, 0, "no images: a round needs a family to put to the panel"))
    if problems:
        raise MnistIdkError(f"{len(problems)} problem(s) in the family:\n" + "\n".join(map(str, problems)))
    return family


def read_leave_out(paths: Sequence[Path]) -> dict[tuple[str, int], tuple[str, Path]]:
    """The images other draws' CSVs (split,index[,stratum], e.g. strata.csv) hold: stratum and file, first file wins."""
    held: dict[tuple[str, int], tuple[str, Path]] = {}
    problems: list[Problem] = []
    for path in map(Path, paths):
        rows, found = review.read_table(path, ("split", "index"))
        problems += found
        for line, row in rows:
            position = review.parse_index(path, line, row["split"], row["index"], problems)
            if position is not None:
                held.setdefault((row["split"], position), ((row.get("stratum") or "").strip(), path))
    if problems:
        raise MnistIdkError("\n".join(map(str, problems)))
    return held


def unread_window(checks: Sequence[review.BlindCheck], released: Sequence[str],
                  releases: int) -> tuple[str, set[tuple[str, int]]]:
    """The control window: the first of the newest ``releases`` releases (v0.0.0 when there are
    fewer), and the images any blind reading of a round from it on (rounds not released yet too)
    has read, which are not drawn as controls."""
    start = released[-releases] if len(released) >= releases else "v0.0.0"
    return start, {(c.split, c.index) for c in checks if parse_version(c.round) >= parse_version(start)}


def mostly(votes: str, letter: str) -> bool:
    """Whether more than half of a panel's votes ("L/K/L") are ``letter``."""
    return votes.count(letter) * 2 > len(votes.replace("/", ""))


def bare_majority(votes: str, letter: str) -> bool:
    """Whether ``letter`` has a majority of a panel's votes by one vote at most (2 of 3, 3 of 5)."""
    return votes.count(letter) == len(votes.replace("/", "")) // 2 + 1


def _agrees(check: review.BlindCheck, decision: str) -> bool:
    """A reading that agrees with the record on ``decision``: first, blind and final, every reader of a panel."""
    return (check.first == check.blind == check.final == decision
            and set(votes_of(check.blind_note).replace("/", "")) <= {decision[0].upper()})


def draw(record: Mapping[str, Sequence[review.Reviewed]], checks: Sequence[review.BlindCheck],
         family: Mapping[tuple[str, int], str], controls: Mapping[str, int], digits: set[int] | None = None,
         exclude: str | None = None, seed: int = 0,
         predicted: Mapping[tuple[str, int], int] | None = None,
         leave_out: Mapping[tuple[str, int], tuple[str, Path]] | None = None, reread: bool = False) -> Panel:
    """The family beside ``controls`` (decision -> how many) drawn at random from decisions nobody doubts.

    A control is an image the record and exactly one blind reading (a re-check, or a panel where
    every reader agreed: a split panel doubts it) agree on: first, blind and final decision all
    ``listed`` (or all ``kept``), and so recorded now. Once a round that drew it is recorded, it
    has two readings, so no image is a control twice. Each round uses its controls up; with
    ``reread`` (for when those read once run out) an image read more than once is a control too
    if every reading agrees so (say a listing the re-check and a unanimous panel both listed).
    ``digits`` (default: the family's labels) and ``exclude`` (a regular expression the recorded
    note must not match, e.g. the words of the rule under question) narrow the pool;
    ``leave_out`` (``read_leave_out``) keeps out images another draw holds (its readings not yet
    recorded), and a family image it holds as a control is refused while that control has its one
    reading: it would be read by two panels at once, once setting the other round's rate.
    Deterministic for a seed.
    """
    now = by_image(record)
    missing = sorted(image for image in family if image not in now)
    if missing:
        raise MnistIdkError(f"{len(missing)} image(s) of the family are not in the review record (a panel reads "
                            f"recorded decisions): " + ", ".join(f"{s} {i}" for s, i in missing[:10]))
    digits = {now[image].original for image in family} if digits is None else digits
    pattern = re.compile(exclude, re.IGNORECASE) if exclude else None
    read = readings(checks)
    leave_out = {} if leave_out is None else leave_out
    clash = sorted(image for image in family  # once the other round is recorded, the image has two readings
                   if image in leave_out and leave_out[image][0] in CONTROLS.values() and len(read.get(image, ())) <= 1)
    if clash:
        raise MnistIdkError(f"{len(clash)} image(s) of the family are controls of another draw whose readings are not "
                            "recorded yet: " + ", ".join(f"{s} {i} ({leave_out[s, i][1]})" for s, i in clash[:10])
                            + "; record that round first, or leave them out of the family")
    rng = random.Random(seed)
    chosen: list[tuple[Candidate, str]] = [(candidate(now[image], predicted), stratum) for image, stratum in family.items()]
    eligible = {}
    for decision, count in controls.items():
        pool = sorted((image for image, looks in read.items()
                       if (len(looks) == 1 or reread) and all(_agrees(c, decision) for c in looks)
                       and image not in family and image not in leave_out and image in now
                       and now[image].decision == decision and now[image].original in digits
                       and not (pattern and pattern.search(now[image].note))),
                      key=lambda image: (SPLITS.index(image[0]), image[1]))
        eligible[CONTROLS[decision]] = len(pool)
        if count > len(pool):
            raise MnistIdkError(f"{count} {decision} controls asked for, but only {len(pool)} {decision} images of "
                                f"digits {','.join(map(str, sorted(digits)))} are agreed by the record and "
                                + ("every blind reading" if reread else "one blind reading")
                                + (" and have a note that --exclude-notes lets through" if pattern else "")
                                + ("" if reread else "; --reread-controls also takes images read more than once"))
        chosen += [(candidate(now[image], predicted), CONTROLS[decision]) for image in rng.sample(pool, count)]
    chosen.sort(key=lambda pair: (SPLITS.index(pair[0].split), pair[0].index))
    return Panel(chosen, eligible)


CONTESTED = ("panels-kept", "one-reader-kept", "one-reader-listed", "one-panel-kept", "one-panel-listed",
             "one-panel-weak")


def contested(record: Mapping[str, Sequence[review.Reviewed]],
              checks: Sequence[review.BlindCheck]) -> dict[tuple[str, int], str]:
    """Decisions the blind readings doubt, each with its kind: the families of rounds v1.35.0 to v1.37.0.

    ``panels-kept``: listed now, read by two or more panels, and every panel's majority kept it.
    ``one-reader-kept``: listed now, no panel has read it, and a blind reader (one, reading alone) kept it.
    ``one-reader-listed``: kept now, no panel has read it, and a blind reader reading alone listed
    it (a consistency pass's panel, recorded in the note as "blind readers", counts as a panel).
    ``one-panel-kept``: listed now, read by exactly one panel, whose majority kept it (most often
    a listed control of a round about other images: round v1.100.0's family). ``one-panel-listed``:
    the mirror, kept now, read by exactly one panel, whose majority listed it. ``one-panel-weak``:
    listed now, read by exactly one panel, which listed it by a bare majority (2 of 3, 3 of 5):
    the listings the line of the 97 (rounds v1.119.0-v1.122.0) asked of a second panel.
    Each stood because a rule about families decided (or one reader is not enough): the per-image
    rule (``alone``) is the question to put to them.
    """
    now = by_image(record)
    out = {}
    for image, checked in readings(checks).items():
        if image not in now:
            continue
        panels = [v for v in map(votes_of, (c.blind_note for c in checked)) if v]
        if now[image].decision == "kept":
            if not panels and "blind readers" not in now[image].note and any(c.blind == "listed" for c in checked):
                out[image] = CONTESTED[2]
            elif len(panels) == 1 and mostly(panels[0], "L"):
                out[image] = CONTESTED[4]
            continue
        if len(panels) >= 2 and all(mostly(v, "K") for v in panels):
            out[image] = CONTESTED[0]
        elif len(panels) == 1 and mostly(panels[0], "K"):
            out[image] = CONTESTED[3]
        elif len(panels) == 1 and bare_majority(panels[0], "L"):
            out[image] = CONTESTED[5]
        elif not panels and any(c.blind == "kept" for c in checked):
            out[image] = CONTESTED[1]
    return dict(sorted(out.items(), key=lambda pair: (SPLITS.index(pair[0][0]), pair[0][1])))


@dataclass(frozen=True)
class Member:
    """One image of a family: what the record decided and noted, and its score in a ranking (None without one)."""

    split: str
    index: int
    original: int
    note: str
    score: float | None = None


def ranking_scores(path: Path, toward: int | None = None, by: str | None = None) -> dict[tuple[str, int], float]:
    """Each image's score in a ``suggest`` CSV, in the CSV's (rank) order: p(``toward``), the signal
    column ``by`` (e.g. ``knn_disagreement``, which the networks do not share), or by default the
    networks' doubt (1 - p(label)).

    The CSV holds p only for the predicted digit and the likeliest other one, so p(``toward``) is 0
    where ``toward`` is neither: it ranks below every image where it is.
    """
    if toward is not None and by is not None:
        raise ValueError("order by p(toward) or by a signal column, not both")
    signal = by or "self_confidence"
    needs = ("split", "index", "predicted", "p_predicted", "alternative", "p_alternative") if toward is not None \
        else ("split", "index", signal)
    path = Path(path)
    rows, problems = review.read_table(path, needs)
    scores = {}
    for line, row in rows:
        position = review.parse_index(path, line, row["split"], row["index"], problems)
        column = signal if toward is None else "p_predicted" if row["predicted"] == str(toward) else \
            "p_alternative" if row["alternative"] == str(toward) else None
        try:
            score = 0.0 if column is None else float(row[column])
        except ValueError:
            problems.append(Problem(path, line, f"{column} {row[column]!r} is not a number"))
            continue
        if position is not None:
            scores[row["split"], position] = score
    if problems:
        raise MnistIdkError("\n".join(map(str, problems)))
    return scores


# How a note names the image whose form decided it: "as train 32445", "like test 4207", "train 30011's form"
# (not "not train 14961's form").
_PRECEDENT = re.compile(r"(?<!not )\b(?:as|like) (train|test) (\d+)|(?<!not )\b(train|test) (\d+)'s form")


def precedents(note: str) -> set[tuple[str, int]]:
    """The images a note names as the form it followed."""
    return {(m[0] or m[2], int(m[1] or m[3])) for m in _PRECEDENT.findall(note)}


def family(record: Mapping[str, Sequence[review.Reviewed]], checks: Sequence[review.BlindCheck], labels: set[int],
           decision: str, note: str, not_note: str | None = None, unread: bool = True,
           scores: Mapping[tuple[str, int], float] | None = None, precedent_overturned: bool = False,
           splits: Sequence[str] = SPLITS, not_sources: Collection[str] = ()) -> list[Member]:
    """The images one written line decided: a per-image round's family, in the order to ask them.

    Every image of ``splits`` labelled one of ``labels`` that the record ``decision`` (kept or
    listed) and whose note matches ``note`` and not ``not_note`` (regular expressions,
    case-insensitive); with ``unread``, only those no panel has read (a round's panel, or a
    consistency pass's blind readers), so that the next tranche of a line is simply the next
    ``top``. With ``precedent_overturned``, only those whose note names as its form ("as train N",
    "train N's form") an image the record now decides the other way: a precedent overturned since.
    Images any of whose sources is of a kind in ``not_sources`` (e.g. ``audit``) are left out.
    With ``scores`` (a ranking's, ``ranking_scores``), highest first, ties in the ranking's order and
    images the ranking lacks last: the images the networks read most as the other digit, or doubt
    most, are where a line is likeliest to be wrong.
    """
    matches, excluded = re.compile(note, re.IGNORECASE), re.compile(not_note, re.IGNORECASE) if not_note else None
    read = panel_read(record, checks)
    now = by_image(record)

    def overturned(r: review.Reviewed) -> bool:
        return any(image in now and now[image].decision != decision for image in precedents(r.note))

    out = []
    for split in splits:
        for r in record.get(split, ()):
            if (r.original in labels and r.decision == decision and matches.search(r.note)
                    and not (excluded and excluded.search(r.note))
                    and not (unread and (split, r.index) in read)
                    and not any(review.source_kind(source) in not_sources for source in r.sources)
                    and (not precedent_overturned or overturned(r))):
                out.append(Member(split, r.index, r.original, r.note, None if scores is None else scores.get((split, r.index))))
    if scores is not None:
        rank = {image: position for position, image in enumerate(scores)}
        out.sort(key=lambda m: (1, 0.0, 0) if m.score is None else (0, -m.score, rank[m.split, m.index]))
    return out


def sample(members: Sequence[Member], n: int, seed: int) -> list[Member]:
    """A random ``n`` of a family (all of it when it is no larger), in (split, index) order.

    Drawn from the members sorted by (split, index), so that the draw depends only on which images
    match and the seed, never on the record's row order: the same record and seed give the same
    sample. A random family is how a round estimates what a line (or, with every note, the whole
    record) got wrong, which a ranked family cannot: its top is chosen for doubt.
    """
    pool = sorted(members, key=lambda m: (SPLITS.index(m.split), m.index))
    if n >= len(pool):
        return pool
    return [pool[i] for i in sorted(random.Random(seed).sample(range(len(pool)), n))]


def panel_read(record: Mapping[str, Sequence[review.Reviewed]],
               checks: Sequence[review.BlindCheck]) -> set[tuple[str, int]]:
    """The images a panel has read: a round's panel (its votes in the blind record), or a consistency
    pass's blind readers (named in the decision's note)."""
    read = {image for image, checked in readings(checks).items() if any(votes_of(c.blind_note) for c in checked)}
    return read | {(split, r.index) for split in SPLITS for r in record.get(split, ()) if "blind readers" in r.note}


def readings(checks: Sequence[review.BlindCheck]) -> dict[tuple[str, int], list[review.BlindCheck]]:
    """Each image's blind readings, in record order, keyed by (split, index)."""
    out: dict[tuple[str, int], list[review.BlindCheck]] = {}
    for check in checks:
        out.setdefault((check.split, check.index), []).append(check)
    return out


def by_image(record: Mapping[str, Sequence[review.Reviewed]]) -> dict[tuple[str, int], review.Reviewed]:
    """The record's decisions keyed by (split, index)."""
    return {(split, r.index): r for split in SPLITS for r in record.get(split, ())}


SEEN_PREFIX = re.compile(r"^seen large(:\s*|\s+)", re.IGNORECASE)


def read_seen(path: Path) -> dict[tuple[str, int], str]:
    """What the curator saw, large, per image: a CSV split,index,seen (``decide`` needs it for every change).

    Each look comes back starting "seen large" once: ``decide`` writes it into the note as it is, and a
    look that already said so is not prefixed again (47 notes read "seen large: seen large: ..." before
    v1.208.1). "seen large beside train 8926: ..." keeps its own wording.
    """
    rows, problems = review.read_table(Path(path), ("split", "index", "seen"))
    looks = {}
    for line, row in rows:
        position = review.parse_index(path, line, row["split"], row["index"], problems)
        if position is not None:
            look = row["seen"].strip()
            prefix = SEEN_PREFIX.match(look)
            if prefix is None:
                look = f"seen large: {look}"
            else:  # the look said it already: one "seen large", in its own wording, lower case
                look = f"seen large{':' if ':' in prefix.group(1) else ''} {look[prefix.end():]}"
            looks[row["split"], position] = look
    if problems:
        raise MnistIdkError("\n".join(map(str, problems)))
    return looks


def candidate(reviewed: review.Reviewed, predicted: Mapping[tuple[str, int], int] | None) -> Candidate:
    image = (reviewed.split, reviewed.index)
    return Candidate(*image, reviewed.original, (predicted or {}).get(image), "panel")


def write_panel(panel: Panel, round_: str, out_dir: Path) -> list[Path]:
    """``blind-<round>.csv`` (the sheet to hand out with ``make``) and ``strata.csv``; never overwrites."""
    out_dir = Path(out_dir)
    sheet, strata = out_dir / f"blind-{round_}.csv", out_dir / "strata.csv"
    present = [str(p) for p in (sheet, strata) if p.exists()]
    if present:
        raise MnistIdkError(f"{' and '.join(present)} already exist(s); nothing written (use another --out-dir)")
    images = [c for c, _ in panel.images]
    review.write_files({
        sheet: review.csv_text(SHEET_COLUMNS, [[round_, c.split, c.index, c.original,
                                                "" if c.predicted is None else c.predicted, "", "", ""]
                                               for c in images]),
        strata: review.csv_text(STRATA_COLUMNS, [[c.split, c.index, stratum] for c, stratum in panel.images]),
    })
    return [sheet, strata]


def headroom(asked: int, readers: int, controls: int, alpha: float = 0.01) -> int | None:
    """The most control votes the other way at which a unanimous panel still passes the per-image rule.

    For a round's plan, before the reading: with ``asked`` images decided one by one (bound
    ``alpha``/``asked``), ``readers`` readers and ``controls`` control images, a family image that
    every reader votes for passes only while the readers vote that way on at most this many of the
    ``readers * controls`` control votes; None if not even at none (too many asked, too few
    readers). Round v1.41.1 asked 46: 5 of 5 needed at most 10 of 100, and its panel cast 11.
    """
    votes = readers * controls
    if asked < 1 or readers < 1 or controls < 1:
        raise ValueError("asked, readers and controls must be at least 1")
    passing = [c for c in range(votes + 1) if beyond_controls(readers, readers, c, votes)[1] < alpha / asked]
    return max(passing) if passing else None


def alone(sheet: Path, strata: Path, stratum: str, control: str, at_least: int = 0, alpha: float = 0.01,
          toward: str = "kept") -> tuple[tuple[int, int, float], dict[tuple[str, int], tuple[str, float, bool]]]:
    """The per-image rule (rounds v1.33.0 on) on a filled sheet: ``control``'s votes, and each image of ``stratum``.

    Returns ((control votes ``toward``, control votes, their upper rate), {image: (votes, p, passes)}):
    an image passes iff at least ``at_least`` readers vote ``toward`` (kept, or listed) and p
    (``beyond_controls``: the binomial tail at the controls' upper rate) is under ``alpha``
    divided by the images of the stratum. Toward kept, the controls are listings that should
    stand; toward listed, keeps.
    """
    if toward not in ("kept", "listed"):
        raise ValueError(f"toward {toward!r} is not kept or listed")
    letter = toward[0].upper()
    votes_by = votes(sheet, strata)
    missing = [s for s in (stratum, control) if s not in votes_by]
    if missing:
        raise MnistIdkError(f"no stratum {', '.join(map(repr, missing))} in {strata} "
                            f"(strata: {', '.join(sorted(votes_by))})")
    control_votes = "".join(v for _, _, v in votes_by[control]).replace("/", "")
    out, rate = {}, 0.0
    for split, index, vote in votes_by[stratum]:
        readers = vote.replace("/", "")
        rate, p = beyond_controls(readers.count(letter), len(readers), control_votes.count(letter), len(control_votes))
        out[split, index] = vote, p, readers.count(letter) >= at_least and p < alpha / len(votes_by[stratum])
    return (control_votes.count(letter), len(control_votes), rate), out


def decide(sheet: Path, strata: Path, record: Mapping[str, Sequence[review.Reviewed]],
           listed: Mapping[tuple[str, int], tuple[str, str]], change: set[str], seen: Mapping[tuple[str, int], str],
           why: str = "", alone_rule: Mapping[tuple[str, int], str] | None = None) -> tuple[Path, Counter]:
    """Fill the disagreements ``review blind record`` wrote for ``sheet``, by the round's rule.

    An image of a stratum in ``change`` takes the panel's majority (listed or kept; unsure
    stands), and so does an image ``alone_rule`` moves (image -> the decision a per-image rule,
    ``alone``, gives it) where the panel's majority reads it so; its note says why (``why``), how
    the panel read it and what the curator saw (``seen``: every such image needs one, so no change
    goes in unseen). Every other disagreement stands: the recorded decision, its note added how
    the panel read it. ``listed`` maps a listed image to its list's (reason, note). Nothing is
    written if anything is missing.
    """
    sheet, strata = Path(sheet), Path(strata)
    target = disagreements_path(sheet)
    rows, problems = review.read_rows(target, review.DECISION_COLUMNS)
    if problems:
        raise MnistIdkError("\n".join(map(str, problems)) + "\n(run `mnist-idk review blind record SHEET` first: it "
                            "writes the disagreements)")
    refuse_if_decided(target, rows, sheet)
    at = review.DECISION_COLUMNS.index
    panel = {_image(row): row for _, row in read_csv(sheet, ("round", *SHEET_NEEDS))}
    where = {_image(row): row["stratum"] for _, row in read_csv(strata, STRATA_COLUMNS)}
    now = by_image(record)
    unknown = sorted(change - set(where.values()))
    if unknown:
        raise MnistIdkError(f"--change {', '.join(unknown)}: no such stratum in {strata} "
                            f"(strata: {', '.join(sorted(set(where.values())))})")
    out, counts = [], Counter()
    for line, fields in rows:
        image = (fields[at("split")], int(fields[at("index")]))
        read, stratum, first = panel.get(image), where.get(image), now.get(image)
        if read is None or stratum is None or first is None:
            missing = "the sheet" if read is None else strata if stratum is None else "the review record"
            problems.append(Problem(target, line, f"{image[0]} {image[1]} is not in {missing}"))
            continue
        votes = votes_of(read["note"]) or read["decision"]
        if (stratum in change and read["decision"] in ("listed", "kept")
                or read["decision"] == (alone_rule or {}).get(image) != first.decision):
            if not seen.get(image):
                problems.append(Problem(target, line, f"{image[0]} {image[1]} changes to {read['decision']}: say what "
                                                      "you saw, large, in --seen"))
                continue
            decision, reason = read["decision"], read["reason"] if read["decision"] == "listed" else ""
            note = f"{why + '; ' if why else ''}round {read['round']}'s panel read it {votes}; {seen[image]}"
            counts["changed"] += 1
        else:
            decision = first.decision
            reason, note = listed.get(image, ("", first.note)) if decision == "listed" else ("", first.note)
            control = ", a control" if stratum.startswith("control") else ""
            note = f"{note}; stands after blind round {read['round']} (a panel read it {votes}{control})"
            counts["stand"] += 1
        fields = list(fields)
        fields[at("decision")], fields[at("reason")], fields[at("note")] = decision, reason, note
        out.append(fields)
    if problems:
        raise MnistIdkError(f"{len(problems)} problem(s); nothing written:\n" + "\n".join(map(str, problems)))
    review.write_files({target: review.csv_text(review.DECISION_COLUMNS, out)})
    return target, counts
