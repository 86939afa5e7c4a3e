"""All-or-nothing file writes: a temporary sibling, fsync, rename; stale temporaries swept.

A writer creates its temporary file ``.<name>.<random>.tmp`` next to the target and holds
an exclusive advisory lock (``fcntl.flock``) on it for as long as it writes.  A temporary
file whose lock can be taken therefore belongs to no live writer: it was left by a save
that was killed (``SIGKILL``, power loss), and the next save to the same target removes
it (only temporaries of that target's name are swept).  A writer that loses its fresh
temporary to a sweeper (the instant between creating and locking it) makes another.
Where ``fcntl`` does not exist (Windows), only temporaries older than a day are swept.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from ._errors import ArgumentError, FileMissingError

logger = logging.getLogger(__name__)

__all__ = ["atomic_file", "atomic_text_file", "sweep_stale", "temp_prefix"]

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

_STALE_AGE = 86400.0  # without locks: seconds after which a temporary file counts as abandoned
_CREATE_ATTEMPTS = 10  # temporaries swept from under us before we give up (never seen: a race of microseconds)


def temp_prefix(target: Path) -> str:
    """The name prefix of ``target``'s temporary files (they end in ``.tmp``)."""
    return f".{target.name}."


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[bytes]]:
    """Yield a binary file whose contents replace ``path`` only if the block completes.

    The data is flushed and fsynced before the rename, and the folder after it, so a crash
    at any point leaves either the old file or the new one, never a mix.  The new file
    keeps the permissions of the one it replaces.  On any error (or a signal that unwinds
    the stack) the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("wb", "xb"):
        raise ArgumentError(f"atomic_file writes bytes (mode 'wb'); use atomic_text_file for text, not {mode!r}")
    with _atomic(path, "wb", None) as f:
        yield f


@contextlib.contextmanager
def atomic_text_file(path: str | os.PathLike[str], encoding: str = "utf-8") -> Iterator[IO[str]]:
    """:func:`atomic_file` for text."""
    with _atomic(path, "w", encoding) as f:
        yield f


@contextlib.contextmanager
def _atomic(path: str | os.PathLike[str], mode: str, encoding: str | None) -> Iterator[IO[Any]]:
    target = Path(os.fspath(path))
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise FileMissingError(f"cannot write {target}: the folder {folder} does not exist")
    sweep_stale(folder, temp_prefix(target))
    try:
        perms = target.stat().st_mode & 0o777
    except OSError:
        perms = 0o644
    f, tmp = _locked_temp(folder, temp_prefix(target), mode, encoding)
    try:
        with f:
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


def _locked_temp(folder: Path, prefix: str, mode: str, encoding: str | None) -> tuple[IO[Any], str]:
    """A new temporary file in ``folder``, open and locked, that is still linked under its name."""
    for _ in range(_CREATE_ATTEMPTS):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".tmp")
        f = os.fdopen(fd, mode, encoding=encoding)
        if fcntl is None:
            return f, tmp
        try:
            # Blocking: a sweeper that took the lock first holds it only for an unlink.
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            if os.path.samestat(os.fstat(f.fileno()), os.stat(tmp)):
                return f, tmp
        except FileNotFoundError:
            pass  # swept between mkstemp and flock: make another
        except BaseException:
            f.close()
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        f.close()
    raise FileMissingError(f"cannot keep a temporary file in {folder}: something keeps removing it")


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
