"""``splade_onnx.integration.PretrainedEncoder``: from_pretrained's arguments checked when built, and one loaded
encoder shared by every component built with equal load options (what the Haystack embedders rely on)."""

from __future__ import annotations

import gc
import re
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest

from splade_onnx import ArgumentError, ArgumentTypeError, SpladeEncoder
from splade_onnx.integration import PretrainedEncoder

from conftest import TINY
from texts import SEED_DOCUMENTS


def spec(cache_dir: Path, **options: Any) -> PretrainedEncoder:
    return PretrainedEncoder(model=TINY, cache_dir=cache_dir, **options)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"threads": 0}, ArgumentError, "threads must be a positive int or None, got 0"),
        ({"quantize": "int4"}, ArgumentError, "quantize must be one of (None, 'int8'), got 'int4'"),
        ({"projection": "sparse"}, ArgumentError, "projection must be one of 'auto', 'dense', 'pruned', got 'sparse'"),
        ({"query_cache": -1}, ArgumentError, "query_cache must be an int >= 0 (0: off), got -1"),
        ({"local_files_only": 1}, ArgumentTypeError, "local_files_only must be a bool, got int 1"),
        ({"model": None}, ArgumentTypeError, "model must be a str or os.PathLike, got NoneType None"),
        ({"query": 3}, ArgumentTypeError, "query must be a str or os.PathLike or None, got int 3"),
        ({"revision": 3}, ArgumentTypeError, "revision must be a str or None, got int"),
        ({"providers": "CPUExecutionProvider"}, ArgumentTypeError, "providers must be a list or None, got str"),
        ({"providers": ["NoSuchExecutionProvider"]}, ArgumentError, "onnxruntime provider 'NoSuchExecutionProvider'"),
    ],
)
def test_bad_options_fail_when_built(options: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        PretrainedEncoder(**options)


def test_paths_and_providers_are_normalized(cache_dir: Path) -> None:
    a = spec(cache_dir, providers=["CPUExecutionProvider"])
    b = PretrainedEncoder(model=TINY, cache_dir=str(cache_dir), providers=("CPUExecutionProvider",))
    assert a == b and a.cache_dir == str(cache_dir) and a.providers == ("CPUExecutionProvider",)
    assert PretrainedEncoder(model=Path("some/folder")).model == "some/folder"


def test_equal_specs_share_one_encoder_while_it_is_held(cache_dir: Path, tiny: SpladeEncoder) -> None:
    first = spec(cache_dir).shared()
    assert spec(cache_dir).shared() is first  # an equal value, built apart
    assert first is not tiny  # what from_pretrained loads directly is not cached
    assert first.encode_documents(SEED_DOCUMENTS) == tiny.encode_documents(SEED_DOCUMENTS)
    other = spec(cache_dir, threads=1).shared()
    assert other is not first and other.encode_queries(["moon"]) == first.encode_queries(["moon"])
    cached = spec(cache_dir, query_cache=2).shared()  # every option is in the key
    assert cached is not first and cached.query_cache_info() is not None and first.query_cache_info() is None


def test_nothing_is_kept_once_no_component_holds_it(cache_dir: Path) -> None:
    encoder = spec(cache_dir, threads=2).shared()
    ref = weakref.ref(encoder)
    del encoder
    gc.collect()
    assert ref() is None  # the cache holds encoders weakly: no model outlives its components


def test_concurrent_warm_ups_load_once(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[int] = []
    real = PretrainedEncoder.load

    def counting(self: PretrainedEncoder) -> SpladeEncoder:
        loads.append(threading.get_ident())
        return real(self)

    monkeypatch.setattr(PretrainedEncoder, "load", counting)
    start = threading.Barrier(4)
    got: list[SpladeEncoder] = []

    def warm() -> None:
        start.wait()
        got.append(spec(cache_dir, threads=3).shared())

    threads = [threading.Thread(target=warm) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1 and len(got) == 4 and all(e is got[0] for e in got)
