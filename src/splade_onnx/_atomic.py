"""All-or-nothing file writes: a temporary sibling, fsync, rename; stale temporaries swept.

A writer holds an exclusive advisory lock (``fcntl.flock``) on its temporary file for as
long as it writes.  A temporary file whose lock can be taken therefore belongs to no live
writer: it was left by a save that was killed, and the next save into that folder removes
it.  Where ``fcntl`` does not exist (Windows), only temporaries older than a day are swept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

logger = logging.getLogger(__name__)

__all__ = ["atomic_file", "sweep_stale"]

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

_STALE_AGE = 86400.0  # without locks: seconds after which a temporary file counts as abandoned


def _temp_prefix(target: Path) -> str:
    return f".{target.name}."


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[bytes]]:
    """Yield a file whose contents replace ``path`` only if the block completes.

    The data is flushed and fsynced before the rename, and the folder after it, so a crash
    at any point leaves either the old file or the new one, never a mix.  The new file
    keeps the permissions of the one it replaces.
    """
    target = Path(os.fspath(path))
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FileNotFoundError(f"cannot write {target}: the folder {folder} does not exist")
    sweep_stale(folder, _temp_prefix(target))
    try:
        perms = target.stat().st_mode & 0o777
    except OSError:
        perms = 0o644
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_temp_prefix(target), suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            if fcntl is not None:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield f
            f.flush()
            os.fsync(f.fileno())
            os.chmod(tmp, perms)
            os.replace(tmp, target)  # still holding the lock: no sweeper can take it first
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def sweep_stale(folder: Path, prefix: str) -> int:
    """Remove ``folder/<prefix>*.tmp`` files that no live writer holds; returns how many."""
    removed = 0
    for p in folder.glob(f"{glob_escape(prefix)}*.tmp"):
        try:
            if fcntl is not None:
                with p.open("rb") as f:
                    try:
                        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        continue  # a live writer holds it
                    p.unlink()
            elif time.time() - p.stat().st_mtime > _STALE_AGE:
                p.unlink()
            else:
                continue
        except OSError:
            continue
        removed += 1
    if removed:
        logger.info("removed %d temporary file(s) left in %s by interrupted saves", removed, folder)
    return removed


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters made literal."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
