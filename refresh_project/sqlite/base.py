"""SQLite with writers queued on an OS file lock rather than on SQLite's busy handler.

SQLite lets one writer in at a time; a writer that finds the database locked sleeps (1, 2,
5, 10, 15 ms and longer) and tries again, however soon the lock was freed. With several
processes writing small transactions, those sleeps, not the work, made the slowest
requests. Every transaction here is BEGIN IMMEDIATE (it takes the write lock at once), so
taking an exclusive flock on a file beside the database just before it and dropping it at
commit or rollback queues the writers in the kernel, which hands the lock straight to the
next one. Writes outside a transaction (single autocommit statements) still use SQLite's
own waiting; in-memory databases have no file and no other process to wait for.
"""
import fcntl
import os

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    _writer_lock = None

    def _start_transaction_under_autocommit(self):
        self._take_writer_lock()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._drop_writer_lock()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._drop_writer_lock()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._drop_writer_lock()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._drop_writer_lock()

    def _take_writer_lock(self):
        if self.is_in_memory_db() or self._writer_lock is not None:
            return
        handle = os.open(f"{self.settings_dict['NAME']}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except BaseException:
            os.close(handle)
            raise
        self._writer_lock = handle

    def _drop_writer_lock(self):
        handle, self._writer_lock = self._writer_lock, None
        if handle is not None:
            os.close(handle)  # closing the descriptor releases the flock
