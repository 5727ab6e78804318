"""Running a calculation over chunks of portfolios, in worker processes where that pays.

Each chunk is read, calculated and written in its own transaction by whoever runs it, so
chunks are independent and finished ones stay stored whatever happens to the others. With
REFRESH_PROCESSES above 1, chunks go to forked worker processes: Python's share of the work
(building rows, adapting values) then overlaps with the database's, and with the other
chunks' on a machine with cores to spare. Forked workers inherit the prices already loaded
instead of reading them again.
"""
import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections

from .batches import batched

logger = logging.getLogger(__name__)

Context = TypeVar("Context")
ChunkWork = Callable[[Any, Sequence[int]], Any]

# What a forked worker runs: set by the pool's initializer, in the worker only.
_worker_job: tuple[ChunkWork, Any] | None = None


def _start_worker(work: ChunkWork, context: Any) -> None:
    global _worker_job
    _worker_job = (work, context)


def _run_in_worker(chunk: Sequence[int]) -> tuple[int, Any]:
    work, context = _worker_job
    try:
        return len(chunk), work(context, chunk)
    finally:
        connections.close_all()


def worker_processes(chunks: int) -> int:
    """How many processes to run `chunks` chunks in: 1 (this one) unless more can pay and is safe.

    Workers use connections of their own, so they cannot see rows of a transaction that is
    still open here; and a daemonic process (a django-q worker with daemonize_workers on)
    may not start children.
    """
    wanted = min(settings.REFRESH_PROCESSES, chunks)
    if wanted <= 1:
        return 1
    if any(connection.in_atomic_block for connection in connections.all(initialized_only=True)):
        return 1
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if multiprocessing.current_process().daemon:
        logger.warning("REFRESH_PROCESSES=%s, but this is a daemonic process, which may not start workers; "
                       "calculating in this process", settings.REFRESH_PROCESSES)
        return 1
    return wanted


def run_chunks(work: Callable[[Context, Sequence[int]], Any], context: Context, ids: Sequence[int], *,
               on_progress: Callable[[int, int], None] | None = None) -> list:
    """work(context, chunk) for every chunk of REFRESH_METRICS_CHUNK ids; returns their results.

    `work` must be a module-level function. After each chunk is done, on_progress(done,
    total) runs here; an exception it raises (a cancel or timeout) is raised once the chunks
    already running have finished; the others never start.
    """
    chunks = list(batched(ids, settings.REFRESH_METRICS_CHUNK))
    processes = worker_processes(len(chunks))
    results, done = [], 0

    def finished(size: int, result: Any) -> None:
        nonlocal done
        results.append(result)
        done += size
        if on_progress:
            on_progress(done, len(ids))

    if processes == 1:
        for chunk in chunks:
            finished(len(chunk), work(context, chunk))
        return results
    logger.info("calculating %s portfolios in %s chunks in %s worker processes", len(ids), len(chunks), processes)
    # A database connection must never be used on both sides of a fork: close ours (the
    # caller holds no transaction, checked above) and let each side open its own.
    connections.close_all()
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork"),
                               initializer=_start_worker, initargs=(work, context))
    try:
        # A worker that dies (killed, out of memory) fails its future with BrokenProcessPool
        # instead of leaving this loop waiting for it.
        for future in as_completed([pool.submit(_run_in_worker, chunk) for chunk in chunks]):
            finished(*future.result())
    finally:
        # On a stop, chunks not started are dropped and those running finish and commit.
        pool.shutdown(wait=True, cancel_futures=True)
    return results
