"""The exact long-text pre-cut: tokenizing a long text in bounded pieces, with exactly the ids of the whole text.

Only the first ``max_length`` tokens of a text count, but a tokenizer handed a 10 MB string builds
its offset tables for all of it (gigabytes).  So a text longer than ``12 * max_length`` characters
is never handed over whole (:class:`~splade_onnx._tokenize.TextTokenizer` calls this module), and its
ids are still exactly those of tokenizing the whole text and truncating.  How it is cut depends on the
tokenizer, read from its own ``tokenizer.json``:

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
10 MB of dots, of CJK text or of one base64 word are all tokenized in bounded pieces.  The same
rule makes each word's ids independent of its neighbours, which :class:`AsciiWords` uses to
tokenize short ASCII texts word by word from a cache.

**Fallback** (any other tokenizer: byte-level BPE, SentencePiece, or a text the exact rule cannot
cut, such as one with a separator unknown to Python's Unicode tables).  A prefix cut at the last
whitespace before ``12 * max_length`` characters is accepted when it overflows ``max_length`` (a word
never spans whitespace).  Otherwise prefixes of ``12 * max(max_length, 512) * k`` characters
(k = 1, 4, 16) are tried: one cut at whitespace is accepted when it overflows; one cut anywhere when
it overflows and gives the same ids as the previous one.  Past k = 16 the widest prefix is used and
a warning logged: memory stays bounded, exactness is then unproven.

The interface: :func:`prefix` (the quick cut), :func:`encode_long` (the ids when that is not enough),
:class:`WordCuts` (the exact rule, ``None`` from :meth:`WordCuts.of` where it does not apply) and
:class:`AsciiWords`.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata

from tokenizers import Encoding, Tokenizer

logger = logging.getLogger(__name__)

__all__ = ["CHARS_PER_TOKEN", "PIECE_TOKENS", "AsciiWords", "WordCuts", "encode_long", "prefix"]

#: Characters kept per allowed token before a text is pre-cut.
CHARS_PER_TOKEN = 12
#: Pieces of the exact rule hold at most ``CHARS_PER_TOKEN * max(max_length, PIECE_TOKENS)`` characters.
PIECE_TOKENS = 512
#: Widening steps of the fallback, in multiples of ``CHARS_PER_TOKEN * max(max_length, PIECE_TOKENS)``.
_WIDEN = (1, 4, 16)
_WHITESPACE = " \n\t\r"
#: Character kinds of the exact rule: inside a word, a separator one may cut at, any other separator.
_RUN, _CUT, _SEP = 0, 1, 2
#: Bounds on the per-character caches and on the characters a skipping pattern lists.
_CACHE = 1 << 16
_PATTERN_CHARS = 4096


def prefix(text: str, limit: int, cuts: WordCuts | None) -> str:
    """A prefix of ``text`` of at most ``limit`` characters ending at a word boundary ("" if none is known).

    ``cuts`` is the exact rule of the tokenizer, or ``None`` (then the prefix ends at whitespace).  The
    tokens of such a prefix are the first tokens of the whole text, so when the prefix overflows
    ``max_length`` its truncated ids are those of the whole text.
    """
    if len(text) <= limit:
        return text
    if cuts is not None:
        at = cuts.last_cut(text, 0, limit)
        return text[:at] if at is not None else ""
    at = max(text.rfind(c, 0, limit) for c in _WHITESPACE)
    return text[:at] if at > 0 else ""


def encode_long(tok: Tokenizer, text: str, max_length: int, specials: bool, cuts: WordCuts | None) -> list[int]:
    """``tok.encode(text).ids`` (``tok`` truncating at ``max_length``) when the quick :func:`prefix` is not
    enough, tokenizing bounded pieces only: the exact rule ``cuts`` where it applies, else the fallback."""
    if cuts is not None:
        ids = cuts.ids(tok, text, max_length, specials)
        if ids is not None:
            return ids
        logger.debug("a text of %d characters defeats the exact pre-cut rule; using the fallback", len(text))
    return _encode_verified(tok, text, max_length, specials)


def _encode_verified(tok: Tokenizer, text: str, max_length: int, specials: bool = True) -> list[int]:
    """The fallback rule of the module docstring: widening prefixes, each checked, never the unbounded text."""
    prev: list[int] | None = None
    ids: list[int] = []
    size = 0
    for k in _WIDEN:
        size = max(max_length, PIECE_TOKENS) * CHARS_PER_TOKEN * k
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


class WordCuts:
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
    def of(cls, tok: Tokenizer) -> WordCuts | None:
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
        piece = PIECE_TOKENS * CHARS_PER_TOKEN if need is None else max(need, PIECE_TOKENS) * CHARS_PER_TOKEN
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


class AsciiWords:
    """Exact ids of printable-ASCII text for a tokenizer the exact rule covers, without its Python overhead.

    On such text the BERT normalizer only lowercases (when configured to) and the pre-tokenizer
    splits at whitespace and isolates each punctuation character (every printable ASCII character
    that is not a letter or digit); each word's WordPiece ids do not depend on its neighbours (the
    exact rule of the module docstring), so they are looked up in a cache filled by the tokenizer
    itself.  A text with any other character, or holding an added token, is left to the tokenizer.
    """

    _WORDS = re.compile(r"[A-Za-z0-9]+|[!-/:-@\[-`{-~]")
    _OTHER = re.compile(r"[^\x20-\x7e\t\n\r]")

    def __init__(self, tok: Tokenizer, cuts: WordCuts) -> None:
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
