"""FastEmbed 0.9.1's encoding rules, for the registry models it serves (``ModelInfo.fastembed``).

Pure reading of a model folder.  The rules, from FastEmbed 0.9.1's sources:

* **truncation** (``fastembed/common/preprocessor_utils.py``, ``_resolve_max_context``): the smaller of
  ``model_max_length`` and ``max_length`` in ``tokenizer_config.json`` that is a positive int;
* **special tokens** (``load_tokenizer`` there): the tokens of ``special_tokens_map.json`` are added to the
  tokenizer as special tokens, then every added token flagged special counts;
* ``SpladePP`` (``fastembed/sparse/splade_pp.py``): documents and queries alike are the max over unmasked
  tokens of ``log(1 + relu(logits))``: the plain checkpoint rule of :mod:`splade_onnx._layout`;
* ``IfSplade`` (``fastembed/sparse/if_splade.py``): a document is ``log(1 + log(1 + relu(max logits)))`` with
  the special tokens' ids zeroed.  A query is its distinct token ids (tokenized with special tokens and
  truncated as above, then every special id removed), each weighed from ``idf.json``.  The table is read
  token by token through the tokenizer's vocabulary: a token the vocabulary lacks is skipped, an id with no
  entry is left out of the vector, and an entry of 0 is kept as a 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import AddedToken, Tokenizer

from ._errors import FileMissingError, ModelError
from ._layout import read_json

__all__ = ["context_length", "idf_table", "special_ids"]

_NEEDED_BY = "FastEmbed's rules for this model read it"


def _limit(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= sys.maxsize:
        return None
    return value


def context_length(folder: Path) -> int | None:
    """FastEmbed's truncation length for ``folder`` (special tokens included), ``None`` when it has none."""
    path = folder / "tokenizer_config.json"
    if not path.is_file():
        return None
    cfg = read_json(path, _NEEDED_BY)
    if not isinstance(cfg, dict):
        return None
    found = [n for n in (_limit(cfg.get("model_max_length")), _limit(cfg.get("max_length"))) if n is not None]
    return min(found) if found else None


def _tokenizer(folder: Path) -> Tokenizer:
    """The tokenizer of ``folder`` with ``special_tokens_map.json``'s tokens added as special tokens."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise FileMissingError(f"{path} is missing: {_NEEDED_BY}")
    tok = Tokenizer.from_file(str(path))
    mapping = (
        read_json(folder / "special_tokens_map.json", _NEEDED_BY)
        if (folder / "special_tokens_map.json").is_file()
        else {}
    )
    for value in mapping.values() if isinstance(mapping, dict) else ():
        for token in value if isinstance(value, list) else [value]:
            if isinstance(token, str):
                tok.add_special_tokens([token])
            elif isinstance(token, dict):
                tok.add_special_tokens([AddedToken(**token)])
    return tok


def special_ids(folder: Path) -> tuple[int, ...]:
    """The ids FastEmbed counts as special tokens for ``folder``, ascending."""
    decoder = _tokenizer(folder).get_added_tokens_decoder()
    return tuple(sorted(int(i) for i, t in decoder.items() if t.special))


def idf_table(path: Path, folder: Path) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """``idf.json`` at ``path`` by vocabulary id of ``folder``'s tokenizer: the weights, and which ids it lists."""
    table = read_json(path, _NEEDED_BY)
    if not isinstance(table, dict):
        raise ModelError(f"{path} must be a JSON object {{token: weight}}")
    vocab = _tokenizer(folder).get_vocab(with_added_tokens=True)
    size = max(vocab.values()) + 1 if vocab else 0
    weights = np.zeros(size, dtype=np.float32)
    listed = np.zeros(size, dtype=np.bool_)
    for token, w in table.items():
        i = vocab.get(token)
        if i is None:
            continue
        if not isinstance(w, (int, float)) or isinstance(w, bool) or not np.isfinite(w):
            raise ModelError(f"{path}: the weight of token {token!r} must be a finite number, got {w!r}")
        weights[i] = w
        listed[i] = True
    return weights, listed
