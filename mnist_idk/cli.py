"""The ``mnist-idk`` command: a thin click layer over the Python API.

This module holds the build, publish and user commands; ``review_cli`` the curator's ``review``
group (its ``reader`` subgroup, blind readers and panels, in ``reader_cli``); ``cli_common`` what
they share. User mistakes are printed as ``error: ...`` with exit status 2 and never as a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from .cli_common import (build_dir_argument, handle_errors, labels_of, load_raw, progress_printer, quiet_option,
                         version_option, with_workspace)
from .errors import MnistIdkError
from .review_cli import review
from .workspace import Workspace


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
@click.option("--every-release", is_flag=True,
              help="Re-read every release's lists and review record in full, not only the newest's (minutes with "
                   "hundreds of releases; each was checked when it was made): after an upgrade of mnist-idk whose "
                   "lint checks more.")
@handle_errors
@with_workspace
def lint(ws: Workspace, no_raw: bool, every_release: bool) -> None:
    """Check the curation lists: format, indices, original labels, reasons, released files.

    The working lists and review record in full; every release's files against its SHA256SUMS
    (released files never change); the newest release's lists and review record in full.
    """
    from . import curation, review

    ws.require_working("lint")
    problems = review.lint(ws, labels=None if no_raw else labels_of(load_raw(ws)), every_release=every_release)
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
            sheets.Tile(splits[d.split].images[d.index], diffs.caption(d)) for d in differences
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
@click.option("--target", type=click.Choice(["label", "idk"]), default="label", show_default=True,
              help="label: rank by doubt about the MNIST label (1 - p(label)); idk: the models learn the "
                   "curated labels, listed images as an 11th class, and rank by p(IDK): the keeps most like "
                   "what the curators list.")
@quiet_option
@handle_errors
@with_workspace
def suggest(ws: Workspace, split: str, top: int, seed: int, out: Path, sheet_path: Path, include_reviewed: bool,
            model: str, target: str, quiet: bool) -> None:
    """Rank the images most likely to need IDK or a correction, scored out of sample.

    Every image is scored by models that never saw it (cross-fitting over train and test pooled);
    the score is 1 - p(given label) (signals: see mnist_idk/suggest.py). Images already listed,
    and images in the review record (unless --include-reviewed), are left out; outside a
    checkout, those of the newest shipped release. Progress on stderr. Measured on 2 cores with
    nothing left out, one command per split:

    \b
    cnn (pip install 'mnist-idk[suggest]'): 99.6% held out, about 260 s, 1.7 GiB;
      13-14 of the 15 validated test-set errors of Northcutt et al. (2021) in the top 100 of
      test (by machine), 14 of cleanlab's 17 blatant train errors in the top 600 of train.
    conv (numpy, used when torch is missing): 98.8%, 35-38 s, 1.5 GiB; 10 of the 15, 15 of 17.
    rff (v1): 98.1%, 6 of the 15, 11 of 17.

    --target idk orders keeps for a reader looking for more IDK images: the score is the
    out-of-fold p(IDK) of a model that learns the lists (see the README for what it finds).

    Example: mnist-idk suggest --split test --top 50 --sheet look.png
    """
    from . import card, curation, review
    from . import suggest as suggesting

    report = progress_printer(quiet)
    splits = load_raw(ws)
    version = ws.default_version()
    listed = curation.load(ws, version, raw_labels=labels_of(splits))
    exclude = {name: {e.index for e in entries} for name, entries in listed.entries.items()}
    if not include_reviewed:
        for name, rows in review.load_record(ws, version).items():
            exclude[name] |= {row.index for row in rows}
    curated = None
    if target == "idk":
        if not any(listed.entries.values()):
            raise MnistIdkError(f"--target idk learns from the listed images, and the lists ({version}) list none")
        curated = [card.final_labels(s, listed) for s in splits.values()]
    if model == "auto":
        model = suggesting.default_model(lambda message: click.echo(f"note: {message}", err=True))
    try:
        scored = suggesting.score_splits(list(splits.values()), suggesting.Settings(model=model, seed=seed, target=target),
                                         report, curated=curated)
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


main.add_command(review)
