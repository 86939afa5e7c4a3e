"""Tokenization: a ``tokenizers`` tokenizer truncating at ``max_length``, in bounded memory whatever the text.

Only the first ``max_length`` tokens of a text count, but a tokenizer handed a 10 MB string builds
its offset tables for all of it (gigabytes).  So a text longer than ``12 * max_length`` characters
is never handed over whole, and its ids are still exactly those of tokenizing the whole text and
truncating.  How it is cut depends on the tokenizer, read from its own ``tokenizer.json``:

**Exact rule** (a ``WordPiece`` model behind ``BertPreTokenizer``, with ``BertNormalizer`` or no
normalizer, and added tokens matched on the raw text, none ``single_word`` and each holding a
separator: BERT, DistilBERT and the SPLADE models built on them).  A *separator* is a character
the pre-tokenizer always splits at: whitespace, punctuation and, with ``handle_chinese_chars``,
CJK ideographs.  Which characters are separators is asked of the tokenizer itself, one character
at a time (cached).  Normalization works character by character, so cutting just before or just
after a separator (one whose decomposition begins and ends with a canonical-combining-class-0
character, and that no added token spans) splits a text into pieces whose tokens, one after the
other, are the tokens of the whole text.  A long text is tokenized piece by piece, at most
``12 * max(max_length, 512)`` characters at a time, until more tokens than fit are known; the
pieces are merged and truncated by the tokenizer's own post-processor.  A run with no separator
at all is a single word, and WordPiece turns a word longer than ``max_input_chars_per_word``
characters (100 for BERT, counted after normalization) into one unknown token; so only the run's
characters that survive normalization are tokenized, and at most one more than that limit.
10 MB of dots, of CJK text or of one base64 word are all tokenized in bounded pieces.

**Fallback** (any other tokenizer: byte-level BPE, SentencePiece, or a text the exact rule cannot
cut, such as one with a separator unknown to Python's Unicode tables).  A prefix cut at the last
whitespace before ``12 * max_length`` characters is accepted when it overflows ``max_length`` (a word
never spans whitespace).  Otherwise prefixes of ``12 * max(max_length, 512) * k`` characters
(k = 1, 4, 16) are tried: one cut at whitespace is accepted when it overflows; one cut anywhere when
it overflows and gives the same ids as the previous one.  Past k = 16 the widest prefix is used and
a warning logged: memory stays bounded, exactness is then unproven.

A lone surrogate (``"\\ud800"``, valid in JSON but not in UTF-8) cannot be tokenized at all: it
raises :class:`~splade_onnx.InputError` naming the text's position and the character offset.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tokenizers import Encoding, Tokenizer

from ._errors import ArgumentError, ArgumentTypeError, FileMissingError, InputError

logger = logging.getLogger(__name__)

__all__ = ["TextTokenizer", "check_encodable", "pad_batch"]

#: Characters kept per allowed token before a text is pre-cut.
_CHARS_PER_TOKEN = 12
#: Pieces of the exact rule hold at most ``_CHARS_PER_TOKEN * max(max_length, _PIECE_TOKENS)`` characters.
_PIECE_TOKENS = 512
#: Widening steps of the fallback, in multiples of ``_CHARS_PER_TOKEN * max(max_length, _PIECE_TOKENS)``.
_WIDEN = (1, 4, 16)
_WHITESPACE = " \n\t\r"
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Character kinds of the exact rule: inside a word, a separator one may cut at, any other separator.
_RUN, _CUT, _SEP = 0, 1, 2
#: Texts up to this many characters, one per call, may take the ASCII word-cache path.
_FAST_CHARS = 2048
#: Bounds on the per-character caches and on the characters a skipping pattern lists.
_CACHE = 1 << 16
_PATTERN_CHARS = 4096
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
        self._cuts: _WordCuts | None = _NOT_BUILT
        self._ascii: _AsciiWords | None = _NOT_BUILT
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
            raise ArgumentError(f"cannot read {path}: {e}") from e
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
                logger.warning("%s: max_seq_length=%d exceeds the model's %d positions; using %d",
                               folder, configured, limit, limit)  # fmt: skip
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

    def _truncating(self, max_length: int) -> Tokenizer:
        """The tokenizer truncating at ``max_length`` (a copy when it differs from the default)."""
        if not isinstance(max_length, int) or isinstance(max_length, bool):
            raise ArgumentTypeError(
                f"max_length must be an int in [2, {self.limit}] for this model, got {type(max_length).__name__} "
                f"{max_length!r}"
            )
        if not 2 <= max_length <= self.limit:
            raise ArgumentError(f"max_length must be an int in [2, {self.limit}] for this model, got {max_length!r}")
        return self._clone(max_length)

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
        limit = n * _CHARS_PER_TOKEN
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
            cuts = self._word_cuts() if len(text) > _PIECE_TOKENS * _CHARS_PER_TOKEN else None
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
            self._ascii = None if cuts is None else _AsciiWords(self._clone(None), cuts)
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
        """A prefix of at most ``12 * max_length`` characters ending at a word boundary ("" if none is known).

        The tokens of such a prefix are the first tokens of the whole text, so when the prefix
        overflows ``max_length`` its truncated ids are those of the whole text.
        """
        n = max_length or self.max_length
        limit = n * _CHARS_PER_TOKEN
        if len(text) <= limit:
            return text
        cuts = self._word_cuts()
        if cuts is not None:
            at = cuts.last_cut(text, 0, limit)
            return text[:at] if at is not None else ""
        at = max(text.rfind(c, 0, limit) for c in _WHITESPACE)
        return text[:at] if at > 0 else ""

    def _word_cuts(self) -> _WordCuts | None:
        if self._cuts is _NOT_BUILT:
            self._cuts = _WordCuts.of(self._tok)
            logger.debug("pre-cut rule for long texts: %s", "exact (WordPiece)" if self._cuts else "verified fallback")
        return self._cuts

    def _encode_long(self, tok: Tokenizer, text: str, max_length: int) -> list[int]:
        """The ids of ``text`` when its quick pre-cut is not enough, tokenizing bounded pieces only."""
        cuts = self._word_cuts()
        if cuts is not None:
            ids = cuts.ids(tok, text, max_length, self.specials)
            if ids is not None:
                return ids
            logger.debug("a text of %d characters defeats the exact pre-cut rule; using the fallback", len(text))
        return _encode_verified(tok, text, max_length, self.specials)


def check_encodable(text: str, position: int) -> None:
    """Raise :class:`InputError` if ``text`` holds a lone surrogate, which no tokenizer accepts."""
    m = _SURROGATE.search(text)
    if m is not None:
        raise InputError(
            f"text at position {position} has a lone surrogate {m.group()!r} at character {m.start()}, which is "
            "not valid Unicode and cannot be tokenized; clean the input, or replace such characters with "
            "text.encode('utf-8', 'replace').decode()"
        )


def _encode_verified(tok: Tokenizer, text: str, max_length: int, specials: bool = True) -> list[int]:
    """The fallback rule of the module docstring: widening prefixes, each checked, never the unbounded text."""
    prev: list[int] | None = None
    ids: list[int] = []
    size = 0
    for k in _WIDEN:
        size = max(max_length, _PIECE_TOKENS) * _CHARS_PER_TOKEN * k
        if len(text) <= size:
            return list(tok.encode(text, add_special_tokens=specials).ids)
        at = max(text.rfind(c, 0, size) for c in _WHITESPACE)
        at_space = at >= size // 2
        enc = tok.encode(text[: at if at_space else size], add_special_tokens=specials)
        ids = list(enc.ids)
        if enc.overflowing:
            if at_space or ids == prev:
                return ids
            prev = ids
    logger.warning(
        "a text of %d characters was tokenized from its first %d only, which could not be checked to give "
        "the same tokens as the whole text; its vector may differ slightly from an untruncated tokenization",
        len(text),
        size,
    )
    return ids


class _WordCuts:
    """Where a BERT-style WordPiece tokenizer may be cut without changing its tokens (the exact rule).

    Characters are classified by asking the tokenizer (cached); scans skip the characters
    already known to be word characters with a regular expression, so long words cost C speed.
    """

    def __init__(self, tok: Tokenizer, max_chars: int, added: list[str]) -> None:
        self._norm = tok.normalizer
        self._pre = tok.pre_tokenizer
        #: WordPiece's ``max_input_chars_per_word``: a longer word is one unknown token.
        self.max_chars = max_chars
        self._added = [s for s in added if len(s) > 1]
        #: Every added token's text (matched on the raw text before anything else).
        self.added_contents = list(added)
        self._kinds: dict[str, int] = {}
        self._vanishes: dict[str, bool] = {}
        self._word_chars = _CharSet()  # known _RUN characters
        self._blanks = _CharSet()  # known _CUT characters that make no token (whitespace)
        self._vanishing = _CharSet()  # known characters that normalization removes

    @classmethod
    def of(cls, tok: Tokenizer) -> _WordCuts | None:
        """The exact rule for ``tok``, or ``None`` when its configuration is not one it covers."""
        cfg = json.loads(tok.to_str())
        norm, pre, model = cfg.get("normalizer"), cfg.get("pre_tokenizer"), cfg.get("model") or {}
        max_chars = model.get("max_input_chars_per_word")
        if (
            (norm is not None and norm.get("type") != "BertNormalizer")
            or (pre or {}).get("type") != "BertPreTokenizer"
            or model.get("type") != "WordPiece"
            or not isinstance(max_chars, int)
        ):
            return None
        added = cfg.get("added_tokens") or []
        if any(a.get("normalized") or a.get("single_word") or not a.get("content") for a in added):
            return None
        out = cls(tok, max_chars, [a["content"] for a in added])
        # An added token made only of word characters could match inside a long word: not covered.
        if not all(any(out.kind(c) != _RUN for c in a["content"]) for a in added):
            return None
        return out

    def _normalize(self, s: str) -> str:
        return s if self._norm is None else str(self._norm.normalize_str(s))

    def kind(self, c: str) -> int:
        """``_RUN``, ``_CUT`` or ``_SEP`` for the character ``c``, asked of the tokenizer once."""
        k = self._kinds.get(c)
        if k is None:
            if len(self._kinds) >= _CACHE:
                self._kinds.clear()
            words = self._pre.pre_tokenize_str(self._normalize("x" + c + "x"))
            if len(words) == 1:  # no split: c is part of words
                k = _RUN
                self._word_chars.add(c)
            else:
                d = unicodedata.normalize("NFD", c)
                starter = unicodedata.combining(d[0]) == 0 and unicodedata.combining(d[-1]) == 0
                k = _CUT if starter and unicodedata.category(c) != "Cn" else _SEP
                if k == _CUT and len(words) == 2:
                    self._blanks.add(c)
            self._kinds[c] = k
        return k

    def _vanish(self, c: str) -> bool:
        """Whether normalization removes ``c`` (control characters, stripped accents)."""
        v = self._vanishes.get(c)
        if v is None:
            if len(self._vanishes) >= _CACHE:
                self._vanishes.clear()
            v = self._vanishes[c] = not self._normalize(c)
            if v:
                self._vanishing.add(c)
        return v

    def _clear(self, text: str, p: int) -> bool:
        """No added token spans position ``p`` (added tokens are matched before normalization)."""
        return not any(text.find(s, max(0, p - len(s) + 1), p + len(s) - 1) >= 0 for s in self._added)

    def last_cut(self, text: str, lo: int, hi: int) -> int | None:
        """The largest cut in ``(lo, hi]`` (``hi < len(text)``), if any.

        A cut is a position just before or just after a ``_CUT`` separator that no added token spans.
        """
        end = hi + 1
        while True:
            i = self._last_sep(text, lo, end)  # the characters after i, up to hi, are word characters
            if i is None:
                return None
            if self.kind(text[i]) == _CUT:
                if i < hi and self._clear(text, i + 1):
                    return i + 1
                if i > lo and self._clear(text, i):
                    return i
            end = i

    def _last_sep(self, text: str, a: int, b: int) -> int | None:
        """The last position in ``[a, b)`` whose character is a separator."""
        while b > a:
            lo = max(a, b - 1024)
            for m in reversed(list(self._word_chars.others().finditer(text, lo, b))):
                if self.kind(m.group()) != _RUN:
                    return m.start()
            b = lo
        return None

    def _first_sep(self, text: str, a: int, b: int) -> int | None:
        """The first position in ``[a, b)`` whose character is a separator."""
        while True:
            m = self._word_chars.others().search(text, a, b)
            if m is None:
                return None
            if self.kind(m.group()) != _RUN:
                return m.start()
            a = m.end()

    def ids(self, tok: Tokenizer, text: str, max_length: int, specials: bool = True) -> list[int] | None:
        """``tok.encode(text).ids``, tokenizing bounded pieces only; ``None`` if ``text`` defeats the rule."""
        need = max_length - (tok.num_special_tokens_to_add(False) if specials else 0) + 1  # overflowing
        encs = self.pieces(tok, text, need)
        if encs is None:
            return None
        merged = Encoding.merge(encs, growing_offsets=True) if encs else tok.encode("", add_special_tokens=False)
        return list(tok.post_process(merged, add_special_tokens=specials).ids)

    def pieces(self, tok: Tokenizer, text: str, need: int | None) -> list[Encoding] | None:
        """The encodings (no special tokens) of consecutive bounded pieces of ``text``, until ``need`` tokens
        are known (``None``: all of the text); ``None`` if ``text`` defeats the rule."""
        piece = _PIECE_TOKENS * _CHARS_PER_TOKEN if need is None else max(need, _PIECE_TOKENS) * _CHARS_PER_TOKEN
        encs: list[Encoding] = []
        count = pos = 0
        n = len(text)
        while pos < n and (need is None or count < need):  # invariant: pos is 0 or a cut
            blank = self._blanks.span(text, pos)  # whitespace makes no token: skip it at C speed
            if blank > pos and (blank == n or self._clear(text, blank)):
                pos = blank
                continue
            hi = pos + piece
            if hi >= n:
                part, pos = text[pos:], n
            else:
                at = self.last_cut(text, pos, hi)
                if at is not None:
                    part, pos = text[pos:at], at
                else:
                    run = self._word(text, pos)
                    if run is None:
                        return None
                    part, pos = run
            if part:
                enc = tok.encode(part, add_special_tokens=False)
                if enc.ids:
                    encs.append(enc)
                    count += len(enc.ids)
        return encs

    def _word(self, text: str, pos: int) -> tuple[str, int] | None:
        """The word starting at the cut ``pos``: a bounded stand-in with the same tokens, and where it ends.

        The stand-in is the word's characters that survive normalization, at most ``max_chars + 1``
        of them: all of them when the word is short, else enough for WordPiece's one unknown token.
        ``None`` when the word does not end at a cut (a separator one cannot cut at).
        """
        sep = self._first_sep(text, pos, len(text))
        end = len(text) if sep is None else sep
        if end == pos or (end < len(text) and not (self.kind(text[end]) == _CUT and self._clear(text, end))):
            return None
        keep: list[str] = []
        at = pos
        while len(keep) <= self.max_chars:
            m = self._vanishing.others().search(text, at, end)
            if m is None:
                break
            if not self._vanish(m.group()):
                keep.append(m.group())
            at = m.end()
        return "".join(keep), end


class _AsciiWords:
    """Exact ids of printable-ASCII text for a tokenizer the exact rule covers, without its Python overhead.

    On such text the BERT normalizer only lowercases (when configured to) and the pre-tokenizer
    splits at whitespace and isolates each punctuation character (every printable ASCII character
    that is not a letter or digit); each word's WordPiece ids do not depend on its neighbours (the
    exact rule of the module docstring), so they are looked up in a cache filled by the tokenizer
    itself.  A text with any other character, or holding an added token, is left to the tokenizer.
    """

    _WORDS = re.compile(r"[A-Za-z0-9]+|[!-/:-@\[-`{-~]")
    _OTHER = re.compile(r"[^\x20-\x7e\t\n\r]")

    def __init__(self, tok: Tokenizer, cuts: _WordCuts) -> None:
        self._tok = tok
        cfg = json.loads(tok.to_str()).get("normalizer") or {}
        self._lower = bool(cfg.get("lowercase", False))
        self._added = [a for a in cuts.added_contents if a]
        self._cache: dict[str, list[int]] = {}

    def ids(self, text: str) -> list[int] | None:
        if self._OTHER.search(text) is not None or any(a in text for a in self._added):
            return None
        if self._lower:
            text = text.lower()
        cache = self._cache
        out: list[int] = []
        for w in self._WORDS.findall(text):
            got = cache.get(w)
            if got is None:
                if len(cache) >= _CACHE:
                    cache.clear()
                got = cache[w] = list(self._tok.encode(w, add_special_tokens=False).ids)
            out += got
        return out


class _CharSet:
    """A growing set of characters, with a compiled pattern matching any character outside it."""

    def __init__(self) -> None:
        self._chars: set[str] = set()
        self._others: re.Pattern[str] | None = None
        self._span: re.Pattern[str] | None = None

    def add(self, c: str) -> None:
        if len(self._chars) < _PATTERN_CHARS:  # past that, the others are checked one by one: slower, still right
            self._chars.add(c)
            self._others = self._span = None

    def span(self, text: str, pos: int) -> int:
        """The end of the stretch of characters of the set that starts at ``pos``."""
        if not self._chars:
            return pos
        if self._span is None:
            self._span = re.compile("[" + "".join(re.escape(c) for c in sorted(self._chars)) + "]*")
        m = self._span.match(text, pos)
        return pos if m is None else m.end()

    def others(self) -> re.Pattern[str]:
        if self._others is None:
            body = "".join(re.escape(c) for c in sorted(self._chars))
            self._others = re.compile(f"[^{body}]" if body else ".", re.DOTALL)
        return self._others


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
