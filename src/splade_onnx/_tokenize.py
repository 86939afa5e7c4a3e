"""Tokenization: a ``tokenizers`` tokenizer truncating at ``max_length``, in bounded memory whatever the text.

:class:`TextTokenizer` wraps the tokenizer of a model folder: its length limits, its special and pad
ids, its vocabulary.  A text longer than ``12 * max_length`` characters is never handed to the
tokenizer whole: :mod:`splade_onnx._precut` cuts it into bounded pieces whose ids are exactly those
of tokenizing the whole text and truncating.  One short ASCII text (a query) is tokenized word by
word from a cache (:class:`~splade_onnx._precut.AsciiWords`), with the tokenizer's own ids.
:func:`pad_batch` pads a batch of ids for the graph.

A lone surrogate (``"\\ud800"``, valid in JSON but not in UTF-8) cannot be tokenized at all: it
raises :class:`~splade_onnx.InputError` naming the text's position and the character offset.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

from ._errors import ArgumentError, ArgumentTypeError, FileMissingError, InputError, ModelError
from ._precut import CHARS_PER_TOKEN, PIECE_TOKENS, AsciiWords, WordCuts, encode_long, prefix

logger = logging.getLogger(__name__)

__all__ = ["TextTokenizer", "check_encodable", "pad_batch"]

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Texts up to this many characters, one per call, may take the ASCII word-cache path.
_FAST_CHARS = 2048
_NOT_BUILT: Any = object()


class TextTokenizer:
    """A ``tokenizers`` tokenizer that truncates at ``max_length`` in bounded memory (see the module docstring).

    ``specials=False`` tokenizes without special tokens (the inference-free query side); then
    ``max_length`` counts content tokens only.
    """

    def __init__(
        self, tokenizer: Tokenizer, max_length: int, limit: int | None = None, *, specials: bool = True
    ) -> None:
        self._tok = tokenizer
        self.max_length = max_length
        #: The model's position limit: no truncation length may exceed it.
        self.limit = limit or max_length
        self.specials = specials
        self._clones: dict[int | None, Tokenizer] = {}
        self._cuts: WordCuts | None = _NOT_BUILT
        self._ascii: AsciiWords | None = _NOT_BUILT
        self._specials: tuple[list[int], list[int]] | None = None
        self._tok.no_padding()
        self._tok.enable_truncation(max_length=max_length)
        self.pad_id = 0
        pad = tokenizer.padding
        if pad:
            self.pad_id = int(pad.get("pad_id", 0))

    @classmethod
    def from_folder(
        cls,
        folder: Path,
        *,
        max_length: int | None,
        model_limit: int | None,
        configured: int | None = None,
        lowercase: bool = False,
        specials: bool = True,
    ) -> TextTokenizer:
        """The tokenizer in ``folder``.

        Its default length is ``max_length``, else ``configured`` (sentence-transformers'
        ``max_seq_length``), else the tokenizer's ``model_max_length`` capped by ``model_limit``
        (the position embeddings).  ``lowercase`` prepends a ``Lowercase`` normalizer, as
        sentence-transformers does for ``do_lower_case``.  Without ``model_limit`` (a side with
        no network) the tokenizer's own ``model_max_length`` is the limit, or none when it has none.
        """
        path = folder / "tokenizer.json"
        if not path.is_file():
            raise FileMissingError(
                f"{path} is missing: splade-onnx needs the fast tokenizer file tokenizer.json beside the model "
                "(save it with AutoTokenizer.from_pretrained(...).save_pretrained(folder))"
            )
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:
            raise ModelError(
                f"cannot read {path} as a tokenizer ({type(e).__name__}: {e}); the file is corrupt or written by a "
                "newer tokenizers: save it again with AutoTokenizer.from_pretrained(...).save_pretrained(folder), "
                "or upgrade with pip install -U tokenizers"
            ) from e
        if lowercase:
            from tokenizers import normalizers

            tok.normalizer = (
                normalizers.Lowercase()
                if tok.normalizer is None
                else normalizers.Sequence([normalizers.Lowercase(), tok.normalizer])
            )
        limit = _configured_limit(folder, model_limit, specials=specials)
        default = limit
        if configured is not None:
            if configured > limit:
                logger.warning(
                    "%s: max_seq_length=%d exceeds the model's %d positions; using %d", folder, configured, limit, limit
                )
            default = min(configured, limit)
        if max_length is None:
            max_length = default
        elif not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 2:
            raise ArgumentError(f"max_length must be an int >= 2, got {max_length!r}")
        elif max_length > limit:
            raise ArgumentError(
                f"max_length={max_length} exceeds the model's limit of {limit} positions; pass max_length<={limit}"
            )
        out = cls(tok, max_length, limit, specials=specials)
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

    def token_to_id(self, token: str) -> int | None:
        """The id of ``token`` (an added token too), ``None`` when the vocabulary has no such token."""
        i = self._tok.token_to_id(token)
        return None if i is None else int(i)

    def vocab(self) -> dict[str, int]:
        """``{token: id}`` of the whole vocabulary, added tokens included."""
        return dict(self._tok.get_vocab(with_added_tokens=True))

    @property
    def unk_id(self) -> int | None:
        """The id of the model's unknown token (``unk_token`` of ``tokenizer.json``), ``None`` when it has none."""
        raw = json.loads(self._tok.to_str()).get("model") or {}
        unk = raw.get("unk_token")
        return self.token_to_id(unk) if isinstance(unk, str) else None

    def to_str(self) -> str:
        """The ``tokenizers`` JSON of the wrapped tokenizer (truncating at :attr:`max_length`, no padding): a
        reference to compare with, ``tokenizers.Tokenizer.from_str(t.to_str())``."""
        return str(self._tok.to_str())

    def check_max_length(self, max_length: object) -> int:
        """``max_length`` when it is a truncation length this model allows, an int in ``[2, limit]``; else
        :class:`ArgumentTypeError` or :class:`ArgumentError`."""
        if not isinstance(max_length, int) or isinstance(max_length, bool):
            raise ArgumentTypeError(
                f"max_length must be an int in [2, {self.limit}] for this model, got {type(max_length).__name__} "
                f"{max_length!r}"
            )
        if not 2 <= max_length <= self.limit:
            raise ArgumentError(f"max_length must be an int in [2, {self.limit}] for this model, got {max_length!r}")
        return max_length

    def _truncating(self, max_length: int) -> Tokenizer:
        """The tokenizer truncating at ``max_length`` (a copy when it differs from the default)."""
        return self._clone(self.check_max_length(max_length))

    def _clone(self, max_length: int | None) -> Tokenizer:
        """The tokenizer truncating at ``max_length`` (``None``: not at all), cached."""
        if max_length == self.max_length:
            return self._tok
        tok = self._clones.get(max_length)
        if tok is None:
            tok = Tokenizer.from_str(self._tok.to_str())
            tok.no_padding()
            if max_length is None:
                tok.no_truncation()
            else:
                tok.enable_truncation(max_length=max_length)
            self._clones[max_length] = tok
        return tok

    def encode(self, texts: Sequence[str], max_length: int | None = None, *, start: int = 0) -> list[list[int]]:
        """Token ids per text, special tokens added, truncated at ``max_length`` (default: the encoder's).

        ``start`` is the position of ``texts[0]`` in the caller's input, for error messages.
        """
        return self.encode_counted(texts, max_length, start=start)[0]

    def encode_counted(
        self, texts: Sequence[str], max_length: int | None = None, *, start: int = 0
    ) -> tuple[list[list[int]], list[int]]:
        """:meth:`encode`, and the positions in ``texts`` of the texts that were cut.

        A text pre-cut for its length counts as cut when it fills ``max_length``.
        """
        n = self.max_length if max_length is None else max_length
        tok = self._truncating(n)
        if len(texts) == 1 and len(texts[0]) <= _FAST_CHARS:  # one short text: the latency path
            fast = self._fast_ids(texts[0], n)
            if fast is not None:
                return [fast[0]], [0] if fast[1] else []
        limit = n * CHARS_PER_TOKEN
        cut: list[str] = []
        for j, t in enumerate(texts):
            if len(t) > limit:
                check_encodable(t, start + j)  # all of it, although only a prefix is tokenized
                cut.append(self._precut(t, n))
            else:
                cut.append(t)
        try:
            encs = tok.encode_batch(cut, add_special_tokens=self.specials)
        except TypeError:  # the tokenizer's bare error for a lone surrogate
            for j, t in enumerate(texts):
                check_encodable(t, start + j)
            raise
        ids = [e.ids for e in encs]
        cuts = []
        for j, (t, c) in enumerate(zip(texts, cut)):
            if c is not t:
                if not (c and encs[j].overflowing):
                    ids[j] = self._encode_long(tok, t, n)
                if len(ids[j]) >= n:
                    cuts.append(j)
            elif encs[j].overflowing:
                cuts.append(j)
        return ids, cuts

    def content_ids(self, text: str, position: int) -> NDArray[np.int64]:
        """All the ids of ``text`` without special tokens and without truncation (for windows).

        A long text is tokenized in bounded pieces where the exact rule applies; else whole.
        """
        tok = self._clone(None)
        try:
            cuts = self._word_cuts() if len(text) > PIECE_TOKENS * CHARS_PER_TOKEN else None
            pieces = cuts.pieces(tok, text, None) if cuts is not None else None
            if pieces is None:
                return np.asarray(tok.encode(text, add_special_tokens=False).ids, dtype=np.int64)
        except TypeError:
            check_encodable(text, position)
            raise
        return np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in pieces] or [np.zeros(0, np.int64)])

    def _fast_ids(self, text: str, max_length: int) -> tuple[list[int], bool] | None:
        """The ids of an ASCII ``text`` and whether it was cut, word by word from a cache; ``None`` when the
        exact rule does not cover ``text`` (not ASCII, or holding an added token)."""
        if self._ascii is _NOT_BUILT:
            cuts = self._word_cuts()
            self._ascii = None if cuts is None else AsciiWords(self._clone(None), cuts)
        if self._ascii is None:
            return None
        content = self._ascii.ids(text)
        if content is None:
            return None
        pre, post = self.special_ids()
        room = max_length - len(pre) - len(post)
        return [*pre, *content[:room], *post], len(content) > room

    def special_ids(self) -> tuple[list[int], list[int]]:
        """The special ids the post-processor puts before and after one text (``[CLS]``, ``[SEP]`` for BERT)."""
        if self._specials is None:
            self._specials = self._special_ids()
        return self._specials

    def _special_ids(self) -> tuple[list[int], list[int]]:
        if not self.specials:
            return [], []
        tok = self._clone(None)
        enc = tok.post_process(tok.encode("a", add_special_tokens=False), add_special_tokens=True)
        mask = enc.special_tokens_mask
        content = [i for i, m in enumerate(mask) if not m]
        if not content:
            return list(enc.ids), []
        return list(enc.ids[: content[0]]), list(enc.ids[content[-1] + 1 :])

    def _precut(self, text: str, max_length: int | None = None) -> str:
        """A prefix of at most ``12 * max_length`` characters ending at a word boundary ("" if none is known):
        :func:`~splade_onnx._precut.prefix`."""
        limit = (max_length or self.max_length) * CHARS_PER_TOKEN
        if len(text) <= limit:
            return text
        return prefix(text, limit, self._word_cuts())

    def _word_cuts(self) -> WordCuts | None:
        if self._cuts is _NOT_BUILT:
            self._cuts = WordCuts.of(self._tok)
            logger.debug("pre-cut rule for long texts: %s", "exact (WordPiece)" if self._cuts else "verified fallback")
        return self._cuts

    def _encode_long(self, tok: Tokenizer, text: str, max_length: int) -> list[int]:
        """The ids of ``text`` when its quick pre-cut is not enough, tokenizing bounded pieces only."""
        return encode_long(tok, text, max_length, self.specials, self._word_cuts())


def check_encodable(text: str, position: int) -> None:
    """Raise :class:`InputError` if ``text`` holds a lone surrogate, which no tokenizer accepts."""
    m = _SURROGATE.search(text)
    if m is not None:
        raise InputError(
            f"text at position {position} has a lone surrogate {m.group()!r} at character {m.start()}, which is "
            "not valid Unicode and cannot be tokenized; clean the input, or replace such characters with "
            "text.encode('utf-8', 'replace').decode()"
        )


def _configured_limit(folder: Path, model_limit: int | None, *, specials: bool = True) -> int:
    """``model_max_length`` of ``tokenizer_config.json`` capped by ``model_limit``; without either, 512 for a
    network side and no limit (a very large one) for a side without special tokens (a static table)."""
    limit = model_limit or (512 if specials else 1 << 40)
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
