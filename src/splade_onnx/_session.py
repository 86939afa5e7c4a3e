"""The backend seam: something with ``run(inputs) -> [batch, vocab] weights``.

The real onnxruntime session is built here and nowhere else.  A graph onnxruntime cannot load, or one
that wants inputs splade-onnx does not feed, raises :class:`~splade_onnx.ModelError` naming the file.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ._cores import default_threads
from ._errors import ArgumentError, ModelError
from ._options import check_bool, positive_int

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_SESSION",
    "POOL_THREADS",
    "SESSION_OPTIONS",
    "Backend",
    "LazyBackend",
    "OrtBackend",
    "PerTextBackend",
    "PrunedBackend",
    "SessionSettings",
    "check_providers",
    "main_session",
]

Provider = str | tuple[str, dict[str, Any]]
B = TypeVar("B")
#: Name prefix of the threads of :class:`PrunedBackend`'s pool.
POOL_THREADS = "splade-head"
#: The inputs :meth:`OrtBackend.run_outputs` feeds a graph.
_FED = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True, kw_only=True)
class SessionSettings:
    """The onnxruntime ``SessionOptions`` a caller may set, checked when built; every session of a model gets them.

    ``enable_cpu_mem_arena`` is onnxruntime's CPU memory arena (on by default, as in onnxruntime): off, a
    session hands memory back after each run instead of keeping it for the next, at some cost in speed.
    These are the session options FastEmbed exposes (``OnnxModel.EXPOSED_SESSION_OPTIONS``).
    """

    enable_cpu_mem_arena: bool = True

    def __post_init__(self) -> None:
        check_bool("enable_cpu_mem_arena", self.enable_cpu_mem_arena)

    def apply(self, options: Any) -> None:
        """Set these on an ``onnxruntime.SessionOptions``."""
        options.enable_cpu_mem_arena = self.enable_cpu_mem_arena


#: The names of :class:`SessionSettings`' options.
SESSION_OPTIONS = tuple(f.name for f in fields(SessionSettings))
#: onnxruntime's own defaults.
DEFAULT_SESSION = SessionSettings()


@runtime_checkable
class Backend(Protocol):
    """Runs the pooled SPLADE graph on one padded batch."""

    def run(self, inputs: Mapping[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        """``inputs`` holds ``input_ids`` and ``attention_mask`` [batch, seq]; returns [batch, vocab]."""
        ...


def run_all(backend: Backend, feeds: Iterable[Mapping[str, NDArray[np.int64]]]) -> Iterator[NDArray[np.float32]]:
    """``backend.run`` of each feed, in order; a backend with its own ``run_all`` overlaps them."""
    own = getattr(backend, "run_all", None)
    return own(feeds) if own is not None else map(backend.run, feeds)


def check_providers(providers: Sequence[Provider] | None) -> None:
    """Raise :class:`ArgumentError` naming any of ``providers`` this onnxruntime install lacks."""
    if providers is None:
        return
    import onnxruntime as ort

    available = ort.get_available_providers()
    for p in providers:
        name = p if isinstance(p, str) else p[0]
        if name not in available:
            raise ArgumentError(
                f"onnxruntime provider {name!r} is not available in this install; available: "
                f"{', '.join(available)}. For CUDA install onnxruntime-gpu instead of onnxruntime."
            )


class OrtBackend:
    """An onnxruntime ``InferenceSession`` over a graph whose output is ``sparse`` (``run``), or any output
    (``run_outputs``); ``path`` is a graph file, or a serialized graph in memory."""

    def __init__(
        self,
        path: Path | bytes,
        *,
        threads: int | None = None,
        providers: Sequence[Provider] | None = None,
        spinning: bool = True,
        session: SessionSettings | None = None,
    ) -> None:
        import onnxruntime as ort

        positive_int("threads", threads)
        check_providers(providers)
        opts = ort.SessionOptions()
        (session or DEFAULT_SESSION).apply(opts)
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or default_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Idle worker threads spin briefly before sleeping: faster back-to-back runs, more CPU burnt.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        opts.log_severity_level = 3
        where = "an in-memory graph" if isinstance(path, bytes) else str(path)
        try:
            self.session = ort.InferenceSession(
                path if isinstance(path, bytes) else str(path),
                sess_options=opts,
                providers=list(providers) if providers else ["CPUExecutionProvider"],
            )
        except Exception as e:
            raise ModelError(
                f"onnxruntime {ort.__version__} cannot load {where} ({type(e).__name__}: {e}); the file is corrupt or "
                "not a graph this onnxruntime can run: delete it if it is a cached graph (splade-onnx builds it "
                "again), else export the model again, or upgrade with pip install -U onnxruntime"
            ) from e
        self.path = where
        self.threads = opts.intra_op_num_threads
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.providers = tuple(self.session.get_providers())
        logger.debug("onnxruntime session on %s with %s, %d threads", where, self.providers, opts.intra_op_num_threads)

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
                raise ModelError(
                    f"the ONNX graph {self.path} wants an input {name!r} that splade-onnx does not provide (it feeds "
                    f"{', '.join(_FED)}); export the model with those inputs only (a fill-mask export, e.g. "
                    "optimum-cli export onnx --task fill-mask)"
                )
        return list(self.session.run(list(names), feed))


class PerTextBackend:
    """A graph of one text without padding (the pruned head's query graph) run once per row of a padded batch,
    each row cut to its own length (right padding): [batch, vocab] weights, as :class:`OrtBackend` gives."""

    def __init__(self, inner: OrtBackend) -> None:
        self.inner = inner
        self.session = inner.session
        self.threads = inner.threads

    def run(self, inputs: Mapping[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        lengths = np.asarray(inputs["attention_mask"]).sum(axis=1).tolist()
        rows = [
            self.inner.run({k: np.asarray(v)[r : r + 1, :n] for k, v in inputs.items()}) for r, n in enumerate(lengths)
        ]
        return rows[0] if len(rows) == 1 else np.concatenate(rows)


class PrunedBackend:
    """The exact pruned head (:mod:`splade_onnx._pruned`): a batched graph gives each text's head states and
    the inputs of its bound, then a per-text graph computes the bound and the logits of the ids it keeps.  Same
    output as the dense graph: [batch, vocab] weights.

    Every graph runs on one onnxruntime thread, ``threads`` of them side by side: small graphs beat one graph
    split across threads.  :meth:`run_all` gives each thread whole batches (the state graph, then its texts'
    graphs one by one), so no thread waits for another; :meth:`run` cuts its one batch into ``threads`` parts of
    about the same number of tokens.  Padding is trimmed to each part's longest text.  At one onnxruntime thread
    a text's results do not depend on the other texts of its batch, nor on its padding.

    The threads (named ``splade-head...``) start with the first run that needs them.  :meth:`close` (or leaving
    a ``with`` block) releases them; a later run starts them again.  Without it they are released when the
    backend is garbage-collected.
    """

    def __init__(
        self,
        state: Path,
        head: Path,
        *,
        threads: int | None = None,
        providers: Sequence[Provider] | None = None,
        session: SessionSettings | None = None,
    ) -> None:
        positive_int("threads", threads)
        self.threads = default_threads() if threads is None else threads
        self.state = OrtBackend(state, threads=1, providers=providers, spinning=False, session=session)
        self.head = OrtBackend(head, threads=1, providers=providers, spinning=False, session=session)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        #: Every pool started and not yet shut down; the finalizer holds this list, never ``self``.
        self._pools: list[ThreadPoolExecutor] = []
        self._finalizer = weakref.finalize(self, _shut_down, self._pools)

    def close(self) -> None:
        """Shut the thread pool down and wait for its threads (idempotent); do not call it while runs are in
        flight.  A later run starts a new pool."""
        with self._lock:
            self._pool = None
            _shut_down(self._pools)

    def __enter__(self) -> PrunedBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, inputs: Mapping[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        return self.run_counted(inputs)[0]

    def run_counted(self, inputs: Mapping[str, NDArray[np.int64]]) -> tuple[NDArray[np.float32], list[int]]:
        """:meth:`run`, and how many ids the bound kept for each text."""
        lengths = np.asarray(inputs["attention_mask"]).sum(axis=1)  # right padding
        parts = list(itertools.pairwise(_balanced_cuts(lengths, self.threads)))

        def one(part: tuple[int, int]) -> tuple[NDArray[np.float32], list[int]]:
            return self._part(inputs, lengths, *part)

        done = list(self._executor().map(one, parts)) if len(parts) > 1 else [one(parts[0])]
        weights = np.concatenate([w for w, _ in done]) if len(done) > 1 else done[0][0]
        return weights, [k for _, ks in done for k in ks]

    def run_all(self, feeds: Iterable[Mapping[str, NDArray[np.int64]]]) -> Iterator[NDArray[np.float32]]:
        """:meth:`run` of each feed, in order, whole batches on the threads side by side (at most ``2 * threads``
        batches in flight)."""
        if self.threads == 1:
            yield from map(self.run, feeds)
            return
        pending: deque[Any] = deque()
        for feed in feeds:
            lengths = np.asarray(feed["attention_mask"]).sum(axis=1)
            pending.append(self._executor().submit(self._part, feed, lengths, 0, len(lengths)))
            if len(pending) > 2 * self.threads:
                yield pending.popleft().result()[0]
        while pending:
            yield pending.popleft().result()[0]

    def _part(
        self, inputs: Mapping[str, NDArray[np.int64]], lengths: NDArray[np.int64], lo: int, hi: int
    ) -> tuple[NDArray[np.float32], list[int]]:
        width = int(lengths[lo:hi].max())
        feed = {k: np.asarray(v)[lo:hi, :width] for k, v in inputs.items()}
        hidden, codes, scale, bound_lo = self.state.run_outputs(feed, ["hidden", "codes", "scale", "lo"])
        out = np.zeros(bound_lo.shape, dtype=np.float32)
        kept = []
        for r, n in enumerate(lengths[lo:hi].tolist()):
            idx, val, k = self.head.session.run(
                ["indices", "values", "kept"],
                {"hidden": hidden[r, :n], "codes": codes[r, :n], "scale": scale[r], "lo": bound_lo[r]},
            )
            out[r, idx] = val
            kept.append(int(k[0]))
        return out, kept

    def _executor(self) -> ThreadPoolExecutor:
        pool = self._pool
        if pool is None:
            with self._lock:
                pool = self._pool
                if pool is None:
                    pool = self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=POOL_THREADS)
                    self._pools.append(pool)
        return pool


def main_session(backend: Backend) -> Any:
    """The ``onnxruntime.InferenceSession`` of ``backend``'s encoder: an :class:`OrtBackend`'s own, a
    :class:`PrunedBackend`'s state graph's; ``None`` for another backend (a fake)."""
    if isinstance(backend, OrtBackend):
        return backend.session
    if isinstance(backend, PrunedBackend):
        return backend.state.session
    return None


def _shut_down(pools: list[ThreadPoolExecutor]) -> None:
    """Shut ``pools`` down and forget them, waiting for their threads unless called from one of them (the last
    reference to a backend may be dropped on a pool thread)."""
    wait = not threading.current_thread().name.startswith(POOL_THREADS)
    while pools:
        pools.pop().shutdown(wait=wait)


class LazyBackend(Generic[B]):
    """A backend opened on first use (thread-safe), then kept.

    Sessions take a tenth of a second or more each to open; a process that only encodes queries
    never opens the document graphs, and a short query opens only the latency graph.
    """

    def __init__(self, open_backend: Callable[[], B]) -> None:
        self._open = open_backend
        self._backend: B | None = None
        self._lock = threading.Lock()

    @property
    def opened(self) -> bool:
        return self._backend is not None

    def get(self) -> B:
        backend = self._backend
        if backend is None:
            with self._lock:
                backend = self._backend
                if backend is None:
                    backend = self._backend = self._open()
        return backend


def _balanced_cuts(lengths: NDArray[np.int64], parts: int) -> list[int]:
    """Row boundaries cutting a batch into at most ``parts`` runs of consecutive rows with about the same number
    of tokens each (none empty).

    >>> _balanced_cuts(np.array([10, 10, 10, 10]), 2), _balanced_cuts(np.array([30, 5, 5]), 2)
    ([0, 2, 4], [0, 1, 3])
    >>> _balanced_cuts(np.array([7]), 2)
    [0, 1]
    """
    n = len(lengths)
    parts = max(1, min(parts, n))
    total = np.cumsum(lengths)
    cuts = [0]
    for j in range(1, parts):
        at = int(np.searchsorted(total, total[-1] * j / parts)) + 1
        cuts.append(min(max(at, cuts[-1] + 1), n - (parts - j)))
    return [*cuts, n]
