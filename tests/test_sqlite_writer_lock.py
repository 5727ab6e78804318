"""SQLite's writers queue on a file lock (refresh_project/sqlite): held exactly while a transaction is open."""
import fcntl
import os
import threading
import time

import pytest
from django.db import OperationalError, connection, connections, transaction

from refresh_project.sqlite.base import DatabaseWrapper

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite backend's own behaviour")


ALIAS = "writer_lock_test"


@pytest.fixture
def database(tmp_path, django_db_blocker):
    """A file database of this test's own under its own alias (one connection per thread)."""
    connections.settings[ALIAS] = {**connections["default"].settings_dict, "NAME": str(tmp_path / "db.sqlite3"),
                                   "TEST": {}}
    with django_db_blocker.unblock():
        with connections[ALIAS].cursor() as cursor:
            cursor.execute("CREATE TABLE item (n INTEGER)")
        yield tmp_path / "db.sqlite3-writer.lock"
        connections[ALIAS].close()
    del connections[ALIAS]
    del connections.settings[ALIAS]


def rows():
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT n FROM item ORDER BY n")
        return [n for (n,) in cursor.fetchall()]


def insert(n):
    connections[ALIAS].cursor().execute("INSERT INTO item VALUES (%s)", [n])


def lock_is_free(path) -> bool:
    handle = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(handle)


def test_the_settings_use_it_for_sqlite():
    assert isinstance(connections["default"], DatabaseWrapper)


def test_a_transaction_holds_the_lock_until_commit(database):
    with transaction.atomic(using=ALIAS):
        insert(1)
        assert not lock_is_free(database)
    assert lock_is_free(database)
    assert rows() == [1]


def test_a_rolled_back_transaction_releases_it(database):
    with pytest.raises(RuntimeError):
        with transaction.atomic(using=ALIAS):
            insert(1)
            raise RuntimeError("roll back")
    assert lock_is_free(database)
    with transaction.atomic(using=ALIAS):
        insert(2)
    assert rows() == [2]


def test_closing_the_connection_mid_transaction_releases_it(database):
    atomic = transaction.atomic(using=ALIAS)
    atomic.__enter__()
    insert(1)
    assert not lock_is_free(database)
    connections[ALIAS].close()  # a worker's connection dropped mid-transaction, say
    assert lock_is_free(database)
    atomic.__exit__(None, None, None)
    assert rows() == []  # nothing was committed


def test_statements_outside_a_transaction_do_not_take_it(database):
    insert(1)
    assert connections[ALIAS]._writer_lock is None
    assert lock_is_free(database)


def test_a_second_writer_waits_for_the_first_commit_and_then_proceeds(database, django_db_blocker):
    order = []
    first_in = threading.Event()

    def write(n, hold):
        with django_db_blocker.unblock():
            try:
                with transaction.atomic(using=ALIAS):  # this thread's own connection
                    insert(n)
                    order.append(f"begin {n}")
                    first_in.set()
                    time.sleep(hold)
                    order.append(f"commit {n}")
            finally:
                connections[ALIAS].close()

    first = threading.Thread(target=write, args=(1, 0.3))
    first.start()
    assert first_in.wait(5)
    second = threading.Thread(target=write, args=(2, 0))
    second.start()
    first.join(10)
    second.join(10)
    assert order == ["begin 1", "commit 1", "begin 2", "commit 2"]
    assert rows() == [1, 2]


def test_a_writer_gives_up_after_the_connection_timeout(database):
    options = connections.settings[ALIAS].get("OPTIONS", {})
    connections[ALIAS].settings_dict["OPTIONS"] = {**options, "timeout": 0.2}
    holder = os.open(database, os.O_RDONLY | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)  # another process stuck inside its transaction
    try:
        began = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            with transaction.atomic(using=ALIAS):
                insert(1)
        assert 0.2 <= time.monotonic() - began < 2
        assert connections[ALIAS]._writer_lock is None
    finally:
        os.close(holder)
    with transaction.atomic(using=ALIAS):  # free again
        insert(2)
    assert rows() == [2]


def test_an_in_memory_database_takes_no_lock(django_db_blocker):
    connections.settings[ALIAS] = {**connections["default"].settings_dict, "NAME": ":memory:", "TEST": {}}
    try:
        with django_db_blocker.unblock(), transaction.atomic(using=ALIAS):
            connections[ALIAS].cursor().execute("SELECT 1")
            assert connections[ALIAS]._writer_lock is None
    finally:
        connections[ALIAS].close()
        del connections[ALIAS]
        del connections.settings[ALIAS]
