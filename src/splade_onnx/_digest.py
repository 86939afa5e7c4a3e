"""Content hashes (sha256) of files, remembered within a process and across processes.

A process that loads a cached model checks its source weights and cached graphs by hash; reading
hundreds of megabytes on every start would dominate its cold start.  So a hash is remembered under
the file's real path with the size, modification time (ns) and inode the file had when it was read
(the quick check of git's index and rsync): in memory for the process, and in a small JSON memo
(``digests.json`` in the cache folder) for later processes.  A file rewritten, truncated or replaced
changes one of the three and is read again.  A memo that is unreadable or malformed is ignored and
rewritten; it never decides anything but "this file was already hashed".
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import NamedTuple

logger = logging.getLogger(__name__)

__all__ = ["MEMO_NAME", "FileStamp", "file_sha256", "sha256_file", "sha256_if_unchanged"]

#: The memo's file name in a cache folder.
MEMO_NAME = "digests.json"
#: Most files a memo remembers; entries of files that are gone are dropped first, then the oldest.
MEMO_ENTRIES = 4096
_HEX = frozenset("0123456789abcdef")

_lock = threading.Lock()


def sha256_file(path: Path | str) -> str:
    """The sha256 of ``path``'s contents, read now (no memo)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class FileStamp(NamedTuple):
    """A file version: size, modification time (ns) and inode; a name that no longer shows all three holds
    another file, or this one changed."""

    size: int
    mtime_ns: int
    inode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino)


_known: dict[tuple[str, FileStamp], str] = {}  # this process's hashes, by real path and file version


def file_sha256(path: Path | str, memo: Path | None = None) -> str:
    """The sha256 of ``path``'s contents, read only if this file version was not hashed before.

    ``memo`` is the JSON memo shared by processes (``None``: this process only).
    """
    real = os.path.realpath(path)
    return _sha256(real, FileStamp.of(os.stat(real)), memo)


def sha256_if_unchanged(path: Path | str, stamp: FileStamp, memo: Path | None = None) -> str | None:
    """:func:`file_sha256` of ``path`` while it is still the file version ``stamp`` (before and after it is
    read); ``None`` once another file was renamed over the name, or this one changed or is gone."""
    real = os.path.realpath(path)
    try:
        if FileStamp.of(os.stat(real)) != stamp:
            return None
        digest = _sha256(real, stamp, memo)
        return digest if FileStamp.of(os.stat(real)) == stamp else None
    except OSError:
        return None


def _sha256(real: str, stamp: FileStamp, memo: Path | None) -> str:
    with _lock:
        hit = _known.get((real, stamp))
    if hit is not None:
        return hit
    if memo is not None:
        seen = _read(memo).get(real)
        hit = seen[1] if seen is not None and seen[0] == stamp else None
    if hit is None:
        hit = sha256_file(real)
        if memo is not None:
            _write(memo, real, stamp, hit)
    with _lock:
        _known[(real, stamp)] = hit
    return hit


def _read(memo: Path) -> dict[str, tuple[FileStamp, str]]:
    """The memo's entries; empty when it is missing, unreadable or malformed (then it is rewritten)."""
    try:
        raw = json.loads(memo.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        logger.debug("ignoring the hash memo %s: %s", memo, e)
        return {}
    out: dict[str, tuple[FileStamp, str]] = {}
    if not isinstance(raw, dict) or not isinstance(raw.get("files"), dict):
        return out
    for name, rec in raw["files"].items():
        if (
            isinstance(rec, list)
            and len(rec) == 4
            and all(isinstance(x, int) and not isinstance(x, bool) for x in rec[:3])
            and isinstance(rec[3], str)
            and len(rec[3]) == 64
            and set(rec[3]) <= _HEX
        ):
            out[name] = (FileStamp(rec[0], rec[1], rec[2]), rec[3])
    return out


def _write(memo: Path, real: str, stamp: FileStamp, digest: str) -> None:
    """Add one entry to the memo (read again first, so that entries of other processes are kept); atomic.

    A memo that cannot be written only costs a later process a read of the file.
    """
    entries = _read(memo)
    entries.pop(real, None)
    entries[real] = (stamp, digest)  # newest last
    if len(entries) > MEMO_ENTRIES:
        entries = {k: v for k, v in entries.items() if os.path.exists(k)}
        entries = dict(list(entries.items())[-MEMO_ENTRIES:])
    data = {"format": 1, "files": {k: [*s, d] for k, (s, d) in entries.items()}}
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=memo.parent, prefix=f".{memo.name}.")
    except OSError as e:
        logger.debug("could not write the hash memo %s: %s", memo, e)
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, memo)
    except OSError as e:
        logger.debug("could not write the hash memo %s: %s", memo, e)
        Path(tmp).unlink(missing_ok=True)
