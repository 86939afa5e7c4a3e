"""Where benchmarks keep what they measured: benchmarks/results/<name>.json and <name>.md."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, data: Any, table: list[str], folder: Path | None = None) -> None:
    """Save ``data`` as JSON and ``table`` (markdown lines) beside it in ``folder`` (default
    benchmarks/results), and log the table."""
    folder = RESULTS if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(data, indent=1) + "\n")
    (folder / f"{name}.md").write_text("\n".join(table) + "\n")
    logging.getLogger(name).info("\n%s", "\n".join(table))
