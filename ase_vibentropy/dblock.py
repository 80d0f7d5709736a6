"""One writer per database file: the lock ``vibentropy generate`` and ``featurize`` hold.

Two runs writing the same SQLite database at once (two terminals, a rerun while the first is
still going, a second scheduler) would each run every unfinished job and store every row twice.
:func:`exclusive_writer` takes an exclusive, non-blocking ``flock`` on
``<database>.vibentropy-writer`` (not ``<database>.lock``: ase.db uses that name for its own
short write locks) for the duration of a run; a second run stops at once with a message
naming the first. The kernel drops the lock when its process dies, even by SIGKILL, so an
interrupted run can always be resumed.
Databases given by URL (``postgresql://...``) are not locked here: their server serialises
writes, and job claims there are left to the caller.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from typing import Any

from .errors import DatabaseError


def _database_file(db: Any) -> str | None:
    """The SQLite file behind an ase.db connection or path, or None for a server URL."""
    name = getattr(db, "filename", db)
    text = os.fspath(name) if isinstance(name, (str, os.PathLike)) else None
    if text is None or "://" in text:
        return None
    return os.path.abspath(text)


#: A writer that has just taken the lock writes its pid right after: wait this long (s) for it.
HOLDER_WAIT_S = 2.0


def _holder(handle: Any) -> str:
    """The lock holder's "pid N (what)" line, waiting up to :data:`HOLDER_WAIT_S` for a writer
    that has taken the lock but not yet written it."""
    deadline = time.monotonic() + HOLDER_WAIT_S
    while True:
        handle.seek(0)
        holder = handle.read().strip()
        if holder or time.monotonic() > deadline:
            return holder or "another process"
        time.sleep(0.02)


@contextlib.contextmanager
def exclusive_writer(db: Any, what: str = "a run") -> Iterator[None]:
    """Hold the write lock of database ``db`` (connection or path) while the block runs.

    Raises
    ------
    DatabaseError
        Another process holds it (the message gives its pid and what to do), or the database's
        folder does not exist or cannot be written.
    """
    path = _database_file(db)
    if path is None:
        yield
        return
    lock_path = path + ".vibentropy-writer"
    try:
        handle = open(lock_path, "a+")  # noqa: SIM115 - held for the whole block
    except OSError as exc:
        raise DatabaseError(
            f"cannot write next to database {path!r} ({type(exc).__name__}: {exc}): check that "
            "the database path is in an existing, writable folder"
        ) from exc
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            raise DatabaseError(
                f"database {path!r} is being written by {holder}: wait for it to finish (its "
                "finished jobs are kept, so rerun afterwards to do what is left) or write to "
                "another database"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} ({what})")
        handle.flush()
        try:
            yield
        finally:
            # The file stays: unlinking it while locked would let a second process lock the
            # old file and a third a new one, two writers at once.
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
