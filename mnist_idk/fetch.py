"""Download the four raw MNIST files from the public mirrors, verified, resumable, atomic.

The repository ships the files in ``raw/mnist``; ``fetch`` is for a fresh directory elsewhere or
a damaged copy. Each file is tried on every mirror in order; a dropped connection is retried
with a Range request that resumes the partial ``.part`` file; a file whose decompressed content
does not match its pinned sha256 is discarded. Only a verified file is renamed into place.
"""

from __future__ import annotations

import hashlib
import os
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Callable

from .errors import MnistIdkError
from .idx import read_bytes
from .raw import RAW_FILES, RawFile

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
CHUNK = 1 << 16
Progress = Callable[[str], None]


class Failure(Exception):
    """Why one mirror could not deliver a file; ``retry`` when trying again may help."""

    def __init__(self, reason: str, retry: bool):
        super().__init__(reason)
        self.retry = retry


def mirrors_from_env() -> tuple[str, ...]:
    configured = os.environ.get("MNIST_IDK_MIRRORS", "")
    return tuple(m.strip() for m in configured.split(",") if m.strip()) or MIRRORS


def verified(path: Path, raw: RawFile) -> str | None:
    """None when ``path`` holds ``raw`` (gzip'd or not); else what is wrong with it."""
    try:
        data = read_bytes(path)
    except (MnistIdkError, OSError, EOFError, zlib.error) as exc:
        return f"not a readable gzip file ({exc})"
    digest = hashlib.sha256(data).hexdigest()
    if digest != raw.sha256:
        return f"checksum mismatch: sha256 {digest}, expected {raw.sha256}"
    return None


def download(url: str, part: Path, timeout: float) -> None:
    """Append the rest of ``url`` to ``part`` (resuming with Range when it has bytes)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = response.status == 206
            expected = response.headers.get("Content-Length")
            received = 0
            with part.open("ab" if resumed else "wb") as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:  # we already have every byte
            return
        raise Failure(f"HTTP {exc.code}", retry=exc.code >= 500) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Failure(f"{type(exc).__name__}: {reason}", retry=True) from None
    if expected is not None and received < int(expected):
        raise Failure(f"truncated: got {received} of {expected} bytes", retry=True)


def fetch_file(raw: RawFile, dest: Path, mirrors: tuple[str, ...], attempts: int, backoff: float,
               timeout: float, progress: Progress) -> Path:
    target = dest / f"{raw.name}.gz"
    part = dest / f".{raw.name}.gz.part"
    failures = []
    try:
        for mirror in mirrors:
            url = mirror.rstrip("/") + f"/{raw.name}.gz"
            for attempt in range(1, attempts + 1):
                try:
                    progress(f"{raw.name}.gz: downloading from {url}" + (f" (attempt {attempt})" if attempt > 1 else ""))
                    download(url, part, timeout)
                    problem = verified(part, raw)
                    if problem:
                        part.unlink()
                        raise Failure(problem, retry=False)
                    os.replace(part, target)
                    return target
                except Failure as failure:
                    if not failure.retry or attempt == attempts:
                        failures.append(f"{mirror}: {failure}")
                        break
                    time.sleep(backoff * 2 ** (attempt - 1))
    finally:
        part.unlink(missing_ok=True)
    raise MnistIdkError(f"{target}: every mirror failed: " + "; ".join(failures))


def fetch(dest: Path, mirrors: tuple[str, ...] | None = None, attempts: int = 3,
          backoff: float = 1.0, timeout: float = 60.0, progress: Progress = lambda m: None) -> list[Path]:
    """Make ``dest`` hold the four verified raw files; files already there and valid are kept."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    mirrors = tuple(mirrors or mirrors_from_env())
    paths = []
    for raw in RAW_FILES.values():
        present = [p for p in (dest / raw.name, dest / f"{raw.name}.gz") if p.is_file() and verified(p, raw) is None]
        if present:
            progress(f"{present[0]}: present and verified")
            paths.append(present[0])
            continue
        paths.append(fetch_file(raw, dest, mirrors, attempts, backoff, timeout, progress))
        progress(f"{paths[-1]}: verified")
    return paths
