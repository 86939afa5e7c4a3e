"""Texts shared by the parity tests, the golden-file script and the demo."""

from __future__ import annotations

#: The 12 documents of FastEmbed's SPLADE example page (the "seed").
SEED_DOCUMENTS = [
    "Chandrayaan-3 is India's third lunar mission",
    "It aimed to land a rover on the Moon's surface - joining the US, China and Russia",
    "The mission is a follow-up to Chandrayaan-2, which had partial success",
    "Chandrayaan-3 will be launched by the Indian Space Research Organisation (ISRO)",
    "The estimated cost of the mission is around $35 million",
    "It will carry instruments to study the lunar surface and atmosphere",
    "Chandrayaan-3 landed on the Moon's surface on 23rd August 2023",
    "It consists of a lander named Vikram and a rover named Pragyan similar to Chandrayaan-2. "
    "Its propulsion module would act like an orbiter.",
    "The propulsion module carries the lander and rover configuration until the spacecraft is in a "
    "100-kilometre (62 mi) lunar orbit",
    "The mission used GSLV Mk III rocket for its launch",
    "Chandrayaan-3 was launched from the Satish Dhawan Space Centre in Sriharikota",
    "Chandrayaan-3 was launched earlier in the year 2023",
]

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

DEMO_QUERIES = [
    "When did the rover land on the Moon?",
    "How much did the mission cost?",
    "Which rocket launched it?",
]
