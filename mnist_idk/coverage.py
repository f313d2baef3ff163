"""How far the review reached and what it left behind, measured from the review record.

Coverage per split and source, the stopping rule (the yield of the last 200 images reviewed down
a ranking, or walked on a new ranking whoever decided them), the random audit's estimate of the
IDK images still among the unreviewed, and agreement with a published study's raters. ``review``
reads and writes the record; this module only counts it, for ``review status`` and the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping, Sequence

from .metrics import wilson
from .raw import SPLIT_SIZES, SPLITS
from .review import PUBLISHED, PUBLISHED_COLUMNS, Reviewed, form_indices, ranking_candidates, read_record_if_any
from .review import read_rows, record_dir, source_kind
from .workspace import Workspace

WINDOW = 200  # the stopping rule looks at the last this many reviewed from the ranking


def stopping_rule_met(split: str, window: int, window_listed: int, depth: int) -> bool:
    """The stopping rule: a full window of the last 200 down a ranking yields under 2% listed, past its top 1%."""
    return window == WINDOW and window_listed < 0.02 * WINDOW and depth >= SPLIT_SIZES[split] // 100


@dataclass(frozen=True)
class Left:
    """What the review has not reached, in two strata when a forms queue was reviewed.

    Outside the forms queue, the audit's listed share (its images outside the queue) times the
    images still unreviewed there; inside, the queue's own listed share times its unreviewed rest
    (0 once the queue is done; before that its reviewed images are the ones rankings chose, so
    the share is an upper bound). Without a forms queue there is one stratum, as before.
    """

    split: str
    audited: int  # audit decisions outside the forms queue
    audit_listed: int
    unreviewed: int  # unreviewed images outside the forms queue
    forms_reviewed: int = 0
    forms_listed: int = 0
    forms_unreviewed: int = 0

    def estimate(self) -> tuple[float, tuple[float, float]] | None:
        outside = remaining(self.unreviewed, self.audited, self.audit_listed)
        if outside is None:
            return None
        inside = remaining(self.forms_unreviewed, self.forms_reviewed, self.forms_listed) or (0.0, (0.0, 0.0))
        return outside[0] + inside[0], (outside[1][0] + inside[1][0], outside[1][1] + inside[1][1])


def left(split: str, rows: Sequence[Reviewed], queue: set[int]) -> Left:
    """``Left`` from one split's record; ``queue`` the forms queue's images, used only if the record holds forms decisions."""
    if not any(source_kind(s) == "forms" for r in rows for s in r.sources):
        queue = set()
    inside = [r for r in rows if r.index in queue]
    audit = [r for r in rows if r.index not in queue and any(source_kind(s) == "audit" for s in r.sources)]
    forms_unreviewed = len(queue) - len(inside)
    return Left(split, len(audit), sum(r.decision == "listed" for r in audit),
                SPLIT_SIZES[split] - len(rows) - forms_unreviewed, len(inside),
                sum(r.decision == "listed" for r in inside), forms_unreviewed)


def remaining(unreviewed: int, audited: int, audit_listed: int) -> tuple[float, tuple[float, float]] | None:
    """Estimated IDK images among the unreviewed, with a 95% interval, from an audit; None without one.

    The audit's listed share (Wilson interval) times the images still unreviewed: valid when the
    audit was drawn after the ranked review, so that it sampled what that review left.
    """
    if not audited:
        return None
    low, high = wilson(audit_listed, audited)
    return audit_listed / audited * unreviewed, (low * unreviewed, high * unreviewed)


@dataclass(frozen=True)
class SplitStatus:
    split: str
    reviewed: int
    listed: int
    by_source: dict[str, tuple[int, int]]  # source kind -> (reviewed, listed)
    ranked_reviewed: int  # images reviewed from the suggest ranking
    deepest_rank: int
    last_window: int  # how many of the last 200 ranked-and-reviewed there are (200 once far enough)
    last_window_listed: int
    left: Left | None = None  # what the audit (and a forms queue) say is left unreviewed

    @property
    def unreviewed(self) -> int:
        return SPLIT_SIZES[self.split] - self.reviewed

    @property
    def done(self) -> bool:
        return stopping_rule_met(self.split, self.last_window, self.last_window_listed, self.deepest_rank)


def status(ws: Workspace, without_forms: Collection[str] = ()) -> list[SplitStatus]:
    """Coverage per split and the yield of the last 200 reviewed from the ranking (the stopping rule).

    ``without_forms``: forms the audit's estimate should count as if the queue lacked them (a form
    chosen after the audit had found its images makes a stratum that flatters the estimate).
    """
    out = []
    queue = form_indices(ws, without_forms)
    for split in SPLITS:
        rows, _ = read_record_if_any(record_dir(ws), split)
        by_source: dict[str, list[int]] = {}
        ranked = []
        for r in rows:
            for kind in {source_kind(s) for s in r.sources}:
                counts = by_source.setdefault(kind, [0, 0])
                counts[0] += 1
                counts[1] += r.decision == "listed"
            ranks = [int(s.split("@")[1]) for s in r.sources if s.startswith("suggest:")]
            if ranks:
                ranked.append((min(ranks), r.decision == "listed"))
        ranked.sort()
        window = ranked[-WINDOW:]
        out.append(SplitStatus(split, len(rows), sum(r.decision == "listed" for r in rows),
                               {k: (v[0], v[1]) for k, v in sorted(by_source.items())}, len(ranked),
                               ranked[-1][0] if ranked else 0, len(window), sum(listed for _, listed in window),
                               left(split, rows, queue[split])))
    return out


@dataclass(frozen=True)
class RankingCheck:
    """The stopping rule measured on one ranking, whichever run decided each image."""

    split: str
    run: str
    depth: int  # ranks 1..depth all have a decision (reviewed, or in the working list)
    window: int  # the last min(200, depth) of them
    window_listed: int
    next_rank: int | None  # the first rank still undecided

    @property
    def done(self) -> bool:
        return stopping_rule_met(self.split, self.window, self.window_listed, self.depth)


def ranking_check(ws: Workspace, path: Path, run: str, listed: Mapping[str, set[int]]) -> list[RankingCheck]:
    """Walk a ranking in order, as the queue does; an image counts as decided once reviewed or listed.

    This lets a new, stronger ranking continue a review that another run began: images decided
    before count with their decision. The ranking should rank every image (made with nothing
    left out), or images listed before it was made would be missing from its window.
    """
    decided: dict[tuple[str, int], bool] = {}
    for split in SPLITS:
        for r in read_record_if_any(record_dir(ws), split)[0]:
            decided[(split, r.index)] = r.decision == "listed"
        for index in listed.get(split, ()):
            decided[(split, index)] = True
    out = []
    for split in SPLITS:
        order = [c for c in ranking_candidates(path, run) if c.split == split]
        if not order:
            continue
        depth = 0
        while depth < len(order) and (split, order[depth].index) in decided:
            depth += 1
        window = [decided[(split, c.index)] for c in order[max(0, depth - WINDOW):depth]]
        out.append(RankingCheck(split, run, depth, len(window), sum(window),
                                depth + 1 if depth < len(order) else None))
    return out


@dataclass(frozen=True)
class RaterAgreement:
    """Decisions against the majority of a study's raters (3 of 5 or more for one answer)."""

    agree: int
    disagree: list[tuple[str, int]]  # (split, index) where the decision differs from the majority
    no_majority: int


def rater_agreement(ws: Workspace, study: str = "northcutt2021") -> RaterAgreement:
    """``kept`` agrees with a majority for the MNIST label; ``listed`` with one for the alternative or neither."""
    path = ws.lists_dir / PUBLISHED
    rows = read_rows(path, PUBLISHED_COLUMNS)[0] if path.is_file() else []
    decided = {(split, r.index): r.decision for split in SPLITS for r in read_record_if_any(record_dir(ws), split)[0]}
    agree, disagree, no_majority = 0, [], 0
    for _, (split, index, _original, name, _alternative, given, alternative, neither) in rows:
        key = (split, int(index))
        if name != study or key not in decided or not given.isdigit():
            continue
        if int(given) >= 3:
            majority = "kept"
        elif int(alternative or 0) >= 3 or int(neither or 0) >= 3:
            majority = "listed"
        else:
            no_majority += 1
            continue
        if decided[key] == majority:
            agree += 1
        else:
            disagree.append(key)
    return RaterAgreement(agree, disagree, no_majority)
