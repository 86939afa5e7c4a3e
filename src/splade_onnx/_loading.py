"""Loading a model: resolve its sources, read its layout, convert and cache its graphs, build its sides.

:func:`load` is the one seam between the files on disk and the encoder: it returns a
:class:`LoadedModel` (the document side, the query side, the model's identity, its quantization
and registry entry, and the recipes that rebuild each network side elsewhere), and
:class:`~splade_onnx.SpladeEncoder` takes everything it needs from that value.  Tests plug a fake
backend in by building a :class:`LoadedModel` around it.  Graphs are converted only on a cache
miss, so a cached model never imports ``onnx``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import _registry
from ._batching import vocab_chunks
from ._cache import cached_graph, file_identity, save_model, source_fingerprint
from ._engine import Engine, NetworkEngine, NetworkRecipe, StaticEngine, deferred_engine, side_tokenizer
from ._errors import ArgumentError, ArgumentTypeError, ModelError, ModelMismatchError
from ._fastembed_rules import context_length, idf_table, special_ids
from ._graph import CONVERTER_VERSION
from ._graph_dense import convert_checkpoint, pool_logits_model
from ._hub import ResolvedModel, default_cache_dir, detect_format, resolve
from ._layout import Layout, NetworkSide, Side, StaticSide, read_config, read_layout, static_weights
from ._options import check_bool, int_option, positive_int
from ._projection import PROJECTIONS, Fit, fitted_plan, plan_projection, pruned_graphs, pruned_query_path
from ._quantize import int8_graph
from ._registry import DEFAULT_MODEL
from ._session import DEFAULT_SESSION, Provider, SessionSettings, check_providers
from ._tokenize import TextTokenizer
from ._types import ModelIdentity

logger = logging.getLogger(__name__)

__all__ = ["QUANTIZE", "LoadOptions", "LoadedModel", "load", "pooled_graph"]

#: What ``quantize`` may be: fp32 (``None``) or onnxruntime's dynamic int8.
QUANTIZE = (None, "int8")


@dataclass(frozen=True, kw_only=True)
class LoadOptions:
    """How to load a model: where from, how to convert it, and how to run it; checked when built."""

    revision: str | None = None
    cache_dir: str | os.PathLike[str] | None = None
    local_files_only: bool = False
    max_length: int | None = None
    threads: int | None = None
    providers: Sequence[Provider] | None = None
    quantize: str | None = None
    projection: str = "auto"
    #: A registry name whose entry applies to ``model`` when that is a folder (its query side, its FastEmbed
    #: rules): the FastEmbed facade's ``specific_model_path``.  ``None``: the entry named by ``model``, if any.
    entry: str | None = None
    #: The onnxruntime session options of every session (``enable_cpu_mem_arena``).
    session: SessionSettings = DEFAULT_SESSION
    #: Make the document side's graphs (convert, cache, fit the projection) when one of its sessions first opens,
    #: not while loading: an inference-free model's queries then never touch its network (FastEmbed's
    #: ``lazy_load``).  The files are still fetched and the tokenizers and query table read while loading.
    lazy: bool = False
    #: CUDA device ids for worker processes, in turn (``NetworkRecipe.for_worker``); empty: ``providers`` for all.
    devices: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        positive_int("threads", self.threads)
        check_bool("lazy", self.lazy)
        for d in self.devices:
            int_option("a device id", d, least=0, allowed="an int >= 0")
        if not isinstance(self.session, SessionSettings):
            raise ArgumentTypeError(f"session must be a SessionSettings, got {type(self.session).__name__}")
        if self.quantize not in QUANTIZE:
            raise ArgumentError(f"quantize must be one of {QUANTIZE}, got {self.quantize!r}")
        if self.projection not in PROJECTIONS:
            raise ArgumentError(
                f"projection must be one of {', '.join(map(repr, PROJECTIONS))}, got {self.projection!r}"
            )


@dataclass(frozen=True, kw_only=True)
class LoadedModel:
    """A loaded model: what :class:`~splade_onnx.SpladeEncoder` is built from.

    ``query`` is the query side: ``document`` itself (one network), another network (two-tower) or a
    :class:`~splade_onnx._engine.StaticEngine` (inference-free).  ``recipes`` rebuild the network sides
    in worker processes and Ray actors (``"document"``, and ``"query"`` for a separate query tower);
    it is empty for a model not built from files.
    """

    document: NetworkEngine
    query: Engine
    identity: ModelIdentity
    source: str = "custom"
    info: _registry.ModelInfo | None = None
    quantize: str | None = None
    #: The model's default ``top_k`` on both sides (sentence-transformers' ``max_active_dims``).
    max_active_dims: int | None = None
    recipes: Mapping[str, NetworkRecipe] = field(default_factory=dict)
    #: What the files were (for the log): a plain checkpoint, a sentence-transformers folder, ...
    description: str = "custom"
    #: The folder the document model's files were found in; ``None`` for a model not built from files.
    path: Path | None = None

    @property
    def query_mode(self) -> str:
        """``"same"`` (one network), ``"two-tower"`` (a separate query network) or ``"static"`` (a weight table)."""
        if isinstance(self.query, StaticEngine):
            return "static"
        return "same" if self.query.main is self.document.main else "two-tower"


def load(
    model: str | os.PathLike[str] | None = None,
    *,
    query: str | os.PathLike[str] | None = None,
    document: str | os.PathLike[str] | None = None,
    options: LoadOptions | None = None,
) -> LoadedModel:
    """Resolve, convert (once, cached) and open ``model``'s sides; see ``SpladeEncoder.from_pretrained``."""
    opts = options or LoadOptions()
    check_providers(opts.providers)  # sessions open on first use; a wrong provider is refused now
    if document is not None and model is not None:
        raise ArgumentError(
            f"pass the document checkpoint once: model={str(model)!r} and document={str(document)!r} were both "
            "given; use from_pretrained(document=..., query=...) or from_pretrained(model, query=...)"
        )
    doc_name = document if document is not None else (model if model is not None else DEFAULT_MODEL)
    info = _registry.get(opts.entry or str(doc_name))
    where = {"revision": opts.revision, "cache_dir": opts.cache_dir, "local_files_only": opts.local_files_only}
    res = resolve(doc_name, **where)  # type: ignore[arg-type]
    layout = read_layout(res.path)
    rule = info.fastembed if info is not None else None
    if info is not None and rule is not None:
        layout = _fastembed_layout(layout, rule, info.name)
    if query is None and layout.query is None and info is not None and info.query_model is not None:
        query = info.query_model  # a two-tower pair whose document folder does not hold the query tower
    q_side: Side | None = layout.query
    q_res = res
    if query is not None:
        q_res = resolve(query, **where)  # type: ignore[arg-type]
        q_side = read_layout(q_res.path).document
    elif info is not None and info.query_mode == "static" and not isinstance(q_side, StaticSide):
        if info.static_query != "tokens":
            raise ModelError(
                f"{info.name} is inference-free in the registry, but {res.path} has no query weight table "
                "(a SparseStaticEmbedding module or idf.json); download the whole repository"
            )
        q_side = StaticSide(folder=layout.document.folder, weights=None, prompt=layout.document.prompt)
    side = layout.document
    # FastEmbed's IfSplade zeroes the special tokens' ids in documents
    drop = special_ids(side.folder) if rule == "IfSplade" else ()
    doc_recipe = _Once(functools.partial(_recipe, res, side, opts, drop))
    if opts.lazy:
        tok = side_tokenizer(
            side.folder, max_length=opts.max_length, max_seq_length=side.max_seq_length, lowercase=side.lowercase
        )
        latency = detect_format(_at(res, side.folder).path)[0] != "onnx"  # as _recipe decides it
        doc = deferred_engine(
            doc_recipe,
            tok,
            threads=opts.threads,
            latency=latency,
            prompt=side.prompt,
            pooling=side.pooling,
            drop_ids=drop,
        )
    else:
        doc = doc_recipe().build(threads=opts.threads)
    vocab = int(read_config(side.folder).get("vocab_size") or doc.tokenizer.vocab_size)
    recipes: dict[str, Callable[[], NetworkRecipe]] = {"document": doc_recipe}
    q_engine: Engine = doc  # the query side is this network unless a side below says otherwise
    root = _graph_root(opts)
    fingerprints = [source_fingerprint(_at(res, layout.document.folder), root)]
    if rule == "IfSplade":  # the same files give other vectors than by their own layout
        fingerprints.append("rules:fastembed-IfSplade")
    if isinstance(q_side, StaticSide):
        q_engine = _static_engine(q_side, vocab, fastembed=rule == "IfSplade")
        fingerprints.append("static:" + (file_identity(q_side.weights, root) if q_side.weights else "ones"))
    elif q_side is not None:
        q_recipe = _recipe(q_res, q_side, opts)
        shared = dataclasses.replace(q_recipe, prompt=doc_recipe().prompt) == doc_recipe()
        q_engine = q_recipe.build(threads=opts.threads, share=doc if shared else None)
        recipes["query"] = functools.partial(_same, q_recipe)
        q_vocab = int(read_config(q_side.folder).get("vocab_size") or q_engine.tokenizer.vocab_size)
        if q_vocab != vocab:
            raise ModelMismatchError(
                f"the query model has a vocabulary of {q_vocab} and the document model {vocab}: their vectors "
                "cannot be compared; a two-tower pair must share its vocabulary"
            )
        if not shared:
            fingerprints.append(source_fingerprint(_at(q_res, q_side.folder), root))
    name = info.name if info else str(doc_name)
    return LoadedModel(
        document=doc,
        query=q_engine,
        identity=ModelIdentity(name=name, vocab_size=vocab, fingerprint=_combine(fingerprints)),
        source=res.source,
        info=info,
        quantize=opts.quantize,
        max_active_dims=layout.max_active_dims,
        recipes=_Recipes(recipes),
        description=layout.description,
        path=res.path,
    )


class _Once:
    """``make()``, called on first use (once, thread-safe), then kept."""

    def __init__(self, make: Callable[[], NetworkRecipe]) -> None:
        self._make = make
        self._made: NetworkRecipe | None = None
        self._lock = threading.Lock()

    def __call__(self) -> NetworkRecipe:
        made = self._made
        if made is None:
            with self._lock:
                made = self._made
                if made is None:
                    made = self._made = self._make()
        return made


def _same(recipe: NetworkRecipe) -> NetworkRecipe:
    return recipe


class _Recipes(Mapping[str, NetworkRecipe]):
    """The recipes of the network sides, each made when first asked for (see ``LoadOptions.lazy``)."""

    def __init__(self, makers: Mapping[str, Callable[[], NetworkRecipe]]) -> None:
        self._makers = dict(makers)

    def __getitem__(self, side: str) -> NetworkRecipe:
        return self._makers[side]()

    def __iter__(self) -> Iterator[str]:
        return iter(self._makers)

    def __len__(self) -> int:
        return len(self._makers)


def _at(res: ResolvedModel, folder: Path) -> ResolvedModel:
    """``res`` narrowed to one module folder (the whole model when it is the root)."""
    if folder == res.path:
        return res
    rel = folder.relative_to(res.path).as_posix() if folder.is_relative_to(res.path) else str(folder)
    return dataclasses.replace(res, path=folder, source=f"{res.source} [{rel}]")


def _graph_root(opts: LoadOptions) -> Path:
    """The folder of converted graphs (and of the file-hash memo)."""
    return (Path(opts.cache_dir).expanduser() if opts.cache_dir is not None else default_cache_dir()) / "onnx"


def _recipe(res: ResolvedModel, side: NetworkSide, opts: LoadOptions, drop_ids: tuple[int, ...] = ()) -> NetworkRecipe:
    """The cached graph of a network side (converted on a cache miss) and how to rebuild its engine."""
    tower = _at(res, side.folder)
    root = _graph_root(opts)
    int8 = opts.quantize == "int8"
    fmt, weights = detect_format(tower.path)
    sliced = fmt != "onnx"  # a converted checkpoint; a wrapped logits graph has no vocabulary slices
    fast: _LatencyGraph | _QueryGraph | None = (
        _LatencyGraph(tower, root, side.pooling, side.activation, int8) if sliced else None
    )
    head = None
    projection = plan_projection(opts.projection, tower, converted=sliced, pooling=side.pooling)
    if projection != "dense":
        fit = fitted_plan(tower, weights, root, side.folder, int8=int8)
        if projection == "pruned" or fit[1].auto == "pruned":
            graph, head = pruned_graphs(tower, weights, root, fit, side.activation, int8=int8)
            if not int8:  # with int8, short texts keep the int8 latency graph: its int8 projection is the faster
                fast = _QueryGraph(tower, weights, root, fit, side.activation)
    if head is None:
        graph = pooled_graph(tower, root, side.pooling, side.activation)
        if int8:
            graph = int8_graph(tower, root, graph)
    return NetworkRecipe(
        graph=graph,
        head=head,
        fast_graph=fast,
        fast_per_text=isinstance(fast, _QueryGraph),
        folder=side.folder,
        max_length=opts.max_length,
        max_seq_length=side.max_seq_length,
        lowercase=side.lowercase,
        prompt=side.prompt,
        pooling=side.pooling,
        providers=opts.providers,
        drop_ids=drop_ids,
        session=opts.session,
        devices=opts.devices,
    )


@dataclass(frozen=True)
class _LatencyGraph:
    """The latency graph of a side (one vocabulary slice), converted on first call, then cached on disk.

    A document job never opens it, so it costs neither conversion time nor disk until a short batch comes.
    """

    tower: ResolvedModel
    root: Path
    pooling: str
    activation: str
    int8: bool

    def __call__(self) -> Path:
        graph = pooled_graph(self.tower, self.root, self.pooling, self.activation, chunks=1)
        return int8_graph(self.tower, self.root, graph) if self.int8 else graph


@dataclass(frozen=True)
class _QueryGraph:
    """The pruned head's query graph of a side (one text per run), built on first call, then cached on disk."""

    tower: ResolvedModel
    weights: Path
    root: Path
    fit: Fit
    activation: str

    def __call__(self) -> Path:
        return pruned_query_path(self.tower, self.weights, self.root, self.fit, self.activation)


def _fastembed_layout(layout: Layout, rule: str, name: str) -> Layout:
    """``layout`` as FastEmbed 0.9.1's class ``rule`` encodes it (:mod:`splade_onnx._fastembed_rules`)."""
    n = context_length(layout.document.folder)
    document = dataclasses.replace(
        layout.document,
        pooling="max",
        activation="log1p_relu" if rule == "IfSplade" else "relu",
        max_seq_length=n if n is not None else layout.document.max_seq_length,
    )
    if rule != "IfSplade":
        return dataclasses.replace(layout, document=document, query=None)
    q = layout.query
    if not (isinstance(q, StaticSide) and q.weights is not None and q.weights.name == "idf.json"):
        raise ModelError(
            f"{name} is encoded as FastEmbed's IfSplade, whose queries are weighed from idf.json beside the model, but "
            f"{layout.document.folder} has no idf.json; download the repository's idf.json too"
        )
    return dataclasses.replace(layout, document=document)


def _static_engine(side: StaticSide, vocab: int, *, fastembed: bool = False) -> StaticEngine:
    drop: tuple[int, ...] = ()
    listed = None
    if fastembed and side.weights is not None:
        limit = context_length(side.folder)
        tok = TextTokenizer.from_folder(side.folder, max_length=None, model_limit=limit, specials=True)
        weights, listed = idf_table(side.weights, side.folder)
        drop = special_ids(side.folder)
    else:
        tok = TextTokenizer.from_folder(side.folder, max_length=None, model_limit=None, specials=False)
        weights = static_weights(side, tok.vocab(), tok.unk_id)
    if weights.size != vocab:
        raise ModelMismatchError(
            f"the query weight table {side.weights or '(ones)'} has {weights.size} entries but the document model's "
            f"vocabulary has {vocab}: their vectors cannot be compared"
        )
    return StaticEngine(tok, weights, prompt=side.prompt, drop_ids=drop, listed=listed)


def _combine(fingerprints: list[str]) -> str:
    if len(fingerprints) == 1:
        return fingerprints[0]
    return hashlib.sha256("\n".join(fingerprints).encode()).hexdigest()


def pooled_graph(
    res: ResolvedModel, root: Path, pooling: str = "max", activation: str = "relu", *, chunks: int | None = None
) -> Path:
    """The cached pooled graph for ``res``, converting or wrapping it on first use.

    ``chunks`` sets the vocabulary slices of a converted graph (default: sized for full batches;
    1 for the latency graph).  A wrapped logits graph has no slices, so it is the same graph.
    """
    fmt, main = detect_format(res.path)
    # max + relu graphs keep their historical cache keys
    pool = "" if (pooling, activation) == ("max", "relu") else f" pooling={pooling} activation={activation}"
    if fmt != "onnx":  # a checkpoint to convert: safetensors or pytorch_model.bin
        vocab = int(read_config(res.path).get("vocab_size") or 0)
        n = chunks or vocab_chunks(vocab)

        def build(dest: Path) -> None:
            graph, notes = convert_checkpoint(res.path, main, pooling=pooling, activation=activation, chunks=n)
            logger.info("converting %s (%d vocabulary slices): %s", res.source, n, "; ".join(notes))
            save_model(graph, dest)

        variant = f"{fmt}->splade v{CONVERTER_VERSION} fp32 chunks={n}{pool}"
        return cached_graph(res, root, variant, build)

    def wrap(dest: Path) -> None:
        import onnx

        try:
            model = onnx.load(str(main))
        except Exception as e:
            raise ModelError(f"cannot read {main} as ONNX ({type(e).__name__}: {e}); the file is corrupt") from e
        save_model(pool_logits_model(model, pooling=pooling, activation=activation), dest)

    return cached_graph(res, root, f"logits->splade v{CONVERTER_VERSION} fp32{pool}", wrap)
