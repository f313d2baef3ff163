"""``mnist-idk review reader``: blind readers and panels, the click layer over ``reader``.

The group is added to ``mnist-idk review`` by ``review_cli``; it is a module of its own because a
panel round (draw, make, fill, tally, decide) is a workflow of its own.
"""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import handle_errors, load_raw, with_workspace
from .errors import MnistIdkError
from .workspace import Workspace, normalize_version

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


@click.group("reader")
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
@click.option("--unread-for", type=click.IntRange(min=1), metavar="N",
              help="Leave out as controls every image a blind reading of the newest N releases' rounds (or of "
                   "rounds not released yet) has read: the control window of curation_lists/README.md (25), so "
                   "no image stands as a control round after round.")
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
                       unread_for: int | None, reread_controls: bool, seed: int, ranking: Path | None, readers: int,
                       out_dir: Path) -> None:
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
    checks = reviews.load_blind(ws)
    held = reader.read_leave_out(leave_out)
    if unread_for is not None:
        start, window = reader.unread_window(checks, ws.released_versions(), unread_for)
        for image in window:
            held.setdefault(image, ("", ws.lists_dir / reviews.RECORD / reviews.BLIND))
        click.echo(f"--unread-for {unread_for}: {len(window)} image(s) read since {start} are not controls", err=True)
    panel = reader.draw(reviews.load_record(ws, "working"), checks, reader.read_family(family),
                        {"listed": listed_controls, "kept": kept_controls}, wanted, exclude_notes, seed, predicted,
                        held, reread_controls)
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
                                           "one-panel-listed", "one-panel-weak"]),
              multiple=True, help="Only this kind (repeatable).  [default: all six]")
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
    that one panel has read and listed by majority; one-panel-weak: a listing that one panel has
    read and listed by a bare majority (2 of 3, 3 of 5). Each stood because the rule of its
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
@click.option("--by", metavar="COLUMN",
              help="With --ranking: order by this signal column instead, highest first, ties in the ranking's "
                   "order, e.g. knn_disagreement (the share of an image's nearest neighbours labelled otherwise, "
                   "which the networks do not share), margin, entropy or centroid_distance.")
@click.option("--top", type=click.IntRange(min=1), help="Only the first N (size it with the headroom `draw` prints).")
@click.option("--sample", type=click.IntRange(min=1), metavar="N",
              help="A random N of the images instead, in (split, index) order: a random check of what the line "
                   "decided (with --note ., of the whole record), whose share a round finds wrong estimates the "
                   "line's error rate.")
@click.option("--seed", type=int, default=0, show_default=True, help="With --sample: the same seed, the same images.")
@click.option("--not-source", "not_sources", multiple=True,
              type=click.Choice(["seed", "published", "suggest", "audit", "forms"]),
              help="Leave out images a source of this kind brought to review (repeatable), e.g. audit, whose "
                   "keeps the audit's own figures count.")
@click.option("--stratum", default="family", show_default=True, help="The stratum the CSV gives the images.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The family CSV (split,index,stratum) for `review reader draw`; never overwritten.")
@handle_errors
@with_workspace
def review_reader_family(ws: Workspace, labels: str, note: str, not_note: str | None, decision: str, include_read: bool,
                         only_split: str | None, precedent_overturned: bool, ranking: Path | None, toward: int | None,
                         by: str | None, top: int | None, sample: int | None, seed: int, not_sources: tuple[str, ...],
                         stratum: str, out: Path) -> None:
    """The images one written line decided, as the family of a per-image round.

    \b
    mnist-idk review reader family --label 4 --note 'closed|triang' --not-note 'open' \\
        --ranking build/ranking.csv --toward 9 --top 30 --stratum closed4 --out family.csv
    mnist-idk review reader draw family.csv --round v1.46.0 --digits 4,9 --kept-controls 30
    mnist-idk review reader family --label 0,1,2,3,4,5,6,7,8,9 --note . --split train \\
        --not-source audit --sample 30 --seed 313 --stratum named-kept --out random.csv

    Every image of those labels that the record kept (or listed) with a note naming the line, and
    that no panel has read, in the order to ask them: with --ranking, those the networks read most
    as --toward's digit (or doubt most, or score highest on --by's signal) first. Prints each with
    its score and note. With
    --precedent-overturned (and --note .), the line is the record's own precedents: the keeps that
    followed an image's form ("as train 32445") after that image was listed. With --sample, a
    seeded random N of them: the family of a random check.
    """
    from . import reader
    from . import review as reviews

    ws.require_working("review reader family")
    check_regex("--note", note)
    if not_note is not None:
        check_regex("--not-note", not_note)
    if toward is not None and ranking is None:
        raise MnistIdkError("--toward orders by a ranking: give --ranking too")
    if by is not None and ranking is None:
        raise MnistIdkError("--by orders by a ranking's column: give --ranking too")
    if by is not None and toward is not None:
        raise MnistIdkError("--by and --toward are two orders: give one")
    if sample is not None and (ranking is not None or top is not None):
        raise MnistIdkError("--sample draws at random: give no --ranking or --top with it")
    if out.exists():
        raise MnistIdkError(f"{out} already exists; nothing written (use another --out)")
    scores = None if ranking is None else reader.ranking_scores(ranking, toward, by)
    found = reader.family(reviews.load_record(ws, "working"), reviews.load_blind(ws), digit_set("--label", labels),
                          decision, note, not_note, not include_read, scores, precedent_overturned,
                          (only_split,) if only_split else reader.SPLITS, not_sources)
    chosen = found[:top] if sample is None else reader.sample(found, sample, seed)
    what = by or ("the networks' doubt" if toward is None else f"p({toward})")
    for m in chosen:
        score = "" if m.score is None else f"; {what} {m.score:.3f}"
        click.echo(f"{m.split} {m.index} (label {m.original}{score}): {m.note[:120]}")
    spread = [m.score for m in chosen if m.score is not None]
    click.echo(f"{len(chosen)} of {len(found)} {decision} image{'' if len(found) == 1 else 's'} whose note matches"
               + ("" if include_read else ", no panel has read")
               + (", whose precedent the record now decides the other way" if precedent_overturned else "")
               + (f", no {' or '.join(not_sources)} source" if not_sources else "")
               + (f", at random (seed {seed})" if sample is not None else "")
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
