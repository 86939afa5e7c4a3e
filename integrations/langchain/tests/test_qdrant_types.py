"""langchain-qdrant's types: ``mypy --strict`` on the docs' Qdrant snippets, and the adapter without the extra.

With the ``[qdrant]`` extra (this environment), ``SpladeSparseEmbeddings`` is a
``langchain_qdrant.SparseEmbeddings`` (``test_qdrant.py`` checks it at run time).  Here, mypy checks
the README's and the docs' Qdrant snippets as a user's code, and a subprocess in which
langchain-qdrant and qdrant-client cannot be imported shows the stand-ins at work.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_splade import SpladeMilvusSparseEmbedding, SpladeRetriever, SpladeSparseEmbeddings

from conftest import CACHE, REPO, SEED

#: This checkout's core and adapter, ahead of whatever the environment has installed (PYTHONPATH, MYPYPATH).
CHECKOUT = os.pathsep.join([str(REPO / "src"), str(REPO / "integrations" / "langchain")])
#: The pages whose ```python blocks that import langchain_qdrant must pass ``mypy --strict``.
PAGES = ["integrations/langchain/README.md", "docs/integrations.md"]


def qdrant_snippets() -> list[tuple[str, str]]:
    out = []
    for page in PAGES:
        for block in re.findall(r"```python\n(.*?)```", (REPO / page).read_text(encoding="utf-8"), flags=re.S):
            if "langchain_qdrant" in block:
                out.append((page, block))
    return out


def test_the_qdrant_snippets_are_found() -> None:
    assert [page for page, _ in qdrant_snippets()] == PAGES


#: Checked in the same mypy run: what must pass, and what must fail, so that the run cannot pass vacuously
#: (langchain-qdrant's types seen as ``Any`` would accept the mistake).
CONTROL = """\
from langchain_qdrant import QdrantVectorStore, SparseEmbeddings, SparseVector
from langchain_splade import SpladeSparseEmbeddings

embeddings: SparseEmbeddings = SpladeSparseEmbeddings()
vectors: list[SparseVector] = embeddings.embed_documents(["a"])
store = QdrantVectorStore.from_texts(["a"], sparse_embedding=SpladeSparseEmbeddings(), location=":memory:")
wrong: int = SpladeSparseEmbeddings().embed_query("a")
reveal_type(SpladeSparseEmbeddings().embed_query("a"))
"""


@pytest.mark.slow
def test_mypy_strict_accepts_the_qdrant_snippets(tmp_path: Path) -> None:
    files = [f"snippet_{n}.py" for n in range(len(qdrant_snippets()))]
    for name, (_, block) in zip(files, qdrant_snippets()):
        (tmp_path / name).write_text(block, encoding="utf-8")
    (tmp_path / "control.py").write_text(CONTROL, encoding="utf-8")
    env = {**os.environ, "MYPYPATH": CHECKOUT}
    cmd = [sys.executable, "-m", "mypy", "--strict", "--config-file", str(REPO / "pyproject.toml")]
    cmd += ["--cache-dir", str(REPO / ".cache" / "mypy-snippets"), "--no-error-summary", *files, "control.py"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600, check=False)
    # By file name: mypy's cache replays an unchanged file's messages under the path it was first checked at.
    lines = [re.sub(r"^[^\s:]*/", "", line) for line in proc.stdout.splitlines()]
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 1, proc.stdout + proc.stderr
    assert errors[0].startswith("control.py:7: error: Incompatible types in assignment")
    assert '(expression has type "SparseVector", variable has type "int")' in errors[0]
    assert 'control.py:8: note: Revealed type is "langchain_qdrant.sparse_embeddings.SparseVector"' in lines


#: Runs with langchain-qdrant and qdrant-client made unimportable, as in an environment without the extra.
WITHOUT_THE_EXTRA = r"""
import asyncio, importlib.abc, json, sys


class Uninstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("langchain_qdrant", "qdrant_client"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Uninstalled())
import pydantic
from langchain_splade import SparseVector, SpladeMilvusSparseEmbedding, SpladeRetriever, SpladeSparseEmbeddings
from langchain_splade import sparse_types

cache, texts = sys.argv[1], json.loads(sys.argv[2])
embeddings = SpladeSparseEmbeddings(cache_dir=cache)
docs, query = embeddings.embed_documents(texts), embeddings.embed_query("lunar rover")
adocs, aquery = asyncio.run(embeddings.aembed_documents(texts)), asyncio.run(embeddings.aembed_query("lunar rover"))
try:
    SparseVector(indices=[1], values=[1.0], weight=2.0)
except pydantic.ValidationError:
    forbids_extra = True
else:
    forbids_extra = False
retriever = SpladeRetriever.from_texts(texts, ids=[str(i) for i in range(len(texts))], embeddings=embeddings, k=3)
milvus = SpladeMilvusSparseEmbedding(embeddings.encoder)
sys.stdout.write(json.dumps({
    "from_langchain_qdrant": sparse_types.FROM_LANGCHAIN_QDRANT,
    "qdrant_modules": sorted(m for m in sys.modules if m.partition(".")[0] in ("langchain_qdrant", "qdrant_client")),
    "base": [c.__module__ + "." + c.__qualname__ for c in SpladeSparseEmbeddings.__mro__],
    "is_base": isinstance(embeddings, sparse_types.SparseEmbeddings),
    "vector_types": sorted({type(v).__module__ + "." + type(v).__qualname__ for v in [*docs, query]}),
    "docs": [v.model_dump() for v in docs],
    "query": query.model_dump(),
    "async_equal": adocs == docs and aquery == query,
    "forbids_extra": forbids_extra,
    "retriever": [d.id for d in retriever.invoke("How much did the mission cost?")],
    "milvus": {str(k): v for k, v in milvus.embed_query("lunar rover").items()},
}) + "\n")
"""


def test_without_the_extra_the_stand_ins_give_the_same_vectors(embeddings: SpladeSparseEmbeddings) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", WITHOUT_THE_EXTRA, str(CACHE), json.dumps(SEED)],
        env={**os.environ, "PYTHONPATH": CHECKOUT},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["from_langchain_qdrant"] is False and out["qdrant_modules"] == []
    assert out["base"][:2] == [
        "langchain_splade.embeddings.SpladeSparseEmbeddings",
        "langchain_splade.sparse_types.SparseEmbeddings",
    ]
    assert out["is_base"] and out["vector_types"] == ["langchain_splade.sparse_types.SparseVector"]
    assert out["async_equal"] and out["forbids_extra"]
    # The same numbers as with the extra (this process has it).
    assert out["docs"] == [v.model_dump() for v in embeddings.embed_documents(SEED)]
    assert out["query"] == embeddings.embed_query("lunar rover").model_dump()
    reference = SpladeRetriever.from_texts(SEED, ids=[str(i) for i in range(len(SEED))], embeddings=embeddings, k=3)
    assert out["retriever"] == [d.id for d in reference.invoke("How much did the mission cost?")]
    milvus = SpladeMilvusSparseEmbedding(embeddings.encoder).embed_query("lunar rover")
    assert out["milvus"] == {str(k): v for k, v in milvus.items()}
