"""splade_onnx.ray on a real local Ray cluster with the real splade-tiny: parity with the in-process
encoder, Parquet, the Qdrant (local mode) and Milvus (Lite) sinks, killed tasks, errors, clean shutdown."""

from __future__ import annotations

import importlib
import json
import logging
import os
import pickle
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from splade_onnx import MissingExtraError, SparseEmbedding, SparseIndex, SpladeEncoder
from splade_onnx._beir import load_beir

from conftest import ROOT, TINY, ray_head, ray_started

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import splade_onnx.ray as sray  # noqa: E402
from splade_onnx.ray import (  # noqa: E402
    MilvusDatasink,
    PreparedModel,
    QdrantDatasink,
    SpladeBatchEncoder,
    encode_dataset,
    prepare_model,
    to_embeddings,
)

logger = logging.getLogger(__name__)

CRANFIELD = ROOT / "data" / "cranfield"
EXPECTED = [
    "MILVUS_EMPTY_VECTOR",
    "MilvusDatasink",
    "PreparedModel",
    "QdrantDatasink",
    "SpladeBatchEncoder",
    "encode_dataset",
    "prepare_model",
    "qdrant_point_id",
    "to_embeddings",
]


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, Any]]:
    """A local Ray cluster for this module, stopped at its end: 4 logical CPUs, so that 2 one-CPU actors leave
    room for Ray's read and write tasks (with 2, the readers wait for the actors, which wait for the readers).
    Its head runs in processes of its own (``ray_head``), and this process joins it as a driver."""
    with ray_head(num_cpus=4) as address:
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the killing subclasses below
        ctx = ray.init(address=address, configure_logging=False, log_to_driver=False)
        data = ray.data.DataContext.get_current()
        saved = data.execution_options.preserve_order, data.enable_progress_bars
        data.execution_options.preserve_order = True
        data.enable_progress_bars = False
        try:
            yield {"session_dir": ctx.address_info["session_dir"], "address": address}
        finally:
            data.execution_options.preserve_order, data.enable_progress_bars = saved
            ray.shutdown()


@pytest.fixture(scope="module")
def corpus() -> dict[str, Any]:
    beir = load_beir(CRANFIELD)
    return {"ids": beir.doc_ids, "texts": beir.doc_texts, "queries": beir.query_texts}


@pytest.fixture(scope="module")
def serial(cache_dir: Path, corpus: dict[str, Any]) -> list[SparseEmbedding]:
    """The in-process vectors of the whole Cranfield corpus, title and text joined as BEIR does, from an encoder
    with one thread per session: what each one-CPU actor runs."""
    return SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, threads=1).encode_documents(corpus["texts"])


@pytest.fixture(scope="module")
def prepared(tiny: SpladeEncoder, cluster: dict[str, Any]) -> PreparedModel:
    return prepare_model(tiny)


def cranfield_dataset(blocks: int = 8) -> Any:
    """Cranfield's corpus.jsonl through Ray's JSON reader, in several blocks so that both actors get work."""
    return ray.data.read_json(str(CRANFIELD / "corpus.jsonl"), lines=True, override_num_blocks=blocks)


@pytest.fixture(scope="module")
def encoded(prepared: PreparedModel, cluster: dict[str, Any]) -> Any:
    """Cranfield through ``encode_dataset`` with 2 actors, materialized once for the tests that read it."""
    return encode_dataset(
        cranfield_dataset(), model=prepared, title_column="title", concurrency=2, batch_size=64
    ).materialize()


def vectors_by_id(rows: list[dict[str, Any]], id_column: str = "_id") -> dict[str, SparseEmbedding]:
    embs = to_embeddings([r["indices"] for r in rows], [r["values"] for r in rows])
    return {str(r[id_column]): e for r, e in zip(rows, embs)}


def assert_identical(got: dict[str, SparseEmbedding], ids: list[str], want: list[SparseEmbedding]) -> None:
    """Same ids, identical index sets and bit-identical values: with one thread per session a text's vector
    does not depend on the batch it shares (actors see other batches than the in-process encoder)."""
    assert sorted(got) == sorted(ids)
    for doc_id, w in zip(ids, want):
        g = got[doc_id]
        assert np.array_equal(g.indices, w.indices), doc_id
        assert np.array_equal(g.values, w.values), (doc_id, float(np.max(np.abs(g.values - w.values))))


# ---------------------------------------------------------------------------------------------- surface


def test_public_names_are_pinned() -> None:
    assert sorted(sray.__all__) == sorted(EXPECTED)
    for name in EXPECTED:
        assert getattr(sray, name) is not None


def test_a_missing_ray_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("splade_onnx.ray", "splade_onnx._ray_write", "splade_onnx._ray_qdrant", "splade_onnx._ray_milvus"):
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without ray looks like to import
    with pytest.raises(MissingExtraError, match=re.escape("pip install 'splade-onnx[ray]'")):
        importlib.import_module("splade_onnx.ray")


@pytest.mark.parametrize(
    ("module", "make", "extra"),
    [
        ("qdrant_client", lambda p: QdrantDatasink("c", path=p), "qdrant"),
        ("pymilvus", lambda p: MilvusDatasink("c", uri=f"{p}.db"), "milvus"),
    ],
)
def test_a_missing_sink_extra_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str, make: Any, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtraError, match=re.escape(f"pip install 'splade-onnx[{extra}]'")):
        make(str(tmp_path / "store"))


def test_only_rays_own_startup_timeout_is_tried_again() -> None:
    """The test harness's ``ray_started``: one more try after Ray's startup timeout, no other."""
    from conftest import RAY_START_TIMEOUT

    calls: list[int] = []

    def times_out(n: int) -> Any:
        def start() -> str:
            calls.append(1)
            if len(calls) <= n:
                raise Exception(RAY_START_TIMEOUT + ". This could happen because ...")
            return "started"

        return start

    assert ray_started(times_out(1)) == "started" and len(calls) == 2
    calls.clear()
    with pytest.raises(Exception, match=RAY_START_TIMEOUT):
        ray_started(times_out(2))
    assert len(calls) == 2
    calls.clear()

    def broken() -> None:
        calls.append(1)
        raise ValueError("a snippet's own failure")

    with pytest.raises(ValueError, match="own failure"):
        ray_started(broken)
    assert len(calls) == 1


def test_vector_columns_are_arrow_native_lists() -> None:
    embs = [SparseEmbedding.from_dict({3: 0.25, 70: 1.5}), SparseEmbedding.empty(), SparseEmbedding.from_dict({1: 2})]
    idx, val = sray.vector_columns(embs)
    assert idx.type == pa.list_(pa.int32()) and val.type == pa.list_(pa.float32())
    assert to_embeddings(idx, val) == embs


# ---------------------------------------------------------------------------------------------- encoding


@pytest.mark.slow
def test_cranfield_on_two_actors_equals_encode_documents(
    encoded: Any, corpus: dict[str, Any], serial: list[SparseEmbedding]
) -> None:
    rows = encoded.take_all()
    assert len(rows) == len(corpus["ids"]) == 1400
    assert [str(r["_id"]) for r in rows] == corpus["ids"]  # same order as the corpus (preserve_order)
    assert_identical(vectors_by_id(rows), corpus["ids"], serial)
    assert {"_id", "text", "indices", "values"} <= set(rows[0])  # the input columns are kept


@pytest.mark.slow
def test_object_store_shipping_gives_the_same_vectors(
    tiny: SpladeEncoder, corpus: dict[str, Any], serial: list[SparseEmbedding], cluster: dict[str, Any]
) -> None:
    """Actors that never see the driver's cache: the files come through the object store."""
    shipped = prepare_model(tiny, ship="object_store")
    assert shipped.files is not None
    n = 300
    ds = ray.data.from_items(
        [{"id": i, "body": t} for i, t in zip(corpus["ids"][:n], corpus["texts"][:n])], override_num_blocks=4
    )
    out = encode_dataset(ds, model=shipped, text_column="body", concurrency=2, batch_size=50).take_all()
    assert_identical(vectors_by_id(out, "id"), corpus["ids"][:n], serial[:n])


@pytest.mark.slow
def test_a_model_name_is_resolved_on_the_driver_and_the_query_side_works(
    tiny: SpladeEncoder, cache_dir: Path, cluster: dict[str, Any]
) -> None:
    queries = ["what similarity laws must be obeyed when constructing aeroelastic models", "flutter of wings"]
    ds = ray.data.from_items([{"q": q} for q in queries])
    out = encode_dataset(ds, model=TINY, cache_dir=cache_dir, task="query", text_column="q", top_k=8).take_all()
    want = tiny.encode_queries(queries, top_k=8)
    assert to_embeddings([r["indices"] for r in out], [r["values"] for r in out]) == want
    assert all(len(r["indices"]) <= 8 for r in out)


@pytest.mark.slow
def test_the_batch_encoder_works_in_process_on_every_batch_format(prepared: PreparedModel, tiny: SpladeEncoder) -> None:
    texts = ["supersonic flutter", "", "boundary layer transition on a flat plate"]
    enc = SpladeBatchEncoder(prepared, threads=1)
    want = tiny.encode_documents(texts)
    arrow = enc(pa.table({"text": texts}))
    assert to_embeddings(arrow.column("indices"), arrow.column("values")) == want
    frame = enc(pa.table({"text": texts}).to_pandas())
    assert to_embeddings(list(frame["indices"]), list(frame["values"])) == want
    numpy = enc({"text": np.array(texts, dtype=object)})
    assert to_embeddings(list(numpy["indices"]), list(numpy["values"])) == want


@pytest.mark.slow
def test_an_actor_of_a_prepared_model_neither_resolves_nor_converts(
    prepared: PreparedModel, tiny: SpladeEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import splade_onnx._loading as loading_module

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("an actor must not resolve, download or convert the model")

    want = tiny.encode_documents(["flutter"])  # before the patches: the driver may still make its latency graph
    copy = pickle.loads(pickle.dumps(prepared))  # what Ray ships to each actor
    assert copy == prepared
    for name in ("resolve", "cached_graph", "convert_checkpoint"):
        monkeypatch.setattr(loading_module, name, forbidden)
    monkeypatch.setattr(SpladeEncoder, "from_pretrained", forbidden)
    enc = SpladeBatchEncoder(copy, threads=1)
    out = enc(pa.table({"text": ["flutter"]}))  # a short batch: the latency graph, made on the driver
    assert to_embeddings(out.column("indices"), out.column("values")) == want


@pytest.mark.slow
def test_actors_use_the_cpus_ray_assigns(prepared: PreparedModel, cluster: dict[str, Any]) -> None:
    class Threads(SpladeBatchEncoder):
        def __call__(self, batch: Any) -> Any:
            return pa.table({"threads": [self.threads] * batch.num_rows})

    ds = ray.data.from_items([{"text": "a"}] * 4)
    for cpus in (1, 2):
        out = ds.map_batches(
            Threads,
            fn_constructor_kwargs={"model": prepared},
            compute=ray.data.ActorPoolStrategy(size=1),
            num_cpus=cpus,
            batch_format="pyarrow",
        ).take_all()
        assert {r["threads"] for r in out} == {cpus}


@pytest.mark.slow
def test_parquet_round_trip_is_exact(encoded: Any, tmp_path: Path) -> None:
    encoded.write_parquet(str(tmp_path / "vectors"))
    table = pa.concat_tables([pq.read_table(p) for p in sorted((tmp_path / "vectors").glob("*.parquet"))])
    assert table.schema.field("indices").type == pa.list_(pa.int32())
    assert table.schema.field("values").type == pa.list_(pa.float32())
    back = vectors_by_id(table.to_pylist())
    rows = vectors_by_id(encoded.take_all())
    assert sorted(back) == sorted(rows) and all(back[k] == rows[k] for k in rows)
    again = ray.data.read_parquet(str(tmp_path / "vectors")).take_all()  # and through Ray's reader
    assert all(v == rows[k] for k, v in vectors_by_id(again).items())


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.slow
def test_unknown_and_bad_options_are_clear_errors(prepared: PreparedModel, cluster: dict[str, Any]) -> None:
    ds = ray.data.from_items([{"_id": "1", "title": "t", "text": "x"}])
    with pytest.raises(
        TypeError, match=re.escape("encode_dataset() got unexpected option(s) 'text_col'; valid: model")
    ):
        encode_dataset(ds, model=prepared, text_col="body")  # type: ignore[call-arg]
    with pytest.raises(
        ValueError,
        match=re.escape("text_column='body' is not a column of the dataset; its columns are '_id', 'title', 'text'"),
    ):
        encode_dataset(ds, model=prepared, text_column="body")
    with pytest.raises(ValueError, match=re.escape("max_length must be an int in [2, 512] for this model, got 4096")):
        encode_dataset(ds, model=prepared, max_length=4096)
    with pytest.raises(ValueError, match=re.escape("ship must be one of 'disk', 'object_store', got 'nfs'")):
        prepare_model(TINY, ship="nfs")
    with pytest.raises(ValueError, match=re.escape("concurrency must be a positive int or a (min, max) pair")):
        encode_dataset(ds, model=prepared, concurrency=0)
    with pytest.raises(TypeError, match=re.escape("SpladeBatchEncoder.__init__() got unexpected option(s) 'colum'")):
        SpladeBatchEncoder(prepared, colum="text")  # type: ignore[call-arg]


@pytest.mark.slow
def test_a_missing_column_in_an_actor_names_the_columns(prepared: PreparedModel, cluster: dict[str, Any]) -> None:
    enc = SpladeBatchEncoder(prepared, text_column="body", threads=1)
    msg = "text_column='body' is not a column of the batch; its columns are 'id', 'text'"
    with pytest.raises(ValueError, match=re.escape(msg)):
        enc(pa.table({"id": [1], "text": ["x"]}))
    ds = ray.data.from_items([{"id": 1, "text": "x"}])
    with pytest.raises(Exception, match=re.escape(msg)):  # raised in the actor, reported by Ray
        ds.map_batches(
            SpladeBatchEncoder,
            fn_constructor_kwargs={"model": prepared, "text_column": "body"},
            compute=ray.data.ActorPoolStrategy(size=1),
            batch_format="pyarrow",
        ).take_all()


def test_sink_options_are_checked(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=re.escape("QdrantDatasink needs exactly one of url= (a Qdrant server) or path=")
    ):
        QdrantDatasink("c")
    with pytest.raises(TypeError, match=re.escape("QdrantDatasink.__init__() got unexpected option(s) 'host'; valid:")):
        QdrantDatasink("c", host="localhost")  # type: ignore[call-arg]
    sink = QdrantDatasink("c", path=str(tmp_path / "q"), id_column="doc")
    schema = pa.schema([("_id", pa.string()), ("indices", pa.list_(pa.int32())), ("values", pa.list_(pa.float32()))])
    with pytest.raises(
        ValueError,
        match=re.escape(
            "QdrantDatasink: id_column='doc' is not a column of the dataset; its columns are '_id', 'indices', 'values'"
        ),
    ):
        sink.on_write_start(schema)
    assert not sink.supports_distributed_writes  # a local store: written from the driver's node only
    assert QdrantDatasink("c", url="http://qdrant:6333").supports_distributed_writes
    with pytest.raises(ValueError, match=re.escape("batch_size must be an int >= 1, got 0")):
        MilvusDatasink("c", uri=str(tmp_path / "m.db"), batch_size=0)


def test_transient_errors_are_retried_with_exponential_backoff(caplog: pytest.LogCaptureFixture) -> None:
    from splade_onnx._ray_write import retrying

    calls, sleeps = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("connection reset")
        return "ok"

    transient = lambda e: isinstance(e, ConnectionError)  # noqa: E731
    with caplog.at_level(logging.WARNING, logger="splade_onnx._ray_write"):
        assert retrying(flaky, what="upsert", attempts=5, backoff=0.5, transient=transient, sleep=sleeps.append) == "ok"
    assert sleeps == [0.5, 1.0] and len(calls) == 3
    assert "upsert failed (attempt 1 of 5, ConnectionError: connection reset); retrying in 0.50s" in caplog.text
    calls.clear()
    with pytest.raises(ConnectionError):  # bounded: the last error is raised
        retrying(flaky, what="upsert", attempts=2, backoff=0.5, transient=transient, sleep=sleeps.append)
    assert len(calls) == 2

    def bad() -> None:
        calls.append(1)
        raise ValueError("wrong schema")

    calls.clear()
    with pytest.raises(ValueError, match="wrong schema"):  # not transient: no retry
        retrying(bad, what="upsert", attempts=5, backoff=0.5, transient=transient, sleep=sleeps.append)
    assert len(calls) == 1


# ---------------------------------------------------------------------------------------------- sinks


def exact_index(ids: list[str], vectors: list[SparseEmbedding]) -> SparseIndex:
    index = SparseIndex()
    index.add(vectors, ids=ids)
    return index


def assert_same_results(
    got: list[tuple[str, float]], want: list[tuple[str, float]], index: SparseIndex, query: SparseEmbedding
) -> None:
    """The store's top k is the exact index's: same scores rank by rank, same ids (up to ties of equal score)."""
    assert len(got) == len(want)
    for (gid, gs), (wid, ws) in zip(got, want):
        assert gs == pytest.approx(ws, rel=1e-5, abs=1e-6)
        assert query.dot(index.get(gid)) == pytest.approx(gs, rel=1e-5, abs=1e-6)  # the vector stored is ours
        if gid != wid:  # only a tie may swap two documents
            assert query.dot(index.get(wid)) == pytest.approx(gs, rel=1e-5, abs=1e-6)


def qdrant_count_and_search(path: Path, queries: list[SparseEmbedding]) -> tuple[int, set[str], list[Any]]:
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(path))
    try:
        count = client.count("cranfield", exact=True).count
        ids, offset = set(), None
        while True:
            points, offset = client.scroll("cranfield", limit=500, offset=offset, with_payload=True)
            ids |= {str(p.payload["_id"]) for p in points}  # Ray's JSON reader makes "1" an int
            if offset is None:
                break
        results = []
        for q in queries:
            vec = models.SparseVector(indices=q.indices.tolist(), values=q.values.tolist())
            hits = client.query_points("cranfield", query=vec, using="splade", limit=10, with_payload=True).points
            results.append([(str(h.payload["_id"]), h.score) for h in hits])
        return count, ids, results
    finally:
        client.close()


@pytest.mark.slow
def test_qdrant_sink_writes_each_point_once_and_searches_like_the_index(
    encoded: Any, tiny: SpladeEncoder, corpus: dict[str, Any], serial: list[SparseEmbedding], tmp_path: Path
) -> None:
    path = tmp_path / "qdrant"
    index = exact_index(corpus["ids"], serial)
    queries = tiny.encode_queries(corpus["queries"][:25])
    for run in range(2):  # the second run of the same job must leave the collection as it was
        encoded.write_datasink(
            QdrantDatasink("cranfield", path=str(path), id_column="_id", batch_size=200), concurrency=1
        )
        count, ids, results = qdrant_count_and_search(path, queries)
        assert count == 1400 and ids == set(corpus["ids"]), run
    for q, got in zip(queries, results):
        assert_same_results(got, index.search(q, 10), index, q)


def milvus_count_and_search(uri: str, queries: list[SparseEmbedding]) -> tuple[int, list[Any]]:
    from milvus_lite.server_manager import server_manager_instance
    from pymilvus import MilvusClient

    client = MilvusClient(uri)
    try:
        client.load_collection("cranfield")
        (row,) = client.query("cranfield", filter="", output_fields=["count(*)"], consistency_level="Strong")
        hits = client.search(
            "cranfield",
            data=[q.as_dict() for q in queries],
            anns_field="splade",
            limit=10,
            search_params={"metric_type": "IP", "params": {"drop_ratio_search": 0.0}},
        )
        return int(row["count(*)"]), [[(str(h.get("_id", h.get("id"))), h["distance"]) for h in per] for per in hits]
    finally:
        client.close()
        server_manager_instance.release_server(uri)  # Milvus Lite: one process at a time


@pytest.mark.slow
def test_milvus_sink_writes_each_point_once_and_searches_like_the_index(
    encoded: Any, tiny: SpladeEncoder, corpus: dict[str, Any], serial: list[SparseEmbedding], tmp_path: Path
) -> None:
    uri = str(tmp_path / "milvus.db")
    index = exact_index(corpus["ids"], serial)
    queries = tiny.encode_queries(corpus["queries"][:25])
    for run in range(2):
        encoded.write_datasink(MilvusDatasink("cranfield", uri=uri, id_column="_id", batch_size=200), concurrency=1)
        count, results = milvus_count_and_search(uri, queries)
        assert count == 1400, run
    for q, got in zip(queries, results):
        assert_same_results(got, index.search(q, 10), index, q)


# ---------------------------------------------------------------------------------------------- killed tasks


def _first(marker: str) -> bool:
    """True in exactly one process: the first to create ``marker``."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


class DiesInFirstBatch(SpladeBatchEncoder):
    """An encoder actor whose process dies in the middle of its first batch (once in the whole job)."""

    def __init__(self, *, marker: str, **options: Any) -> None:
        super().__init__(**options)
        self.marker = marker

    def __call__(self, batch: Any) -> Any:
        if _first(self.marker):
            os._exit(1)
        return super().__call__(batch)


class DiesAfterFirstUpsert(QdrantDatasink):
    """A write task whose process dies after its first batch of points is in Qdrant (once in the whole job)."""

    def __init__(self, collection: str, *, marker: str, **options: Any) -> None:
        super().__init__(collection, **options)
        self.marker = marker

    def _upsert(self, client: Any, table: Any) -> None:
        super()._upsert(client, table)
        if _first(self.marker):
            os._exit(1)


@pytest.mark.slow
def test_tasks_killed_mid_batch_are_retried_without_lost_or_duplicate_points(
    prepared: PreparedModel, corpus: dict[str, Any], serial: list[SparseEmbedding], tmp_path: Path
) -> None:
    encoder_marker, sink_marker = tmp_path / "encoder-died", tmp_path / "sink-died"
    n = 400  # four batches of 100, two per actor: the first one dies, the retry must not lose or repeat any
    ds = (
        cranfield_dataset(4)
        .limit(n)
        .map_batches(
            DiesInFirstBatch,
            fn_constructor_kwargs={"model": prepared, "title_column": "title", "marker": str(encoder_marker)},
            compute=ray.data.ActorPoolStrategy(size=2),
            batch_size=100,
            batch_format="pyarrow",
        )
    )
    path = tmp_path / "qdrant"
    ds.write_datasink(
        DiesAfterFirstUpsert("cranfield", path=str(path), id_column="_id", batch_size=100, marker=str(sink_marker)),
        concurrency=1,
    )
    assert encoder_marker.exists() and sink_marker.exists()  # both processes did die
    index = exact_index(corpus["ids"][:n], serial[:n])
    query = serial[0]  # a document as the query: every stored vector must be the in-process one
    count, ids, (results,) = qdrant_count_and_search(path, [query])
    assert count == n and ids == set(corpus["ids"][:n])  # nothing lost, nothing twice
    assert_same_results(results, index.search(query, 10), index, query)


# ---------------------------------------------------------------------------------------------- the example


@pytest.mark.slow
def test_the_example_indexes_a_beir_folder_and_searches(
    cluster: dict[str, Any], cache_dir: Path, tmp_path: Path
) -> None:
    """examples/ray_index_corpus.py as a user runs it, joining this module's cluster (as it would join a real one)."""
    env = {**os.environ, "SPLADE_ONNX_CACHE": str(cache_dir)}
    args = [
        "--path",
        str(tmp_path / "qdrant"),
        "--address",
        cluster["address"],
        "--limit",
        "300",
        "-k",
        "3",
        "flutter of wings at supersonic speeds",
    ]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ray_index_corpus.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    hits = re.findall(r"^ *\d+\. \[(\d+)\] +([\d.]+) ", proc.stdout, flags=re.M)
    assert len(hits) == 3 and all(1 <= int(doc) <= 1400 for doc, _ in hits), proc.stdout
    assert "300 points in 'cranfield'" in proc.stderr


# ---------------------------------------------------------------------------------------------- shutdown


def _ray_processes(session_dir: str) -> dict[int, str]:
    """``{pid: name}`` of the processes whose command line names this cluster's session folder."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if session_dir in cmdline or Path(session_dir).name in cmdline:
            out[int(entry.name)] = name
    return out


#: A driver with a cluster of its own: it prints the cluster's session folder, waits for a line, calls
#: ``ray.shutdown()``, prints ``down`` and waits for a second line (so its exit cannot do the stopping).
SHUTDOWN_DRIVER = """
import sys
import ray
ctx = ray.init(num_cpus=1, include_dashboard=False, configure_logging=False, log_to_driver=False)
print("session_dir=" + ctx.address_info["session_dir"], flush=True)
sys.stdin.readline()
ray.shutdown()
print("down", flush=True)
sys.stdin.readline()
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_shutdown_leaves_no_ray_process() -> None:
    """A cluster of its own (in a child driver, so the module's cluster and the test order do not matter):
    ``ray.shutdown()`` stops it and its processes are gone."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # start a cluster, never join one
    proc = subprocess.Popen(
        [sys.executable, "-c", SHUTDOWN_DRIVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        lines = iter(proc.stdout.readline, "")
        session_dir = next(
            (line.strip().removeprefix("session_dir=") for line in lines if line.startswith("session_dir=")), ""
        )
        assert session_dir, "the child driver did not start its cluster"
        before = _ray_processes(session_dir)
        assert {"raylet", "gcs_server"} <= set(before.values()), before
        proc.stdin.write("shut down\n")
        proc.stdin.flush()
        assert "down" in (line.strip() for line in lines)
        left = {pid: name for pid, name in before.items() if Path(f"/proc/{pid}").exists()}
        for pid in list(left):  # ray.shutdown() kills them; reap what is still exiting (bounded)
            if _wait_gone(pid):
                del left[pid]
        assert left == {}, json.dumps(left)
        proc.stdin.write("exit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _wait_gone(pid: int, tries: int = 300) -> bool:
    import time

    for _ in range(tries):
        stat = Path(f"/proc/{pid}/stat")
        try:
            if stat.read_text().split(") ")[1].startswith("Z"):  # a zombie has exited
                return True
        except (OSError, IndexError):
            return True
        time.sleep(0.1)
    return False
