"""What every ``mnist-idk`` command module shares: clean errors, the workspace options, progress.

User mistakes raise ``MnistIdkError``; ``handle_errors`` prints them as ``error: ...`` with exit
status 2 and never as a traceback.
"""


from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from .errors import MnistIdkError
from .workspace import Workspace

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


def labels_of(splits: dict) -> dict:
    """Each split's labels by split name."""
    return {name: split.labels for name, split in splits.items()}
