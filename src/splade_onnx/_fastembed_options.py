"""The FastEmbed facade's constructor arguments: FastEmbed 0.9.1's, checked in one place and turned into
:class:`~splade_onnx._loading.LoadOptions`.

FastEmbed's ``SparseTextEmbedding(model_name, cache_dir, threads, providers, cuda, device_ids, lazy_load, **kwargs)``
hands ``kwargs`` to its model class, which reads ``device_id``, ``specific_model_path``, ``local_files_only`` and the
session options it exposes (``enable_cpu_mem_arena``), and drops any other keyword unread.  Here each of those
takes effect, and any other keyword is refused with the list of valid ones, so that a misspelt option is seen.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import ArgumentError, ArgumentTypeError
from ._loading import LoadOptions
from ._options import check_bool, int_option, reject_options
from ._session import SESSION_OPTIONS, Provider, SessionSettings

__all__ = ["CACHE_ENV", "DEVICES", "KEYWORDS", "Construction", "construction"]

#: FastEmbed's cache folder variable, read when no ``cache_dir`` is given.
CACHE_ENV = "FASTEMBED_CACHE_PATH"
#: The values of FastEmbed's ``Device`` (a ``str`` enum, so ``Device.CUDA == "cuda"``), beside ``True``/``False``.
DEVICES = ("cpu", "cuda", "auto")
#: The keywords FastEmbed's SPLADE classes read from ``**kwargs``, and ``max_length``.
KEYWORDS = ("device_id", "specific_model_path", "local_files_only", "max_length", *SESSION_OPTIONS)
_NAMED = ("model_name", "cache_dir", "threads", "providers", "cuda", "device_ids", "lazy_load")


@dataclass(frozen=True)
class Construction:
    """What the constructor's arguments come to: how to load, and from which folder (``specific_model_path``)."""

    options: LoadOptions
    path: str | os.PathLike[str] | None


def construction(
    model_name: str,
    *,
    cache_dir: str | os.PathLike[str] | None,
    threads: int | None,
    providers: Sequence[Provider] | None,
    cuda: object,
    device_ids: Sequence[int] | None,
    lazy_load: object,
    kwargs: Mapping[str, Any],
) -> Construction:
    """The constructor's arguments, checked; an unknown keyword is an error that lists the valid ones."""
    reject_options("SparseTextEmbedding()", set(kwargs) - set(KEYWORDS), (*_NAMED, *KEYWORDS))
    check_bool("lazy_load", lazy_load)
    local = kwargs.get("local_files_only", False)
    check_bool("local_files_only", local)
    path = kwargs.get("specific_model_path")
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise ArgumentTypeError(f"specific_model_path must be a folder path or None, got {type(path).__name__}")
    device_id = kwargs.get("device_id")
    int_option("device_id", device_id, least=0, allowed="an int >= 0 or None", allow_none=True)
    if device_ids is not None:
        if isinstance(device_ids, (str, bytes)) or not isinstance(device_ids, Sequence):
            raise ArgumentTypeError(f"device_ids must be a list of ints or None, got {type(device_ids).__name__}")
        for d in device_ids:
            int_option("each of device_ids", d, least=0, allowed="an int >= 0")
    chosen, devices = _providers(cuda, providers, device_id, device_ids)
    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or None
    options = LoadOptions(
        cache_dir=cache_dir,
        local_files_only=bool(local),
        max_length=kwargs.get("max_length"),
        threads=threads,
        providers=chosen,
        session=SessionSettings(**{k: kwargs[k] for k in SESSION_OPTIONS if k in kwargs}),
        lazy=bool(lazy_load),
        entry=model_name if path is not None else None,  # a folder is encoded by the rules of the model named
        devices=devices,
    )
    return Construction(options=options, path=path)


def _providers(
    cuda: object, providers: Sequence[Provider] | None, device_id: int | None, device_ids: Sequence[int] | None
) -> tuple[Sequence[Provider] | None, tuple[int, ...]]:
    """onnxruntime's providers as FastEmbed chooses them, and the device ids of worker processes.

    ``providers`` win (with a warning when ``cuda`` asks for CUDA too); else CUDA is used when ``cuda`` is ``True`` or
    ``"cuda"``, or ``"auto"`` (the default) and this onnxruntime has it, on ``device_id`` (else ``device_ids[0]``).
    """
    if not (isinstance(cuda, bool) or (isinstance(cuda, str) and cuda in DEVICES)):
        raise ArgumentError(
            f"cuda must be True, False or one of {', '.join(map(repr, DEVICES))} (FastEmbed's Device), got {cuda!r}"
        )
    explicit = cuda is True or cuda == "cuda"
    if providers is not None:
        if explicit:
            warnings.warn(
                f"cuda={cuda!r} and providers are mutually exclusive; the providers {list(providers)} are used. "
                "Pass cuda=False (or 'cpu', 'auto') with providers.",
                UserWarning,
                stacklevel=4,
            )
        return providers, ()
    if not explicit and cuda != "auto":
        return None, ()
    if not explicit:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return None, ()
    device = device_id if device_id is not None else (device_ids[0] if device_ids else None)
    cuda_provider: Provider = (
        "CUDAExecutionProvider" if device is None else ("CUDAExecutionProvider", {"device_id": device})
    )
    return [cuda_provider], tuple(device_ids or ())
