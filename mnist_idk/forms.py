"""Forms: images whose holes contradict their label, a queue that finds what the model rankings miss.

The decision rules (``curation_lists/README.md``) list forms by the holes the ink encloses (the
bridge rule): an 8 whose upper loop sits on a lower part filled solid has one hole, high up; a 5
whose bowl closes and a 3 whose lower bowl closes have a hole low down. The networks that rank
the review queue read many such 8s as 8s (the v1.14.0 audit found them at ranks 2,881 to 32,779),
so no ranking surfaces them. ``find`` lists every image of a labelled form, whatever a model
thinks, into ``curation_lists/forms/candidates.csv``; ``review next --forms`` serves the unreviewed
ones. Each form is here because the review record already lists many of its images, not because
it is always IDK: most open-topped 8s are kept, so "an 8 with one hole low down" is not a form.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from .raw import Split
from .sheet import BRIDGE_INK, enclosed

VERSION = "v2"  # of the table below: sources name it, so a changed table is a new queue (v1: no 2s)
FORMS = {  # label -> {hole pattern: form name}; the rule each form comes from is in curation_lists/README.md
    8: {"upper": "8-one-upper-hole", "none": "8-no-hole"},  # an upper loop over a lower part filled solid
    5: {"lower": "5-lower-hole", "two+": "5-two-holes"},  # a bar over a bowl that closes into a loop: 5 or 6
    3: {"lower": "3-lower-hole", "two+": "3-two-holes"},  # a 3 whose lower bowl closes: 3 or 8
    2: {"lower": "2-loop-no-tail", "two+": "2-loop-no-tail"},  # a hook over a large foot loop ending at the stem: 2 or 8
}
ALSO = {8: 9, 5: 6, 3: 8, 2: 8}  # the digit each label's forms can also be read as: the sheets' second reference column
LOOP_AREA = 10  # pixels a foot loop needs to count as large: the slits the v1.15.0 round kept are 1-4
TAIL_REACH = 6  # columns ink below a loop may reach past it and still be the stem (2-4 wide) plus a nub of 2
COLUMNS = ("split", "index", "original", "form")
CANDIDATES = Path("forms") / "candidates.csv"


@dataclass(frozen=True)
class FormImage:
    split: str
    index: int
    original: int
    form: str


def pattern(image: np.ndarray, regions: list | None = None) -> str:
    """``none``, ``upper``, ``lower`` or ``two+``: the holes by the bridge rule, and where a single one lies.

    ``upper`` when the hole's mean row is above the middle of the rows that hold ink (57 or more).
    ``regions``: the image's holes (``sheet.enclosed``), if already found.
    """
    regions = enclosed(image, BRIDGE_INK) if regions is None else regions
    if len(regions) != 1:
        return "none" if not regions else "two+"
    ink_rows = np.flatnonzero((np.asarray(image) >= BRIDGE_INK).any(axis=1))
    middle = (ink_rows[0] + ink_rows[-1]) / 2
    return "upper" if np.mean([row for row, _ in regions[0]]) < middle else "lower"


def loop_without_tail(image: np.ndarray, regions: list | None = None) -> bool:
    """Whether the image's largest hole is a large foot loop with no tail: a looped 2 that the rules list.

    The loop is large (``LOOP_AREA`` pixels or more), lies low (as ``pattern`` places a hole), and
    the ink from its bottom row down reaches at most ``TAIL_REACH`` columns right of it: the stem
    the loop ends at, and no tail running on past it (train 52006, 44054; a cursive 2 whose foot
    runs on 3 px or more past the stem is kept). A second, smaller hole (a knot) does not matter.
    """
    regions = enclosed(image, BRIDGE_INK) if regions is None else regions
    loop = max(regions, key=len, default=[])
    if len(loop) < LOOP_AREA or pattern(image, [loop]) != "lower":
        return False
    rows, columns = np.array(loop).T
    below = np.asarray(image)[rows.max() - 1:] >= BRIDGE_INK
    return int(np.flatnonzero(below.any(axis=0)).max()) - int(columns.max()) <= TAIL_REACH


TESTS = {"2-loop-no-tail": loop_without_tail}  # forms that need more than their hole pattern


def form_of(label: int, image: np.ndarray) -> str | None:
    """The form an image of this label has, or None."""
    regions = enclosed(image, BRIDGE_INK)
    form = FORMS.get(label, {}).get(pattern(image, regions))
    return form if form is not None and TESTS.get(form, lambda *_: True)(image, regions) else None


def find(splits: Mapping[str, Split], progress: Callable[[str], None] | None = None) -> list[FormImage]:
    """Every image of a form in ``FORMS``, in table order (label, form), then split and index."""
    found = []
    for label in FORMS:
        for name, split in splits.items():
            for index in np.flatnonzero(split.labels == label):
                form = form_of(label, split.images[index])
                if form is not None:
                    found.append(FormImage(name, int(index), label, form))
            if progress:
                progress(f"forms: {name} {label}s done, {len(found)} images so far")
    order = names()
    splits_order = list(splits)
    return sorted(found, key=lambda f: (order.index(f.form), splits_order.index(f.split), f.index))


def names() -> list[str]:
    """The forms in table order, each once."""
    return list(dict.fromkeys(form for forms in FORMS.values() for form in forms.values()))


def to_csv(images: list[FormImage]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows((f.split, f.index, f.original, f.form) for f in images)
    return out.getvalue()


def source(form: str) -> str:
    """The review record's source token for a candidate of this form."""
    return f"forms-{VERSION}:{form}"
