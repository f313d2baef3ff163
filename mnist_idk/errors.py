"""One error type for everything a user can get wrong, so the CLI can print it in one line."""

from __future__ import annotations


class MnistIdkError(Exception):
    """A problem with the user's input or environment (bad file, bad list, bad version...).

    The message already names where (file, line or byte offset) and what was expected; the CLI
    prints it as is and exits with status 2. Anything else escaping is a bug in mnist-idk.
    """


class IdxError(MnistIdkError):
    """A byte string is not a valid IDX file; ``offset`` is where reading went wrong."""

    def __init__(self, message: str, offset: int, source: str = "<bytes>"):
        self.offset = offset
        self.source = source
        super().__init__(f"{source}: at byte offset {offset}: {message}")
