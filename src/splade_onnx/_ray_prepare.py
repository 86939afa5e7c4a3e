"""Preparing a model for Ray actors: resolve and convert it once on the driver, and ship its files.

:func:`prepare_model` makes a :class:`PreparedModel` (small and picklable: recipes, options and,
with ``ship="object_store"``, a reference to the graph and tokenizer files in Ray's object
store); :func:`unbundle` writes shipped files in an actor and points the recipe at them.
Imported by :mod:`splade_onnx.ray`, which checks that the ``ray`` extra is installed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ray

from ._encoder import SpladeEncoder
from ._engine import NetworkRecipe, StaticEngine
from ._errors import ArgumentError
from ._options import keyword_options
from ._registry import DEFAULT_MODEL

__all__ = ["FixedGraph", "PreparedModel", "check_quantize", "prepare_model", "unbundle"]

_SHIP = ("disk", "object_store")
#: What a network side reads from its model folder besides the graph (tokenizer and position limit).
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json")


@dataclass(frozen=True)
class FixedGraph:
    """A latency graph already on disk (the recipe's ``fast_graph`` callable, made on the driver)."""

    path: Path

    def __call__(self) -> Path:
        return self.path


@dataclass(frozen=True)
class PreparedModel:
    """A model resolved and converted on the driver: all an actor needs to build its engine.

    Made by :func:`prepare_model`; picklable and small (paths, options and, with
    ``ship="object_store"``, a reference to the files in Ray's object store).
    """

    name: str
    quantize: str | None
    vocab_size: int
    max_active_dims: int | None
    token_budget: int
    document: NetworkRecipe
    #: The query side: a network recipe, or the static table of an inference-free model.
    query: NetworkRecipe | StaticEngine
    ship: str = "disk"
    #: ``ray.ObjectRef`` of ``{relative path: bytes}`` with ``ship="object_store"``.
    files: Any = None


@keyword_options
def prepare_model(
    model: str | os.PathLike[str] | SpladeEncoder = DEFAULT_MODEL,
    *,
    quantize: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
    ship: str = "disk",
) -> PreparedModel:
    """Resolve, convert and cache ``model`` here (the driver), once, for actors that only read the files.

    ``model`` is what :meth:`SpladeEncoder.from_pretrained` takes, or an encoder it built.
    ``ship="disk"``: actors read the cache at the same paths (one machine, or a shared cache
    folder).  ``ship="object_store"``: the files travel through Ray's object store (needs
    ``ray.init()`` first); actors write them to a temporary folder of their own.
    """
    if ship not in _SHIP:
        raise ArgumentError(f"ship must be one of {', '.join(map(repr, _SHIP))}, got {ship!r}")
    if isinstance(model, SpladeEncoder):
        if quantize is not None or cache_dir is not None or revision is not None or local_files_only:
            raise ArgumentError("pass loading options (quantize, cache_dir, ...) with a model name, not an encoder")
        enc = model
        quantize = enc.quantize
    else:
        enc = SpladeEncoder.from_pretrained(
            model,
            quantize=quantize,
            cache_dir=cache_dir,
            revision=revision,
            local_files_only=local_files_only,
            threads=1,
        )
    recipe = enc.loaded.recipes.get("document")
    if recipe is None:
        raise ArgumentError(
            "prepare_model needs an encoder built by SpladeEncoder.from_pretrained (actors reload its files)"
        )
    doc = _fixed(recipe)
    query: NetworkRecipe | StaticEngine
    if isinstance(enc.loaded.query, StaticEngine):
        query = enc.loaded.query
    else:
        q = enc.loaded.recipes.get("query")
        query = doc if q is None else _fixed(q)
    files = ray.put(_bundle(doc, query)) if ship == "object_store" else None
    return PreparedModel(
        name=enc.name,
        quantize=quantize,
        vocab_size=enc.vocab_size,
        max_active_dims=enc.max_active_dims,
        token_budget=enc.token_budget,
        document=doc,
        query=query,
        ship=ship,
        files=files,
    )


def _fixed(recipe: NetworkRecipe) -> NetworkRecipe:
    """``recipe`` with its latency graph made now, so that no actor converts it on its first short batch."""
    if recipe.fast_graph is None or isinstance(recipe.fast_graph, FixedGraph):
        return recipe
    return replace(recipe, fast_graph=FixedGraph(recipe.fast_graph()))


def _sides(doc: NetworkRecipe, query: NetworkRecipe | StaticEngine) -> dict[str, NetworkRecipe]:
    sides = {"document": doc}
    if isinstance(query, NetworkRecipe) and query != doc:
        sides["query"] = query
    return sides


def _bundle(doc: NetworkRecipe, query: NetworkRecipe | StaticEngine) -> dict[str, bytes]:
    """``{side/part/file: bytes}``: the graphs (with any external data) and tokenizer files of each network side."""
    out: dict[str, bytes] = {}
    for side, r in _sides(doc, query).items():
        parts = {"graph": r.graph.parent}
        if isinstance(r.fast_graph, FixedGraph):
            parts["fast"] = r.fast_graph.path.parent
        for part, folder in parts.items():
            for f in sorted(folder.iterdir()):
                if f.is_file() and f.name != "meta.json":
                    out[f"{side}/{part}/{f.name}"] = f.read_bytes()
        for name in _TOKENIZER_FILES:
            if (r.folder / name).is_file():
                out[f"{side}/tokenizer/{name}"] = (r.folder / name).read_bytes()
    return out


def unbundle(prepared: PreparedModel, side: str, into: Path) -> NetworkRecipe:
    """The recipe of ``side`` pointing at its shipped files, written under ``into``."""
    recipe = prepared.document if side == "document" else prepared.query
    assert isinstance(recipe, NetworkRecipe)
    files: dict[str, bytes] = ray.get(prepared.files)
    for name, data in files.items():
        if name.startswith(side + "/"):
            dest = into / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    fast = (
        FixedGraph(into / side / "fast" / recipe.fast_graph.path.name)
        if isinstance(recipe.fast_graph, FixedGraph)
        else None
    )
    head = into / side / "graph" / recipe.head.name if recipe.head is not None else None  # beside the graph
    return replace(
        recipe,
        graph=into / side / "graph" / recipe.graph.name,
        head=head,
        fast_graph=fast,
        folder=into / side / "tokenizer",
    )


def check_quantize(quantize: str | None, prepared: PreparedModel) -> None:
    if quantize is not None and quantize != prepared.quantize:
        raise ArgumentError(
            f"quantize={quantize!r} disagrees with the prepared model ({prepared.quantize!r}); pass it to prepare_model"
        )
