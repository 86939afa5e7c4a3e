"""Shared fixtures: the real splade-tiny model, loaded once per session, and the checkpoint-family fixtures."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Models and converted graphs persist here between runs (CI: inside the fresh clone).
CACHE = Path(os.environ.get("SPLADE_ONNX_TEST_CACHE", ROOT / ".cache" / "test"))
GOLDEN = ROOT / "tests" / "golden"
TINY = "rasyosef/splade-tiny"
#: The committed family fixture folders, without their weight files: read them through the ``families`` fixture.
FAMILIES_REL = Path("tests") / "fixtures" / "families"

# Ray's usage telemetry off for every Ray process the tests start, drivers included: Ray Data's collector
# otherwise queries Prometheus (localhost:9090) from a background thread of the test worker, through
# whatever proxy a test has just set in the environment.
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"


@contextlib.contextmanager
def ray_turn() -> Iterator[None]:
    """Hold the one Ray turn of this test run: tests that start a local Ray cluster take turns across xdist
    workers, since a raylet that starts while another cluster loads both cores can miss Ray's fixed 30 s wait
    for it to register ("The current node timed out during startup")."""
    from filelock import FileLock

    CACHE.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE / "ray.lock")):
        yield


#: What Ray raises when its raylet missed Ray's fixed 30 s wait to register (a loaded 2-core machine).
RAY_START_TIMEOUT = "The current node timed out during startup"


def ray_started(start: Any) -> Any:
    """``start()`` (code that starts a Ray cluster), run once more when Ray's own startup timed out: the other
    test worker can starve Ray's processes for 30 s even with the turn held. Any other failure, and a second
    timeout, is raised as it is."""
    try:
        return start()
    except Exception as exc:
        if RAY_START_TIMEOUT not in str(exc):
            raise
    return start()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop_group(pgid: int) -> None:
    """SIGTERM to a process group, SIGKILL to what is left of it after 2 s (a GCS server can outlive SIGTERM)."""
    import signal
    import time

    for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


@contextlib.contextmanager
def ray_head(num_cpus: int) -> Iterator[str]:
    """The address of a local Ray cluster for this block, the Ray turn held: its head is started by ``ray start
    --head`` in a process group of its own and stopped with that group at the end. Ray starts its processes
    with a ``preexec_fn``, which runs Python in a ``fork()`` of the caller: from a test process, whose
    onnxruntime, thread-pool and gRPC threads may hold locks at that moment, the raylet or the dashboard
    sometimes hung or aborted before ``exec`` (the startup timeout above); a fresh ``ray`` process has none."""
    import shutil
    import subprocess
    import sys
    import tempfile

    with ray_turn():
        temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
        port = _free_port()
        ports = ("port", "ray-client-server-port", "dashboard-port", "dashboard-agent-listen-port")
        command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", f"--num-cpus={num_cpus}"]
        command += ["--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"]
        command += ["--node-ip-address=127.0.0.1"] + [f"--{p}={port if p == 'port' else _free_port()}" for p in ports]
        env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # a loopback test cluster: no token to hand round
        env.pop("RAY_ADDRESS", None)
        groups: list[int] = []

        def start() -> None:
            proc = subprocess.Popen(
                command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
            )
            groups.append(proc.pid)
            out, _ = proc.communicate(timeout=300)
            if proc.returncode != 0:
                _stop_group(proc.pid)
                raise RuntimeError(f"ray start exited with {proc.returncode}:\n{out}")

        try:
            ray_started(start)
            yield f"127.0.0.1:{port}"
        finally:
            for pgid in groups:
                _stop_group(pgid)
            shutil.rmtree(temp, ignore_errors=True)


def run_ray_script(code: str, *, cwd: Path) -> str:
    """The standard output of ``code`` (a snippet that starts its own local cluster with ``ray.init``) run by a
    fresh interpreter in ``cwd``, as a user runs it, the Ray turn held; once more on Ray's startup timeout."""
    import subprocess
    import sys

    def start() -> str:
        proc = subprocess.run(
            [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"the snippet exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    with ray_turn():
        return str(ray_started(start))


def identity_basis(hidden: int, *, skewed: bool = False):  # type: ignore[no-untyped-def]
    """A pruned-head basis fitted on nothing: the identity, or with ``skewed`` the identity whose first axis
    scales the states by 1000 (and the decoder by 1/1000), so that this one coordinate sets every text's int8
    scale and the bound's error terms alone keep the active ids."""
    import numpy as np

    from splade_onnx._pruned import Basis

    skew = np.ones(hidden, np.float32)
    if skewed:
        skew[0] = 1000.0
    return Basis(A=np.diag(skew), B=np.diag(1 / skew), a_hat=np.full(hidden, hidden**-0.5, np.float32), rho=0.0)


def golden(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((GOLDEN / name).read_text())


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    return CACHE


@pytest.fixture(scope="session")
def tiny(cache_dir: Path):  # type: ignore[no-untyped-def]
    """The real splade-tiny through the public loader (Hub unreachable -> package source)."""
    from splade_onnx import SpladeEncoder

    return SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir)


@pytest.fixture(scope="session")
def tiny_dir(tiny, cache_dir: Path) -> Path:  # type: ignore[no-untyped-def]
    """The folder holding splade-tiny's files (as fetched by the loader)."""
    from splade_onnx._hub import resolve

    return resolve(TINY, cache_dir=cache_dir).path


@pytest.fixture(scope="session")
def families(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkpoint-family fixtures with their weights: the committed folders copied to a temp folder, every
    model.safetensors written there from its seed (numpy only) and checked against the oracle's sha256."""
    from checkpoints import family_fixtures

    return family_fixtures(ROOT, dst=tmp_path_factory.mktemp("families") / "families")


@pytest.fixture(scope="session")
def run_vectors(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Any:
    """``run_vectors(collection)``: every document of ``data/<collection>`` encoded by splade-tiny's pruned
    head, once per test run: the first worker to ask encodes and writes them to a folder shared by this run's
    xdist workers (and by no other run, so a changed encoder is always measured), the others read them."""
    import numpy as np
    from filelock import FileLock

    from splade_onnx import SparseEmbedding, SpladeEncoder
    from splade_onnx._beir import load_beir

    base = tmp_path_factory.getbasetemp()
    folder = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base

    def get(collection: str) -> list[SparseEmbedding]:
        path = folder / f"splade-tiny-pruned-{collection}.npz"
        with FileLock(f"{path}.lock"):
            if not path.exists():
                encoder = SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir, projection="pruned")
                vectors = encoder.encode_documents(load_beir(ROOT / "data" / collection).doc_texts)
                ends = np.cumsum([0] + [v.indices.size for v in vectors])
                cat = {"ends": ends, "indices": np.concatenate([v.indices for v in vectors])}
                np.savez(path, **cat, values=np.concatenate([v.values for v in vectors]))
            with np.load(path) as f:
                ends, indices, values = f["ends"], f["indices"], f["values"]
        return [SparseEmbedding(values=values[a:b], indices=indices[a:b]) for a, b in itertools.pairwise(ends)]

    return get


def family_folder(families: Path, folder: str) -> Path:
    """A fixture folder as families.json names it (``tests/fixtures/families/...``), in the ``families`` copy."""
    return families / Path(folder).relative_to(FAMILIES_REL)


#: Modules whose tests form the longest chains of shared fixtures (a Ray cluster and whole encoded corpora,
#: whole-corpus parity, the reference runs): collected first, so that with ``-n 2 --dist loadfile`` each starts
#: early on a worker while the many short modules fill the other one.
LONG_MODULES = ("test_ray.py", "test_pruned.py", "test_eval.py", "test_engine.py")


#: The test ids of snippets that start a Ray cluster end in this: :func:`pytest_xdist_make_scheduler` sends them
#: to the worker that runs ``test_ray.py``, so that no two clusters start at once and no worker waits for a turn.
RAY_ID_SUFFIX = "-ray"


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown to pytest without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, except that every test whose id ends in :data:`RAY_ID_SUFFIX` joins
    ``tests/test_ray.py``'s unit of work (other modes are left to pytest-xdist)."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class RayWithTestRay(LoadFileScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.endswith(RAY_ID_SUFFIX + "]"):
                return "tests/test_ray.py"
            return str(super()._split_scope(nodeid))

    return RayWithTestRay(config, log)


def ray_test_id(name: str, code: str) -> str:
    """``name``, marked with :data:`RAY_ID_SUFFIX` where ``code`` starts a Ray cluster."""
    return name + RAY_ID_SUFFIX if "ray.init" in code else name


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONG_MODULES.index(name) if name in LONG_MODULES else len(LONG_MODULES)

    items.sort(key=rank)  # stable: the order within a module, and of the other modules, is unchanged


@pytest.fixture(scope="session")
def tiny_spec(tiny_dir: Path):  # type: ignore[no-untyped-def]
    """splade-tiny's architecture spec with its weights, as the converter reads it."""
    from splade_onnx._spec import load_spec

    return load_spec(tiny_dir, tiny_dir / "model.safetensors")


@pytest.fixture(scope="session")
def tiny_tok(tiny_dir: Path):  # type: ignore[no-untyped-def]
    """splade-tiny's tokenizer with no length cap (the model's 512 positions)."""
    from splade_onnx._tokenize import TextTokenizer

    return TextTokenizer.from_folder(tiny_dir, max_length=None, model_limit=512)
