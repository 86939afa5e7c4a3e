"""How many cores this process may use: the one count every thread pool of the library sizes itself by."""

from __future__ import annotations

import os

__all__ = ["default_threads"]


def default_threads() -> int:
    """Cores this process may use (cgroup/affinity aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
