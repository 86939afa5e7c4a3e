"""Tokenization: a ``tokenizers`` tokenizer truncating at ``max_length``, and a cheap pre-cut
for huge texts that gives exactly the same tokens."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from ._errors import ArgumentError, FileMissingError

logger = logging.getLogger(__name__)

__all__ = ["TextTokenizer", "pad_batch"]

#: Characters kept per allowed token before a text is pre-cut (then widened if needed).
_CHARS_PER_TOKEN = 12


class TextTokenizer:
    def __init__(self, tokenizer: Tokenizer, max_length: int, limit: int | None = None) -> None:
        self._tok = tokenizer
        self.max_length = max_length
        #: The model's position limit: no truncation length may exceed it.
        self.limit = limit or max_length
        self._clones: dict[int, Tokenizer] = {}
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=max_length)
        self.pad_id = 0
        pad = tokenizer.padding
        if pad:
            self.pad_id = int(pad.get("pad_id", 0))

    @classmethod
    def from_folder(cls, folder: Path, *, max_length: int | None, model_limit: int | None) -> TextTokenizer:
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise FileMissingError(
                f"{path} is missing: splade-onnx needs the fast tokenizer file tokenizer.json beside the model "
                "(save it with AutoTokenizer.from_pretrained(...).save_pretrained(folder))"
            )
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:
            raise ArgumentError(f"cannot read {path}: {e}") from e
        limit = _configured_limit(folder, model_limit)
        if max_length is None:
            max_length = limit
        elif not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
            raise ArgumentError(f"max_length must be an int >= 2, got {max_length!r}")
        elif max_length > limit:
            raise ArgumentError(
                f"max_length={max_length} exceeds the model's limit of {limit} positions; pass max_length<={limit}"
            )
        out = cls(tok, max_length, limit)
        pad_tok = _special(folder, "pad_token")
        pad_id = tok.token_to_id(pad_tok) if pad_tok is not None else None
        if pad_id is not None:
            out.pad_id = int(pad_id)
        return out

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    def id_to_token(self, i: int) -> str | None:
        return self._tok.id_to_token(i)

    def _truncating(self, max_length: int) -> Tokenizer:
        """The tokenizer truncating at ``max_length`` (a copy when it differs from the default)."""
        if max_length == self.max_length:
            return self._tok
        if not isinstance(max_length, int) or isinstance(max_length, bool) or not 2 <= max_length <= self.limit:
            raise ArgumentError(f"max_length must be an int in [2, {self.limit}] for this model, got {max_length!r}")
        tok = self._clones.get(max_length)
        if tok is None:
            tok = Tokenizer.from_str(self._tok.to_str())
            tok.no_padding()
            tok.enable_truncation(max_length=max_length)
            self._clones[max_length] = tok
        return tok

    def encode(self, texts: Sequence[str], max_length: int | None = None) -> list[list[int]]:
        """Token ids per text, special tokens added, truncated at ``max_length`` (default: the encoder's)."""
        n = self.max_length if max_length is None else max_length
        tok = self._truncating(n)
        cut = [self._precut(t, n) for t in texts]
        encs = tok.encode_batch(cut, add_special_tokens=True)
        ids = [e.ids for e in encs]
        for j, (t, c) in enumerate(zip(texts, cut)):
            if c is not t and not encs[j].overflowing:
                ids[j] = self._encode_wider(tok, t, n)
        return ids

    def _encode_wider(self, tok: Tokenizer, text: str, max_length: int) -> list[int]:
        scale = 4
        while True:
            cut = self._precut(text, max_length, scale)
            enc = tok.encode(cut, add_special_tokens=True)
            if cut is text or enc.overflowing:
                return list(enc.ids)
            scale *= 4

    def _precut(self, text: str, max_length: int | None = None, scale: int = 1) -> str:
        """A whitespace-bounded prefix of ``text`` that still yields more than ``max_length`` tokens.

        Pre-tokenizers split at whitespace, so the tokens before a whitespace boundary
        do not depend on what follows; if the prefix overflows ``max_length`` its
        truncated tokens are those of the full text.  ``encode`` checks the overflow
        and widens the cut when it does not hold (for example, a text of spaces).
        """
        limit = (max_length or self.max_length) * _CHARS_PER_TOKEN * scale
        if scale > 64 or len(text) <= limit:
            return text
        cut = max(text.rfind(c, 0, limit) for c in " \n\t\r")
        if cut <= 0:
            return text if scale >= 64 else self._precut(text, max_length, scale * 4)
        return text[:cut]


def _configured_limit(folder: Path, model_limit: int | None) -> int:
    limit = model_limit or 512
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        try:
            v = json.loads(cfg.read_text()).get("model_max_length")
        except ValueError:
            v = None
        if isinstance(v, int) and 0 < v < 1_000_000:
            limit = min(limit, v) if model_limit else v
    return limit


def _special(folder: Path, key: str) -> str | None:
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        p = folder / name
        if p.is_file():
            try:
                v = json.loads(p.read_text()).get(key)
            except ValueError:
                continue
            if isinstance(v, dict):
                v = v.get("content")
            if isinstance(v, str):
                return v
    return None


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int) -> dict[str, NDArray[np.int64]]:
    """Right-pad to the longest member: ``input_ids`` and ``attention_mask`` as int64."""
    width = max(len(x) for x in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for r, x in enumerate(ids):
        input_ids[r, : len(x)] = x
        mask[r, : len(x)] = 1
    return {"input_ids": input_ids, "attention_mask": mask}
