"""Whether the Hugging Face Hub can be asked, and asking it within bounds.

A load that needs the Hub first probes it once (a HEAD request through huggingface_hub's own HTTP client,
so its proxies apply) within :data:`HUB_PROBE_TIMEOUT` seconds; the answer is kept a minute.  Hub requests
made during a load get :data:`HUB_REQUEST_TIMEOUT` where huggingface_hub would wait forever.
``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` are read at call time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger(__name__)

__all__ = [
    "HUB_PROBE_TIMEOUT",
    "HUB_REQUEST_TIMEOUT",
    "bounded_hub_requests",
    "describe",
    "first_line",
    "hub_endpoint",
    "hub_offline",
    "hub_reachable",
    "remember",
    "reset_probe_cache",
    "unreachable",
]

#: Seconds the reachability probe may take in all (DNS, proxy, TLS and the answer) before the Hub
#: counts as unreachable and only the local HF cache is used.
HUB_PROBE_TIMEOUT = 3.0
#: Seconds any one Hub request may wait to connect or for the next bytes once the probe has succeeded.
#: huggingface_hub sends some metadata requests with no timeout at all; during a load they get this one.
HUB_REQUEST_TIMEOUT = 10.0
_PROBE_TTL = 60.0
_probe_cache: dict[str, tuple[float, str | None]] = {}
_probe_lock = threading.Lock()
_request_limit: ContextVar[float | None] = ContextVar("splade_onnx_hub_request_limit", default=None)
_hook_lock = threading.Lock()


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set to a true value (read at call time)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_endpoint() -> str:
    """``$HF_ENDPOINT`` (read at call time), else ``https://huggingface.co``, without a trailing slash."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def reset_probe_cache() -> None:
    """Forget every probe result, so that the next load probes the Hub again."""
    with _probe_lock:
        _probe_cache.clear()


def _probe(url: str, timeout: float) -> str | None:
    """One HEAD request through huggingface_hub's own HTTP client (its proxies, certificates and headers).

    None when the Hub answered (any status below 500), else why not: a timeout, a refused
    or reset connection, a proxy error, a 5xx, or anything else the client raised.
    """
    from huggingface_hub import get_session

    try:
        session: Any = get_session()
        response = session.head(url, timeout=timeout)
    except Exception as e:  # noqa: BLE001 - whatever the HTTP client raises, the Hub did not answer
        if "timeout" in type(e).__name__.lower():
            return f"no answer within {timeout:g} s"
        return describe(e)
    status = int(response.status_code)
    return f"it answered HTTP {status}" if status >= 500 else None


def unreachable(endpoint: str) -> str | None:
    """Why the Hub at ``endpoint`` counts as unreachable, or None when it answered the probe (cached a minute)."""
    with _probe_lock:
        cached = _probe_cache.get(endpoint)
    if cached and time.monotonic() - cached[0] < _PROBE_TTL:
        return cached[1]
    timeout = HUB_PROBE_TIMEOUT
    result: list[str | None] = []
    t = threading.Thread(target=lambda: result.append(_probe(endpoint + "/", timeout)), daemon=True)
    t.start()
    t.join(timeout)
    why = result[0] if result else f"no answer within {timeout:g} s"
    remember(endpoint, why)
    if why is not None:
        logger.info("Hugging Face Hub at %s is unreachable (%s); using the local HF cache only", endpoint, why)
    return why


def hub_reachable(endpoint: str | None = None) -> bool:
    """Whether the Hub answers an HTTP request within ``HUB_PROBE_TIMEOUT`` seconds in all.

    The request is a HEAD of the endpoint's root made with huggingface_hub's HTTP client, so
    it goes through the same proxies (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) as the
    download would.  A Hub that accepts the connection but never answers counts as
    unreachable, as a refused one does.  The answer is kept for a minute so that a batch of
    loads probes once (:func:`reset_probe_cache` forgets it).  DNS lookups have no timeout of
    their own, so the request runs in a daemon thread that is waited for at most
    ``HUB_PROBE_TIMEOUT`` seconds.
    """
    return unreachable((endpoint or hub_endpoint()).rstrip("/")) is None


def remember(endpoint: str, why: str | None) -> None:
    with _probe_lock:
        _probe_cache[endpoint] = (time.monotonic(), why)


def _limit_unbounded_timeouts(request: Any) -> None:
    """httpx request hook: inside :func:`bounded_hub_requests`, give every unbounded timeout a limit.

    huggingface_hub sends its metadata requests (``repo_info``, ``list_repo_tree``) with
    ``timeout=None``, which waits forever on a Hub that stops answering.  Timeouts that
    are set (``etag_timeout``, ``HF_HUB_DOWNLOAD_TIMEOUT``) are left as they are, and
    outside a splade-onnx load the hook does nothing.
    """
    limit = _request_limit.get()
    if limit is None:
        return
    current = request.extensions.get("timeout")
    current = dict(current) if isinstance(current, dict) else {}
    for key in ("connect", "read", "write", "pool"):
        if current.get(key) is None:
            current[key] = limit
    request.extensions["timeout"] = current


def _install_timeout_hook() -> bool:
    """Add :func:`_limit_unbounded_timeouts` to huggingface_hub's shared client (httpx based, >= 1.0)."""
    from huggingface_hub import get_session

    session: Any = get_session()
    hooks = getattr(session, "event_hooks", None)
    if not isinstance(hooks, dict):  # a requests.Session (huggingface_hub < 1.0) has no request hooks
        return False
    with _hook_lock:
        request_hooks = list(hooks.get("request", []))
        if _limit_unbounded_timeouts not in request_hooks:
            session.event_hooks = {**hooks, "request": [*request_hooks, _limit_unbounded_timeouts]}
    return True


@contextlib.contextmanager
def bounded_hub_requests(limit: float) -> Iterator[None]:
    """Within this block (this thread), huggingface_hub requests without a timeout get ``limit``."""
    if not _install_timeout_hook():
        logger.debug("huggingface_hub's client takes no request hooks; its metadata requests stay unbounded")
    token = _request_limit.set(limit)
    try:
        yield
    finally:
        _request_limit.reset(token)


def first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else ""


def describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {first_line(e)}"
