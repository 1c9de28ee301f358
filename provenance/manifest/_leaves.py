"""The Merkle tree over a manifest's lines, in this process or in a forked child.

The tree costs two SHA-256 calls per entry, more than checking the entry. For a big manifest,
when a second core exists, a forked child computes it from the same open file while this
process checks the lines: the child reads the file with ``pread`` (the whole file when reading
a manifest; when writing one, the byte ranges the parent sends once it has written them) and
finally sends back the SHA-256 of every byte it read, the leaf count and the root. The parent
compares that digest with its own: equal digests mean both saw the same bytes, so the root is
the root of the lines the parent checked.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from provenance import merkle
from provenance.errors import LocalIOError
from provenance.manifest._system import fork_is_safe, other_cores, prepare_fork

MERKLE_PROCESS_BYTES = 8 << 20
"""Files at least this big get their tree computed in a child process (when it can run)."""
_CHILD_READ = 4 << 20


class LeafTree:
    """Merkle tree over the lines of the blocks given, computed in this process."""

    def __init__(self) -> None:
        self._tree = merkle.TreeBuilder()

    def add(self, block: bytes, offset: int) -> None:
        """Add the leaves of ``block`` (whole lines, each ending with a newline)."""
        lines = block.split(b"\n")
        lines.pop()
        sha256 = hashlib.sha256
        self._tree.extend([sha256(b"\x00" + line).digest() for line in lines])

    def result(self, digest: str, what: str) -> tuple[int, str]:
        """Return the leaf count and the root (hex) of the lines added."""
        return self._tree.size, self._tree.root().hex()

    def close(self) -> None:
        """Nothing to release."""


class LeafTreeProcess:
    """Merkle tree over the lines of an open file, computed in a forked process.

    ``follow``: the file is being written; the child reads the ranges given to :meth:`add`
    (which must be flushed to the file first). Otherwise it reads the whole file at its pace.
    """

    def __init__(self, fd: int, *, follow: bool) -> None:
        self._follow = follow
        import multiprocessing

        context = multiprocessing.get_context("fork")
        prepare_fork()
        child_receive, self._send = context.Pipe(duplex=False)
        self._receive, child_send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_leaf_tree_child, args=(fd, child_receive, child_send, follow), daemon=True
        )
        self._process.start()
        child_receive.close()
        child_send.close()

    def add(self, block: bytes, offset: int) -> None:
        """Tell a following child the range of ``block``, which starts at ``offset``."""
        if self._follow:
            self._send.send((offset, len(block)))

    def result(self, digest: str, what: str) -> tuple[int, str]:
        """Return the leaf count and root, once the child's digest is found equal to ``digest``.

        Raises:
            LocalIOError: the child failed, or read other bytes than this process did (the
                message starts with ``what``, the file).
        """
        try:
            if self._follow:
                self._send.send(None)
            outcome: tuple[str, int, str] = self._receive.recv()
        except (EOFError, OSError):
            raise LocalIOError(f"{what}: the process computing the Merkle root failed") from None
        self._process.join()
        if outcome[0] != digest:
            raise LocalIOError(
                f"{what}: the file changed while it was being read"
                if outcome[0]
                else f"{what}: cannot read: {outcome[2]}"
            )
        return outcome[1], outcome[2]

    def close(self) -> None:
        """Stop the child if it still runs, and close the pipes."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._send.close()
        self._receive.close()


def _leaf_tree_child(fd: int, receive: Any, send: Any, follow: bool) -> None:
    """The body of the :class:`LeafTreeProcess` child; an empty digest reports an error."""
    file_hash = hashlib.sha256()
    tree = LeafTree()
    try:
        offset, rest = 0, b""
        while not follow and (data := os.pread(fd, _CHILD_READ, offset)):
            offset += len(data)
            file_hash.update(data)
            if rest:
                data = rest + data
            cut = data.rfind(b"\n") + 1
            rest = data[cut:]
            if cut:
                tree.add(data[:cut] if rest else data, 0)
        while follow and (task := receive.recv()) is not None:
            offset, length = task
            parts = []
            while length:
                data = os.pread(fd, length, offset)
                if not data:
                    break
                parts.append(data)
                offset += len(data)
                length -= len(data)
            block = b"".join(parts)
            file_hash.update(block)
            tree.add(block, offset)
    except OSError as exc:
        send.send(("", 0, exc.strerror or str(exc)))
        return
    count, root = tree.result("", "")
    send.send((file_hash.hexdigest(), count, root))


def leaf_tree(fd: int, size: int, *, follow: bool) -> LeafTree | LeafTreeProcess:
    """A leaf tree in another process for a big file when a second core is there to run it
    and this process may fork (the child reads the file through the descriptor it inherits)."""
    if size >= MERKLE_PROCESS_BYTES and other_cores() and fork_is_safe():
        return LeafTreeProcess(fd, follow=follow)
    return LeafTree()
