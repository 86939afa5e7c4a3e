"""Built Seismic structures kept in the local cache, so a saved index reopens without building Seismic again.

Seismic has no incremental build, and building it is the slow part of an approximate index (minutes
at a few hundred thousand documents).  Its own file format is read by ``pyseismic-lsr``'s
deserializer, which our checks of untrusted files cannot see into, so a structure is never stored in
an index file, which may come from anyone.  Instead it is kept in this library's cache folder
(``$SPLADE_ONNX_CACHE``, see :func:`~splade_onnx._hub.default_cache_dir`) or the folder that
``Seismic(cache=...)`` names, which only this library writes: the same trust as the converted ONNX
graphs in a cache folder.  It is kept under a key of:

- the sha256 of the index file whose rows it was built over (hashed once per file version, see
  :mod:`._digest`), so a structure only ever serves the exact rows it was built from;
- Seismic's build settings and ``pyseismic-lsr``'s version.

A structure is stored when a Seismic index is saved, or when a loaded one builds it; a later load of
the same file, in any process, reads it back.  At most :data:`KEEP` structures are kept in a folder, the
least recently used removed first; any of them may be deleted at any time (it is built again when needed).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._digest import MEMO_NAME, FileStamp, sha256_if_unchanged

__all__ = ["KEEP", "Source", "load_built", "quiet_stdout", "store_built", "structure_key"]

logger = logging.getLogger(__name__)

#: Most structures kept in a cache folder (each several times the size of its index file).
KEEP = 4
_SUFFIX = ".index.seismic"  # what pyseismic-lsr's save appends to the path it is given
_STALE_AGE = 86400.0  # seconds after which a half-written temporary folder is swept
_STDOUT_LOCK = threading.Lock()


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """pyseismic-lsr prints its progress to the process's stdout (file descriptor 1): send it to the null device."""
    with _STDOUT_LOCK:
        saved = os.dup(1)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 1)
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


class Source:
    """The index file a Seismic engine's rows were read from (or saved to): its path and the stamp (size,
    modification time in ns, inode) of the file as it was opened.

    Its content hash is taken only when a structure is looked up or stored, and only while the name still
    shows that stamp, before and after hashing (another file renamed over it, or this one changed, is not
    the file the rows came from).  ``root`` is the cache folder (``None``: the library's, see
    :func:`~splade_onnx._hub.default_cache_dir`); structures go in its ``seismic/``.
    """

    def __init__(self, path: str, stamp: FileStamp, root: Path | None = None) -> None:
        self.path, self.stamp, self._root = path, stamp, root

    def root(self) -> Path:
        if self._root is None:
            from ._hub import default_cache_dir  # the loading side's folder, imported when a structure is looked up

            self._root = default_cache_dir()
        return self._root

    def entry(self, build: dict[str, Any]) -> Path | None:
        """Where a structure built with the settings ``build`` over this file's rows is kept, or ``None`` if
        the file changed or is gone."""
        digest = self.digest()
        return None if digest is None else self.root() / "seismic" / (structure_key(digest, build) + _SUFFIX)

    def digest(self) -> str | None:
        """The file's sha256, or ``None`` if it changed or is gone (a memo it cannot write is skipped)."""
        return sha256_if_unchanged(self.path, self.stamp, self.root() / MEMO_NAME)


def structure_key(digest: str, build: dict[str, Any]) -> str:
    """The cache key of a structure built with the settings ``build`` over the rows of the file ``digest``."""
    version = importlib.metadata.version("pyseismic-lsr")
    blob = json.dumps({"file": digest, "build": build, "pyseismic-lsr": version}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def load_built(lib: Any, path: Path, n_docs: int) -> Any | None:
    """The structure kept at ``path`` (a :meth:`Source.entry`), or ``None`` when there is none (or it does not
    hold ``n_docs`` documents, those with at least one term)."""
    if not path.is_file():
        return None
    start = time.perf_counter()
    try:
        with quiet_stdout():
            index = lib.SeismicIndex.load(str(path))
        size = int(index.len)
    except (KeyboardInterrupt, SystemExit):
        raise
    except MemoryError:
        logger.warning("seismic: not enough memory to read the cached structure %s; building it", path)
        return None
    except BaseException as exc:  # noqa: BLE001 - a damaged entry is built again; pyo3 raises Rust panics so
        logger.warning("seismic: the cached structure %s could not be read (%s); building it again", path, exc)
        _discard(path)
        return None
    if size != n_docs:
        logger.warning("seismic: the cached %s holds %d documents, not %d; building it again", path, size, n_docs)
        _discard(path)
        return None
    with contextlib.suppress(OSError):  # a read-only cache still serves
        os.utime(path)  # most recently used
    logger.info("seismic: read the structure built before from %s in %.1f s", path, time.perf_counter() - start)
    return index


def store_built(index: Any, target: Path) -> None:
    """Keep ``index`` at ``target`` (a :meth:`Source.entry`), all-or-nothing; then drop the least recently
    used structures of its folder beyond :data:`KEEP`.

    A cache that cannot be written is logged and skipped: the index works the same, only its next
    load builds the structure again.  Saving needs about the structure's size again in memory for a moment
    (pyseismic-lsr serializes it whole).
    """
    start = time.perf_counter()
    folder = target.parent
    try:
        if target.is_file():  # the same rows and build: kept already
            os.utime(target)
            return
        folder.mkdir(parents=True, exist_ok=True)
        _sweep(folder)
        work = Path(tempfile.mkdtemp(prefix=".building-", dir=folder))
        try:
            with quiet_stdout():
                index.save(str(work / "s"))
            os.replace(work / ("s" + _SUFFIX), target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - the index works without the cache; pyo3 raises Rust panics so
        logger.warning("seismic: could not keep the built structure in the cache (%s: %s)", type(exc).__name__, exc)
        return
    logger.info("seismic: kept the built structure in %s in %.1f s", folder, time.perf_counter() - start)
    _prune(folder)


def _prune(folder: Path) -> None:
    """Remove all but the :data:`KEEP` most recently used structures (another process may remove some too)."""
    used: list[tuple[float, Path]] = []
    for path in folder.glob("*" + _SUFFIX):
        with contextlib.suppress(OSError):
            used.append((path.stat().st_mtime, path))
    for _, old in sorted(used, reverse=True)[KEEP:]:
        _discard(old)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _sweep(folder: Path) -> None:
    """Remove temporary folders left by a store that was killed a day or more ago."""
    for work in folder.glob(".building-*"):
        try:
            if time.time() - work.stat().st_mtime > _STALE_AGE:
                shutil.rmtree(work, ignore_errors=True)
        except OSError:
            continue
