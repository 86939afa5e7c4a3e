"""What a model folder holds: its document side, its query side, and how each is encoded.

Pure reading of JSON and small weight tables; nothing here builds a graph or a session.

Layouts understood (the reference for each is the library that defines it):

* **Plain checkpoint** (``config.json`` + ``model.safetensors``, ``model.onnx`` or ``pytorch_model.bin`` +
  ``tokenizer.json``):
  both sides are the same network, max pooling of ``log(1 + relu)``.  This is also what
  sentence-transformers builds for a ``*ForMaskedLM`` folder without ``modules.json``.
* **sentence-transformers** ``SparseEncoder`` (``modules.json``; 6.x and the 5.x names the Hub
  still carries): ``MLMTransformer`` or ``Transformer`` (fill-mask) followed by ``SpladePooling``
  (``max`` or ``sum`` pooling, ``relu`` or ``log1p_relu`` activation; ``chunk_size`` only saves
  memory there and is ignored), or a ``Router`` whose ``query`` and ``document`` routes are such
  chains or a ``SparseStaticEmbedding`` (the inference-free query side; its ``weight`` in
  ``model.safetensors`` or ``pytorch_model.bin``).  Router module ids are
  folders relative to the router's folder, ``""`` being that folder itself.  Prompts,
  ``max_seq_length`` / ``do_lower_case`` (5.x ``sentence_bert_config.json``) and ``max_active_dims``
  are honoured.  Any other module is refused by name.
* **OpenSearch inference-free** (a plain checkpoint plus ``idf.json`` or ``query_token_weights.txt``):
  the query side is a static table.  ``idf.json`` is read with sentence-transformers'
  ``SparseStaticEmbedding.from_json`` rules (a token missing from it weighs 0);
  ``query_token_weights.txt`` (``token<TAB>weight`` lines) with OpenSearch's ``DJLUtils`` rules, where a
  token missing from the file weighs 1.  ``idf.json`` wins when both are present.
"""

from __future__ import annotations

import ast
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ._errors import FileMissingError, ModelError

logger = logging.getLogger(__name__)

__all__ = [
    "Layout",
    "NetworkSide",
    "StaticSide",
    "position_limit",
    "read_config",
    "read_json",
    "read_layout",
    "static_weights",
]

Pooling = Literal["max", "sum"]
Activation = Literal["relu", "log1p_relu"]
Task = Literal["query", "document"]

_POOLINGS = ("max", "sum")
_ACTIVATIONS = ("relu", "log1p_relu")
_IDF_FILES = ("idf.json", "query_token_weights.txt")


def read_config(folder: Path) -> dict[str, Any]:
    """``config.json`` of a checkpoint folder (empty when absent)."""
    p = folder / "config.json"
    if not p.is_file():
        return {}
    try:
        cfg = json.loads(p.read_text())
    except ValueError as e:
        raise ModelError(f"{p} is not valid JSON: {e}") from e
    return cfg if isinstance(cfg, dict) else {}


def position_limit(config: dict[str, Any]) -> int | None:
    """The longest input the position embeddings allow (RoBERTa-style models offset positions)."""
    n = config.get("max_position_embeddings")
    if not isinstance(n, int):
        return None
    if str(config.get("model_type", "")) in ("roberta", "xlm-roberta", "camembert"):
        n -= int(config.get("pad_token_id", 1)) + 1
    return n


@dataclass(frozen=True)
class NetworkSide:
    """A transformer side: ``folder`` holds the checkpoint and its tokenizer."""

    folder: Path
    pooling: Pooling = "max"
    activation: Activation = "relu"
    #: sentence-transformers' ``max_seq_length`` (5.x config); it replaces the tokenizer's limit.
    max_seq_length: int | None = None
    lowercase: bool = False
    prompt: str = ""

    @property
    def kind(self) -> str:
        return "network"


@dataclass(frozen=True)
class StaticSide:
    """An inference-free side: the text's distinct token ids, each weighted from a table.

    ``weights`` is a safetensors file (or a PyTorch ``pytorch_model.bin``) with one tensor ``weight`` [vocab], or
    an ``idf.json`` ``{token: weight}``; ``None`` means every token weighs 1 (a plain bag of tokens).
    """

    folder: Path
    weights: Path | None
    prompt: str = ""

    @property
    def kind(self) -> str:
        return "static"


Side = NetworkSide | StaticSide


@dataclass(frozen=True)
class Layout:
    document: NetworkSide
    #: ``None``: the query side is the document side (symmetric SPLADE).
    query: Side | None
    #: sentence-transformers' ``max_active_dims``: the default top-k of both sides.
    max_active_dims: int | None = None
    description: str = "checkpoint"


def read_json(path: Path, needed_by: str = "") -> Any:
    """``path``'s JSON; a missing file is a :class:`FileMissingError` (naming ``needed_by`` when given) and
    invalid JSON a :class:`ModelError`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileMissingError(f"{path} is missing{f': {needed_by}' if needed_by else ''}") from None
    except ValueError as e:
        raise ModelError(f"{path} is not valid JSON: {e}") from e


def _class_name(ref: object, where: str) -> str:
    if not isinstance(ref, str) or not ref:
        raise ModelError(f"{where}: module type must be a class path string, got {ref!r}")
    return ref.rsplit(".", 1)[-1]


def _subfolder(root: Path, rel: object, where: str) -> Path:
    if not isinstance(rel, str):
        raise ModelError(f"{where}: module path must be a string, got {rel!r}")
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        raise ModelError(f"{where}: module path {rel!r} leaves the model folder")
    return root / p


def _st_config(folder: Path) -> dict[str, Any]:
    p = folder / "config_sentence_transformers.json"
    if not p.is_file():
        return {}
    cfg = read_json(p)
    if not isinstance(cfg, dict):
        raise ModelError(f"{p} must hold a JSON object")
    kind = cfg.get("model_type")
    if kind not in (None, "SparseEncoder"):
        raise ModelError(
            f"{p} says model_type={kind!r}: this is not a SparseEncoder (a dense SentenceTransformer "
            "or a cross-encoder) and has no SPLADE output; use a SPLADE model"
        )
    return cfg


def _transformer(folder: Path, type_name: str, where: str) -> NetworkSide:
    """An ``MLMTransformer`` / fill-mask ``Transformer`` module folder."""
    cfg: dict[str, Any] = {}
    for name in (
        "sentence_bert_config.json",
        "sentence_distilbert_config.json",
        "sentence_roberta_config.json",
        "sentence_xlm-roberta_config.json",
        "sentence_camembert_config.json",
    ):
        if (folder / name).is_file():
            loaded = read_json(folder / name)
            cfg = loaded if isinstance(loaded, dict) else {}
            break
    if type_name == "Transformer":
        task = cfg.get("transformer_task")
        archs = (read_json(folder / "config.json") if (folder / "config.json").is_file() else {}).get("architectures")
        mlm = task == "fill-mask" or (task is None and any(str(a).endswith("ForMaskedLM") for a in archs or ()))
        if not mlm:
            raise ModelError(
                f"{where}: a Transformer module with transformer_task={task!r} gives token embeddings, not MLM "
                "logits; a SPLADE model needs transformer_task 'fill-mask' (an MLMTransformer)"
            )
    for key in ("processing_kwargs", "query_length", "document_length"):
        if cfg.get(key):
            raise ModelError(f"{where}: {key}={cfg[key]!r} in its sentence-transformers config is not supported")
    n = cfg.get("max_seq_length")
    if n is not None and (not isinstance(n, int) or n < 2):
        raise ModelError(f"{where}: max_seq_length must be an int >= 2, got {n!r}")
    return NetworkSide(folder=folder, max_seq_length=n, lowercase=bool(cfg.get("do_lower_case", False)))


def _pooling(folder: Path, side: NetworkSide, where: str) -> NetworkSide:
    cfg = read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    pooling = cfg.get("pooling_strategy", "max")
    activation = cfg.get("activation_function", "relu")
    if pooling not in _POOLINGS:
        raise ModelError(f"{where}: SpladePooling pooling_strategy={pooling!r} is not supported; supported: max, sum")
    if activation not in _ACTIVATIONS:
        raise ModelError(
            f"{where}: SpladePooling activation_function={activation!r} is not supported; supported: relu, log1p_relu"
        )
    return replace(side, pooling=pooling, activation=activation)


def _static(folder: Path, where: str) -> StaticSide:
    cfg = read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    path = cfg.get("path") if isinstance(cfg, dict) else None
    if (folder / "model.safetensors").is_file():
        return StaticSide(folder=folder, weights=folder / "model.safetensors")
    if isinstance(path, str):
        return StaticSide(folder=folder, weights=_subfolder(folder, path, where))
    if (folder / "pytorch_model.bin").is_file():  # read without torch (splade_onnx._torch_bin)
        return StaticSide(folder=folder, weights=folder / "pytorch_model.bin")
    return StaticSide(folder=folder, weights=None)


def _chain(root: Path, modules: list[tuple[str, str, Path]]) -> Side:
    """One route (or the whole model): ``[(where, class name, folder)]`` in pipeline order."""
    names = [m[1] for m in modules]
    if names == ["SparseStaticEmbedding"]:
        return _static(modules[0][2], modules[0][0])
    if len(modules) == 2 and names[0] in ("MLMTransformer", "Transformer") and names[1] == "SpladePooling":
        side = _transformer(modules[0][2], names[0], modules[0][0])
        return _pooling(modules[1][2], side, modules[1][0])
    for where, name, _ in modules:
        if name not in ("MLMTransformer", "Transformer", "SpladePooling", "SparseStaticEmbedding"):
            hint = " (a CSR model, not SPLADE)" if name == "SparseAutoEncoder" else ""
            raise ModelError(
                f"{root}: module {where} of type {name!r}{hint} is not supported; splade-onnx reads "
                "MLMTransformer/Transformer(fill-mask) + SpladePooling, SparseStaticEmbedding and Router"
            )
    raise ModelError(
        f"{root}: the module chain {' -> '.join(names)} is not supported; expected MLMTransformer + SpladePooling "
        "or a single SparseStaticEmbedding"
    )


def _route(structure: dict[str, list[str]], params: dict[str, Any], task: Task) -> str | None:
    """sentence-transformers' route for ``task`` (text modality): mappings first, then the route named ``task``."""
    mappings = params.get("route_mappings") or {}
    parsed: dict[tuple[Any, Any], str] = {}
    for k, v in mappings.items():
        try:
            key = ast.literal_eval(k)
        except (ValueError, SyntaxError):
            continue
        if isinstance(key, tuple) and len(key) == 2:
            parsed[key] = v
    for key in ((task, "text"), (task, None), (None, "text"), (None, None)):
        if key in parsed:
            return parsed[key]
    return task if task in structure else None


def _router(root: Path) -> Layout:
    path = root / "router_config.json"
    if not path.is_file():
        path = root / "config.json"
    cfg = read_json(path)
    types, structure = cfg.get("types"), cfg.get("structure")
    if not isinstance(types, dict) or not isinstance(structure, dict):
        raise ModelError(f"{path}: a Router config needs 'types' and 'structure' objects")
    params = cfg.get("parameters") or {}

    def chain(route: str) -> Side:
        ids = structure.get(route)
        if not isinstance(ids, list) or not ids:
            raise ModelError(f"{path}: route {route!r} has no modules")
        mods = []
        for mid in ids:
            if mid not in types:
                raise ModelError(f"{path}: route {route!r} lists module {mid!r}, which 'types' does not define")
            where = f"{mid!r} of route {route!r}"
            mods.append((where, _class_name(types[mid], where), _subfolder(root, mid, where)))
        return _chain(root, mods)

    doc_route = _route(structure, params, "document")
    if doc_route is None:
        raise ModelError(f"{path}: no route for documents; routes: {', '.join(structure)}")
    document = chain(doc_route)
    if not isinstance(document, NetworkSide):
        raise ModelError(f"{path}: the document route {doc_route!r} has no transformer; nothing can encode documents")
    q_route = _route(structure, params, "query")
    if q_route is None:
        raise ModelError(f"{path}: no route for queries; routes: {', '.join(structure)}")
    query = chain(q_route)
    return Layout(document=document, query=None if q_route == doc_route else query)


def read_layout(folder: Path) -> Layout:
    """The layout of the model in ``folder`` (see the module docstring)."""
    st = _st_config(folder)
    modules_path = folder / "modules.json"
    if modules_path.is_file():
        entries = read_json(modules_path)
        if not isinstance(entries, list) or not entries:
            raise ModelError(f"{modules_path} must be a non-empty JSON list of modules")
        mods = []
        for e in sorted(entries, key=lambda e: int(e.get("idx", 0)) if isinstance(e, dict) else 0):
            if not isinstance(e, dict):
                raise ModelError(f"{modules_path}: each module entry must be an object, got {e!r}")
            where = f"{e.get('path', '')!r} ({modules_path.name} idx {e.get('idx')})"
            mods.append((where, _class_name(e.get("type"), where), _subfolder(folder, e.get("path", ""), where)))
        if [m[1] for m in mods] in (["Router"], ["Asym"]):
            layout = _router(mods[0][2])
            desc = "sentence-transformers Router"
        else:
            side = _chain(folder, mods)
            if not isinstance(side, NetworkSide):
                raise ModelError(f"{modules_path}: a SparseStaticEmbedding alone cannot encode documents")
            layout = Layout(document=side, query=None)
            desc = "sentence-transformers SparseEncoder"
    else:
        layout = Layout(document=NetworkSide(folder=folder), query=None)
        desc = "checkpoint"
        for name in _IDF_FILES:
            if (folder / name).is_file():
                layout = replace(layout, query=StaticSide(folder=folder, weights=folder / name))
                desc = f"checkpoint + {name} (inference-free)"
                break
    return _with_st_settings(layout, st, folder, desc)


def _with_st_settings(layout: Layout, st: dict[str, Any], folder: Path, desc: str) -> Layout:
    prompts = st.get("prompts") or {}
    if not isinstance(prompts, dict):
        raise ModelError(f"{folder}: prompts in config_sentence_transformers.json must be an object")
    q_prompt, d_prompt = prompts.get("query") or "", prompts.get("document") or ""
    document = replace(layout.document, prompt=d_prompt)
    query: Side | None = layout.query
    if query is None and q_prompt != d_prompt:
        query = replace(layout.document, prompt=q_prompt)
    elif query is not None:
        query = replace(query, prompt=q_prompt)
    k = st.get("max_active_dims")
    if k is not None and (not isinstance(k, int) or k < 1):
        raise ModelError(f"{folder}: max_active_dims must be a positive int or null, got {k!r}")
    return Layout(document=document, query=query, max_active_dims=k, description=desc)


def _token_weights_txt(path: Path) -> dict[str, float]:
    """OpenSearch's ``query_token_weights.txt``: UTF-8 ``token<TAB>weight`` lines, blank lines skipped."""
    out: dict[str, float] = {}
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            parts = line.split("\t")
            try:
                weight = float(parts[1]) if len(parts) == 2 else None
            except ValueError:
                weight = None
            if weight is None:
                raise ModelError(f"{path}:{n}: expected 'token<TAB>weight', got {line[:80]!r}")
            out[parts[0]] = weight
    return out


def _weight_tables(path: Path) -> dict[str, NDArray[Any]]:
    """The tensors of a safetensors file, or of a ``pytorch_model.bin`` (read without torch)."""
    if path.suffix == ".bin":
        from ._torch_bin import read_checkpoint

        return read_checkpoint(path)
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelError(f"cannot read {path} as safetensors ({type(e).__name__}: {e})") from e


def static_weights(side: StaticSide, vocab: dict[str, int], unk_id: int | None) -> NDArray[np.float32]:
    """The weight of every vocabulary id for ``side``, as sentence-transformers builds it.

    From ``idf.json``: ids come from the tokenizer's vocabulary; a token it does not know maps to
    the unknown token's id (sentence-transformers' ``convert_tokens_to_ids``), later entries
    overwriting earlier ones, and a warning counts them.  Without a table every id weighs 1.
    """
    size = max(vocab.values()) + 1 if vocab else 0
    if side.weights is None:
        return np.ones(size, dtype=np.float32)
    path = side.weights
    if not path.is_file():
        raise FileMissingError(f"{path} is missing: the static query side needs its weight table")
    if path.suffix in (".json", ".txt"):
        table = read_json(path) if path.suffix == ".json" else _token_weights_txt(path)
        if not isinstance(table, dict):
            raise ModelError(f"{path} must be a JSON object {{token: weight}}")
        # a token missing from idf.json weighs 0 (sentence-transformers); from the text file 1 (OpenSearch)
        out = np.zeros(size, dtype=np.float32) if path.suffix == ".json" else np.ones(size, dtype=np.float32)
        unknown = 0
        for tok, w in table.items():
            if not isinstance(w, (int, float)) or isinstance(w, bool) or not np.isfinite(w):
                raise ModelError(f"{path}: the weight of token {tok!r} must be a finite number, got {w!r}")
            i = vocab.get(tok)
            if i is None:
                unknown += 1
                if unk_id is None:
                    continue
                i = unk_id
            out[i] = w
        if unknown:
            logger.warning(
                "%s: %d token(s) are not in the tokenizer's vocabulary and map to its unknown token, "
                "as sentence-transformers does",
                path,
                unknown,
            )
        return out
    tensors = _weight_tables(path)
    w = tensors.get("weight")
    if w is None or w.ndim != 1:
        found = {k: v.shape for k, v in tensors.items()}
        raise ModelError(f"{path} must hold one 1-D tensor 'weight' [vocab]; found {found}")
    if not np.all(np.isfinite(w)):
        raise ModelError(f"{path}: the weight table has non-finite values")
    return np.ascontiguousarray(w, dtype=np.float32)
