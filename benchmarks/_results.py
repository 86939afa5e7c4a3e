"""Where benchmarks keep what they measured: benchmarks/results/<name>.json and <name>.md."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, data: Any, table: list[str]) -> None:
    """Save ``data`` as JSON and ``table`` (markdown lines) beside it, and log the table."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    (RESULTS / f"{name}.md").write_text("\n".join(table) + "\n")
    logging.getLogger(name).info("\n%s", "\n".join(table))
