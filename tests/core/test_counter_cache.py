"""The database counter cache's contract: Django's cache API, atomic across processes, on SQLite and PostgreSQL.

These use the backend directly, so they run on whichever database the configuration has,
even where the "ratelimit" alias is Redis.
"""

import multiprocessing
import os

import pytest
from django.core.cache.backends.base import CacheKeyWarning
from django.db import connections, transaction

from core.counter_cache import CounterCache
from core.models import SharedCounter


def counter_cache(**options) -> CounterCache:
    return CounterCache("", {"KEY_PREFIX": "test", "OPTIONS": {"CULL_INTERVAL": 3600, **options}})


@pytest.fixture
def counters(db):
    return counter_cache()


def test_add_stores_a_value_only_where_none_is_live(counters, time_machine):
    time_machine.move_to("2030-01-07 15:00:00+00:00", tick=False)
    assert counters.add("a", 1, timeout=10)
    assert not counters.add("a", 5, timeout=10)
    assert counters.get("a") == 1
    time_machine.shift(10)  # expired: the next add takes the key over
    assert counters.get("a") is None
    assert counters.add("a", 7, timeout=10)
    assert counters.get("a") == 7


def test_set_and_get_numbers_whole_numbers_as_int(counters, time_machine):
    time_machine.move_to("2030-01-07 15:00:00+00:00", tick=False)
    counters.set("count", 3)
    counters.set("time", 1_900_000_000.25, timeout=60)
    assert (counters.get("count"), counters.get("time")) == (3, 1_900_000_000.25)
    assert isinstance(counters.get("count"), int)
    counters.set("count", 4, timeout=None)  # replaces a live value; never expires
    time_machine.shift(10**6)
    assert counters.get("count") == 4
    assert counters.get("time") is None
    assert counters.get("missing", "default") == "default"
    counters.set("gone", 1, timeout=0)
    assert not counters.has_key("gone")


def test_only_numbers_a_float_holds_exactly(counters):
    with pytest.raises(TypeError):
        counters.set("k", "text")
    for value in (2**53 + 1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=r"cannot hold .* exactly"):
            counters.add("k", value)
    assert not SharedCounter.objects.exists()


def test_incr_and_decr_change_a_live_value_in_place_and_keep_its_expiry(counters, time_machine):
    time_machine.move_to("2030-01-07 15:00:00+00:00", tick=False)
    counters.set("n", 1, timeout=10)
    assert counters.incr("n") == 2
    assert counters.incr("n", 5) == 7
    assert counters.decr("n", 3) == 4
    time_machine.shift(10)  # the incr calls did not move the expiry
    with pytest.raises(ValueError, match=r"Key '.*:n' not found"):
        counters.incr("n")
    with pytest.raises(ValueError, match=r"Key '.*:never-set' not found"):
        counters.decr("never-set")


def test_delete_touch_and_has_key_see_only_live_values(counters, time_machine):
    time_machine.move_to("2030-01-07 15:00:00+00:00", tick=False)
    counters.set("live", 1, timeout=10)
    counters.set("old", 1, timeout=5)
    time_machine.shift(5)
    assert counters.has_key("live")
    assert not counters.has_key("old")
    assert counters.touch("live", timeout=60)
    assert not counters.touch("old", timeout=60)
    time_machine.shift(30)
    assert counters.get("live") == 1
    assert counters.delete("live")
    assert not counters.delete("live")
    assert not counters.delete("old")  # expired: deleted, but there was nothing to delete
    assert not SharedCounter.objects.exists()


def test_clear_empties_the_table(counters):
    counters.set("a", 1)
    counters.set("b", 2)
    counters.clear()
    assert not SharedCounter.objects.exists()


def test_keys_carry_the_prefix_and_version_and_have_a_length_limit(counters):
    counters.set("k", 1, version=2)
    assert list(SharedCounter.objects.values_list("key", flat=True)) == ["test:2:k"]
    assert counters.get("k") is None
    assert counters.get("k", version=2) == 1
    with pytest.raises(ValueError, match="Cache key longer than"), pytest.warns(CacheKeyWarning):
        counters.set("k" * 250, 1)


def test_writes_commit_and_roll_back_with_the_callers_transaction(counters):
    counters.set("n", 1)

    def write_then_fail():
        with transaction.atomic():
            counters.incr("n")
            counters.add("new", 1)
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError, match="roll back"):
        write_then_fail()
    assert (counters.get("n"), counters.get("new")) == (1, None)


def test_expired_rows_are_culled_in_batches_after_the_write_commits(
    db, time_machine, django_capture_on_commit_callbacks
):
    time_machine.move_to("2030-01-07 15:00:00+00:00", tick=False)
    counters = counter_cache(CULL_BATCH=2)
    for key in ("a", "b", "c"):
        counters.set(key, 1, timeout=5)
    counters.set("forever", 1, timeout=None)
    time_machine.shift(5)
    assert [counters.cull(), counters.cull(), counters.cull()] == [2, 1, 0]
    assert list(SharedCounter.objects.values_list("key", flat=True)) == ["test:1:forever"]

    counters.set("d", 1, timeout=5)
    time_machine.shift(5)
    fresh = counter_cache()  # as in a process just started
    with django_capture_on_commit_callbacks(execute=True) as culls:
        fresh.add("e", 1, timeout=5)  # culls once the transaction commits...
        fresh.add("f", 1, timeout=5)  # ...and not again within CULL_INTERVAL
    assert len(culls) == 1
    assert sorted(SharedCounter.objects.values_list("key", flat=True)) == ["test:1:e", "test:1:f", "test:1:forever"]


def _count_in_a_process(barrier, results, per_process):
    """In a forked process, with its own database connection: claim once, then count."""
    counters = counter_cache()
    barrier.wait(timeout=30)
    results.put(counters.add("claim", os.getpid(), timeout=60))
    for i in range(per_process):
        if i % 2:
            counters.incr("total")
        else:
            with transaction.atomic():  # as a request counts: inside its transaction
                counters.incr("total")
    connections.close_all()


def test_processes_counting_the_same_key_lose_nothing(transactional_db):
    processes, per_process = 4, 25
    counter_cache().add("total", 0, timeout=60)
    connections.close_all()  # each process opens its own connection
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [
        context.Process(target=_count_in_a_process, args=(barrier, results, per_process)) for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    claims = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0] * processes
    assert sorted(claims) == [False] * (processes - 1) + [True]
    assert counter_cache().get("total") == processes * per_process
