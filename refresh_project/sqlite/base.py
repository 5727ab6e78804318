"""SQLite with writers waiting for each other on a file lock rather than in SQLite's busy handler.

SQLite lets one writer in at a time; a writer that finds the database locked sleeps and
tries again, 1, 2, 5, 10, 15, 20, 25 ms and longer apart, however soon the lock was freed.
With several processes writing small transactions, those sleeps, not the work, made the
slowest requests. Every transaction here is BEGIN IMMEDIATE (it takes the write lock at
once), so an exclusive flock on a file beside the database, taken just before and dropped
at commit or rollback, stands for that lock; a writer waiting for it is woken by the kernel
as soon as it is free, and gives up with "database is locked" after the connection's
timeout, as SQLite would. Writes outside a transaction (single autocommit statements) still use
SQLite's own waiting; in-memory databases have no file and no other process to wait for.
"""
import fcntl
import os
import threading

from django.db import OperationalError
from django.db.backends.sqlite3 import base


class _LockWaiter:
    """A thread blocked in flock on a descriptor of its own; wait() says whether it got the lock in time."""

    def __init__(self, handle: int):
        self._handle = handle
        self._state = threading.Lock()
        self._done = threading.Event()
        self._acquired = self._abandoned = False
        threading.Thread(target=self._take, name="sqlite-writer-lock", daemon=True).start()

    def _take(self):
        try:
            fcntl.flock(self._handle, fcntl.LOCK_EX)
            with self._state:
                self._acquired = not self._abandoned
        finally:
            # The caller's descriptor shares this open file, so it keeps the lock; once the
            # caller has given up (and closed its own), this was the last one and frees it.
            os.close(self._handle)
            self._done.set()

    def wait(self, timeout: float) -> bool:
        self._done.wait(timeout)
        with self._state:
            self._abandoned = not self._acquired
            return self._acquired


def _then_drop_writer_lock(method):
    def ending(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        finally:
            self._drop_writer_lock()
    return ending


class DatabaseWrapper(base.DatabaseWrapper):
    _writer_lock = None

    def _start_transaction_under_autocommit(self):
        self._take_writer_lock()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._drop_writer_lock()
            raise

    # Whatever ends the transaction, or the connection, lets the next writer in.
    _commit = _then_drop_writer_lock(base.DatabaseWrapper._commit)
    _rollback = _then_drop_writer_lock(base.DatabaseWrapper._rollback)
    _close = _then_drop_writer_lock(base.DatabaseWrapper._close)

    def _take_writer_lock(self):
        if self.is_in_memory_db() or self._writer_lock is not None:
            return
        # Read-only is enough for flock, so processes of other users sharing the database can lock it too.
        handle = os.open(f"{self.settings_dict['NAME']}-writer.lock", os.O_RDONLY | os.O_CREAT, 0o666)
        try:
            self._wait_for(handle)
        except BaseException:
            os.close(handle)
            raise
        self._writer_lock = handle

    def _wait_for(self, handle):
        """Take the flock on `handle`, or raise OperationalError after the connection's timeout.

        flock has no timeout of its own, and polling it would bring back the sleeps this
        avoids: a thread blocks in flock on a duplicate of the descriptor (same open file,
        so the same lock) and is woken by the kernel the moment the lock is free; if the
        caller gives up first, that thread drops the lock as soon as it gets it.
        """
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        if not _LockWaiter(os.dup(handle)).wait(timeout):
            raise OperationalError(f"database is locked: another writer held it for {timeout:g} s")

    def _drop_writer_lock(self):
        handle, self._writer_lock = self._writer_lock, None
        if handle is not None:
            os.close(handle)  # closing the descriptor releases the flock
