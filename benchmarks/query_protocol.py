"""The server side of encode.py's one-query-at-a-time protocol, shared by every query server (splade-onnx's and
FastEmbed's in encode_child.py, sentence-transformers' in st_child.py, each in its own venv: this module needs
the standard library only)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any


def answer(call: Callable[[], object], profile: Callable[[], dict[str, Any]], *, calls: int, warmup: int) -> None:
    """Warm up with 10 calls, then answer the coordinator's lines on stdin until it closes them: ``round`` gets the
    milliseconds of ``calls`` timed calls but the first ``warmup``, ``profile`` gets ``profile()``, and ``ready``
    gets ``null`` (the server has loaded)."""
    for _ in range(10):
        call()
    for line in sys.stdin:
        cmd = line.strip()
        reply: Any = None
        if cmd == "round":
            reply = []
            for i in range(calls):
                t = time.perf_counter()
                call()
                if i >= warmup:
                    reply.append((time.perf_counter() - t) * 1000)
        elif cmd == "profile":
            reply = profile()
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
