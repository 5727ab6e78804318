"""Portfolio chunks as rows any worker may claim: a calculation alone in its process.

Real workers taking chunks are in tests/refresh/test_qcluster.py.
"""

import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_q.brokers import get_broker

from portfolios.models import (
    Allocation,
    BenchmarkComparison,
    CalculationBatch,
    CalculationChunk,
    ChunkStatus,
    Portfolio,
    PortfolioMetrics,
    RebalanceProposal,
)
from portfolios.selectors.shared import PRICES, read_once, shared_reads, shared_reads_key
from portfolios.services import chunks
from portfolios.services.benchmark import recalculate_benchmark_comparisons
from portfolios.services.chunks import calculate_in_chunks, calculate_pending_chunks
from portfolios.services.performance import recalculate_portfolio_metrics
from portfolios.services.strategy import recalculate_strategies
from refresh.services.demo import seed_demo

# Other workers' connections see only committed rows, so chunks are rows only outside a transaction.
committed = pytest.mark.django_db(transaction=True)
calls: list[Any] = []  # (chunk, batch) from note_chunk, the chunk alone from fail_on_zero


@pytest.fixture
def queued_tasks(settings, monkeypatch):
    """Tasks go to the broker, as in a deployment, where no worker takes them: the coordinator is alone."""
    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    settings.REFRESH_METRICS_CHUNK = 2
    settings.REFRESH_CHUNK_TASKS = 2
    calls.clear()
    broker = get_broker()
    broker.purge_queue()
    yield broker
    broker.purge_queue()


def note_chunk(params, chunk):
    """Chunk work that notes each chunk with the batch it belongs to (None: calculated without rows)."""
    calls.append((list(chunk), CalculationBatch.objects.values_list("pk", flat=True).first()))
    return {"portfolios": len(chunk), **params}


def fail_on_zero(params, chunk):
    calls.append(list(chunk))
    return {"inverse": sum(int(1 / value) for value in chunk)}


@committed
def test_alone_the_coordinator_calculates_every_chunk_and_reports_progress(queued_tasks):
    progress = []

    counts = calculate_in_chunks(
        work=note_chunk, params={"runs": 1}, portfolio_ids=[1, 2, 3, 4, 5], on_progress=lambda *p: progress.append(p)
    )

    assert counts == {"portfolios": 5, "runs": 3}
    assert [chunk for chunk, _ in calls] == [[1, 2], [3, 4], [5]]
    batch_id = calls[0][1]
    assert batch_id is not None
    assert {batch for _, batch in calls} == {batch_id}
    assert progress == [(2, 5), (4, 5), (5, 5)]
    assert queued_tasks.queue_size() == 2  # for workers that never came
    assert not CalculationBatch.objects.exists()
    assert not CalculationChunk.objects.exists()
    assert calculate_pending_chunks(batch_id=batch_id) == 0  # such a task, taken late, does nothing


@pytest.mark.django_db
def test_inside_a_transaction_chunks_are_calculated_here_without_rows(queued_tasks):
    # A worker's own connection could not see rows written in this transaction.
    assert calculate_in_chunks(work=note_chunk, params={}, portfolio_ids=[1, 2, 3]) == {"portfolios": 3}
    assert calls == [([1, 2], None), ([3], None)]
    assert queued_tasks.queue_size() == 0


@committed
def test_one_chunk_or_no_tasks_allowed_calculates_here(queued_tasks, settings):
    calculate_in_chunks(work=note_chunk, params={}, portfolio_ids=[1, 2])
    settings.REFRESH_CHUNK_TASKS = 0
    calculate_in_chunks(work=note_chunk, params={}, portfolio_ids=[1, 2, 3])
    assert calls == [([1, 2], None), ([1, 2], None), ([3], None)]
    assert queued_tasks.queue_size() == 0


@committed
def test_stopping_drops_the_pending_chunks(queued_tasks):
    def cancel(done, total):
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        calculate_in_chunks(work=note_chunk, params={}, portfolio_ids=[1, 2, 3, 4, 5], on_progress=cancel)

    assert [chunk for chunk, _ in calls] == [[1, 2]]
    assert not CalculationBatch.objects.exists()
    assert calculate_pending_chunks(batch_id=calls[0][1]) == 0


@committed
def test_a_failing_chunk_fails_the_calculation_and_no_other_starts(queued_tasks):
    with pytest.raises(ZeroDivisionError):
        calculate_in_chunks(work=fail_on_zero, params={}, portfolio_ids=[1, 2, 0, 4, 5])
    assert calls == [[1, 2], [0, 4]]
    assert not CalculationBatch.objects.exists()


def lose_the_next_chunk(params, chunk):
    """On the first chunk, the next one is taken by a claimer that then dies (its lease lapsed)."""
    if not calls:
        CalculationChunk.objects.filter(position=1).update(
            status=ChunkStatus.RUNNING, claimed_by="lost-host:1:0", lease_expires_at=timezone.now()
        )
    calls.append(list(chunk))
    return {"portfolios": len(chunk)}


@committed
def test_a_chunk_whose_claimer_died_is_calculated_again(queued_tasks, caplog):
    counts = calculate_in_chunks(work=lose_the_next_chunk, params={}, portfolio_ids=[1, 2, 3, 4, 5])

    assert counts == {"portfolios": 5}
    assert sorted(calls) == [[1, 2], [3, 4], [5]]
    assert "lost-host:1:0 was lost while calculating it; calculating it again" in caplog.text


@committed
def test_a_task_leaves_a_batch_whose_coordinator_died(queued_tasks):
    lapsed = timezone.now() - timedelta(seconds=1)
    dead = CalculationBatch.objects.create(
        work=f"{__name__}.note_chunk", params={}, portfolios=2, coordinator="lost-host:1:0", lease_expires_at=lapsed
    )
    CalculationChunk.objects.create(batch=dead, position=0, portfolio_ids=[1, 2], size=2)

    assert calculate_pending_chunks(batch_id=dead.pk) == 0
    assert calls == []
    calculate_in_chunks(work=note_chunk, params={}, portfolio_ids=[1, 2, 3])  # the next batch deletes it
    assert not CalculationBatch.objects.filter(pk=dead.pk).exists()


def note_read(params, chunk):
    """Chunk work that reads the same prices for every chunk, and notes each read and each chunk."""

    def read():
        calls.append("read")
        return "prices"

    read_once(PRICES, "every asset", read)
    calls.append(list(chunk))
    return {"portfolios": len(chunk)}


def _batch(series: str, *chunk_ids: list[int]) -> CalculationBatch:
    """A live batch as a coordinator starts one, its chunks pending."""
    batch = CalculationBatch.objects.create(
        work=f"{__name__}.note_read",
        params={},
        portfolios=sum(map(len, chunk_ids)),
        coordinator="host:1:coordinator",
        series=series,
        lease_expires_at=timezone.now() + timedelta(minutes=5),
    )
    for position, ids in enumerate(chunk_ids):
        CalculationChunk.objects.create(batch=batch, position=position, portfolio_ids=ids, size=len(ids))
    return batch


@committed
def test_a_helper_takes_the_last_chunks_first(queued_tasks):
    """The coordinator takes the first: each calculates about the same chunks in every pass."""
    batch = _batch("", [1, 2], [3, 4], [5])
    assert calculate_pending_chunks(batch_id=batch.pk) == 3
    assert calls == ["read", [5], [3, 4], [1, 2]]


@committed
def test_a_helper_moves_on_to_the_next_pass_of_its_series_keeping_what_it_read(queued_tasks, monkeypatch):
    first = _batch("run-1", [1, 2], [3, 4])
    other_run = _batch("run-2", [9])
    waited: list[bool] = []

    def coordinator_starts_the_next_pass():  # while the helper waits for it
        if not waited:
            _batch("run-1", [11, 12], [13, 14])
        waited.append(True)

    monkeypatch.setattr(chunks, "_pause", coordinator_starts_the_next_pass)
    monkeypatch.setattr(chunks, "NEXT_PASS_SECONDS", 0.05)

    assert calculate_pending_chunks(batch_id=first.pk) == 4  # then waited for a third pass, which never came
    assert calls == ["read", [3, 4], [1, 2], [13, 14], [11, 12]]  # one read for both passes
    assert CalculationChunk.objects.get(batch=other_run).status == ChunkStatus.PENDING  # another run's


@committed
def test_a_helper_ends_when_no_next_pass_comes(queued_tasks, monkeypatch):
    waited: list[bool] = []

    def pause():
        waited.append(True)
        time.sleep(0.01)

    monkeypatch.setattr(chunks, "_pause", pause)
    monkeypatch.setattr(chunks, "NEXT_PASS_SECONDS", 0.05)

    assert calculate_pending_chunks(batch_id=_batch("run-1", [1, 2]).pk) == 1
    assert waited  # looked for the next pass until the deadline, then ended

    waited.clear()
    assert calculate_pending_chunks(batch_id=_batch("", [3]).pk) == 1
    assert waited == []  # no series: no pass to wait for


@committed
def test_a_late_task_does_not_wait_for_passes(queued_tasks, monkeypatch):
    """A task that found its batch done helped with nothing: it ends at once."""
    waited: list[bool] = []
    monkeypatch.setattr(chunks, "_pause", lambda: waited.append(True))
    batch = _batch("run-1", [1, 2])
    CalculationChunk.objects.filter(batch=batch).update(status=ChunkStatus.DONE)
    assert calculate_pending_chunks(batch_id=batch.pk) == 0
    assert waited == []


@committed
def test_the_passes_of_one_shared_reads_block_are_one_series(queued_tasks, monkeypatch):
    series: list[str] = []
    start = chunks._start_batch

    def noting(*args, **kwargs):
        batch = start(*args, **kwargs)
        series.append(batch.series)
        return batch

    monkeypatch.setattr(chunks, "_start_batch", noting)
    with shared_reads():
        key = shared_reads_key()
        calculate_in_chunks(work=note_chunk, params={}, portfolio_ids=[1, 2, 3])
        calculate_in_chunks(work=note_chunk, params={}, portfolio_ids=[1, 2, 3])
    calculate_in_chunks(work=note_chunk, params={}, portfolio_ids=[1, 2, 3])  # alone: no series
    assert key is not None
    assert series == [key, key, ""]
    assert shared_reads_key() is None


def _stored():
    def rows(model, *exclude):
        fields = [f.attname for f in model._meta.concrete_fields if f.attname not in exclude]
        return sorted(model.objects.values_list(*fields))

    return (
        rows(PortfolioMetrics, "calculated_at"),
        rows(BenchmarkComparison, "calculated_at"),
        rows(Allocation, "id", "calculated_at"),
        rows(RebalanceProposal, "id", "created_at"),
    )


def _recalculate_everything():
    return (
        recalculate_strategies(refresh_id="ref_test"),
        recalculate_portfolio_metrics(),
        recalculate_benchmark_comparisons(),
    )


@committed
def test_chunks_of_one_portfolio_as_rows_store_what_one_chunk_stores(queued_tasks, settings):
    """Each chunk reads only the prices its portfolios hold, yet every figure is the same to the last bit."""
    seed_demo(users=6, assets=12, years=1)
    settings.REFRESH_METRICS_CHUNK = 1000
    in_one_chunk = _recalculate_everything()
    stored = _stored()
    for model in (PortfolioMetrics, BenchmarkComparison, Allocation, RebalanceProposal):
        model.objects.all().delete()

    settings.REFRESH_METRICS_CHUNK = 1
    assert _recalculate_everything() == in_one_chunk
    assert _stored() == stored
    assert in_one_chunk[1] == in_one_chunk[2] == Portfolio.objects.count() == 6
    assert all(stored)
