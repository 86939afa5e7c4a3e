"""The backend seam: something with ``run(inputs) -> [batch, vocab] weights``.

The real onnxruntime session is built here and nowhere else.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ._errors import ArgumentError

logger = logging.getLogger(__name__)

__all__ = ["Backend", "LazyBackend", "OrtBackend", "PrunedBackend", "default_threads"]

Provider = str | tuple[str, dict[str, Any]]


@runtime_checkable
class Backend(Protocol):
    """Runs the pooled SPLADE graph on one padded batch."""

    def run(self, inputs: Mapping[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        """``inputs`` holds ``input_ids`` and ``attention_mask`` [batch, seq]; returns [batch, vocab]."""
        ...


def default_threads() -> int:
    """Cores this process may use (cgroup/affinity aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class OrtBackend:
    """An onnxruntime ``InferenceSession`` over a graph whose output is ``sparse``."""

    def __init__(
        self,
        path: Path,
        *,
        threads: int | None = None,
        providers: Sequence[Provider] | None = None,
        spinning: bool = True,
    ) -> None:
        import onnxruntime as ort

        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ArgumentError(f"threads must be a positive int or None, got {threads!r}")
        available = ort.get_available_providers()
        if providers is not None:
            for p in providers:
                name = p if isinstance(p, str) else p[0]
                if name not in available:
                    raise ArgumentError(
                        f"onnxruntime provider {name!r} is not available in this install; available: "
                        f"{', '.join(available)}. For CUDA install onnxruntime-gpu instead of onnxruntime."
                    )
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle worker threads spin briefly before sleeping: faster back-to-back runs, more CPU burnt.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=opts, providers=list(providers) if providers else ["CPUExecutionProvider"]
            )
        except Exception as e:
            raise ArgumentError(f"onnxruntime cannot load {path}: {type(e).__name__}: {e}") from e
        self.threads = opts.intra_op_num_threads
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.providers = tuple(self.session.get_providers())
        logger.debug("onnxruntime session on %s with %s, %d threads", path, self.providers, opts.intra_op_num_threads)

    def run(self, inputs: Mapping[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        return np.asarray(self.run_outputs(inputs, ["sparse"])[0], dtype=np.float32)

    def run_outputs(self, inputs: Mapping[str, NDArray[np.int64]], names: Sequence[str]) -> list[Any]:
        """The graph's ``names`` outputs for one padded batch."""
        feed: dict[str, NDArray[np.int64]] = {}
        for name in self.input_names:
            if name in inputs:
                feed[name] = inputs[name]
            elif name == "token_type_ids":
                feed[name] = np.zeros_like(inputs["input_ids"])
            else:
                raise ArgumentError(f"the ONNX graph wants an input {name!r} that splade-onnx does not provide")
        return list(self.session.run(list(names), feed))


class PrunedBackend:
    """The exact pruned head (:mod:`splade_onnx._pruned`): a batched graph gives each text's head states and
    bound, then a per-text graph computes the logits of the ids the bound keeps.  Same output as the dense
    graph: [batch, vocab] weights.

    The per-text graphs run one text per thread, ``threads`` texts at a time, each on one onnxruntime thread:
    they are small, so running texts side by side beats splitting each one.
    """

    def __init__(self, state: Path, head: Path, *, threads: int | None = None,
                 providers: Sequence[Provider] | None = None) -> None:  # fmt: skip
        # No spinning: the state session's idle threads would take the cores from the per-text graphs.
        self.state = OrtBackend(state, threads=threads, providers=providers, spinning=False)
        self.head = OrtBackend(head, threads=1, providers=providers, spinning=False)
        self.threads = self.state.threads
        self._pool: Any = None
        self._lock = threading.Lock()

    def run(self, inputs: Mapping[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        return self.run_counted(inputs)[0]

    def run_counted(self, inputs: Mapping[str, NDArray[np.int64]]) -> tuple[NDArray[np.float32], list[int]]:
        """:meth:`run`, and how many ids the bound kept for each text."""
        hidden, codes, scale, lo = self.state.run_outputs(inputs, ["hidden", "codes", "scale", "lo"])
        lengths = np.asarray(inputs["attention_mask"]).sum(axis=1).tolist()  # right padding
        session = self.head.session

        def one(r: int) -> list[Any]:
            n = lengths[r]
            feed = {"hidden": hidden[r, :n], "codes": codes[r, :n], "scale": scale[r], "lo": lo[r]}
            return list(session.run(["indices", "values", "kept"], feed))

        rows = range(len(lengths))
        parts = list(self._executor().map(one, rows)) if self.threads > 1 and len(lengths) > 1 else map(one, rows)
        out = np.zeros(lo.shape, dtype=np.float32)
        kept = []
        for r, (idx, val, k) in enumerate(parts):
            out[r, idx] = val
            kept.append(int(k[0]))
        return out, kept

    def _executor(self) -> Any:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    from concurrent.futures import ThreadPoolExecutor

                    self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="splade-head")
        return self._pool


class LazyBackend:
    """An :class:`OrtBackend` opened on first use (thread-safe), then kept: the latency graph of short queries.

    ``graph`` makes (or finds) the ONNX file when the session is first needed.
    """

    def __init__(
        self,
        graph: Callable[[], Path],
        *,
        threads: int | None,
        providers: Sequence[Provider] | None,
        spinning: bool = True,
    ) -> None:
        self.graph = graph
        self._args: dict[str, Any] = {"threads": threads, "providers": providers, "spinning": spinning}
        self._backend: OrtBackend | None = None
        self._lock = threading.Lock()

    @property
    def opened(self) -> bool:
        return self._backend is not None

    def get(self) -> OrtBackend:
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    self._backend = OrtBackend(self.graph(), **self._args)
        return self._backend
