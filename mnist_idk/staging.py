"""Atomic replacement of an output directory, and clean-up after runs that were killed.

Every build, export and release writes into a hidden staging directory beside its target and
renames it into place when complete. A run killed mid-way (SIGKILL, power loss) cannot clean up,
so the staging name records the owner (host and process id): the next run into the same place
removes the leftovers whose owner is provably gone, and never a concurrent run's.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
from pathlib import Path

_OWNED = re.compile(r"^\.(?P<name>.+)\.(?P<host>[^.]+)-(?P<pid>\d+)\.[^.]+\.tmp$")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def sweep_dead(target: Path) -> list[Path]:
    """Remove staging directories for ``target`` left by dead processes of this host; return them."""
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    for candidate in target.parent.iterdir():
        match = _OWNED.match(candidate.name)
        if not match or match["name"] != target.name or match["host"] != _host():
            continue
        if int(match["pid"]) != os.getpid() and not process_alive(int(match["pid"])):
            shutil.rmtree(candidate, ignore_errors=True)
            removed.append(candidate)
    return removed


def make_staging(target: Path) -> Path:
    """A fresh staging directory beside ``target`` (after sweeping dead ones), with umask permissions."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_dead(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.{_host()}-{os.getpid()}.", suffix=".tmp", dir=target.parent))
    staging.chmod(0o777 & ~current_umask())  # mkdtemp makes it private; outputs are not
    return staging


def replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``, replacing an old ``target`` with two renames (no copy)."""
    if target.exists():
        old = target.with_name(f".{target.name}.{_host()}-{os.getpid()}.old.tmp")
        os.rename(target, old)
        os.rename(new, target)
        shutil.rmtree(old)
    else:
        os.rename(new, target)
