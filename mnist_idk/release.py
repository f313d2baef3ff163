"""Cut a release of the curation lists: freeze, record digests, write the changelog entry.

Semantic versions tell users what a new release does to their labels: adding, removing or
relabelling images is at least a minor bump; a release that only fixes notes may be a patch.
The release directory appears with one rename and the changelog with one ``os.replace``, so a
failure leaves neither half-written.
"""

from __future__ import annotations

import datetime
import os
import shutil
from pathlib import Path

import numpy as np

from . import curation, diff, review
from .errors import MnistIdkError
from .raw import SPLITS
from .staging import make_staging
from .workspace import Workspace

CHANGELOG_HEADER = "# Changelog of the curation lists\n"


def required_bump(differences: list[diff.Difference]) -> str:
    """``minor`` when any label changes (added, removed, relabelled), ``patch`` for notes only."""
    return "minor" if any(d.kind != "note" for d in differences) else "patch"


def check_version(version: str, previous: str | None, bump: str) -> None:
    new = curation.parse_version(version)
    if previous is None:
        return
    old = curation.parse_version(previous)
    if new <= old:
        raise MnistIdkError(f"version {version} is not greater than the last release, {previous}")
    if bump == "minor" and new[:2] == old[:2]:
        raise MnistIdkError(
            f"{version} is a patch release, but the lists add, remove or relabel images since {previous}: "
            f"use v{old[0]}.{old[1] + 1}.0 or higher"
        )


def changelog_entry(version: str, date: datetime.date, message: str, previous: str | None,
                    differences: list[diff.Difference]) -> str:
    since = f"Changes since {previous}" if previous else "Listed images"
    parts = [f"## {version} ({date.isoformat()})", ""]
    if message:
        parts += [message.strip(), ""]
    if previous and not differences:  # a release of the review record alone
        return "\n".join(parts + [f"{since}: none to the lists; the review record grows.", ""])
    parts += [f"{since}: {diff.summary(differences)}.", "", diff.to_markdown(differences), ""]
    return "\n".join(parts)


def record_changed(ws: Workspace, released: Path) -> bool:
    """Whether the working review record differs from the one frozen in ``released``.

    More images reviewed with the lists unchanged (an audit that lists nothing) is worth a
    patch release: the card's figures of what was reviewed and what is left come from it.
    """
    names = [f"{split}.csv" for split in SPLITS] + [review.RUNS, review.BLIND]
    return not same_files(review.record_dir(ws), released / review.RECORD, names)


def same_files(a: Path, b: Path, names: list[str]) -> bool:
    """Whether each named file is byte for byte the same in ``a`` and ``b`` (absent from both counts as same)."""

    def read(path: Path) -> bytes | None:
        return path.read_bytes() if path.is_file() else None

    return all(read(a / name) == read(b / name) for name in names)


def release_like_working(ws: Workspace) -> str | None:
    """The newest release whose lists equal the working ones byte for byte, if any.

    Right after `mnist-idk release` the two are the same; a message can then name the version
    to build instead of only refusing the working lists.
    """
    if not ws.has_working:
        return None
    names = [f"{split}.csv" for split in SPLITS]
    return next((version for version in reversed(ws.released_versions())
                 if same_files(ws.lists_dir, ws.version_dir(version), names)), None)


def release(
    ws: Workspace,
    version: str,
    message: str = "",
    raw_labels: dict[str, np.ndarray] | None = None,
    date: datetime.date | None = None,
) -> Path:
    """Freeze the working lists as ``version``; returns the new release directory."""
    ws.require_working("release")
    root = ws.lists_dir
    version = curation.normalize_version(version)
    if version == curation.WORKING:
        raise MnistIdkError("a release needs a version number such as v1.1.0")
    problems = review.lint(ws, raw_labels)
    if problems:
        raise MnistIdkError(curation.format_problems(problems))
    if review.read_second_look(ws):
        raise MnistIdkError(f"{review.record_dir(ws) / review.SECOND_LOOK}: images wait for a second look; "
                            "decide them (mnist-idk review next --second-look) before releasing")
    released = ws.released_versions()
    previous = released[-1] if released else None
    target = root / "releases" / version
    if target.exists():
        raise MnistIdkError(f"{target} already exists; released lists never change")
    old = diff.read_side(ws, previous) if previous else {split: [] for split in SPLITS}
    differences = diff.diff(old, diff.read_side(ws, curation.WORKING))
    if previous and not differences and not record_changed(ws, root / "releases" / previous):
        raise MnistIdkError(f"the working lists and review record equal {previous}: nothing to release")
    check_version(version, previous, required_bump(differences))

    entry = changelog_entry(version, date or datetime.date.today(), message, previous, differences)
    changelog = root / "CHANGELOG.md"
    text = changelog.read_text("utf-8") if changelog.is_file() else CHANGELOG_HEADER
    head, marker, rest = text.partition("\n## ")
    new_text = f"{head.rstrip()}\n\n{entry}" + (f"\n## {rest}" if marker else "")

    staging = make_staging(target)
    changelog_tmp = changelog.with_name(f".{changelog.name}.{os.getpid()}.tmp")
    try:
        frozen = [f"{split}.csv" for split in SPLITS]
        if review.record_dir(ws).is_dir():  # the review record is frozen with the lists it explains
            (staging / review.RECORD).mkdir()
            frozen += [f"{review.RECORD}/{name}" for name in (*(f"{s}.csv" for s in SPLITS), review.RUNS, review.BLIND)
                       if (review.record_dir(ws) / name).is_file()]
        for name in frozen:
            shutil.copyfile(root / name, staging / name)
        sums = "".join(f"{curation.file_sha256(staging / name)}  {name}\n" for name in sorted(frozen))
        (staging / curation.SUMS).write_text(sums, "utf-8")
        changelog_tmp.write_text(new_text, "utf-8")
        os.rename(staging, target)
        try:
            os.replace(changelog_tmp, changelog)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        changelog_tmp.unlink(missing_ok=True)
        raise
    return target
