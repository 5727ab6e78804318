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
import queue
import threading
import weakref
from contextlib import suppress

from django.db import OperationalError
from django.db.backends.sqlite3 import base

# Every descriptor this process has open on a writer lock file, and the connections holding the
# lock. A forked child inherits the descriptors, and a flock lasts until every descriptor of its
# open file is closed: a child that lived on with them (a worker's chunk process, say) would
# keep the parent's lock after the parent committed, and every writer would wait for the child.
_handles: set[int] = set()
_holders = weakref.WeakSet()


def _open_lock_file(path: str) -> int:
    # Read-only is enough for flock, so processes of other users sharing the database can lock it too.
    handle = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    _handles.add(handle)
    return handle


def _dup(handle: int) -> int:
    copy = os.dup(handle)
    _handles.add(copy)
    return copy


def _close(handle: int) -> None:
    _handles.discard(handle)
    os.close(handle)


class _Wait:
    """One connection's wait for the lock: the waiter thread takes it, the connection collects it in time or not."""

    def __init__(self, handle: int):
        self.handle = handle  # a duplicate of the connection's descriptor: the same open file, so the same lock
        self._state = threading.Lock()
        self._done = threading.Lock()
        self._done.acquire()  # released once the waiter thread is through with this wait
        self._acquired = self._abandoned = False

    def take(self):
        """In the waiter thread: block until the lock is free, then hand it over unless the caller left."""
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX)
            with self._state:
                self._acquired = not self._abandoned
        finally:
            try:
                # The caller's descriptor keeps the lock; once the caller has given up (and closed
                # its own), this was the last descriptor of the open file and closing it frees the lock.
                _close(self.handle)
            finally:
                self._done.release()

    def collect(self, timeout: float) -> bool:
        """In the connection's thread: whether the lock came within `timeout` seconds."""
        self._done.acquire(timeout=max(timeout, 0))
        with self._state:
            self._abandoned = not self._acquired
            return self._acquired


class _LockWaiter:
    """Threads that block in flock on behalf of connections that found the lock taken.

    flock has no timeout, and polling it would bring back the sleeps this module avoids, so a
    thread blocks in it while the connection waits with a timeout. Starting a thread for each
    wait cost more CPU than the rest of a short write under load, so the threads stay: one is
    added only when every one is busy (a process with one connection keeps one), at most
    MAX_IDLE wait for work, and a forked child, which inherits no threads, starts afresh.
    """

    MAX_IDLE = 4

    @classmethod
    def wait(cls, handle: int, timeout: float) -> bool:
        """Whether the flock on `handle` was taken within `timeout` seconds."""
        wait = _Wait(_dup(handle))
        try:
            with cls._guard:
                start = cls._idle == 0
                if not start:
                    cls._idle -= 1
            if start:
                threading.Thread(target=cls._serve, name="sqlite-writer-lock", daemon=True).start()
        except BaseException:  # no thread will ever take this wait
            _close(wait.handle)
            raise
        cls._waits.put(wait)
        return wait.collect(timeout)

    @classmethod
    def _serve(cls):
        while True:
            try:
                cls._waits.get().take()
            except OSError:  # that wait ends unacquired, and its caller is told so
                pass
            with cls._guard:
                if cls._idle >= cls.MAX_IDLE:  # the rest of a burst of waits: let this thread go
                    return
                cls._idle += 1

    @classmethod
    def _forget(cls):
        cls._guard, cls._waits, cls._idle = threading.Lock(), queue.SimpleQueue(), 0


def _after_fork_in_child():
    """Close the inherited lock descriptors; start with no waiting threads (none were inherited)."""
    for handle in list(_handles):
        with suppress(OSError):
            os.close(handle)
    _handles.clear()
    for connection in list(_holders):
        connection._writer_lock = None
    _holders.clear()
    _LockWaiter._forget()


_LockWaiter._forget()
os.register_at_fork(after_in_child=_after_fork_in_child)


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
        handle = _open_lock_file(f"{self.settings_dict['NAME']}-writer.lock")
        try:
            self._wait_for(handle)
        except BaseException:
            _close(handle)
            raise
        self._writer_lock = handle
        _holders.add(self)

    def _wait_for(self, handle):
        """Take the flock on `handle`, or raise OperationalError after the connection's timeout.

        Free, it is taken at once; otherwise the waiter thread blocks in flock and is woken by
        the kernel the moment the lock is free; if the caller gives up first, that thread drops
        the lock as soon as it gets it.
        """
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        if not _LockWaiter.wait(handle, timeout):
            raise OperationalError(f"database is locked: another writer held it for {timeout:g} s")

    def _drop_writer_lock(self):
        handle, self._writer_lock = self._writer_lock, None
        if handle is not None:
            _holders.discard(self)
            _close(handle)  # closing the descriptor releases the flock
