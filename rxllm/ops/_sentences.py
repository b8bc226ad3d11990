"""`sentences()`: whole sentences as they complete, for text-to-speech and UI.

The splitting itself is a plain object, `SentenceDecoder` (`decode(text) -> list`,
`flush() -> list`, like httpx's line decoder), so it is testable without Rx and reusable.
It keeps only the pending tail — the sentence not yet complete — and remembers how far
that tail was already examined, so the cost per piece is O(size of the piece), not
O(text so far).

A sentence ends at a terminator (`.`, `?`, `!`, `...`, `…`, with closing quotes and
brackets kept with it) followed by whitespace, at a CJK terminator (the ideographic full
stop, full-width `!` and `?`) with no space needed, or at a blank line. Whether a
terminator ends a sentence depends on what follows it, so the decision waits for the next
piece: "3." is never emitted before ".14" could arrive. Not sentence ends: abbreviations
that precede what they qualify ("Dr.", "Mr.", "e.g.", "i.e.", "vs."), acronyms and
initials ("U.S.", "J. R. R.", "John F. Kennedy"), the number of a list item ("1."),
"No." and "p." before a number, abbreviations that may end a sentence ("etc.", "Inc.",
"Jr.") unless a capital letter follows, and a quote or bracket closed after a terminator
when a lower-case word follows ('"Hi!" she said.').
"""

from __future__ import annotations

import re
from collections.abc import Callable

import reactivex

from rxllm.models import Chunk
from rxllm.ops._decoder import decoding

__all__ = ["SentenceDecoder", "sentences"]

_CJK_TERMINATORS = "\u3002\uff01\uff1f"  # ideographic full stop, full-width ! and ?
_TERMINATORS = ".!?\u2026" + _CJK_TERMINATORS  # … is one-character "..."
_CLOSERS = "\"')]}\u2019\u201d\u00bb\u300d\u300f\uff09\u3011"  # and their CJK/typographic forms
_OPENERS = "\"'([{\u2018\u201c\u00ab\u300c\u300e\uff08\u3010"

# Where a sentence may end: a run of terminators with the closers after it, or a blank line.
_CANDIDATE = re.compile(
    f"(?P<term>[{re.escape(_TERMINATORS)}]+)[{re.escape(_CLOSERS)}]*"
    r"|(?P<para>\n[^\S\n]*\n)"
)
_NON_SPACE = re.compile(r"\S")
_ACRONYM = re.compile(r"(?:[^\W\d_]\.)+[^\W\d_]")  # U.S, e.g, U.S.A, p.m (last dot excluded)
_INITIAL = re.compile(r"[^\W\d_]")  # a lone letter: "J. Smith"
_LIST_MARK = re.compile(r"\d{1,3}|[a-zA-Z]|[ivxlcdm]{1,6}|[IVXLCDM]{1,6}")

# Abbreviations by what they say about the "." after them (compared in lower case).
_NEVER_END = frozenset(
    {
        # titles: a name always follows
        "mr", "mrs", "ms", "mx", "dr", "prof", "st", "mt", "rev", "fr", "hon", "gen",
        "col", "capt", "lt", "sgt", "sen", "gov",
        # abbreviations that introduce what follows
        "e.g", "i.e", "eg", "ie", "vs", "cf", "viz", "approx",
    }
)  # fmt: skip
# Not an end when a digit follows: "No. 5", "p. 12" — but "I said no. Then".
_BEFORE_NUMBER = frozenset(
    {"no", "nos", "vol", "vols", "p", "pp", "fig", "figs", "ch", "sec", "eq", "art", "op", "ca"}
)
# An end when a capital letter follows: "pears, etc. Then" — but "etc. and more".
_MAY_END = frozenset(
    {"etc", "inc", "ltd", "co", "corp", "jr", "sr", "al", "esp", "dept", "univ", "bros"}
)
# Longest word before a "." that can still be an abbreviation: bounds the look-back.
_MAX_ABBREVIATION = 16


class SentenceDecoder:
    """Splits incrementally arriving text into whole sentences; keeps only the pending tail.

    >>> decoder = SentenceDecoder()
    >>> decoder.decode("Dr. Smith paid $3.")
    []
    >>> decoder.decode("14 for it. Then he")
    ['Dr. Smith paid $3.14 for it.']
    >>> decoder.flush()
    ['Then he']
    """

    __slots__ = ("_pending", "_scanned")
    failure: Exception | None = None  # never fails after decoding (see Decoder)

    def __init__(self) -> None:
        self._pending = ""
        """The text after the last sentence emitted."""
        self._scanned = 0
        """Index into `_pending` before which every possible sentence end is decided."""

    def decode(self, text: str) -> list[str]:
        """Add `text`; return the sentences it completes (stripped, never empty)."""
        if not text:
            return []
        # With the attribute cleared, `+=` can grow the string in place (CPython) instead
        # of copying the whole pending sentence for every piece.
        pending, self._pending = self._pending, ""
        pending += text
        self._pending = pending
        return self._split(final=False)

    def flush(self) -> list[str]:
        """The end of the text: return what is left as the last sentence(s); reset."""
        found = self._split(final=True)
        rest = self._pending.strip()
        self._pending = ""
        self._scanned = 0
        if rest:
            found.append(rest)
        return found

    def _split(self, *, final: bool) -> list[str]:
        pending = self._pending
        found: list[str] = []
        start = 0  # start of the current sentence in `pending`
        position = self._scanned
        size = len(pending)
        while True:
            match = _CANDIDATE.search(pending, position)
            if match is None:
                position = self._tail_start(pending, max(position, start))
                break
            if match.group("para") is not None:
                end, resume = match.start(), match.end()
            else:
                verdict = self._ends_sentence(pending, start, match, final=final)
                if verdict is None:  # needs text that has not arrived yet
                    position = match.start()
                    break
                end = resume = match.end()
                if not verdict:
                    position = resume
                    continue
            sentence = pending[start:end].strip()
            if sentence:
                found.append(sentence)
            start = position = resume
            if position >= size:
                break
        if start:
            self._pending = pending[start:]
            position -= start
        self._scanned = max(position, 0)
        return found

    @staticmethod
    def _ends_sentence(text: str, start: int, match: re.Match[str], *, final: bool) -> bool | None:
        """Whether this terminator ends the sentence; None when the next text decides."""
        after = match.end()
        if after >= len(text):
            return True if final else None
        terminator = match.group("term")
        if not text[after].isspace():
            # "3.14", "e.g.," — but a CJK terminator needs no space after it.
            return any(c in _CJK_TERMINATORS for c in terminator)
        if match.end("term") < after:  # closed by a quote or bracket
            following = _next_character(text, after, final=final)
            if following is None:
                return None
            if following.islower():
                return False  # "Hi!" she said. / (see above.) and
        if terminator != ".":
            return True  # "?", "!", "...", "?!"
        return _ends_after_word(text, start, match.start(), final=final)

    @staticmethod
    def _tail_start(text: str, low: int) -> int:
        """Where a sentence end that the next text may complete could start (>= `low`)."""
        index = len(text)
        while index > low and text[index - 1].isspace():
            index -= 1
        newline = text.find("\n", index)
        if newline >= 0:
            return newline  # half a blank line
        if index < len(text):
            return len(text)
        while index > low and (text[index - 1] in _TERMINATORS or text[index - 1] in _CLOSERS):
            index -= 1
        return index


def _ends_after_word(text: str, start: int, dot: int, *, final: bool) -> bool | None:
    """Whether the "." at `dot`, followed by whitespace, ends the sentence (None: not yet known)."""
    word_start = _word_start(text, dot, start)
    word = "" if word_start is None else text[word_start:dot].lstrip(_OPENERS)
    if not word or word_start is None:
        return True  # no word before the ".", or longer than any abbreviation
    if _abbreviates(text, start, word_start, word):
        return False
    lowered = word.lower()
    if lowered not in _BEFORE_NUMBER and lowered not in _MAY_END:
        return True
    following = _next_character(text, dot + 1, final=final)
    if following is None:
        return None
    if lowered in _BEFORE_NUMBER:
        return not following.isdigit()  # "No. 5", but "I said no. Then"
    return following.isupper()  # "pears, etc. Then", but "etc. and more"


def _next_character(text: str, index: int, *, final: bool) -> str | None:
    """The next non-space character: "" at the end of the text, None if not arrived yet."""
    following = _NON_SPACE.search(text, index)
    if following is not None:
        return following.group()
    return "" if final else None


def _abbreviates(text: str, start: int, word_start: int, word: str) -> bool:
    """Whether the "." after `word` (at `word_start`) never ends the sentence."""
    first = _NON_SPACE.search(text, start)
    at_start = first is not None and first.start() == word_start
    if at_start and _LIST_MARK.fullmatch(word):
        return True  # "1. First item", "b. Second", "J. R. R. Tolkien"
    if word.lower() in _NEVER_END or _ACRONYM.fullmatch(word):
        return True
    if at_start or not (_INITIAL.fullmatch(word) and word.isupper()):
        return False
    # A lone capital after a capitalized word is an initial: "John F. Kennedy", "J. R. R."
    # — but "The answer is B. Then ..." ends there.
    previous_end = word_start
    while previous_end > start and text[previous_end - 1].isspace():
        previous_end -= 1
    previous_start = _word_start(text, previous_end, start)
    if previous_start is None or previous_start == previous_end:
        return False
    return text[previous_start:previous_end].lstrip(_OPENERS)[:1].isupper()


def _word_start(text: str, end: int, low: int) -> int | None:
    """Start of the word that ends at `end` (not before `low`); None if implausibly long."""
    index = end
    limit = max(low, end - _MAX_ABBREVIATION - 1)
    while index > limit and not text[index - 1].isspace():
        index -= 1
    if index == limit and limit > low and not text[index - 1].isspace():
        return None
    return index


def sentences() -> Callable[[reactivex.Observable[Chunk | str]], reactivex.Observable[str]]:
    """Whole sentences as they complete; the last, unfinished one when the source completes.

    Takes `Chunk`s (their `content`; other chunks are skipped, but for the one that ends a
    step of `ops.tool_loop`, which ends the sentence too) or `str` deltas. Sentences
    are stripped of surrounding whitespace and never empty. A terminator only ends a
    sentence once the text after it has arrived ("3." waits for a possible "14");
    abbreviations ("e.g.", "Dr.", "etc."), decimals and acronyms ("U.S.") do not end one,
    closing quotes and brackets stay with theirs, a blank line ends one, and the CJK
    terminators (ideographic full stop, full-width `!` and `?`) end one without a space.
    On error, the unfinished sentence is dropped and the error passed on.

        chunks:  -"Hi. I'm"--" Dr. Rx"--". Bye"-|
        sentences()
        output:  -"Hi."----------------"I'm Dr. Rx."-("Bye"|)

    >>> import rxllm
    >>> from rxllm import ops
    >>> llm = rxllm.scripted(["It costs $3", ".14 (e.g. in the U.S.", ") today. Buy"])
    >>> list(rxllm.iterate(llm.stream("price?").pipe(ops.sentences())))
    ['It costs $3.14 (e.g. in the U.S.) today.', 'Buy']
    """

    return decoding(_ItemSentences, _checked)


class _ItemSentences(SentenceDecoder):
    """Sentences of `Chunk`s or `str` deltas; the chunk that ends a tool loop's step also
    ends its last sentence (the next call's text is another answer)."""

    __slots__ = ()

    def decode(self, text: Chunk | str) -> list[str]:
        if isinstance(text, str):
            return super().decode(text)
        if text.tool_results:
            return self.flush()
        return super().decode(text.content)


def _checked(item: Chunk | str) -> Chunk | str:
    if isinstance(item, Chunk | str):
        return item
    raise TypeError(f"sentences() takes Chunk or str items, got {type(item).__name__}")
