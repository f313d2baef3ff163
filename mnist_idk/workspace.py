"""Where things are: the curation lists, the raw MNIST files and the card's sources.

Resolved once per command, like git finds its repository, and passed down; nothing else in the
package guesses a location.

- Lists: ``--lists-dir``, else ``$MNIST_IDK_LISTS_DIR``, else the ``curation_lists/`` of the
  nearest directory at or above the current one that has it (a checkout), else the released
  lists shipped inside the package (read-only: releases only, no working lists).
- Raw files: ``--raw-dir``, else ``$MNIST_IDK_RAW_DIR``, else the checkout's ``raw/mnist`` if it
  exists, else a per-user cache directory (``platformdirs``): never inside the installed package.
- Card sources (template, baselines): the checkout's ``dataset_card/``, else the shipped copy.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import MnistIdkError

LISTS = "curation_lists"
CARD = "dataset_card"
RAW = Path("raw") / "mnist"
WORKING = "working"  # the version name of the unreleased working lists
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
_PACKAGE = Path(__file__).resolve().parent


def shipped(installed: str, source: str) -> Path:
    """Package data: ``mnist_idk/<installed>`` in a wheel, the repository's folder in an editable install."""
    path = _PACKAGE / installed
    return path if path.is_dir() else _PACKAGE.parent / source


def user_cache_raw_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("mnist-idk")) / "raw"


def find_checkout(start: Path) -> Path | None:
    """The nearest directory at or above ``start`` holding ``curation_lists/``."""
    start = start.resolve()
    for directory in (start, *start.parents):
        if (directory / LISTS).is_dir():
            return directory
    return None


def parse_version(text: str) -> tuple[int, int, int]:
    match = _VERSION.match(text)
    if not match:
        raise MnistIdkError(f"version {text!r} is not of the form vX.Y.Z (e.g. v1.0.0)")
    return tuple(int(part) for part in match.groups())  # type: ignore[return-value]


def normalize_version(text: str) -> str:
    """``1.2.3`` or ``v1.2.3`` -> ``v1.2.3``; ``working`` stays as is."""
    if text == WORKING:
        return text
    return "v{}.{}.{}".format(*parse_version(text))


@dataclass(frozen=True)
class Workspace:
    """The lists, raw files and card sources one command works on, and where they came from."""

    lists_dir: Path
    raw_dir: Path
    card_dir: Path
    origin: str  # said to the user: "checkout /x", "MNIST_IDK_LISTS_DIR", "installed package", ...
    has_working: bool = True  # False for the shipped lists: releases only
    obvious: bool = True  # False when a user might not expect these lists (say which ones are used)

    @classmethod
    def find(cls, lists_dir: Path | None = None, raw_dir: Path | None = None, cwd: Path | None = None,
             environ: dict | None = None) -> "Workspace":
        """Resolve every location once, from options, environment and the working directory."""
        environ = os.environ if environ is None else environ
        cwd = Path.cwd() if cwd is None else Path(cwd)
        checkout = find_checkout(cwd)
        card_dir = checkout / CARD if checkout and (checkout / CARD).is_dir() else shipped("_card", CARD)
        has_working, obvious = True, True
        if lists_dir is not None:
            lists, origin = Path(lists_dir), f"--lists-dir {lists_dir}"
        elif environ.get("MNIST_IDK_LISTS_DIR"):
            lists, origin = Path(environ["MNIST_IDK_LISTS_DIR"]), "MNIST_IDK_LISTS_DIR"
            obvious = False
        elif checkout is not None:
            lists, origin = checkout / LISTS, f"checkout {checkout}"
            obvious = checkout == cwd.resolve()
        else:
            lists, origin = shipped("_lists", LISTS), "the releases shipped with mnist-idk (no checkout here)"
            has_working, obvious = False, False
        if raw_dir is not None:
            raw = Path(raw_dir)
        elif environ.get("MNIST_IDK_RAW_DIR"):
            raw = Path(environ["MNIST_IDK_RAW_DIR"])
        elif checkout is not None and (checkout / RAW).is_dir():
            raw = checkout / RAW
        else:
            raw = user_cache_raw_dir()
        return cls(lists, raw, card_dir, origin, has_working, obvious)

    def describe(self) -> str:
        return f"curation lists: {self.lists_dir} ({self.origin}); raw files: {self.raw_dir}"

    # --- versions -------------------------------------------------------------------------

    def released_versions(self) -> list[str]:
        """Released versions, oldest first (by semver, not by string)."""
        releases = self.lists_dir / "releases"
        if not releases.is_dir():
            return []
        names = [p.name for p in releases.iterdir() if p.is_dir() and _VERSION.match(p.name)]
        return sorted(names, key=parse_version)

    def default_version(self) -> str:
        """``working`` in a checkout; outside one, the newest shipped release."""
        if self.has_working:
            return WORKING
        released = self.released_versions()
        if not released:
            raise MnistIdkError(f"{self.lists_dir}: no released lists shipped; reinstall mnist-idk")
        return released[-1]

    def require_working(self, what: str) -> None:
        if not self.has_working:
            raise MnistIdkError(
                f"{what} needs the working lists of a checkout (a directory with curation_lists/); "
                "run it inside a clone of the mnist-idk repository or pass --lists-dir"
            )

    def version_dir(self, version: str) -> Path:
        version = normalize_version(version)
        if version == WORKING:
            self.require_working("--version working")
            return self.lists_dir
        path = self.lists_dir / "releases" / version
        if not path.is_dir():
            released = self.released_versions()
            if len(released) <= 8:
                known = "released: " + (", ".join(released) or "none")
            else:  # hundreds of releases: one readable line, not all of them
                known = f"{len(released)} released, {released[0]} to {released[-1]}; the newest: {', '.join(released[-5:])}"
            raise MnistIdkError(f"{path}: no such release ({known})")
        return path

    # --- files ----------------------------------------------------------------------------

    @property
    def changelog(self) -> Path:
        return self.lists_dir / "CHANGELOG.md"

    @property
    def template(self) -> Path:
        return self.card_dir / "template.md"

    @property
    def baselines_dir(self) -> Path:
        return self.card_dir / "baselines"
