"""Path globs in .gitignore style, matched in time linear in the pattern and the path.

Card specs (and so signed cards) say which manifest entries a source claims with globs over entry
ids: ``*`` stays within one path segment, ``**`` spans any number of segments, a pattern without
a slash matches at any depth, ``dir/`` matches everything under ``dir``, a pattern matches a path
and everything under it, ``!pattern`` excludes again, and the last pattern that matches decides
(git's rules, https://git-scm.com/docs/gitignore#_pattern_format). The meaning is that of
``pathspec``'s ``gitignore`` patterns, which earlier versions used (``tests/test_globs.py`` holds
the two equal on generated patterns and paths), but for two corners where pathspec's regular
expressions differ from git: a bracket expression (``[!a]``, ``[+-0]``) never matches ``/``, and a
line break in an id is an ordinary character.

Why not ``pathspec`` itself: it compiles each pattern to one backtracking regular expression, in
which every ``**`` becomes ``.+``. A card's signer chooses both the globs and the ids, and eight
``**/x/`` against one 60-segment id took minutes to refuse. Here a pattern is split into path
segments and matched against the id's segments by dynamic programming (each pattern position
against each id segment at most once), and the text of one segment by fixed-length pieces
between its ``*`` wildcards, found left to right (no backtracking: the leftmost place of a piece
is always the best one). Matching one id costs at most about (segments of the pattern) x
(segments of the id) segment comparisons, whatever the number of ``**``. Ids without empty
segments take a fast path: one regular expression built so that it cannot backtrack more than
that (atomic groups; see :func:`_fast_regex`), which the tests hold equal to the plain matcher.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Iterable, Sequence

from provenance.errors import FormatError

MAX_PATTERN_CHARS = 1000
"""Longest glob accepted (as ``schemas/card-spec.v1.json`` says)."""
_CACHE_LIMIT = 65536
"""Segments remembered per segment glob (ids share directory names; memory stays bounded)."""


class _SegmentGlob:
    """A glob over one path segment (no ``/``): literals, ``?``, ``[...]`` and ``*``."""

    __slots__ = ("_cache", "_first", "_last", "_literal", "_middle", "_whole", "nonempty")

    def __init__(self, text: str, *, whole_star: bool) -> None:
        pieces = _translate_segment(text)
        self.nonempty = whole_star
        self._cache: dict[str, bool] = {}
        self._literal: str | None = None
        self._whole: re.Pattern[str] | None = None
        self._first: re.Pattern[str] | None = None
        self._middle: tuple[re.Pattern[str], ...] = ()
        self._last: re.Pattern[str] | None = None
        chunks: list[list[str]] = [[]]
        for piece in pieces:
            if piece is None:
                chunks.append([])
            else:
                chunks[-1].append(piece)
        try:
            if len(chunks) == 1:
                if all(isinstance(p, str) and p.startswith("\\L") for p in chunks[0]):
                    self._literal = "".join(p[2:] for p in chunks[0])
                else:
                    self._whole = re.compile(_regex(chunks[0]))
            else:
                self._first = re.compile(_regex(chunks[0]))
                self._middle = tuple(re.compile(_regex(c)) for c in chunks[1:-1])
                self._last = re.compile(f"(?:{_regex(chunks[-1])})\\Z")
        except re.error as exc:
            raise FormatError(f"glob segment {text!r} is not valid: {exc}") from None

    def matches(self, segment: str) -> bool:
        """Whether ``segment`` (one path segment) matches."""
        if self._literal is not None:
            return segment == self._literal
        cached = self._cache.get(segment)
        if cached is None:
            cached = self._match(segment)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[segment] = cached
        return cached

    def _match(self, segment: str) -> bool:
        if self.nonempty and not segment:
            return False
        if self._whole is not None:
            return self._whole.fullmatch(segment) is not None
        assert self._first is not None and self._last is not None
        # Each piece between two '*' matches a fixed number of characters, so taking the
        # leftmost place of each in turn never loses a match that a later place would give.
        found = self._first.match(segment)
        if found is None:
            return False
        position = found.end()
        for piece in self._middle:
            found = piece.search(segment, position)
            if found is None:
                return False
            position = found.end()
        return self._last.search(segment, position) is not None


def _regex(pieces: list[str]) -> str:
    return "".join(re.escape(p[2:]) if p.startswith("\\L") else p for p in pieces)


def _translate_segment(text: str) -> list[str | None]:
    """Split a segment glob into one-character regex pieces and ``None`` for each ``*``.

    Literal characters are returned as ``"\\L" + char``. Bracket expressions are read as git
    and pathspec read them (``[!...]`` and ``[^...]`` negate, a ``]`` right after the opening
    bracket is literal, an unclosed ``[`` is a literal).

    Raises:
        FormatError: the glob ends with an unescaped backslash.
    """
    pieces: list[str | None] = []
    index, end = 0, len(text)
    while index < end:
        char = text[index]
        index += 1
        if char == "\\":
            if index == end:
                raise FormatError(f"glob segment {text!r} ends with an unescaped backslash")
            pieces.append("\\L" + text[index])
            index += 1
        elif char == "*":
            pieces.append(None)
        elif char == "?":
            pieces.append("[^/]")
        elif char == "[":
            close = index
            if close < end and text[close] in "!^":
                close += 1
            if close < end and text[close] == "]":
                close += 1
            while close < end and text[close] != "]":
                close += 1
            if close < end:
                close += 1
                expression = "["
                if text[index] in "!^":
                    expression += "^"
                    index += 1
                expression += text[index:close].replace("\\", "\\\\")
                # A bracket never matches "/" (a range such as "+-0" holds it), so the fast
                # path, which reads whole paths, cannot join two segments with one.
                pieces.append("(?!/)" + expression)
                index = close
            else:
                pieces.append("\\L[")
        else:
            pieces.append("\\L" + char)
    return pieces


_ANY = "any"  # matches every non-empty path
_NESTED = "nested"  # matches every path with a '/'


class Glob:
    """One .gitignore-style pattern. ``include`` is None for blank lines and comments."""

    __slots__ = ("_fast", "_override", "_tokens", "include", "pattern")

    def __init__(self, pattern: str) -> None:
        """Compile ``pattern``.

        Raises:
            FormatError: longer than :data:`MAX_PATTERN_CHARS`, or not a valid pattern.
        """
        if len(pattern) > MAX_PATTERN_CHARS:
            raise FormatError(f"glob is longer than {MAX_PATTERN_CHARS} characters")
        self.pattern = pattern
        self.include: bool | None = True
        self._override: str | None = None
        self._tokens: list[_SegmentGlob | None] = []
        self._fast: re.Pattern[str] | None = None
        text = pattern if pattern.endswith("\\ ") else pattern.rstrip()
        if not text or text.startswith("#"):
            self.include = None
            return
        if text.startswith("!"):
            self.include = False
            text = text[1:]
        segments = text.split("/")
        is_dir = not segments[-1] and text != "/"
        if not segments[0]:
            del segments[0]
        elif (len(segments) == 1 or (len(segments) == 2 and not segments[1])) and segments[
            0
        ] != "**":
            segments.insert(0, "**")
        if not segments:
            raise FormatError(f"glob {pattern!r} is empty")
        if not segments[-1]:
            segments[-1] = "**"
        collapsed: list[str] = []
        for segment in segments:
            if not (segment == "**" and collapsed and collapsed[-1] == "**"):
                collapsed.append(segment)
        if collapsed == ["**"]:
            self._override = _NESTED if is_dir else _ANY
            return
        if collapsed == ["**", "*"]:
            self._override = _ANY
            return
        if collapsed == ["**", "*", "**"]:
            self._override = _NESTED
            return
        try:
            self._tokens = [
                None if s == "**" else _SegmentGlob(s, whole_star=s == "*") for s in collapsed
            ]
            self._fast = re.compile(_fast_regex(collapsed))
        except FormatError as exc:
            raise FormatError(f"glob {pattern!r}: {exc}") from None
        except re.error as exc:
            raise FormatError(f"glob {pattern!r} is not valid: {exc}") from None

    def matches(self, path: str) -> bool:
        """Whether ``path`` (an entry id, ``/``-separated) matches, ignoring ``include``."""
        return self._matches(path, fast=True)

    def matches_many(self, paths: Sequence[str], *, plain: bool | None = None) -> list[bool]:
        """``[self.matches(p) for p in paths]``, with a C-speed pass over the paths when none
        needs the normalization or the segment matcher (a leading ``/`` or ``./``, an empty
        segment): one call per path of a compiled regular expression, or none at all.

        ``plain``: what :func:`all_plain` says of ``paths``, if the caller knows it already.
        """
        if plain is None:
            plain = all_plain(paths)
        if not plain:
            return list(map(self.matches, paths))
        if self._override == _ANY:
            return [True] * len(paths)  # plain paths are not empty
        if self._override == _NESTED:
            return list(map(operator.contains, paths, itertools.repeat("/")))
        if self._fast is None:
            return [False] * len(paths)
        return list(map(bool, map(self._fast.match, paths)))

    def matches_slowly(self, path: str) -> bool:
        """:meth:`matches` without the regular-expression fast path (to test one by the other)."""
        return self._matches(path, fast=False)

    def _matches(self, path: str, *, fast: bool) -> bool:
        # As pathspec normalizes paths: one leading "/" or "./" is dropped.
        if path.startswith("/"):
            path = path[1:]
        elif path.startswith("./"):
            path = path[2:]
        if self._override == _ANY:
            return bool(path)
        if self._override == _NESTED:
            return "/" in path
        if self._fast is None:
            return False
        if not fast or not path or "//" in path or path[0] == "/" or path[-1] == "/":
            # Empty segments: only the segment-by-segment matcher reads them as git does.
            return _match_tokens(self._tokens, path.split("/"))
        return self._fast.match(path) is not None


def all_plain(paths: Sequence[str]) -> bool:
    """Whether every path is non-empty, holds no empty segment and no line break, and starts
    with neither ``/`` nor ``./``: what :meth:`Glob.matches` takes as it is, to its fast path
    (see :meth:`Glob.matches_many`). Checked on the paths joined by line breaks, in a few
    C-speed searches."""
    if not paths:
        return True
    joined = "\n".join(paths)
    return (
        joined.count("\n") == len(paths) - 1  # no path holds a line break
        and bool(joined)  # one path, empty
        and "\n\n" not in joined  # nor is empty (the first and last: below)
        and not joined.startswith(("/", "./", "\n"))
        and not joined.endswith(("/", "\n"))
        and "\n/" not in joined
        and "\n./" not in joined
        and "/\n" not in joined
        and "//" not in joined
    )


def _match_tokens(tokens: Sequence[_SegmentGlob | None], segments: list[str]) -> bool:
    """Match pattern tokens (``None`` for ``**``) against path segments.

    ``after[j]`` says whether the tokens from the current one on match when the current token
    starts at segment ``j`` (a segment glob matches ``segments[j]``; a ``**`` starts right after
    the segment glob before it ended at ``j``). Computed from the last token back, once per
    (token, segment): no backtracking.
    """
    n = len(segments)
    last = len(tokens) - 1
    after: list[bool] = []
    for index in range(last, -1, -1):
        token = tokens[index]
        current = [False] * (n + 2)
        if token is None:
            if index == last:
                # Trailing "**": something must follow the slash.
                for end in range(n):
                    current[end] = True
            else:
                following = _suffix_any(after)
                if index == 0:
                    # Leading "**": any number of leading segments (".+/" needs a non-empty
                    # text before its slash).
                    return after[0] or (n > 1 and segments[0] != "" and after[1]) or following[2]
                for end in range(n):
                    current[end] = (
                        after[end] or (segments[end] != "" and after[end + 1]) or following[end + 2]
                    )
        else:
            next_is_glob = index < last and tokens[index + 1] is not None
            for start in range(n):
                if not token.matches(segments[start]):
                    continue
                end = start + 1
                if index == last:
                    # A final "*" is one segment (and an optional trailing slash); any other
                    # final glob also matches everything under what it matched.
                    current[start] = (
                        not token.nonempty or end == n or (end == n - 1 and segments[end] == "")
                    )
                elif next_is_glob:
                    current[start] = end < n and after[end]
                else:
                    current[start] = after[end]
        after = current
    return after[0]


def _fast_regex(segments: list[str]) -> str:
    """A regular expression equal to :func:`_match_tokens` on paths without empty segments.

    It cannot backtrack more than :func:`_match_tokens` works: each segment glob has one way to
    match at a given place (its pieces between ``*`` are found leftmost, in atomic groups, and
    it must end at a segment boundary), and each ``**`` with the block of segment globs after
    it is one atomic group that takes the first place where the block matches. Without empty
    segments the places a block may start after a ``**`` are every later segment, so the
    first place where it matches is always the best one.
    """
    parts = [r"\A"]
    last = len(segments) - 1
    index = 0
    while index <= last:
        segment = segments[index]
        if segment == "**":
            if index == last:
                parts.append("/")
                break
            block: list[str] = []
            index += 1
            while index <= last and segments[index] != "**":
                block.append(_segment_regex(segments[index]))
                index += 1
            gap = "(?:[^/]+/)*?" if len(parts) == 1 else "/(?:[^/]+/)*?"
            # A final "*" ends the path: that is part of where the block may be placed.
            end = r"\Z" if index > last and segments[last] == "*" else ""
            parts.append(f"(?>{gap}{'/'.join(block)}{end})")
            continue
        if len(parts) > 1:
            parts.append("/")
        parts.append(_segment_regex(segment))
        if index == last and segment == "*":
            parts.append(r"\Z")
        index += 1
    return "".join(parts)


def _segment_regex(text: str) -> str:
    """One segment glob as a regular expression that matches a whole segment in one way."""
    if text == "*":
        return "[^/]++"
    chunks: list[list[str]] = [[]]
    for piece in _translate_segment(text):
        if piece is None:
            chunks.append([])
        else:
            chunks[-1].append(piece)
    if len(chunks) == 1:
        return rf"{_regex(chunks[0])}(?=/|\Z)"
    middle = "".join(f"(?>[^/]*?{_regex(c)})" for c in chunks[1:-1])
    return rf"{_regex(chunks[0])}{middle}(?>[^/]*?{_regex(chunks[-1])}(?=/|\Z))"


def _suffix_any(values: list[bool]) -> list[bool]:
    """``result[j]`` is ``any(values[j:])``, with two more places past the end."""
    result = [False] * (len(values) + 2)
    running = False
    for index in range(len(values) - 1, -1, -1):
        running = running or values[index]
        result[index] = running
    return result


class GlobSet:
    """Several patterns read as one .gitignore file: the last pattern that matches decides."""

    __slots__ = ("_globs",)

    def __init__(self, patterns: Iterable[str]) -> None:
        """Compile ``patterns``.

        Raises:
            FormatError: a pattern is not valid (see :class:`Glob`).
        """
        self._globs = [g for g in map(Glob, patterns) if g.include is not None]
        self._globs.reverse()

    def __bool__(self) -> bool:
        return bool(self._globs)

    def matches(self, path: str) -> bool:
        """Whether ``path`` is included."""
        for glob in self._globs:
            if glob.matches(path):
                return bool(glob.include)
        return False

    def matches_many(self, paths: Sequence[str], *, plain: bool | None = None) -> list[bool]:
        """``[self.matches(p) for p in paths]``, a pattern at a time over the paths it has not
        decided yet (see :meth:`Glob.matches_many`; ``plain`` as there).
        """
        if plain is None:
            plain = all_plain(paths)  # and so is any part of them
        if len(self._globs) == 1:  # most sets: one pattern
            glob = self._globs[0]
            if not glob.include:
                return [False] * len(paths)
            return glob.matches_many(paths, plain=plain)
        included = [False] * len(paths)
        pending: list[int] = list(range(len(paths)))
        for glob in self._globs:  # the last pattern first: the first that matches decides
            if not pending:
                break
            asked = paths if len(pending) == len(paths) else [paths[i] for i in pending]
            hits = glob.matches_many(asked, plain=plain)
            if glob.include:
                for position in itertools.compress(pending, hits):
                    included[position] = True
            pending = list(itertools.compress(pending, map(operator.not_, hits)))
        return included
