"""``mnist-idk review``: the curator's review queue, blind re-checks, consistency passes and blind readers.

A thin click layer over ``review``, ``blind``, ``consistency``, ``reader`` and ``coverage``; the
commands are added to ``mnist-idk`` by ``cli``.
"""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import handle_errors, labels_of, load_raw, with_workspace
from .errors import MnistIdkError
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


def digit_set(option: str, text: str) -> set[int]:
    """The digits of a comma-separated option such as ``--digits 8,6``, or a clear error."""
    parts = [d.strip() for d in text.split(",")]
    if not all(len(d) == 1 and d.isdigit() for d in parts):
        raise MnistIdkError(f"{option} {text!r}: give digits 0-9 separated by commas, e.g. 8,6")
    return {int(d) for d in parts}


def check_regex(option: str, pattern: str) -> None:
    """Refuse an option that is not a regular expression, naming it and what is wrong."""
    import re

    try:
        re.compile(pattern)
    except re.error as exc:
        raise MnistIdkError(f"{option} {pattern!r}: not a regular expression ({exc})") from None


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
@handle_errors
@with_workspace
def review_blind_record(ws: Workspace, sheet: Path, redecided: Path | None) -> None:
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
    comparison = blind.compare(ws, sheet, labels_of(splits))
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
        click.echo(f"nothing recorded yet: decide each once more in {paths[-1]}, then run\n"
                   f"  mnist-idk review blind record {sheet} --redecided {paths[-1]}", err=True)
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


@review.group("reader")
def review_reader() -> None:
    """Hand a sheet to a second reader who must not know which images they are.

    \b
    mnist-idk review reader make build/blind/blind-v1.25.0.csv --out build/readers/r1 --seed 1
    mnist-idk review reader fill build/blind/blind-v1.25.0.csv --key build/readers/r1.key.csv \\
        build/readers/r1/decisions.csv

    A blind sheet or a consistency pass's fresh-look CSV names every image by split and index,
    and curation_lists/README.md names many indices with their decisions. `make` writes a
    folder to give the reader instead: the images as item01, item02, ... in a seeded random
    order (large PNG and pixel text), sheets beside typical digits captioned by item only,
    any rule images (--refs), the instructions with the definition (and --rules) and a
    decisions.csv to fill. The key (item -> split, index) is written outside the folder: keep
    it from the reader. `fill` writes the reader's decisions back into the sheet, which is then
    recorded as usual (`review blind record`, `review consistency record`). For a panel, make
    a folder for each reader (its own --seed) and fill the sheet with all their decisions:
    their majority goes in; `tally` counts the filled sheet by stratum. `draw` writes a panel
    round's sheet: a family of images under question beside controls the record agrees on;
    `decide` fills its disagreements by the round's rule, for `review blind record --redecided`.
    """


@review_reader.command("draw")
@click.argument("family", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--round", "round_", required=True, help="The release this round leads to, e.g. v1.30.0.")
@click.option("--listed-controls", type=click.IntRange(min=0), default=15, show_default=True,
              help="Listed images of other forms to read beside the family: a panel that keeps the family but "
                   "lists these is not merely lenient.")
@click.option("--kept-controls", type=click.IntRange(min=0), default=5, show_default=True,
              help="Kept images, so that a reader does not see listings alone.")
@click.option("--digits", metavar="D,D,...", help="Labels the controls are drawn from.  [default: the family's]")
@click.option("--exclude-notes", metavar="REGEX",
              help="Leave out controls whose recorded note matches (case-insensitive): the words of the rule "
                   "under question, so no control rests on it.")
@click.option("--leave-out", "leave_out", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A CSV split,index (e.g. another chunk's strata.csv) whose images are not drawn as controls: "
                   "for a round read in chunks, or beside another round, before it is recorded. A family image "
                   "that such a file holds as a control is refused.")
@click.option("--reread-controls", is_flag=True,
              help="Also draw controls from images read more than once where every reading agrees (a listing "
                   "the blind re-check and a unanimous panel both listed): for when the images read once are "
                   "used up.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ranking", type=click.Path(dir_okay=False, path_type=Path),
              help="A suggest CSV: its predicted digit fills the sheet's second reference column.")
@click.option("--readers", type=click.IntRange(min=1), default=5, show_default=True,
              help="How many readers the plan gives the sheet: only for the printed headroom of the per-image "
                   "rule (how many control votes the other way a unanimous image can bear).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("build/panel"),
              show_default=True)
@handle_errors
@with_workspace
def review_reader_draw(ws: Workspace, family: Path, round_: str, listed_controls: int, kept_controls: int,
                       digits: str | None, exclude_notes: str | None, leave_out: tuple[Path, ...],
                       reread_controls: bool, seed: int, ranking: Path | None, readers: int, out_dir: Path) -> None:
    """Draw a panel round: FAMILY (a CSV split,index[,stratum]) beside controls, as a sheet and its strata.

    \b
    mnist-idk review reader draw family.csv --round v1.30.0 --exclude-notes 'bridge|faint'

    The family is what the round asks about: the images one written rule decided, say, chosen
    by the round's plan (write it down before the reading). Controls are drawn at random from
    images the record and exactly one blind reading agree on (listed, or kept, by the first
    decision, the blind reading and the final decision; a panel's reading only where every reader
    agreed), so none is a control twice (with --reread-controls, images every one of whose readings
    agrees, when those are used up). Writes OUT_DIR/blind-ROUND.csv
    (hand it out with `review reader make`, once per reader) and OUT_DIR/strata.csv (for `review
    reader tally --compare family:control-listed`); prints how many images each control was drawn from,
    and, for a round decided one by one, how many control votes the other way a unanimous image can
    bear before the bound 0.01/asked is out of reach (size the family before the reading).
    """
    from collections import Counter

    from . import reader
    from . import review as reviews

    ws.require_working("review reader draw")
    round_ = normalize_version(round_)
    wanted = None if digits is None else digit_set("--digits", digits)
    if exclude_notes is not None:
        check_regex("--exclude-notes", exclude_notes)
    predicted = None
    if ranking is not None:
        predicted = {(c.split, c.index): c.predicted if c.reference is None else c.reference
                     for c in reviews.ranking_candidates(ranking, "ranking")}
    panel = reader.draw(reviews.load_record(ws, "working"), reviews.load_blind(ws), reader.read_family(family),
                        {"listed": listed_controls, "kept": kept_controls}, wanted, exclude_notes, seed, predicted,
                        reader.read_leave_out(leave_out), reread_controls)
    strata = Counter(stratum for _, stratum in panel.images)
    for stratum in sorted(strata):
        drawn_from = f" (drawn from {panel.eligible[stratum]})" if stratum in panel.eligible else ""
        click.echo(f"{stratum}: {strata[stratum]} image{'' if strata[stratum] == 1 else 's'}{drawn_from}", err=True)
    asked = sum(n for stratum, n in strata.items() if not stratum.startswith("control"))
    for decision, wanted_controls in (("kept", listed_controls), ("listed", kept_controls)):
        if asked and wanted_controls:
            room = reader.headroom(asked, readers, wanted_controls)
            other = "kept" if decision == "listed" else "listed"
            rule = f"one by one (`decide --per-image ... --toward {decision}`), {asked} asked: "
            click.echo(rule + (f"{readers} of {readers} readers pass only while they vote {decision} on at most {room} "
                               f"of the {readers * wanted_controls} votes on {other} controls" if room is not None else
                               f"not even {readers} of {readers} readers can pass, whatever the {other} controls' "
                               f"votes: ask fewer images, or give the sheet more readers or controls"), err=True)
    for path in reader.write_panel(panel, round_, out_dir):
        click.echo(str(path))


@review_reader.command("contested")
@click.option("--kind", type=click.Choice(["panels-kept", "one-reader-kept", "one-reader-listed", "one-panel-kept",
                                           "one-panel-listed"]),
              multiple=True, help="Only this kind (repeatable).  [default: all five]")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write them as a family CSV (split,index,stratum; the stratum is the kind) for "
                   "`review reader draw`; never overwritten.")
@handle_errors
@with_workspace
def review_reader_contested(ws: Workspace, kind: tuple[str, ...], out: Path | None) -> None:
    """The decisions the blind readings doubt: the next per-image round's family.

    \b
    mnist-idk review reader contested --out family.csv
    mnist-idk review reader draw family.csv --round v1.36.0 --listed-controls 20

    panels-kept: every panel that read it (two or more) kept it by majority; one-reader-kept: no
    panel has read it, and a blind reader reading alone kept it; one-reader-listed: a keep that a
    blind reader reading alone listed, and no panel has read; one-panel-kept: a listing that one
    panel has read (most often as a listed control) and kept by majority; one-panel-listed: a keep
    that one panel has read and listed by majority. Each stood because the rule of its
    round was about a family, or one reader is not enough; ask of each alone (`review reader
    decide --per-image`, with --toward listed for keeps). Prints each with its votes and note.
    """
    from . import reader
    from . import review as reviews

    ws.require_working("review reader contested")
    record = reviews.load_record(ws, "working")
    checks = reviews.load_blind(ws)
    found = {image: k for image, k in reader.contested(record, checks).items() if not kind or k in kind}
    if out is not None and out.exists():
        raise MnistIdkError(f"{out} already exists; nothing written (use another --out)")
    now, read = reader.by_image(record), reader.readings(checks)
    for (split, index), k in found.items():
        votes = ", ".join(f"{c.round} {reader.votes_of(c.blind_note) or c.blind[0].upper()}" for c in read[split, index])
        click.echo(f"{k}: {split} {index} (label {now[split, index].original}; {votes}): {now[split, index].note[:120]}")
    counts = {k: sum(v == k for v in found.values()) for k in reader.CONTESTED if not kind or k in kind}
    click.echo(", ".join(f"{n} {k}" for k, n in counts.items()), err=True)
    if out is not None:
        reviews.write_files({out: reviews.csv_text(reader.STRATA_COLUMNS, [[s, i, k] for (s, i), k in found.items()])})
        click.echo(str(out), err=True)


@review_reader.command("family")
@click.option("--label", "labels", required=True, metavar="D,D,...", help="The labels of the line's images, e.g. 4.")
@click.option("--note", required=True, metavar="REGEX",
              help="What the recorded note says when the line decided it (case-insensitive), e.g. 'closed|triang'.")
@click.option("--not-note", metavar="REGEX", help="Leave out notes that match this too (another line's words).")
@click.option("--decision", type=click.Choice(["kept", "listed"]), default="kept", show_default=True,
              help="The decision the line made.")
@click.option("--include-read", is_flag=True,
              help="Also images a panel has read (by default only those none has: the next tranche of a line "
                   "is then simply the next --top).")
@click.option("--split", "only_split", type=click.Choice(["train", "test"]),
              help="Only images of this split (e.g. test, the images models are scored on). [default: both]")
@click.option("--precedent-overturned", is_flag=True,
              help="Only images whose note names as its form ('as train N', \"train N's form\") an image the record "
                   "now decides the other way (e.g. keeps whose model image has since been listed).")
@click.option("--ranking", type=click.Path(dir_okay=False, path_type=Path),
              help="A suggest CSV made with nothing left out: order the family by it, highest first.")
@click.option("--toward", type=click.IntRange(0, 9), metavar="D",
              help="With --ranking: order by p(D), the images the networks read most as D (e.g. 9 for closed-head "
                   "4s). [default: by the networks' doubt, 1 - p(label)]")
@click.option("--top", type=click.IntRange(min=1), help="Only the first N (size it with the headroom `draw` prints).")
@click.option("--stratum", default="family", show_default=True, help="The stratum the CSV gives the images.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The family CSV (split,index,stratum) for `review reader draw`; never overwritten.")
@handle_errors
@with_workspace
def review_reader_family(ws: Workspace, labels: str, note: str, not_note: str | None, decision: str, include_read: bool,
                         only_split: str | None, precedent_overturned: bool, ranking: Path | None, toward: int | None,
                         top: int | None, stratum: str, out: Path) -> None:
    """The images one written line decided, as the family of a per-image round.

    \b
    mnist-idk review reader family --label 4 --note 'closed|triang' --not-note 'open' \\
        --ranking build/ranking.csv --toward 9 --top 30 --stratum closed4 --out family.csv
    mnist-idk review reader draw family.csv --round v1.46.0 --digits 4,9 --kept-controls 30

    Every image of those labels that the record kept (or listed) with a note naming the line, and
    that no panel has read, in the order to ask them: with --ranking, those the networks read most
    as --toward's digit (or doubt most) first. Prints each with its score and note. With
    --precedent-overturned (and --note .), the line is the record's own precedents: the keeps that
    followed an image's form ("as train 32445") after that image was listed.
    """
    from . import reader
    from . import review as reviews

    ws.require_working("review reader family")
    check_regex("--note", note)
    if not_note is not None:
        check_regex("--not-note", not_note)
    if toward is not None and ranking is None:
        raise MnistIdkError("--toward orders by a ranking: give --ranking too")
    if out.exists():
        raise MnistIdkError(f"{out} already exists; nothing written (use another --out)")
    scores = None if ranking is None else reader.ranking_scores(ranking, toward)
    found = reader.family(reviews.load_record(ws, "working"), reviews.load_blind(ws), digit_set("--label", labels),
                          decision, note, not_note, not include_read, scores, precedent_overturned,
                          (only_split,) if only_split else reader.SPLITS)
    chosen = found[:top]
    what = "the networks' doubt" if toward is None else f"p({toward})"
    for m in chosen:
        score = "" if m.score is None else f"; {what} {m.score:.3f}"
        click.echo(f"{m.split} {m.index} (label {m.original}{score}): {m.note[:120]}")
    spread = [m.score for m in chosen if m.score is not None]
    click.echo(f"{len(chosen)} of {len(found)} {decision} image{'' if len(found) == 1 else 's'} whose note matches"
               + ("" if include_read else ", no panel has read")
               + (", whose precedent the record now decides the other way" if precedent_overturned else "")
               + (f"; {what} {min(spread):.3f} to {max(spread):.3f}" if spread else ""), err=True)
    if not chosen:
        raise MnistIdkError("no image matches: nothing written")
    reviews.write_files({out: reviews.csv_text(reader.STRATA_COLUMNS, [[m.split, m.index, stratum] for m in chosen])})
    click.echo(str(out), err=True)


@review_reader.command("make")
@click.argument("sheet", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="The reader's folder (never overwritten).  [default: reader-SHEETNAME beside SHEET]")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path),
              help="Where the key goes, outside the folder.  [default: OUT.key.csv beside OUT]")
@click.option("--seed", type=int, default=0, show_default=True, help="Shuffles the items; one per reader.")
@click.option("--refs", type=click.Path(dir_okay=False, path_type=Path),
              help="A CSV name,split,index,text of rule images to show by name (REF-<name>), e.g. the images "
                   "a family's rules cite; none of them may be an item.")
@click.option("--rules", type=click.Path(dir_okay=False, path_type=Path),
              help="A Markdown file of this family's decision rules, added to the instructions.")
@click.option("--per-sheet", type=click.IntRange(min=1), default=10, show_default=True)
@handle_errors
@with_workspace
def review_reader_make(ws: Workspace, sheet: Path, out: Path | None, key: Path | None, seed: int, refs: Path | None,
                       rules: Path | None, per_sheet: int) -> None:
    """Write a reader's folder for SHEET (items numbered, no index) and its key; the key printed last."""
    from . import reader

    out = out or sheet.parent / f"reader-{sheet.stem}"
    key = key or out.with_name(f"{out.name}.key.csv")
    text = ""
    if rules is not None:
        try:
            text = rules.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise MnistIdkError(f"{rules}: cannot read the rules ({exc.__class__.__name__})") from None
    paths = reader.make(sheet, load_raw(ws), out, key, seed, refs, text, per_sheet)
    click.echo(f"{out}: {sum(p.name.startswith('item') and p.suffix == '.png' for p in paths)} items for the reader; "
               f"the key is {key} (keep it from the reader)", err=True)
    for path in paths:
        click.echo(str(path))


@review_reader.command("fill")
@click.argument("sheet", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("decisions", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--key", "keys", required=True, multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The key `make` wrote for a reader's folder; once per DECISIONS file, in the same order.")
@handle_errors
def review_reader_fill(sheet: Path, decisions: tuple[Path, ...], keys: tuple[Path, ...]) -> None:
    """Write readers' DECISIONS (their decisions.csv) into SHEET's decision, reason and note columns.

    \b
    mnist-idk review reader fill SHEET r1/decisions.csv --key r1.key.csv
    mnist-idk review reader fill SHEET r1/decisions.csv r2/decisions.csv r3/decisions.csv \\
        --key r1.key.csv --key r2.key.csv --key r3.key.csv

    One reader's decisions go in as they are. Several readers of the same sheet (a panel) go in
    as their majority: listed or kept when more than half say so, else unsure (a second look
    decides it); the note gives every reader's decision and note. Checks first, and writes
    nothing if anything is wrong (file:line): every item of each key decided once (listed with
    a reason, kept or unsure, a note always), every image on the sheet and not yet filled in.
    The sheet is replaced in one step.
    """
    from . import reader

    if len(keys) != len(decisions):
        raise MnistIdkError(f"{len(decisions)} DECISIONS file(s) but {len(keys)} --key: one key per reader, in order")
    counts = reader.fill(sheet, list(zip(keys, decisions)))
    click.echo(f"{sheet}: {sum(counts.values())} rows filled in from {len(decisions)} reader(s): "
               + ", ".join(f"{counts[d]} {d}" for d in ("listed", "kept", "unsure")))


@review_reader.command("decide")
@click.argument("sheet", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--strata", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The round's strata.csv (split,index,stratum).")
@click.option("--change", multiple=True, metavar="STRATUM",
              help="A stratum whose images take the panel's majority (the round's rule was met for it); "
                   "every other disagreement stands.")
@click.option("--seen", type=click.Path(dir_okay=False, path_type=Path),
              help="A CSV split,index,seen: what the curator saw, large, for every image that changes.")
@click.option("--per-image", "per_image", metavar="STRATUM:CONTROL",
              help="Decide STRATUM's images one by one: an image moves to --toward iff at least --at-least "
                   "readers vote so and `tally --per-image`'s p is under 0.01 / its images.")
@click.option("--at-least", type=click.IntRange(min=1),
              help="With --per-image: the readers who must vote --toward for an image (e.g. 4 of a panel of 5).")
@click.option("--toward", type=click.Choice(["kept", "listed"]), default="kept", show_default=True,
              help="With --per-image: keep listings (CONTROL: listed controls), or list keeps (CONTROL: kept "
                   "controls, whose listing votes give the rate).")
@click.option("--why", default="", help="Why these strata change, put before each changed note "
                                        "(e.g. 'round v1.30.0 retired the faint-bridge rule').")
@handle_errors
@with_workspace
def review_reader_decide(ws: Workspace, sheet: Path, strata: Path, change: tuple[str, ...], seen: Path | None,
                         per_image: str | None, at_least: int | None, toward: str, why: str) -> None:
    """Decide a panel round's disagreements by its rule: --change strata take the panel's majority, the rest stand.

    \b
    mnist-idk review blind record build/panel/blind-v1.30.0.csv     # writes the disagreements
    mnist-idk review reader decide build/panel/blind-v1.30.0.csv --strata build/panel/strata.csv \
        --change family --seen seen.csv --why "round v1.30.0 retired the faint-bridge rule"
    mnist-idk review blind record build/panel/blind-v1.30.0.csv --redecided build/panel/disagreements-v1.30.0.csv

    Fills the disagreements CSV beside SHEET: each changed image's note says why, how the panel
    read it (e.g. K/K/L) and what you saw (--seen: required for every change); each image that
    stands keeps its decision and note, with how the panel read it. Without --change (a round
    whose rule was not met), everything stands. Nothing is written if anything is missing.

    For a few contested listings (rounds v1.33.0 on), --per-image STRATUM:CONTROL --at-least N
    decides each image of STRATUM alone against the readers' keep rate on CONTROL; with --toward
    listed, contested keeps against the readers' listing rate on kept controls.
    """
    from . import curation, reader
    from . import review as reviews

    ws.require_working("review reader decide")
    looks = reader.read_seen(seen) if seen is not None else {}
    lists = curation.load(ws)
    listed = {(name, e.index): (e.reason, e.note) for name, entries in lists.entries.items() for e in entries}
    if (per_image is None) != (at_least is None):
        raise MnistIdkError("--per-image and --at-least go together: the stratum, and how many readers must agree")
    chosen: dict[tuple[str, int], str] = {}
    if per_image is not None:
        stratum, _, control = per_image.partition(":")
        _, rule = reader.alone(sheet, strata, stratum, control, at_least, toward=toward)
        chosen = {image: toward for image, (_, _, passes) in rule.items() if passes}
        for (split, index), (vote, p, passes) in rule.items():
            click.echo(f"{split} {index}: {vote}, p = {p:.2g}: {f'{toward} by the rule' if passes else 'not ' + toward}",
                       err=True)
    target, counts = reader.decide(sheet, strata, reviews.load_record(ws, "working"), listed, set(change), looks, why,
                                   chosen)
    click.echo(f"{target}: {counts['changed']} take the panel's majority, {counts['stand']} stand; record them with "
               f"`mnist-idk review blind record {sheet} --redecided {target}`")


@review_reader.command("tally")
@click.argument("sheet", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--strata", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="A CSV split,index,stratum naming the stratum of every image on SHEET (a family, its controls).")
@click.option("--compare", "comparisons", multiple=True, metavar="STRATUM:CONTROL",
              help="Also test whether the panel kept STRATUM more often than CONTROL (one-sided Fisher exact p).")
@click.option("--per-image", "per_image", multiple=True, metavar="STRATUM:CONTROL",
              help="Also ask, for each image of STRATUM alone, whether its readers kept it more often than they "
                   "keep CONTROL's images (every reader's vote counted): for a few contested images.")
@click.option("--toward", type=click.Choice(["kept", "listed"]), default="kept", show_default=True,
              help="With --per-image: count keeping votes (contested listings), or listing votes (contested keeps).")
@handle_errors
def review_reader_tally(sheet: Path, strata: Path, comparisons: tuple[str, ...], per_image: tuple[str, ...],
                        toward: str) -> None:
    """A filled SHEET's decisions by stratum: what a round's rule is decided on.

    \b
    mnist-idk review reader tally blind-v1.27.0.csv --strata strata.csv --compare 6h:control-listed

    Each stratum's share kept comes with its 95% (Wilson) interval. A round that retires a rule
    asks whether a panel keeps the rule's images more often than it keeps ordinary listings (a
    lenient panel keeps both): --compare prints that p for each pair.

    A family of a few images has no power against its controls (3 of 4 kept against 1 of 15 is
    p = 0.016). --per-image asks of each image alone: with r the upper end of the 95% interval of
    the readers' keep rate on CONTROL (votes, not majorities), how likely would readers keeping at
    rate r keep it as often as they did? It prints that p beside 0.01 divided by the images asked.
    """
    from . import reader
    from .metrics import wilson

    counts = reader.tally(sheet, strata)
    pairs = [comparison.partition(":")[::2] for comparison in comparisons]
    singles = [comparison.partition(":")[::2] for comparison in per_image]
    for option, comparison, pair in [*(("--compare", c, p) for c, p in zip(comparisons, pairs)),
                                     *(("--per-image", c, p) for c, p in zip(per_image, singles))]:
        missing = [s for s in pair if s not in counts]  # every pair checked before anything is printed
        if missing:
            raise MnistIdkError(f"{option} {comparison}: no stratum {', '.join(map(repr, missing))} in {strata} "
                                f"(strata: {', '.join(sorted(counts))})")
    for stratum in sorted(counts):
        c = counts[stratum]
        low, high = wilson(c["kept"], sum(c.values()))
        click.echo(f"{stratum}: {sum(c.values())} images, {c['listed']} listed, {c['kept']} kept, {c['unsure']} unsure "
                   f"(kept {c['kept'] / sum(c.values()):.0%}, 95% interval {low:.0%}-{high:.0%})")
    for name, control in pairs:
        a, b = counts[name], counts[control]
        p = reader.kept_more_often(a["kept"], sum(a.values()), b["kept"], sum(b.values()))
        click.echo(f"{name} kept {a['kept']} of {sum(a.values())} against {control} {b['kept']} of {sum(b.values())}: "
                   f"one-sided Fisher exact p = {p:.2g}")
    letter = toward[0].upper()
    for name, control in singles:
        (control_toward, control_votes, rate), rule = reader.alone(sheet, strata, name, control, toward=toward)
        for (split, index), (vote, p, under) in rule.items():
            readers = vote.replace("/", "")
            click.echo(f"{name} {split} {index}: {vote}, {toward} by {readers.count(letter)} of {len(readers)}; "
                       f"against {control}'s {control_toward} of {control_votes} votes {toward} (rate at most "
                       f"{rate:.0%}): p = {p:.2g}, {'under' if under else 'not under'} 0.01/{len(rule)}")


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
    doubted = list(reader.contested(reviews.load_record(ws, "working"), checks).values())
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
