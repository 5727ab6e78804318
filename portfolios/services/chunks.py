"""Calculating portfolios in chunks that any django-q2 worker, on any machine, may take.

A calculation over many portfolios (metrics, benchmark comparisons, strategies) goes in chunks
of REFRESH_METRICS_CHUNK portfolios. The process running it, the coordinator, writes the chunks
as rows, queues up to REFRESH_CHUNK_TASKS tasks that idle workers take, and claims chunks itself
too until none is left: with no worker free to help, or no worker at all (an in-process run),
every chunk is still calculated here. Whoever claims a chunk reads what it needs from the
database (its portfolios' holdings and their assets' prices; the run's conventions and time
come with the batch) and stores it in one transaction, so a chunk is stored whole or not at all.

A calculation over every portfolio comes in passes (strategies, metrics, comparisons), each a
batch; a run's passes share the coordinator's reads (portfolios/selectors/shared.py), and so
does a worker helping with them: its task stays in one shared_reads() block and moves on from
one batch to the next of the same series, rather than ending and reading everything again.
The coordinator claims chunks from the first and helpers from the last, so each process
calculates mostly the same chunks in every pass and reads their holdings once.

A claim is a compare-and-set update of one row. Claimers renew the leases of what they hold from
a heartbeat thread: a chunk whose claimer died is claimed again once its lease lapses, and a batch
whose coordinator died is ignored, then deleted by the next batch. The coordinator reports
progress as chunks finish; when it stops (a cancel, a time limit, a failed chunk) pending chunks
are cancelled, those under way elsewhere finish, and the batch is deleted.

Inside a transaction (other workers could not see the rows), with tasks run inline
(Q_CLUSTER sync) or with a single chunk, the chunks are calculated here, one after another,
without rows.
"""

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.brokers import get_broker
from django_q.tasks import async_task

from core.heartbeat import Heartbeat, process_name
from portfolios.batches import batched
from portfolios.models import CalculationBatch, CalculationChunk, ChunkStatus
from portfolios.selectors.shared import shared_reads, shared_reads_key

logger = logging.getLogger(__name__)

# What every chunk of a calculation shares (JSON values: it is stored with the batch).
Params = dict[str, Any]
# work(params, portfolio ids) -> counts of the rows it stored; a module-level function.
ChunkWork = Callable[[Params, Sequence[int]], dict[str, int]]
TASK = "portfolios.tasks.calculate_chunks"
POLL_SECONDS = 0.1
# Waiting on other workers' chunks, the coordinator still reports progress this often, so that
# its caller may stop it (a cancel, a time limit).
REPORT_SECONDS = 1.0
# A helper whose batch is done waits this long for the coordinator's next pass before it ends.
NEXT_PASS_SECONDS = 2.0


class ChunkFailed(RuntimeError):
    """A chunk failed in another worker, or the batch's chunks were lost."""


def calculate_in_chunks(
    *,
    work: ChunkWork,
    params: Params,
    portfolio_ids: Sequence[int],
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """work(params, chunk) for every chunk of the portfolios; returns their counts, summed.

    params must be JSON values. After each chunk is done, on_progress(done, total) runs here;
    an exception it raises (a cancel or timeout) is raised once the chunks under way elsewhere
    have finished, and pending ones never start. A failing chunk does the same (ChunkFailed when
    it failed in another worker).
    """
    chunks = list(batched(portfolio_ids, settings.REFRESH_METRICS_CHUNK))
    helpers = min(len(chunks) - 1, settings.REFRESH_CHUNK_TASKS)
    if helpers < 1 or connection.in_atomic_block or settings.Q_CLUSTER.get("sync"):
        return _calculate_here(work, params, chunks, on_progress)
    claimer = _claimer()
    # A series only when the passes share the reads (a block is open around them).
    batch = _start_batch(work, params, chunks, coordinator=claimer, series=shared_reads_key() or "")
    keeper = _keep_leases(claimer)
    try:
        _queue_helpers(batch, helpers)
        with shared_reads():  # chunks often hold the same assets: one read of their prices
            return _coordinate(batch, work, claimer, on_progress)
    except BaseException:
        _stop(batch, claimer)
        raise
    finally:
        keeper.stop()
        _delete(batch)


def calculate_pending_chunks(*, batch_id: int) -> int:
    """Claim and calculate a batch's pending chunks beside its coordinator, while it lives, then
    those of the next batches in its series.

    What a queued task does; returns how many chunks it calculated (0 when the batch was
    already done or gone).
    """
    batch = CalculationBatch.objects.filter(pk=batch_id).only("work", "params", "series").first()
    if batch is None:
        return 0
    claimer, calculated = _claimer(), 0
    keeper = _keep_leases(claimer)
    try:
        with shared_reads():
            while batch is not None:
                done = _help_with(batch, claimer)
                if done:
                    logger.info("calculated %s chunk(s) of batch %s (%s)", done, batch.pk, batch.work)
                calculated += done
                batch = _next_pass(batch) if calculated else None
    finally:
        keeper.stop()
    return calculated


def _help_with(batch: CalculationBatch, claimer: str) -> int:
    """Calculate the batch's pending chunks, last first, while its coordinator lives; how many."""
    work, calculated = import_string(batch.work), 0
    while _batch_alive(batch.pk) and (chunk := _claim(batch.pk, claimer, last_first=True)) is not None:
        _calculate_chunk(chunk, work, batch.params, claimer)
        calculated += 1
    return calculated


def _next_pass(batch: CalculationBatch) -> CalculationBatch | None:
    """The next live batch of the same series, once its coordinator has started it; None when
    none comes within NEXT_PASS_SECONDS (the recalculation is over) or the batch has no series."""
    if not batch.series:
        return None
    deadline = time.monotonic() + NEXT_PASS_SECONDS
    while True:
        following = (
            CalculationBatch.objects.filter(series=batch.series, pk__gt=batch.pk, lease_expires_at__gte=timezone.now())
            .order_by("pk")
            .only("work", "params", "series")
            .first()
        )
        if following is not None or time.monotonic() >= deadline:
            return following
        _pause()


def _pause() -> None:
    time.sleep(POLL_SECONDS)


def _calculate_here(
    work: ChunkWork, params: Params, chunks: list[Sequence[int]], on_progress: Callable[[int, int], None] | None
) -> dict[str, int]:
    counts: Counter[str] = Counter()
    done, total = 0, sum(len(chunk) for chunk in chunks)
    with shared_reads():
        for chunk in chunks:
            counts.update(work(params, chunk))
            done += len(chunk)
            if on_progress:
                on_progress(done, total)
    return dict(counts)


def _claimer() -> str:
    """Who claims: the machine and process, and this call (a process may coordinate and help in turn)."""
    return f"{process_name()}:{uuid.uuid4().hex[:8]}"


def _lease_end() -> datetime:
    return timezone.now() + timedelta(seconds=settings.REFRESH_LEASE_SECONDS)


def _start_batch(
    work: ChunkWork, params: Params, chunks: list[Sequence[int]], *, coordinator: str, series: str
) -> CalculationBatch:
    path = f"{work.__module__}.{work.__qualname__}"
    if import_string(path) is not work:
        message = f"{path}: chunk work must be a module-level function other workers can import"
        raise ValueError(message)
    CalculationBatch.objects.filter(lease_expires_at__lt=timezone.now()).delete()  # their coordinators died
    with transaction.atomic():
        batch = CalculationBatch.objects.create(
            work=path,
            params=params,
            portfolios=sum(map(len, chunks)),
            coordinator=coordinator,
            series=series,
            lease_expires_at=_lease_end(),
        )
        CalculationChunk.objects.bulk_create(
            CalculationChunk(batch=batch, position=position, portfolio_ids=list(chunk), size=len(chunk))
            for position, chunk in enumerate(chunks)
        )
    return batch


def _queue_helpers(batch: CalculationBatch, helpers: int) -> None:
    """Queue the tasks that let idle workers help; without them the coordinator calculates alone."""
    cluster = settings.Q_CLUSTER["name"]  # the normal lane, even from an emergency worker
    try:
        broker = get_broker(cluster)
        for _ in range(helpers):
            async_task(TASK, batch.pk, cluster=cluster, broker=broker, task_name=f"portfolios: chunks of {batch.pk}")
    except Exception:  # a broker that is down only means no help
        logger.warning("could not queue chunk tasks for batch %s; calculating its chunks here", batch.pk, exc_info=True)


def _coordinate(
    batch: CalculationBatch, work: ChunkWork, claimer: str, on_progress: Callable[[int, int], None] | None
) -> dict[str, int]:
    """Calculate chunks until none is pending, then wait for the others' to finish."""
    reported, reported_at = 0, time.monotonic()
    while True:
        chunk = _claim(batch.pk, claimer)
        if chunk is not None:
            _calculate_chunk(chunk, work, batch.params, claimer)
        done, left = _progress(batch)
        if on_progress and (done != reported or time.monotonic() - reported_at >= REPORT_SECONDS):
            reported, reported_at = done, time.monotonic()
            on_progress(done, batch.portfolios)
        if not left:
            return _counts(batch)
        if chunk is None:
            time.sleep(POLL_SECONDS)


def _claim(batch_id: int, claimer: str, *, last_first: bool = False) -> CalculationChunk | None:
    """Atomically take the batch's first (or last) pending chunk, or one whose claimer's lease lapsed."""
    while True:
        now = timezone.now()
        claimable = Q(status=ChunkStatus.PENDING) | Q(status=ChunkStatus.RUNNING, lease_expires_at__lt=now)
        chunk = (
            CalculationChunk.objects.filter(claimable, batch_id=batch_id)
            .order_by("-position" if last_first else "position")
            .only("position", "portfolio_ids", "status", "claimed_by")
            .first()
        )
        if chunk is None:
            return None
        if CalculationChunk.objects.filter(claimable, pk=chunk.pk).update(
            status=ChunkStatus.RUNNING, claimed_by=claimer, lease_expires_at=_lease_end()
        ):
            if chunk.status == ChunkStatus.RUNNING:
                logger.warning(
                    "chunk %s of batch %s: %s was lost while calculating it; calculating it again",
                    chunk.position,
                    batch_id,
                    chunk.claimed_by,
                )
            return chunk
        # another worker claimed it first: try the next one


def _calculate_chunk(chunk: CalculationChunk, work: ChunkWork, params: Params, claimer: str) -> None:
    mine = CalculationChunk.objects.filter(pk=chunk.pk, claimed_by=claimer, status=ChunkStatus.RUNNING)
    try:
        counts = work(params, chunk.portfolio_ids)
    except Exception as error:
        mine.update(status=ChunkStatus.FAILED, error=f"{type(error).__name__}: {error}", lease_expires_at=None)
        raise
    mine.update(status=ChunkStatus.DONE, counts=counts, lease_expires_at=None)


def _progress(batch: CalculationBatch) -> tuple[int, int]:
    """(portfolios done, chunks pending or running); raises ChunkFailed for a failed or lost chunk."""
    chunks = list(CalculationChunk.objects.filter(batch=batch).values_list("status", "size", "claimed_by", "error"))
    for status, _, claimer, error in chunks:
        if status == ChunkStatus.FAILED:
            message = f"a chunk failed in {claimer}: {error}"
            raise ChunkFailed(message)
    done = sum(size for status, size, _, _ in chunks if status == ChunkStatus.DONE)
    left = sum(status in (ChunkStatus.PENDING, ChunkStatus.RUNNING) for status, _, _, _ in chunks)
    if not left and done < batch.portfolios:
        message = f"chunks of batch {batch.pk} were lost: {done} of {batch.portfolios} portfolios done"
        raise ChunkFailed(message)
    return done, left


def _counts(batch: CalculationBatch) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for chunk_counts in CalculationChunk.objects.filter(batch=batch).values_list("counts", flat=True):
        counts.update(chunk_counts)
    return dict(counts)


def _batch_alive(batch_id: int) -> bool:
    return CalculationBatch.objects.filter(pk=batch_id, lease_expires_at__gte=timezone.now()).exists()


def _stop(batch: CalculationBatch, claimer: str) -> None:
    """Cancel the chunks not started and wait for those under way elsewhere, while their claimers live."""
    try:
        CalculationChunk.objects.filter(batch=batch, status=ChunkStatus.PENDING).update(status=ChunkStatus.CANCELLED)
        running = CalculationChunk.objects.filter(batch=batch, status=ChunkStatus.RUNNING).exclude(claimed_by=claimer)
        while running.filter(lease_expires_at__gte=timezone.now()).exists():
            time.sleep(POLL_SECONDS)
    except Exception:  # the reason for stopping matters more
        logger.exception("could not stop the chunks of batch %s", batch.pk)


def _delete(batch: CalculationBatch) -> None:
    try:
        batch.delete()
    except Exception:  # the next batch deletes it once its lease lapses
        logger.exception("could not delete batch %s", batch.pk)


def _keep_leases(claimer: str) -> Heartbeat:
    """Renew the leases of what one claimer holds (the batch it coordinates, the chunk it calculates)."""

    def renew() -> bool:
        until = _lease_end()
        CalculationBatch.objects.filter(coordinator=claimer).update(lease_expires_at=until)
        CalculationChunk.objects.filter(claimed_by=claimer, status=ChunkStatus.RUNNING).update(lease_expires_at=until)
        return True

    return Heartbeat(renew, seconds=settings.REFRESH_LEASE_SECONDS, name=f"chunk-lease-{claimer}").start()
