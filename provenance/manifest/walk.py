"""Walking a directory: the regular files under it, each with the id it gets in a manifest.

Symlinks are never followed (skipped and counted, or refused when they point out of the root);
what exclusion patterns match is left out (an excluded folder is not entered); special files and
names that cannot be ids are refused, naming them. The hasher re-checks every file on its open
descriptor, so the walk can take a directory entry's type on trust.
"""

from __future__ import annotations

import bisect
import os
import stat
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Literal, NamedTuple, NoReturn

from provenance.errors import InputError, LocalIOError, UnsafePathError
from provenance.manifest._system import describe_os_error
from provenance.manifest.entry import _FORBIDDEN_CHAR, id_problem

NOT_REGULAR = "not a regular file (FIFO, socket or device)"
_REF_ID = attrgetter("id")


class FileRef(NamedTuple):
    """A file found by a walk: its id (path below the root), its path, and its size (-1 when
    the walk did not stat the file)."""

    id: str
    path: str
    size: int


SymlinkPolicy = Literal["skip", "error"]


@dataclass(slots=True)
class WalkStats:
    """What a walk of a directory left out or noticed, for the caller to report.

    Filled in by :func:`walk_files`, :func:`hash_tree` and :func:`build_from_directory` when
    given one (``hard_linked`` only by the last two, which open every file).
    """

    symlinks: int = 0
    """Symlinks skipped (never followed)."""
    symlinks_outside: int = 0
    """Of those, the ones that resolve to a path outside the root (or dangle there)."""
    excluded_files: int = 0
    """Files (and symlinks) left out by an exclusion pattern."""
    excluded_dirs: int = 0
    """Directories left out, with everything under them, by an exclusion pattern."""
    hard_linked: int = 0
    """Files hashed that have more than one hard link (st_nlink > 1): another name for the
    same content, possibly outside the root, can change them."""


def exclusion_matcher(patterns: Iterable[str]) -> Callable[[str], bool] | None:
    """Return a matcher for .gitignore-style ``patterns`` over ids, or None when there are none.

    The patterns are those of a card spec's source ``paths`` (pathspec's ``gitignore``
    flavour): ``*`` stays within a segment, ``**`` spans any number, a pattern without a slash
    matches at any depth, ``dir/`` matches a directory (and so everything under it), ``!``
    re-includes. A directory is tested as its id with a trailing slash.

    Raises:
        InputError: a pattern is empty or invalid.
    """
    patterns = list(patterns)
    if not patterns:
        return None
    import pathspec

    for pattern in patterns:
        if not pattern.strip():
            raise InputError("an exclusion pattern is empty")
    try:
        spec = pathspec.PathSpec.from_lines("gitignore", patterns)
    except (ValueError, TypeError) as exc:
        raise InputError(f"invalid exclusion pattern: {exc}") from None
    return spec.match_file


def _plain_name(name: str) -> bool:
    """True if ``name`` can be part of an id as it is: printable ASCII (most names, two C
    calls), or otherwise valid UTF-8 that follows the id rules (:func:`id_problem`)."""
    if name.isascii():
        return name.isprintable()
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return id_problem(name) is None


def _is_utf8(name: str) -> bool:
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_name(root: str, parts: tuple[str, ...], *, check_ids: bool = True) -> NoReturn:
    """Raise the error for the first part of ``parts`` (a path under ``root``) that cannot be
    part of an id: not UTF-8, a control or bidi control, or not NFC (naming the NFC spelling
    too when both exist side by side).

    Raises:
        UnsafePathError: always.
    """
    for depth, part in enumerate(parts):
        where = os.path.join(root, *parts[: depth + 1])
        try:
            part.encode("utf-8")
        except UnicodeEncodeError:
            raw = os.fsencode(part)
            raise UnsafePathError(
                f"{where}: file name {raw!r} is not valid UTF-8; rename it or exclude it"
            ) from None
        problem = id_problem(part) if check_ids else None
        if problem is None:
            continue
        if not unicodedata.is_normalized("NFC", part) and _FORBIDDEN_CHAR.search(part) is None:
            twin = os.path.join(root, *parts[:depth], unicodedata.normalize("NFC", part))
            if os.path.lexists(twin):
                raise UnsafePathError(
                    f"{ascii(where)} and {ascii(twin)}: one name in two Unicode spellings"
                    " (ids must be NFC, the second); keep one of them"
                )
            raise UnsafePathError(
                f"{where}: file name is not in Unicode normalization form NFC ({ascii(part)});"
                " rename it to NFC or exclude it"
            )
        raise UnsafePathError(f"{where}: file name {part!r} {problem}; rename it or exclude it")
    raise AssertionError("no bad part")  # pragma: no cover - callers pass a bad name


class _Scanner:
    """Lists one directory of a walk at a time: its regular files (as :class:`FileRef`) and the
    directories to enter, with the walk's checks, exclusions and counts (:func:`_walk`)."""

    __slots__ = (
        "excluded", "excluded_names", "ignore", "plain", "real_root", "root_text", "stat_files",
        "stats", "symlinks", "check_ids",
    )  # fmt: skip

    def __init__(
        self,
        root: Path,
        exclude: set[str] | None,
        stat_files: int,
        *,
        ignore: Callable[[str], bool] | None,
        symlinks: SymlinkPolicy,
        stats: WalkStats | None,
        check_ids: bool,
    ) -> None:
        if not root.is_dir():
            if not os.path.lexists(root):
                raise InputError(f"{root}: no such directory")
            raise InputError(f"{root}: not a directory")
        self.real_root = os.path.realpath(root)
        self.root_text = str(root)
        self.excluded = exclude or set()
        self.stats = stats if stats is not None else WalkStats()
        # realpath() costs a few system calls: only a file named like an excluded one needs it.
        self.excluded_names = {os.path.basename(p) for p in self.excluded}
        self.plain = _plain_name if check_ids else _is_utf8
        self.check_ids = check_ids
        self.ignore = ignore
        self.symlinks = symlinks
        self.stat_files = stat_files

    def scan(
        self, directory: str, prefix: tuple[str, ...]
    ) -> tuple[list[FileRef], list[tuple[str, tuple[str, ...]]]]:
        """The regular files of ``directory`` (unsorted) and its directories to enter, as
        (path, parts under the root), in the order listed."""
        ignore, stats, symlinks, stat_files = (
            self.ignore,
            self.stats,
            self.symlinks,
            self.stat_files,
        )
        excluded, excluded_names, plain = self.excluded, self.excluded_names, self.plain
        try:
            with os.scandir(directory) as iterator:
                entries = list(iterator)
        except OSError as exc:
            raise LocalIOError(
                f"{directory}: cannot list directory: {describe_os_error(exc)}"
            ) from None
        prefix_ok = all(plain(part) for part in prefix)
        prefix_id = "".join(f"{part}/" for part in prefix)
        batch: list[FileRef] = []
        folders: list[tuple[str, tuple[str, ...]]] = []
        try:
            for item in entries:
                name = item.name
                try:
                    if stat_files <= 0 and item.is_file(follow_symlinks=False):
                        # A regular file by its directory entry (most entries; no system call).
                        regular, size = True, -1
                    elif item.is_symlink():
                        if ignore is not None and ignore(prefix_id + name):
                            stats.excluded_files += 1
                            continue
                        target = os.path.realpath(item.path)
                        outside = os.path.commonpath([self.real_root, target]) != self.real_root
                        if outside and symlinks == "error":
                            raise UnsafePathError(
                                f"{item.path}: symlink points out of the data root (to {target})"
                            )
                        stats.symlinks += 1
                        stats.symlinks_outside += outside
                        continue
                    elif item.is_dir(follow_symlinks=False):
                        if ignore is not None and ignore(f"{prefix_id}{name}/"):
                            stats.excluded_dirs += 1
                        else:
                            folders.append((item.path, (*prefix, name)))
                        continue
                    elif stat_files > 0:
                        stat_files -= 1
                        info = item.stat(follow_symlinks=False)
                        regular, size = stat.S_ISREG(info.st_mode), info.st_size
                    else:
                        regular, size = item.is_file(follow_symlinks=False), -1
                except OSError as exc:
                    raise LocalIOError(f"{item.path}: {describe_os_error(exc)}") from None
                if ignore is not None and ignore(prefix_id + name):
                    stats.excluded_files += 1
                    continue
                if not regular:
                    raise UnsafePathError(f"{item.path}: {NOT_REGULAR}")
                if name in excluded_names and os.path.realpath(item.path) in excluded:
                    continue
                if not (prefix_ok and plain(name)):
                    _refuse_name(self.root_text, (*prefix, name), check_ids=self.check_ids)
                batch.append(FileRef(prefix_id + name, item.path, size))
        finally:
            self.stat_files = stat_files
        return batch, folders


def _walk(
    root: Path,
    exclude: set[str] | None,
    stat_files: int,
    *,
    ignore: Callable[[str], bool] | None = None,
    symlinks: SymlinkPolicy = "skip",
    stats: WalkStats | None = None,
    check_ids: bool = True,
) -> Iterator[list[FileRef]]:
    """Yield the regular files under ``root``, one directory's worth at a time (unsorted).

    The first ``stat_files`` files are stat'ed for their size; later ones get size -1 and are
    told apart from special files by the directory entry's type alone (no system call), which
    is what makes walking cheap. The hashing re-checks every file on its open descriptor.
    ``ignore`` (from :func:`exclusion_matcher`) leaves out the ids it matches; an excluded
    directory is not entered.

    Raises: as :func:`walk_files`, when the offending entry is reached.
    """
    scanner = _Scanner(
        root, exclude, stat_files, ignore=ignore, symlinks=symlinks, stats=stats,
        check_ids=check_ids,
    )  # fmt: skip
    stack: list[tuple[str, tuple[str, ...]]] = [(scanner.root_text, ())]
    while stack:
        batch, folders = scanner.scan(*stack.pop())
        stack += folders
        yield batch


def walk_files_in_order(
    root: Path,
    *,
    exclude: set[str] | None = None,
    ignore: Callable[[str], bool] | None = None,
    symlinks: SymlinkPolicy = "skip",
    stats: WalkStats | None = None,
    stat_files: int = sys.maxsize,
) -> Iterator[list[FileRef]]:
    """Yield the files :func:`walk_files` lists, in the same order (by id), a run at a time, as
    the walk goes: a directory is listed only once every file before its own comes first.

    Within a directory, a file's ids sort by its name and a directory's by its name and a
    slash (every id under it starts so, and no name holds a slash), so entering the
    directories in that order, their files sorted, lists every id in order. The checks,
    exclusions and counts are the walk's (:func:`walk_files`); ``stats`` is complete once the
    iterator is exhausted. Only the first ``stat_files`` files listed are stat'ed (size -1
    for the others); they are not necessarily the first by id.

    Raises:
        As :func:`walk_files`, when the offending entry's directory is listed (so after the
        files before it have been yielded).
    """
    scanner = _Scanner(
        root, exclude, stat_files, ignore=ignore, symlinks=symlinks, stats=stats,
        check_ids=True,
    )  # fmt: skip
    # Each listed directory's runs of files and directories still to enter, last first.
    stack = [_in_order(*scanner.scan(scanner.root_text, ()))]
    while stack:
        pending = stack[-1]
        if not pending:
            stack.pop()
        elif isinstance(item := pending.pop(), list):
            yield item
        else:
            stack.append(_in_order(*scanner.scan(*item)))


def _in_order(
    files: list[FileRef], folders: list[tuple[str, tuple[str, ...]]]
) -> list[list[FileRef] | tuple[str, tuple[str, ...]]]:
    """One directory's files (sorted by id) in runs between its directories, in id order (a
    directory's place: its id with a slash), last first."""
    files.sort(key=_REF_ID)
    if not folders:
        return [files] if files else []
    ids = list(map(_REF_ID, files))
    keys = sorted(("".join(f"{part}/" for part in parts), (path, parts)) for path, parts in folders)
    order: list[list[FileRef] | tuple[str, tuple[str, ...]]] = []
    start = 0
    for key, folder in keys:
        cut = bisect.bisect_left(ids, key, lo=start)
        if cut > start:
            order.append(files[start:cut])
        order.append(folder)
        start = cut
    if start < len(files):
        order.append(files[start:])
    order.reverse()
    return order


def walk_files(
    root: Path,
    *,
    exclude: set[str] | None = None,
    ignore: Callable[[str], bool] | None = None,
    symlinks: SymlinkPolicy = "skip",
    stats: WalkStats | None = None,
    check_ids: bool = True,
    stat_files: int = sys.maxsize,
) -> list[FileRef]:
    """List every regular file under ``root`` as (id, path, size), sorted by id.

    Only the first ``stat_files`` files found (in walk order) are stat'ed for their size; the
    others get size -1 (a regular file told by its directory entry, which costs no system
    call: several times faster on many small files).

    ``exclude`` holds real paths to leave out (an output written inside the root); ``ignore``
    (see :func:`exclusion_matcher`) ids to leave out. Symlinks are never followed: with
    ``symlinks="skip"`` every symlink is skipped (counted in ``stats``); with ``"error"`` one
    that points out of ``root`` is an error and the others are skipped. A file's id is its
    path relative to ``root``, which must follow the id rules (:func:`id_problem`) unless
    ``check_ids`` is false (files that are not dataset entries, such as a creator's works;
    their names must still be UTF-8, and are then to be printed escaped).

    Raises:
        InputError: ``root`` is missing or not a directory.
        UnsafePathError: a special file, a name that is not UTF-8, holds a control character
            or is not NFC (one with an NFC twin beside it names both), or with
            ``symlinks="error"`` a symlink out of the root.
        LocalIOError: a directory cannot be listed.
    """
    files = [
        ref
        for batch in _walk(
            root,
            exclude,
            stat_files,
            ignore=ignore,
            symlinks=symlinks,
            stats=stats,
            check_ids=check_ids,
        )
        for ref in batch
    ]
    files.sort(key=lambda f: f.id)
    return files
