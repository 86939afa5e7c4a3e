"""Texts shared by the parity tests, the golden-file script and the demo."""

from __future__ import annotations

__all__ = ["DEMO_QUERIES", "LONG_TEXT", "PARITY_TEXTS", "SEED_DOCUMENTS"]

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from demo import DOCUMENTS as SEED_DOCUMENTS
from demo import QUERIES as DEMO_QUERIES

_SENTENCE = (
    "The spacecraft's propulsion module, lander and rover were integrated at the satellite centre, "
    "tested for vibration and thermal vacuum, and shipped to the launch site for the mission. "
)

#: Far past 512 tokens (about 2,400 word pieces): checks truncation at max_length.
LONG_TEXT = " ".join(f"Paragraph {i}. {_SENTENCE}" for i in range(80))

PARITY_TEXTS = [
    *SEED_DOCUMENTS,
    "",
    "   ",
    "Café naïve résumé — Ünïcödé façade, 東京 and 北京 🚀🌕✨ emoji 👩‍🚀!",
    "مهمة هبوط على القمر",
    "moon",
    "How much did the lunar mission cost?",
    "Tabs\tand\nnewlines\r\nmixed   spacing",
    LONG_TEXT,
]
