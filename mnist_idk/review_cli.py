"""``mnist-idk review``: the curator's review queue, blind re-checks, consistency passes and blind readers.

A thin click layer over ``review``, ``blind``, ``consistency`` and ``coverage``; the ``reader``
subgroup (blind readers and panels) lives in ``reader_cli``. The group is added to ``mnist-idk``
by ``cli``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from .cli_common import handle_errors, labels_of, load_raw, with_workspace
from .errors import MnistIdkError
from .reader_cli import review_reader
from .workspace import Workspace, normalize_version


def strata(agreement, suffix: str = "", intervals: bool = False) -> str:
    """A blind round's agreement on the images first listed and first kept, e.g. "first listed: 9 of 15".

    ``intervals`` adds each share's 95% (Wilson) interval: a round of 20 that agrees on all 20
    says less than one of 200.
    """
    from .metrics import wilson

    def interval(agree: int, count: int) -> str:
        if not intervals:
            return ""
        low, high = wilson(agree, count)
        return f", 95% interval {low:.0%}-{high:.0%}"

    return "; ".join(f"first {first}: {agree} of {count}{suffix}{interval(agree, count)}"
                     for first, (agree, count) in (("listed", agreement.listed), ("kept", agreement.kept)) if count)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def review() -> None:
    """The review queue: look at the next candidates, record decisions, see coverage.

    \b
    mnist-idk review next --split test --batch 30      # sheets + a decisions CSV in build/review/
    mnist-idk review apply build/review/test-0001.csv  # after filling in decision, reason, note
    mnist-idk review status                            # reviewed, listed, the last-200 yield

    Candidates come from published studies of MNIST label errors first
    (curation_lists/published/), then from a recorded suggest ranking (--ranking, --run);
    --audit serves that ranking in a random order, --forms the forms queue of `review forms`.
    Decide by the definition in curation_lists/README.md: listed (with a reason), kept, or
    unsure (served again in a separate second-look pass; still unsure there means kept).
    `review blind` re-checks a round's decisions without the first one; `review consistency`
    decides a stratum of earlier decisions again by the lines drawn since; `review reader`
    hands either's sheet to a second reader as numbered images, the key kept apart.
    """


@review.command("next")
@click.option("--split", type=click.Choice(["train", "test", "all"]), default="all", show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=30, show_default=True, help="Candidates in this batch.")
@click.option("--ranking", type=click.Path(dir_okay=False, path_type=Path),
              help="A suggest CSV to continue with once the published candidates are reviewed.")
@click.option("--run", help="The recorded run (curation_lists/reviewed/runs.csv) that made --ranking.")
@click.option("--second-look", is_flag=True, help="Serve the images set aside as unsure, on their own sheets.")
@click.option("--audit", "audit_seed", type=click.IntRange(min=0), metavar="SEED",
              help="Serve --ranking's unreviewed images in a random order fixed by SEED instead of rank order "
                   "(sources audit-sSEED:RUN@RANK): a random sample of what the review has not reached, whose "
                   "listed share `review status` turns into an estimate of the IDK images left there. Audit "
                   "after the ranked review, with a ranking made with nothing left out.")
@click.option("--forms", "forms_queue", is_flag=True,
              help="Serve the forms queue instead (curation_lists/forms/candidates.csv, from `review forms`): "
                   "images whose holes contradict their label, which model rankings miss.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("build/review"),
              show_default=True, help="Where the sheets and the decisions CSV go.")
@click.option("--per-sheet", type=click.IntRange(min=1), default=10, show_default=True, help="Candidates per sheet.")
@handle_errors
@with_workspace
def review_next(ws: Workspace, split: str, batch: int, ranking: Path | None, run: str | None, second_look: bool,
                audit_seed: int | None, forms_queue: bool, out_dir: Path, per_sheet: int) -> None:
    """Write the next unreviewed candidates as sheets and a decisions CSV to fill in.

    Each sheet row shows the candidate large, then three typical members of its label and three
    of the digit the model or study prefers. Prints the sheets, then the decisions file.
    """
    from . import review as reviews

    ws.require_working("review next")
    ranked = None
    if ranking is not None:
        runs, _ = reviews.read_runs(reviews.record_dir(ws))
        if run not in runs:
            raise MnistIdkError(f"--run {run!r} is not recorded in {reviews.record_dir(ws) / reviews.RUNS}; "
                                "record the run (tool version, model, seed, command) first")
        ranked = reviews.ranking_candidates(ranking, run)
    if audit_seed is not None:
        if ranked is None or second_look:
            raise MnistIdkError("--audit draws from a ranking: give --ranking and --run (and not --second-look)")
        ranked = reviews.audit_candidates(ranked, audit_seed)
    if forms_queue:
        if ranked is not None or second_look:
            raise MnistIdkError("--forms is a queue of its own: not with --ranking, --audit or --second-look")
        ranked = reviews.form_candidates(ws)
    chosen = reviews.next_batch(ws, split, batch, ranked, second_look, alone=audit_seed is not None or forms_queue)
    name = f"{'second-look' if second_look else split}-{len(reviews.reviewed_keys(ws)):05d}"
    for path in reviews.write_batch(chosen, load_raw(ws), out_dir, name, per_sheet):
        click.echo(str(path))


@review.command("forms")
@handle_errors
@with_workspace
def review_forms(ws: Workspace) -> None:
    """Write the forms queue: every image whose holes contradict its label (curation_lists/forms/candidates.csv).

    By the bridge rule's holes: 8s with one hole high up or none (an upper loop over a lower part
    filled solid), 5s and 3s with a hole low down or two (a bowl that closes), 2s whose largest
    hole is a large loop low down with no ink running on past it (a looped 2 with no tail). Model
    rankings read many of these as their label; `review next --forms` serves the unreviewed ones.
    The file depends only on the raw images, so running this again rewrites the same bytes
    (about 15 s on MNIST, progress on stderr).
    """
    from . import forms
    from . import review as reviews

    ws.require_working("review forms")
    found = forms.find(load_raw(ws), progress=lambda line: click.echo(line, err=True))
    path = ws.lists_dir / forms.CANDIDATES
    reviews.write_files({path: forms.to_csv(found)})
    done = reviews.reviewed_keys(ws)
    for name in forms.names():
        mine = [f for f in found if f.form == name]
        click.echo(f"{name}: {len(mine)} images, {sum((f.split, f.index) not in done for f in mine)} unreviewed")
    click.echo(str(path))


@review.command("apply")
@click.argument("decisions", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--redecide", is_flag=True,
              help="The rows are images already reviewed, decided once more (a later look, a disagreeing "
                   "blind re-check): the new decision replaces the old one, the sources are merged.")
@handle_errors
@with_workspace
def review_apply(ws: Workspace, decisions: Path, redecide: bool) -> None:
    """Check a filled decisions CSV and merge it into the review record and the working lists.

    Every problem is reported with file:line and nothing is written unless all rows are sound.
    """
    from . import review as reviews

    counts = reviews.apply(ws, decisions, labels_of(load_raw(ws)), redecide)
    click.echo(f"applied {decisions}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))


@review.group("blind")
def review_blind() -> None:
    """The blind re-check: a random 10% of a round's decisions, decided again without the first.

    \b
    mnist-idk review blind draw --round v1.4.0                # sheets + blind-v1.4.0.csv in build/blind/
    mnist-idk review blind record build/blind/blind-v1.4.0.csv  # once a second reviewer filled it in

    A round is named for the release it leads to and draws from the decisions recorded since the
    newest release (--since). The sheets and the CSV carry no trace of the first decision: hand
    them to someone who has not seen the record. `record` compares; where the two disagree it
    writes the disagreements as a decisions CSV (beside the sheet) to decide once more, seeing
    both, and records everything when run again with --redecided.
    """


@review_blind.command("draw")
@click.option("--round", "round_", required=True, help="The release this round leads to, e.g. v1.4.0.")
@click.option("--since", help="Draw from the decisions recorded after this release.  [default: the newest]")
@click.option("--split", type=click.Choice(["train", "test", "all"]), default="all", show_default=True)
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), default=0.1, show_default=True,
              help="Share of the decisions the round re-checks; a later draw tops the round up to it.")
@click.option("--listed-fraction", type=click.FloatRange(0, 1, min_open=True),
              help="Share of the listed decisions to re-check, if not --fraction: deep in a ranking nearly every "
                   "decision is a keep, and a larger share measures the ones that change the dataset.")
@click.option("--skip-rechecked", is_flag=True,
              help="Leave out images an earlier round re-checked: for a round that takes on older decisions "
                   "(--since an early release) without drawing the later ones again.")
@click.option("--changed", is_flag=True,
              help="Also draw images reviewed before --since whose decision has changed since (a round "
                   "that re-checks the decisions the last round's re-decisions turned over).")
@click.option("--disagreed", metavar="ROUND",
              help="Draw instead from the images that ROUND's blind re-check disagreed on, whatever their "
                   "decision now (a third look at the contested ones); --since only names the release.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ranking", type=click.Path(dir_okay=False, path_type=Path),
              help="A suggest CSV: its predicted digit (where that is the label, the next likeliest) "
                   "fills the sheets' second reference column.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("build/blind"),
              show_default=True)
@click.option("--per-sheet", type=click.IntRange(min=1), default=10, show_default=True)
@handle_errors
@with_workspace
def review_blind_draw(ws: Workspace, round_: str, since: str | None, split: str, fraction: float,
                      listed_fraction: float | None, skip_rechecked: bool, changed: bool, disagreed: str | None,
                      seed: int, ranking: Path | None, out_dir: Path, per_sheet: int) -> None:
    """Draw a random share of the decisions since the newest release, as sheets and a blind CSV.

    Listed and kept decisions are drawn separately (--fraction of each, or --listed-fraction of
    the listed), so the agreement on each can be told apart. Prints, per split and first
    decision, how many there are since the release, how many this round already re-checks and
    how many are drawn now; then the sheets and the CSV to fill in.
    """
    from . import blind
    from . import review as reviews

    ws.require_working("review blind draw")
    round_ = normalize_version(round_)
    if since is None:
        released = ws.released_versions()
        if not released:
            raise MnistIdkError(f"{ws.lists_dir}: no release yet; nothing to draw since")
        since = released[-1]
    predicted = None
    if ranking is not None:
        predicted = {(c.split, c.index): c.predicted if c.reference is None else c.reference
                     for c in reviews.ranking_candidates(ranking, "ranking")}
    chosen, shares = blind.draw(ws, since, round_, split, fraction, seed, predicted, listed_fraction, skip_rechecked,
                                changed, disagreed)
    pool = f"round {normalize_version(disagreed)} disagreed on" if disagreed else f"since {normalize_version(since)}"
    for share in shares:
        click.echo(f"{share.split}, {share.first}: {share.decisions} decisions {pool}; "
                   f"round {round_} re-checks {share.checked}; drawn now {share.drawn}", err=True)
    if not chosen:
        raise MnistIdkError(f"round {round_} already re-checks its share of the decisions {pool}")
    for path in blind.write(chosen, round_, load_raw(ws), out_dir, per_sheet):
        click.echo(str(path))


@review_blind.command("record")
@click.argument("sheet", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--redecided", type=click.Path(dir_okay=False, path_type=Path),
              help="The disagreements decided once more (the decisions CSV a first run wrote, filled in).")
@click.option("--set-aside-no-majority", is_flag=True,
              help="Leave out (and name) rows whose panel has no majority, e.g. three unsure and two kept, "
                   "instead of refusing the sheet: they are not recorded as read, so a new panel can read them.")
@handle_errors
@with_workspace
def review_blind_record(ws: Workspace, sheet: Path, redecided: Path | None, set_aside_no_majority: bool) -> None:
    """Compare a filled blind CSV with the record, and record the round.

    Without disagreements, every row goes into reviewed/blind_recheck.csv at once. With some,
    the first run prints them (both decisions and notes), writes them as sheets and a decisions
    CSV beside SHEET and records nothing; decide each once more, then run again with
    --redecided: the rows, and the re-decisions (into the record and the working lists), are
    written in one step.
    """
    from . import blind
    from . import review as reviews

    splits = load_raw(ws)
    comparison = blind.compare(ws, sheet, labels_of(splits), set_aside_no_majority)
    for b in comparison.set_aside:
        click.echo(f"  set aside: {b.split} {b.index} (label {b.original}), {b.note.split(':')[0]}: no majority, "
                   "not recorded; give it to a new panel", err=True)
    rows = len(comparison.rows)
    disagreements = comparison.disagreements
    (agreement,) = reviews.agreement_by_round(comparison.checks())
    click.echo(f"round {comparison.round}: {rows} re-checked blind; {comparison.agree} agree "
               f"({comparison.agree / rows:.1%}); {len(disagreements)} disagree ({strata(agreement, ' agree')})")
    if disagreements and redecided is None:
        for b, first in disagreements:
            click.echo(f"  {b.split} {b.index} (label {b.original}): first {first.decision}: {first.note} | "
                       f"blind {b.decision}{' ' + b.reason if b.reason else ''}: {b.note}")
        paths = blind.write_disagreements(comparison, splits, sheet)
        for path in paths:
            click.echo(str(path))
        aside = " --set-aside-no-majority" if set_aside_no_majority else ""
        click.echo(f"nothing recorded yet: decide each once more in {paths[-1]}, then run\n"
                   f"  mnist-idk review blind record {sheet}{aside} --redecided {paths[-1]}", err=True)
        return
    counts = blind.record(ws, comparison, redecided, labels_of(splits))
    click.echo(f"recorded {rows} rows of round {comparison.round}; {counts['decided once more']} decided once more: "
               f"{counts['changed']} changed ({counts['now listed']} now listed, {counts['now kept']} now kept), "
               f"{counts['decided once more'] - counts['changed']} stand")


@review.group("consistency")
def review_consistency() -> None:
    """Protocol step 9: recorded decisions looked at again, blind, by lines drawn since.

    \b
    mnist-idk review consistency draw --round v1.24.0 --part keeps-b --ranking build/ranking.csv \\
        --decision kept --doubt-min 0.2 --doubt-max 0.5 --sample 100 --seed 9
    mnist-idk review consistency record build/consistency/v1.24.0-keeps-b

    `draw` serves a seeded random sample of one stratum of the record (a decision, a split, a
    band of the ranking's doubt 1 - p(label)), leaving out every image an earlier pass covered,
    as sheets and a fresh-look CSV with no trace of the recorded decision. Fill it in (listed,
    kept or unsure); give every look that differs from the record, or is unsure, a second look
    beside the rule's images in second.csv (split,index,decision,reason,note); apply what holds
    with `review apply --redecide`, blind re-check the changes (`review blind draw --changed`),
    then `record` writes both looks and the final decision into
    curation_lists/reviewed/consistency-<round>.csv.
    """


@review_consistency.command("draw")
@click.option("--round", "round_", required=True, help="The release this pass leads to, e.g. v1.24.0.")
@click.option("--part", required=True, help="A name for this pass within the round (e.g. keeps-sample); "
                                             "its rows in the round's file carry it.")
@click.option("--ranking", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A suggest CSV ranking every image (made with --include-reviewed and nothing left out): "
                   "its doubt defines the stratum, its digits fill the sheets' second reference column.")
@click.option("--decision", type=click.Choice(["kept", "listed", "all"]), default="all", show_default=True)
@click.option("--split", type=click.Choice(["train", "test", "all"]), default="all", show_default=True)
@click.option("--doubt-min", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Lowest 1 - p(label) by the ranking (its self_confidence column) in the stratum.")
@click.option("--doubt-max", type=click.FloatRange(0, 1), default=1.0, show_default=True,
              help="Highest, exclusive (1 includes 1).")
@click.option("--only", type=click.Path(dir_okay=False, path_type=Path),
              help="A CSV with columns split,index: draw only from these images (a family picked by its "
                   "notes or its form, e.g. every 7 whose note names a foot).")
@click.option("--sample", type=click.IntRange(min=1), help="Images to draw.  [default: the whole stratum]")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the pass (never overwritten).  [default: build/consistency/ROUND-PART]")
@click.option("--per-sheet", type=click.IntRange(min=1), default=10, show_default=True)
@handle_errors
@with_workspace
def review_consistency_draw(ws: Workspace, round_: str, part: str, ranking: Path, decision: str, split: str,
                            doubt_min: float, doubt_max: float, only: Path | None, sample: int | None, seed: int,
                            out: Path | None, per_sheet: int) -> None:
    """Draw a pass: order.csv, sheets, and the fresh-look CSV to fill in (printed last)."""
    from . import consistency
    from . import review as reviews

    ws.require_working("review consistency draw")
    round_ = normalize_version(round_)
    family = reviews.read_images(only) if only is not None else None
    population = consistency.draw(ws, ranking, round_, part, decision, split, (doubt_min, doubt_max), sample, seed,
                                  family)
    click.echo(f"{population.size} recorded decisions in the stratum ({population.covered} more covered by earlier "
               f"passes); drawn {len(population.drawn)} with seed {seed}", err=True)
    out = out or Path("build/consistency") / f"{round_}-{part}"
    for path in consistency.write(population, round_, part, load_raw(ws), out, per_sheet):
        click.echo(str(path))


@review_consistency.command("record")
@click.argument("pass_dir", metavar="PASS_DIR", type=click.Path(file_okay=False, path_type=Path))
@handle_errors
@with_workspace
def review_consistency_record(ws: Workspace, pass_dir: Path) -> None:
    """Write the pass in PASS_DIR into curation_lists/reviewed/consistency-<round>.csv.

    Checks first (every problem, file:line): every image has a fresh look, every fresh look that
    is unsure or differs from the recorded decision has a second look. The final column is the
    record's decision now, so run it after `review apply --redecide` and the blind re-check.
    Recording a part again replaces its rows.
    """
    from . import consistency

    target, counts = consistency.record(ws, pass_dir)
    click.echo(f"{target}: {counts['images']} images, {counts['second looks']} second looks, "
               f"{counts['changed']} changed from the recorded decision")


@review.command("status")
@click.option("--ranking", type=click.Path(dir_okay=False, path_type=Path),
              help="Also measure the stopping rule on this suggest CSV, walked in rank order, counting every "
                   "image already decided (by any run); make it with nothing left out.")
@click.option("--run", "run", help="The recorded run (curation_lists/reviewed/runs.csv) that made --ranking.")
@click.option("--without-form", "without_forms", multiple=True, metavar="FORM",
              help="Count the audit as if the forms queue lacked FORM (repeatable): a form added after the "
                   "audit had found its images makes a stratum that flatters the estimate of what is left.")
@handle_errors
@with_workspace
def review_status(ws: Workspace, ranking: Path | None, run: str | None, without_forms: tuple[str, ...]) -> None:
    """Coverage per split, by source, and the yield of the last 200 reviewed from the ranking.

    Without --ranking the rule uses the ranks recorded in each decision's source. With --ranking,
    it walks that ranking from the top: the depth is how far every image is decided, and the
    window is the last 200 images above that depth, whoever decided them. That is how a new,
    stronger ranking continues a review another run began.
    """
    from . import coverage, curation, forms, reader
    from . import review as reviews

    if (ranking is None) != (run is None):
        raise MnistIdkError("--ranking and --run go together")
    if run is not None and run not in reviews.read_runs(reviews.record_dir(ws))[0]:
        raise MnistIdkError(f"run {run!r} is not recorded in {reviews.record_dir(ws) / reviews.RUNS}")
    unknown = [f for f in without_forms if f not in forms.names()]
    if unknown:
        raise MnistIdkError(f"--without-form {unknown[0]!r}: not a form of table {forms.VERSION} "
                            f"(one of {', '.join(forms.names())})")

    for st in coverage.status(ws, without_forms):
        sources = ", ".join(f"{kind} {n} ({listed} listed)" for kind, (n, listed) in st.by_source.items())
        click.echo(f"{st.split}: reviewed {st.reviewed}, listed {st.listed}; by source: {sources or 'none'}")
        if st.ranked_reviewed:
            share = st.last_window_listed / st.last_window
            click.echo(f"  ranking: {st.ranked_reviewed} reviewed, deepest rank {st.deepest_rank}; last "
                       f"{st.last_window}: {st.last_window_listed} listed ({share:.1%}) -> "
                       + ("stopping rule met" if st.done else "continue"))
        estimate = st.left.estimate() if st.left else None
        if estimate is not None:
            middle, (low, high) = estimate
            left = st.left
            forms_part = (f" (the forms queue: {left.forms_reviewed:,} reviewed, {left.forms_listed} listed, "
                          f"{left.forms_unreviewed:,} to go; the audit counted outside it)"
                          if left.forms_reviewed or left.forms_unreviewed else "")
            click.echo(f"  audit: {left.audited} random unreviewed images decided, {left.audit_listed} listed "
                       f"({left.audit_listed / left.audited:.1%}) -> about {middle:,.0f} IDK images (95% interval "
                       f"{low:,.0f}-{high:,.0f}) among the {st.unreviewed:,} still unreviewed{forms_part}")
    raters = coverage.rater_agreement(ws)
    if raters.agree or raters.disagree:
        rated = raters.agree + len(raters.disagree)
        click.echo(f"raters' majority (Northcutt et al. 2021): {raters.agree} of {rated} decisions agree "
                   f"({raters.agree / rated:.0%}); {raters.no_majority} without a majority")
    checks = reviews.read_blind(reviews.record_dir(ws) / reviews.BLIND)[0] \
        if (reviews.record_dir(ws) / reviews.BLIND).is_file() else []
    for r in reviews.agreement_by_round(checks):
        click.echo(f"blind re-check {r.round or '(before rounds)'}: {r.agree} of {r.checked} agree "
                   f"({r.agree / r.checked:.1%}; {strata(r, intervals=True)}); {r.changed} changed when decided once more")
    pending = len(reviews.read_second_look(ws))
    click.echo(f"waiting for a second look: {pending}")
    record = reviews.load_record(ws, "working")
    read = reader.panel_read(record, checks)
    counts = Counter((r.decision, (split, r.index) in read) for split, rs in record.items() for r in rs)
    click.echo("read by a panel: " + ", ".join(
        f"{counts[decision, True]:,} of {counts[decision, True] + counts[decision, False]:,} {name}"
        for decision, name in (("listed", "listings"), ("kept", "keeps")))
        + " (`mnist-idk review reader family --label 0,1,2,3,4,5,6,7,8,9 --note .` lists the keeps none has read)")
    doubted = list(reader.contested(record, checks).values())
    click.echo("doubted by the blind readings: " + ", ".join(f"{doubted.count(k)} {k}" for k in reader.CONTESTED)
               + " (`mnist-idk review reader contested` lists them)")
    if ranking is not None:
        listed = curation.load(ws, curation.WORKING)
        for check in coverage.ranking_check(ws, ranking, run, {n: {e.index for e in es} for n, es in listed.entries.items()}):
            share = check.window_listed / check.window if check.window else 0.0
            following = f"; next undecided rank {check.next_rank}" if check.next_rank else ""
            click.echo(f"{check.split}, ranking {check.run}: decided to rank {check.depth}{following}; last "
                       f"{check.window}: {check.window_listed} listed ({share:.1%}) -> "
                       + ("stopping rule met" if check.done else "continue"))


review.add_command(review_reader)
