"""Converted graphs on disk: keyed by source identity and converter version, written atomically."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnx

from ._hub import ResolvedModel, detect_format, sha256_file

logger = logging.getLogger(__name__)

__all__ = ["cached_graph", "file_identity", "source_fingerprint"]

_MAX_PROTO = 1_800_000_000  # protobuf's 2 GB limit, with room


def file_identity(path: Path) -> str:
    """A content hash of ``path``; free for Hugging Face cache blobs, whose name is their sha256.

    Other files are hashed once per process and content version (path, size, mtime), so
    loading the fp32 and int8 graphs, or the same model again, does not re-read the weights.
    """
    real = Path(os.path.realpath(path))
    if len(real.name) == 64 and all(c in "0123456789abcdef" for c in real.name):
        return real.name
    st = real.stat()
    return _hashed(str(real), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _hashed(real: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the cache key only
    return sha256_file(Path(real))


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


def source_fingerprint(model: ResolvedModel) -> str:
    """A sha256 over the model's source files (names and contents): the model's identity.

    The same for every graph built from one checkpoint (fp32, int8, any converter version).
    """
    h = hashlib.sha256()
    for f in _source_files(model):
        h.update(f.name.encode())
        h.update(file_identity(f).encode())
    return h.hexdigest()


def cache_key(model: ResolvedModel, variant: str) -> str:
    h = hashlib.sha256(variant.encode())
    for f in _source_files(model):
        h.update(f.name.encode())
        h.update(file_identity(f).encode())
    return h.hexdigest()[:20]


def save_model(model: onnx.ModelProto, path: Path) -> None:
    """Save, moving weights to a side file when the protobuf would pass 2 GB."""
    if model.ByteSize() > _MAX_PROTO:
        onnx.save_model(model, str(path), save_as_external_data=True, location=path.name + ".data")
    else:
        onnx.save_model(model, str(path))


def cached_graph(
    model: ResolvedModel,
    root: Path,
    variant: str,
    build: Callable[[Path], None],
) -> Path:
    """Return ``root/<key>/model.onnx``, calling ``build(tmp_path)`` once if it is missing.

    ``build`` writes ``model.onnx`` into a private temporary folder that is renamed
    into place only when complete, so an interrupted build never leaves a partial
    graph where a later load would find it.
    """
    key = cache_key(model, variant)
    final = root / key
    if (final / "model.onnx").is_file():
        return final / "model.onnx"
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{key}-"))
    try:
        t0 = time.perf_counter()
        build(tmp / "model.onnx")
        (tmp / "meta.json").write_text(json.dumps({"source": model.source, "revision": model.revision,
                                                   "variant": variant}, indent=1))  # fmt: skip
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / "model.onnx").is_file():  # lost a race only if the winner finished
                raise
        logger.info("built %s (%s) in %.1fs", final, variant, time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / "model.onnx"


def _sweep(root: Path, max_age: float = 3600.0) -> None:
    """Remove temporary folders left by builds that were killed more than an hour ago."""
    now = time.time()
    for p in root.glob(".tmp-*"):
        try:
            if now - p.stat().st_mtime > max_age:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass
