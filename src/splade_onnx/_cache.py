"""Converted graphs on disk: keyed by source identity and converter version, written atomically."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ._digest import MEMO_NAME, file_sha256, sha256_file
from ._errors import SourceError
from ._hub import ResolvedModel, detect_format

if TYPE_CHECKING:
    import onnx

logger = logging.getLogger(__name__)

__all__ = ["cached_graph", "file_identity", "source_fingerprint"]

_MAX_PROTO = 1_800_000_000  # protobuf's 2 GB limit, with room
_META = "meta.json"
#: 2: meta.json records the size and sha256 of every file of the entry (``files``).
_META_FORMAT = 2


def file_identity(path: Path, root: Path | None = None) -> str:
    """A content hash of ``path``; free for Hugging Face cache blobs, whose name is their sha256.

    Other files are hashed once per file version (:mod:`splade_onnx._digest`), remembered in the
    cache folder ``root`` for later processes, so loading the fp32 and int8 graphs, or the same model
    in a new process, does not re-read the weights.
    """
    real = Path(os.path.realpath(path))
    if len(real.name) == 64 and all(c in "0123456789abcdef" for c in real.name):
        return real.name
    return file_sha256(real, _memo(root))


def _memo(root: Path | None) -> Path | None:
    return None if root is None else root / MEMO_NAME


def _source_files(model: ResolvedModel) -> list[Path]:
    _, main = detect_format(model.path)
    files = [main]
    if main.name.endswith(".index.json"):
        index = json.loads(main.read_text())
        files += [main.parent / f for f in sorted(set(index["weight_map"].values()))]
    for extra in ("config.json", "model.onnx_data"):
        if (main.parent / extra).is_file():
            files.append(main.parent / extra)
    return files


def _sources_digest(model: ResolvedModel, root: Path | None, prefix: str = "") -> str:
    """sha256 over ``prefix`` and the model's source files (names and contents)."""
    h = hashlib.sha256(prefix.encode())
    for f in _source_files(model):
        h.update(f.name.encode())
        h.update(file_identity(f, root).encode())
    return h.hexdigest()


def source_fingerprint(model: ResolvedModel, root: Path | None = None) -> str:
    """A sha256 over the model's source files (names and contents): the model's identity.

    The same for every graph built from one checkpoint (fp32, int8, any converter version).  ``root``
    is the cache folder whose memo remembers file hashes across processes.
    """
    return _sources_digest(model, root)


def cache_key(model: ResolvedModel, variant: str, root: Path | None = None) -> str:
    """The cache folder of the graph ``variant`` of ``model``: its sources and how it was built."""
    return _sources_digest(model, root, variant)[:20]


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Save, moving weights to a side file when the protobuf would pass 2 GB."""
    import onnx

    if model.ByteSize() > _MAX_PROTO:
        onnx.save_model(model, str(path), save_as_external_data=True, location=path.name + ".data")
    else:
        onnx.save_model(model, str(path))


def cached_graph(
    model: ResolvedModel,
    root: Path,
    variant: str,
    build: Callable[[Path], None],
    *,
    main: str = "model.onnx",
) -> Path:
    """Return ``root/<key>/model.onnx`` (or the entry's other ``main`` file), calling ``build(tmp_path)`` once if
    it is missing.

    ``build`` writes ``model.onnx`` into a private temporary folder that is renamed
    into place only when complete, so an interrupted build never leaves a partial
    graph where a later load would find it.  ``meta.json`` records the size and
    sha256 of every file in the entry; an entry whose files no longer match (truncated
    or overwritten on disk), whose ``meta.json`` is unreadable, or that was written
    before checksums were recorded is logged, removed and built again.
    """
    key = cache_key(model, variant, root)
    final = root / key
    if final.exists():
        inode = _inode(final)
        problem = _entry_problem(final, main, _memo(root))
        if problem is None:
            return final / main
        reason, corrupt = problem
        log = logger.warning if corrupt else logger.info
        log(
            "cached graph %s cannot be used: %s; removing %s and building it again", final / "model.onnx", reason, final
        )
        _discard(final, inode)
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{key}-"))
    try:
        t0 = time.perf_counter()
        build(tmp / main)
        meta = {
            "format": _META_FORMAT,
            "source": model.source,
            "revision": model.revision,
            "variant": variant,
            "files": _record(tmp),
        }
        (tmp / _META).write_text(json.dumps(meta, indent=1))
        try:
            os.replace(tmp, final)
        except OSError as e:  # another process installed this entry first; use it if it checks out
            problem = (
                _entry_problem(final, main, _memo(root))
                if final.exists()
                else ("it vanished while being replaced", True)
            )
            if problem is not None:
                raise SourceError(
                    f"cannot install the graph at {final}: {problem[0]} and it could not be replaced ({e}); "
                    f"delete {final} and load again"
                ) from e
        logger.info("built %s (%s) in %.1fs", final, variant, time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / main


def _record(folder: Path) -> dict[str, dict[str, int | str]]:
    """Size and sha256 of every file in a freshly built entry (the graph and any external data)."""
    out: dict[str, dict[str, int | str]] = {}
    for f in sorted(folder.iterdir()):
        if f.is_file() and f.name != _META:
            out[f.name] = {"size": f.stat().st_size, "sha256": sha256_file(f)}
    return out


def _entry_problem(final: Path, main: str = "model.onnx", memo: Path | None = None) -> tuple[str, bool] | None:
    """Why the entry ``final`` cannot be used, and whether that means it is damaged; None when it checks out.

    Sizes are compared first; contents are hashed once per file version (:mod:`splade_onnx._digest`,
    remembered in ``memo``), so loading the same graph again costs a ``stat`` per file.
    """
    meta_path = final / _META
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        return f"{meta_path} is unreadable ({type(e).__name__}: {e})", True
    if not isinstance(meta, dict):
        return f"{meta_path} is not a JSON object", True
    files = meta.get("files")
    if files is None:
        return f"{meta_path} records no checksums (written by an older splade-onnx)", False
    if not isinstance(files, dict) or main not in files:
        return f"{meta_path} records no checksum for {main}", True
    for name, rec in files.items():
        path = final / str(name)
        if not isinstance(rec, dict) or Path(str(name)).name != name:
            return f"{meta_path} has a malformed entry for {name!r}", True
        try:
            st = path.stat()
        except OSError:
            return f"{path} is missing", True
        if st.st_size != rec.get("size"):
            return f"{path} is {st.st_size} bytes but {rec.get('size')} were written (truncated or overwritten)", True
        try:
            got = file_sha256(path, memo)
        except OSError as e:
            return f"{path} is unreadable ({type(e).__name__}: {e})", True
        if got != rec.get("sha256"):
            return f"{path} has sha256 {got} but {rec.get('sha256')} was written (corrupt)", True
    return None


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _discard(final: Path, inode: int | None) -> None:
    """Move the bad entry ``final`` aside (one atomic rename), then delete it.

    If ``final`` is no longer the folder that was checked (another process already
    replaced it), it is left alone.
    """
    stale = final.parent / f".tmp-{final.name}-stale-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        if _inode(final) != inode:
            return
        os.rename(final, stale)
    except OSError as e:
        logger.debug("could not move %s aside: %s", final, e)
        return
    shutil.rmtree(stale, ignore_errors=True)


def _sweep(root: Path, max_age: float = 3600.0) -> None:
    """Remove temporary folders left by builds that were killed more than an hour ago."""
    now = time.time()
    for p in root.glob(".tmp-*"):
        try:
            if now - p.stat().st_mtime > max_age:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass
