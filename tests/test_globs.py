"""Path globs: the meaning of pathspec's gitignore patterns, in time linear in pattern and path.

pathspec (the reference here, and what card specs were matched with before) backtracks: a card
signer who chooses both the globs and the ids could make verification spin (docs/security.md
G1: signer-chosen input that costs the verifier). These tests hold the two matchers equal, hold
the regular expression fast path equal to the segment-by-segment matcher, and time the worst
cases.
"""

from __future__ import annotations

import re
import time
import warnings

import pathspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.errors import FormatError
from provenance.globs import MAX_PATTERN_CHARS, Glob, GlobSet, _translate_segment, all_plain

PATTERN_PIECES = ["a", "b", "x", "/", "*", "?", "**", "**/", "/**/", "[ab]", "[!a]", "[^b]", "!",
                  "\\*", "\\", " ", "#", "[", "]", "-", "."]  # fmt: skip
PATH_PIECES = ["a", "b", "x", "/", "ab", " ", "[", "]", "*", "!", "-", ".", "\\", "\n"]

patterns = st.lists(st.sampled_from(PATTERN_PIECES), max_size=10).map("".join)
paths = st.lists(st.sampled_from(PATH_PIECES), min_size=1, max_size=14).map("".join)


def _reference(lines: list[str]) -> pathspec.PathSpec | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Possible nested set" from re, for "[[" globs
            return pathspec.PathSpec.from_lines("gitignore", lines)
    except (ValueError, re.error):  # an invalid pattern, or a bracket range such as "[x-a]"
        return None


def _ours(lines: list[str]) -> GlobSet | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return GlobSet(lines)
    except FormatError:
        return None


def _bracket_matches_slash(lines: list[str]) -> bool:
    """Whether pathspec would let a bracket expression of ``lines`` match "/"."""
    for line in lines:
        for segment in line.split("/"):
            try:
                pieces = _translate_segment(segment)
            except FormatError:
                continue
            for piece in pieces:
                if piece is not None and piece.startswith("(?!/)["):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        if re.fullmatch(piece.removeprefix("(?!/)"), "/"):
                            return True
    return False


def _comparable(lines: list[str], path: str) -> bool:
    # Two deliberate differences. pathspec's "." and "$" treat a line break specially (ids with
    # control characters are refused elsewhere); and its bracket expressions ("[!a]", a range
    # such as "[.-a]") also match "/", joining two segments, which git's matching never does.
    return "\n" not in path and not ("/" in path and _bracket_matches_slash(lines))


@settings(max_examples=500, deadline=None)
@given(st.lists(patterns, min_size=1, max_size=3), st.lists(paths, min_size=1, max_size=8))
def test_same_meaning_as_pathspec(lines: list[str], ids: list[str]) -> None:
    reference, ours = _reference(lines), _ours(lines)
    assert (reference is None) == (ours is None), lines
    if reference is None or ours is None:
        return
    for path in ids:
        if _comparable(lines, path):
            assert ours.matches(path) == reference.match_file(path), (lines, path)


@settings(max_examples=500, deadline=None)
@given(patterns, st.lists(paths, min_size=1, max_size=8))
def test_fast_path_equals_the_segment_matcher(pattern: str, ids: list[str]) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            glob = Glob(pattern)
    except FormatError:
        return
    for path in ids:
        assert glob.matches(path) == glob.matches_slowly(path), (pattern, path)


# Ids as manifests hold them: non-empty segments, no leading "/" or "./" (all_plain holds).
PLAIN_SEGMENTS = ["a", "b", "x", "ab", ".", "..x", " ", "[", "*", "!", "-", "\\"]
plain_paths = st.lists(st.sampled_from(PLAIN_SEGMENTS), min_size=1, max_size=5).map(
    lambda parts: "/".join(parts) if parts[0] != "." else "/".join(["a", *parts])
)


@settings(max_examples=500, deadline=None)
@given(st.lists(patterns, min_size=1, max_size=4), st.lists(plain_paths, max_size=12), paths)
def test_matching_many_equals_matching_each(lines: list[str], ids: list[str], odd: str) -> None:
    # A set of patterns (and each pattern) over many paths at once says what it says of each:
    # plain paths take the C-speed pass; one odd path among them sends all to the plain one.
    ours = _ours(lines)
    if ours is None:
        return
    assert all_plain(ids)
    for batch in (ids, [*ids, odd], [odd, *ids]):
        assert ours.matches_many(batch) == [ours.matches(p) for p in batch], (lines, batch)
        for glob in ours._globs:
            assert glob.matches_many(batch) == list(map(glob.matches, batch)), (glob, batch)


@pytest.mark.parametrize("path", ["", "/a", "./a", "a/", "a//b", "a\nb", "\n", "/", "./"], ids=repr)
def test_paths_the_fast_pass_must_not_take(path: str) -> None:
    assert not all_plain(["a", path, "b"])
    assert not all_plain([path])
    assert all_plain(["a", "b/c", ".x", "a/.b"])


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [
        ("*.txt", ["a.txt", "d/e/a.txt", "a.txt/inside"], ["a.txtx", "txt"]),
        ("books/*.txt", ["books/a.txt"], ["books/sub/a.txt", "x/books/a.txt"]),
        ("news/", ["news/a", "news/b/c"], ["news", "old/news"]),
        ("data/**/*.csv", ["data/z.csv", "data/x/y/z.csv"], ["data/z.txt", "z.csv"]),
        ("**", ["a", "a/b"], []),
        ("/top", ["top", "top/x"], ["x/top"]),
        ("a/*", ["a/b"], ["a/b/c", "a"]),
        ("[ab]?", ["ax", "x/bq"], ["cx", "a"]),
    ],
)
def test_readme_rules(pattern: str, matching: list[str], not_matching: list[str]) -> None:
    glob = GlobSet([pattern])
    assert [p for p in matching if not glob.matches(p)] == []
    assert [p for p in not_matching if glob.matches(p)] == []


def test_negation_and_last_match_wins() -> None:
    globs = GlobSet(["data/**", "!data/private/", "# a comment", ""])
    assert globs.matches("data/public/a")
    assert not globs.matches("data/private/a")
    assert not GlobSet(["# only a comment"]).matches("x")


@pytest.mark.parametrize("pattern", ["a\\", "!", "x" * (MAX_PATTERN_CHARS + 1)])
def test_invalid_globs_are_refused(pattern: str) -> None:
    with pytest.raises(
        FormatError,
        match=r"ends with an unescaped backslash|^glob '!' is empty|longer than 1000 characters",
    ):
        GlobSet([pattern])


@pytest.mark.parametrize(
    ("pattern", "path"),
    [
        ("**/x/" * 8 + "z", "/".join(["x"] * 60)),  # the case pathspec took minutes on
        ("**/x/" * 8, "/".join(["x"] * 60)),
        ("/".join(["**", "a"] * 250)[:MAX_PATTERN_CHARS], "/".join(["a"] * 2048)),
        ("**/" + "*a" * 400 + "b", "/".join(["a" * 2000] * 2)),
        ("*a" * 499 + "b", "a" * 4096),
        ("**/" * 300 + "q", "//".join(["a"] * 1300)),  # empty segments: the slow matcher
    ],
)
def test_worst_cases_stay_under_a_second(pattern: str, path: str) -> None:
    glob = GlobSet([pattern])
    started = time.perf_counter()
    glob.matches(path)
    assert time.perf_counter() - started < 1.0


def test_pathspec_really_backtracks_on_the_attack() -> None:
    # What the worst-case test guards against, measured on the reference with five repeats
    # (eight would take minutes): already far slower than ours with eight.
    reference = pathspec.PathSpec.from_lines("gitignore", ["**/x/" * 5 + "z"])
    ours = GlobSet(["**/x/" * 8 + "z"])
    path = "/".join(["x"] * 60)
    started = time.perf_counter()
    assert not reference.match_file(path)
    theirs = time.perf_counter() - started
    started = time.perf_counter()
    assert not ours.matches(path)
    assert time.perf_counter() - started < theirs
