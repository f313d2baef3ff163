"""The ``mnist-idk`` command: a thin click layer over the Python API.

User mistakes raise ``MnistIdkError``; they are printed as ``error: ...`` with exit status 2 and
never as a traceback.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from .errors import MnistIdkError
from .workspace import Workspace, normalize_version

EXIT_USAGE = 2


def handle_errors(command):
    """Turn ``MnistIdkError`` into a clean message and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MnistIdkError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)

    return wrapper


def progress_printer(quiet: bool):
    """Step messages to stderr, so stdout stays clean for scripts."""
    if quiet:
        return lambda message: None
    return lambda message: click.echo(f"... {message}", err=True)


raw_dir_option = click.option(
    "--raw-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MNIST_IDK_RAW_DIR",
    help="Directory with the four raw MNIST files (.gz or not). [default: raw/mnist of the checkout, "
         "else the per-user cache; env MNIST_IDK_RAW_DIR]",
)
lists_dir_option = click.option(
    "--lists-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The curation_lists directory to use. [default: the checkout containing the current directory, "
         "else the releases shipped with mnist-idk; env MNIST_IDK_LISTS_DIR]",
)
version_option = click.option(
    "--version",
    "version",
    help="Curation version: a release such as v1.0.0, or 'working' for the unreleased lists. "
         "[default: working in a checkout, else the newest shipped release]",
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="Print no progress messages.")
build_dir_argument = click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("build/mnist_idk")
)


def with_workspace(command):
    """Give the command ``--lists-dir`` and ``--raw-dir``, and one resolved ``ws: Workspace``.

    The workspace is announced on stderr when a user might not expect it (found above the
    current directory, set by the environment, or the shipped releases).
    """

    @functools.wraps(command)
    def wrapper(*args, lists_dir: Path | None = None, raw_dir: Path | None = None, **kwargs):
        ws = Workspace.find(lists_dir, raw_dir)
        if not ws.obvious:
            click.echo(f"... using {ws.describe()}", err=True)
        return command(*args, ws=ws, **kwargs)

    return lists_dir_option(raw_dir_option(wrapper))


def load_raw(ws: Workspace) -> dict:
    """Both splits, verified; commands that draw images or check lists need them."""
    from .raw import load_splits

    return load_splits(ws.raw_dir)


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


def labels_of(splits: dict) -> dict:
    return {name: split.labels for name, split in splits.items()}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Build and publish MNIST-IDK: MNIST with an 11th class, IDK, for undecidable digits."""


@main.command()
@version_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("build/mnist_idk"),
    show_default=True,
    help="Output directory; replaced atomically when the new build has validated.",
)
@click.option("--workers", type=click.IntRange(min=1), help="Processes for PNG encoding. [default: all cores]")
@click.option("--no-validate", is_flag=True, help="Skip validation of the build (faster; for benchmarks).")
@quiet_option
@handle_errors
@with_workspace
def build(ws: Workspace, version: str | None, out: Path, workers: int | None, no_validate: bool, quiet: bool) -> None:
    """Build the 11-class dataset: Parquet shards + dataset card in OUT.

    Reads the raw IDX files and one version of the curation lists, writes exactly what
    push_to_hub would upload, validates it, then moves it into place.
    """
    from .build import build as run_build

    result = run_build(
        ws, out, version, workers=workers, validate=not no_validate, progress=progress_printer(quiet)
    )
    listed = {split: len(entries) for split, entries in result.curation.entries.items()}
    click.echo(
        f"built {result.out} (curation {result.curation.version}; "
        + ", ".join(f"{split} {n} rows, {listed[split]} relabelled" for split, n in result.rows.items())
        + ")"
    )


@main.command()
@build_dir_argument
@click.option("--version", "version", help="Curation version to check against. [default: the one the card names]")
@click.option("--skip-load-dataset", is_flag=True, help="Do not also load the build with datasets.load_dataset.")
@handle_errors
@with_workspace
def validate(ws: Workspace, directory: Path, version: str | None, skip_load_dataset: bool) -> None:
    """Check a build: schema, counts, every pixel and label, and the card's metadata."""
    from .validate import validate_build

    problems = validate_build(ws, directory, version, with_load_dataset=not skip_load_dataset)
    if problems:
        raise MnistIdkError(f"{directory}: {len(problems)} problem(s):\n" + "\n".join(problems))
    click.echo(f"{directory}: valid")


@main.command()
@click.option("--no-raw", is_flag=True, help="Skip checks that need the raw files (original labels).")
@handle_errors
@with_workspace
def lint(ws: Workspace, no_raw: bool) -> None:
    """Check the curation lists: format, indices, original labels, reasons, released files."""
    from . import curation, review

    ws.require_working("lint")
    problems = review.lint(ws, labels=None if no_raw else labels_of(load_raw(ws)))
    if problems:
        raise MnistIdkError(curation.format_problems(problems))
    click.echo(f"{ws.lists_dir}: lists are clean")


@main.command()
@build_dir_argument
@click.option("--repo-id", envvar="MNIST_IDK_REPO_ID", required=True,
              help="Hub dataset repo, NAMESPACE/NAME. [env MNIST_IDK_REPO_ID]")
@click.option("--revision", default="main", show_default=True, help="Branch to commit to.")
@click.option("--create-pr", is_flag=True, help="Open a Hub pull request instead of committing to the branch.")
@click.option("--private", is_flag=True, help="Create the repo as private if it does not exist yet.")
@click.option("--dry-run", is_flag=True, help="Print the plan (files to add/update/delete, tag) and write nothing.")
@click.option("--allow-unreleased", is_flag=True, help="Allow pushing a build of the working lists (no tag).")
@click.option("--message", "-m", help="Commit description. [default: curation version and build digest]")
@quiet_option
@handle_errors
@with_workspace
def push(ws: Workspace, directory: Path, repo_id: str, revision: str, create_pr: bool, private: bool, dry_run: bool,
         allow_unreleased: bool, message: str | None, quiet: bool) -> None:
    """Publish a build to the Hub in one atomic commit, tagged with its curation version.

    Validates the build, compares it with the remote branch by file hashes, and commits only what
    differs (stale remote files are deleted in the same commit). Pushing the same build twice makes
    no commit. Authenticates with HF_TOKEN or the token saved by `hf auth login`.
    """
    from .push import push as run_push

    result = run_push(ws, directory, repo_id, revision, create_pr=create_pr, private=private, dry_run=dry_run,
                      allow_unreleased=allow_unreleased, message=message,
                      progress=progress_printer(quiet))
    click.echo(result.plan.describe())
    if dry_run:
        click.echo("dry run: nothing was written")
    elif result.up_to_date:
        click.echo(f"{repo_id}@{revision} is up to date")
    elif result.url:
        click.echo(f"committed: {result.url}")
    else:
        click.echo(f"tagged {result.plan.tag}")


@main.command()
@click.argument("split", type=click.Choice(["train", "test"]))
@click.argument("indices", nargs=-1, required=True, type=click.IntRange(min=0))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("build/show.png"),
              show_default=True, help="Where to write the contact sheet (PNG); beside the other commands' pictures "
                                      "by default, so a look from a checkout leaves no file to commit.")
@version_option
@click.option("--columns", type=click.IntRange(min=1), default=8, show_default=True, help="Tiles per row.")
@click.option("--pixels", is_flag=True,
              help="Also print each image as text, a character per pixel (' .:-=+*#%@' from no ink to full), "
                   "rows and columns numbered: whether a bowl closes can come down to one row. The caption "
                   "counts the holes the ink encloses with ink of 57 or more (the bridge rule), how faint "
                   "the ink would have to be to close more, and the darkest speck inside the ink (the "
                   "dark-hole rule: under about 100 a hole, 115 and more none).")
@handle_errors
@with_workspace
def show(ws: Workspace, split: str, indices: tuple[int, ...], out: Path, version: str | None, columns: int,
         pixels: bool) -> None:
    """Draw images of SPLIT large and crisp, captioned with index, MNIST label and list entry.

    Example: mnist-idk show train 172 4476 --out look.png [--pixels]
    """
    from . import curation, sheet

    splits = load_raw(ws)
    chosen = curation.load(ws, version or ws.default_version(), raw_labels=labels_of(splits))
    tiles = sheet.index_tiles(splits[split], indices, chosen)
    sheet.save_png(sheet.render(tiles, columns=columns), out)
    click.echo(str(out))
    if pixels:
        for index, tile in zip(indices, tiles):
            click.echo("\n" + sheet.pixel_grid(splits[split].images[index], " | ".join(tile.caption)))


@main.command()
@version_option
@click.option("--split", type=click.Choice(["train", "test", "all"]), default="all", show_default=True)
@click.option("--by", type=click.Choice(["reason", "digit"]), default="reason", show_default=True,
              help="One sheet per reason code or per original digit.")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("build/sheets"),
              show_default=True, help="Directory for the PNGs (one per group).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many images per sheet.")
@handle_errors
@with_workspace
def sheet(ws: Workspace, version: str | None, split: str, by: str, out_dir: Path, limit: int | None) -> None:
    """Contact sheets of every listed image, grouped by reason or digit; prints the paths."""
    from . import curation
    from . import sheet as sheets

    splits = load_raw(ws)
    chosen = curation.load(ws, version or ws.default_version(), raw_labels=labels_of(splits))
    if split != "all":
        splits = {split: splits[split]}
    groups = sheets.grouped_tiles(splits, chosen, by)
    if not groups:
        raise MnistIdkError(f"curation {chosen.version} lists no images in {split}")
    for group, tiles in groups.items():
        path = out_dir / f"{by}-{group}.png"
        sheets.save_png(sheets.render(tiles[:limit], columns=8), path)
        click.echo(f"{path}  ({len(tiles)} images)")


@main.command()
@click.argument("old")
@click.argument("new")
@click.option("--split", type=click.Choice(["train", "test"]), help="Split of CSV-file arguments not named train/test.csv.")
@click.option("--markdown", is_flag=True, help="Print a Markdown table (for job summaries and changelogs).")
@click.option("--sheet", "sheet_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a contact sheet of the changed images (new entry, else old).")
@handle_errors
@with_workspace
def diff(ws: Workspace, old: str, new: str, split: str | None, markdown: bool, sheet_path: Path | None) -> None:
    """What changed from OLD to NEW: added, removed, relabelled, note-only.

    OLD and NEW are each a release (v1.0.0), 'working' (the working lists), a git revision of this
    checkout (HEAD, origin/main), or a CSV file of one split.
    """
    import numpy as np

    from . import diff as diffs
    from . import sheet as sheets

    differences = diffs.diff(diffs.read_side(ws, old, split=split), diffs.read_side(ws, new, split=split))
    click.echo(diffs.to_markdown(differences) if markdown else diffs.to_text(differences))
    if sheet_path is not None:
        splits = load_raw(ws)
        tiles = [
            sheets.Tile(splits[d.split].images[d.index],
                        [f"{d.kind}: {d.split} {d.index}", f"{d.entry.original}->{d.entry.label} {d.entry.reason}"])
            for d in differences
        ] or [sheets.Tile(np.zeros((28, 28), np.uint8), ["no changes"])]
        sheets.save_png(sheets.render(tiles, columns=8), sheet_path)
        click.echo(f"contact sheet: {sheet_path}", err=True)


@main.command()
@click.argument("version")
@click.option("-m", "--message", default="", help="What this release is about (the changelog's first paragraph).")
@handle_errors
@with_workspace
def release(ws: Workspace, version: str, message: str) -> None:
    """Freeze the working lists and review record as release VERSION (e.g. 1.1.0); write its changelog entry.

    Lints first; refuses a version that is not greater than the last release, a patch version
    when images were added, removed or relabelled, and a release when neither the lists nor the
    review record changed.
    """
    from .release import release as run_release

    ws.require_working("release")
    target = run_release(ws, version, message, raw_labels=labels_of(load_raw(ws)))
    click.echo(f"released {target.name}: {target}")


@main.command()
@click.option("--format", "fmt", type=click.Choice(["imagefolder", "idx"]), required=True,
              help="imagefolder: SPLIT/CLASS/INDEX.png (FiftyOne, datasets' imagefolder); idx: classic IDX files.")
@click.option("--from", "source", type=click.Path(file_okay=False, path_type=Path), default=Path("build/mnist_idk"),
              show_default=True, help="The build to export.")
@click.option("--gzip", "compress", is_flag=True, help="gzip the IDX files (idx format only).")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@handle_errors
def export(fmt: str, source: Path, compress: bool, out: Path) -> None:
    """Write the build in another layout into OUT (replaced atomically when complete)."""
    from .export import export as run_export

    click.echo(str(run_export(source, out, fmt, compress)))


@main.command()
@build_dir_argument
@handle_errors
def info(directory: Path) -> None:
    """Summarize a build: version, counts per class, IDK by reason, file sizes and sha256."""
    from .info import summary

    click.echo(summary(directory))


@main.command()
@click.option("--split", type=click.Choice(["train", "test", "all"]), default="all", show_default=True,
              help="Which images to rank (the model always learns from both splits, out of fold).")
@click.option("--top", type=click.IntRange(min=1), default=100, show_default=True,
              help="Tiles in the contact sheet (the CSV ranks every image).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for folds and features (same seed, same CSV).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("build/candidates.csv"),
              show_default=True, help="The ranking (CSV): rank, split, index, original, predicted, p_predicted, alternative "
                   "(likeliest digit other than the label), p_alternative, signals, score.")
@click.option("--sheet", "sheet_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("build/candidates.png"), show_default=True, help="Contact sheet of the top candidates.")
@click.option("--include-reviewed", is_flag=True,
              help="Rank images already in the review record too (by default they are left out: decided once).")
@click.option("--model", type=click.Choice(["auto", "cnn", "conv", "rff"]), default="auto", show_default=True,
              help="cnn: two small PyTorch networks (needs pip install 'mnist-idk[suggest]'); conv: numpy "
                   "convolutional features + ridge + neighbour vote; rff: v1, quick. auto: cnn if torch is "
                   "installed, else conv with a notice.")
@quiet_option
@handle_errors
@with_workspace
def suggest(ws: Workspace, split: str, top: int, seed: int, out: Path, sheet_path: Path, include_reviewed: bool,
            model: str, quiet: bool) -> None:
    """Rank the images most likely to need IDK or a correction, scored out of sample.

    Every image is scored by models that never saw it (cross-fitting over train and test pooled);
    the score is 1 - p(given label) (signals: see mnist_idk/suggest.py). Images already listed,
    and images in the review record (unless --include-reviewed), are left out; outside a
    checkout, those of the newest shipped release. Progress on stderr. Measured on 2 cores with
    nothing left out, one command per split:

    \b
    cnn (pip install 'mnist-idk[suggest]'): 99.5% held out, 212-222 s, 1.7 GiB;
      14 of the 15 validated test-set errors of Northcutt et al. (2021) in the top 100 of
      test, 14 of cleanlab's 17 blatant train errors in the top 600 of train.
    conv (numpy, used when torch is missing): 98.8%, 35-38 s, 1.5 GiB; 10 of the 15, 15 of 17.
    rff (v1): 98.1%, 6 of the 15, 11 of 17.

    Example: mnist-idk suggest --split test --top 50 --sheet look.png
    """
    from . import curation, review
    from . import suggest as suggesting

    report = progress_printer(quiet)
    splits = load_raw(ws)
    version = ws.default_version()
    listed = curation.load(ws, version, raw_labels=labels_of(splits))
    exclude = {name: {e.index for e in entries} for name, entries in listed.entries.items()}
    if not include_reviewed:
        for name, rows in review.load_record(ws, version).items():
            exclude[name] |= {row.index for row in rows}
    if model == "auto":
        model = suggesting.default_model(lambda message: click.echo(f"note: {message}", err=True))
    try:
        scored = suggesting.score_splits(list(splits.values()), suggesting.Settings(model=model, seed=seed), report)
    except suggesting.ModelUnavailable as error:
        raise MnistIdkError(str(error)) from error
    parts = ", ".join(f"{name} {value:.4f}" for name, value in scored.parts.items())
    report(f"held-out accuracy of the model: {scored.held_out_accuracy:.4f} ({parts})")
    table = suggesting.candidates(scored, split, exclude=exclude)
    suggesting.write_csv(table, out)
    suggesting.write_sheet(table[:top], splits, sheet_path)
    left_out = sum(len(indices) for name, indices in exclude.items() if split in ("all", name))
    what = "listed" if include_reviewed else "listed or reviewed"
    click.echo(f"{out} ({len(table)} images ranked; {left_out} already {what} left out)")
    click.echo(f"{sheet_path} (top {min(top, len(table))})")


@main.command()
@click.option("--dest", type=click.Path(file_okay=False, path_type=Path),
              help="Where to put the files. [default: where the other commands look: env MNIST_IDK_RAW_DIR, "
                   "else raw/mnist of the checkout, else the per-user cache]")
@click.option("--mirror", "mirrors", multiple=True,
              help="Base URL to try, in order (repeatable). [default: ossci-datasets, cvdf-datasets, "
                   "yann.lecun.com; env MNIST_IDK_MIRRORS, comma-separated]")
@quiet_option
@handle_errors
def fetch(dest: Path | None, mirrors: tuple[str, ...], quiet: bool) -> None:
    """Download the four raw MNIST files from the public mirrors and verify them.

    Retries and resumes interrupted downloads, falls back to the next mirror, checks the sha256
    of the decompressed content, and renames a file into place only when it is verified.
    """
    from .fetch import fetch as run_fetch

    dest = dest or Workspace.find().raw_dir
    for path in run_fetch(dest, mirrors or None, progress=progress_printer(quiet)):
        click.echo(str(path))


@main.command()
@click.argument("predictions", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--version", "version", help="Release to score against (or 'working'). [default: the latest release]")
@click.option("--split", type=click.Choice(["train", "test"]), default="test", show_default=True)
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write every figure (the risk-coverage curve included) as JSON.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw the risk-coverage curve as a PNG (needs a confidence column).")
@handle_errors
@with_workspace
def evaluate(ws: Workspace, predictions: Path, version: str | None, split: str, json_path: Path | None,
             plot_path: Path | None) -> None:
    """Score a model's PREDICTIONS (CSV or Parquet) against a release's curated labels.

    Columns: mnist_index, prediction (0-9 or IDK), optionally confidence (higher = surer); one
    row per image of the split. Prints accuracy on digits, IDK precision/recall/F1 (precision and
    recall with 95% Wilson intervals: few images are IDK) and the confusion matrix; with
    confidence also AURC and selective accuracy at 90/95/99% coverage.
    A prediction counts as correct when it equals the curated label (see mnist_idk/metrics.py).

    Example: mnist-idk evaluate preds.csv --version v1.0.0 --json scores.json --plot rc.png
    """
    from . import card, curation, metrics
    from . import evaluate as evaluating

    if version is None:
        released = ws.released_versions()
        if not released:
            raise MnistIdkError(f"{ws.lists_dir}: no release yet; pass --version working")
        version = released[-1]
    splits = load_raw(ws)
    chosen = curation.load(ws, version, raw_labels=labels_of(splits))
    truth = card.final_labels(splits[split], chosen)
    answers = evaluating.read_predictions(predictions, len(truth), split)
    scores = metrics.score(truth, answers.predicted, answers.confidence)
    title = f"{predictions} against MNIST-IDK {chosen.version} {split} ({scores.images} images, {scores.idk_images} IDK)"
    click.echo(evaluating.format_table(scores, title))
    if json_path is not None:
        evaluating.write_json(scores, json_path, predictions=str(predictions), version=chosen.version, split=split)
        click.echo(f"figures: {json_path}", err=True)
    if plot_path is not None:
        evaluating.plot(scores, plot_path, f"MNIST-IDK {chosen.version} {split}: {predictions.name}")
        click.echo(f"risk-coverage curve: {plot_path}", err=True)


@main.group()
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
