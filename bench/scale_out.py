"""Scale-out: one full refresh requested through the queue, run by one or by two qcluster processes.

Each process has a single worker (Q_WORKERS=1), as one small machine would, and they share the
database and the broker. With one process, its worker runs the refresh and calculates every
portfolio chunk itself (REFRESH_CHUNK_TASKS=0); with two, the run queues chunk tasks and the
other process's worker calculates chunks beside it (portfolios/services/chunks.py).
"""

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.processes import descendants, peak_rss_mb, start_qcluster, stop
from bench.queue_latency import wait_for_run

# Chunk tasks the run queues per calculation when two processes serve the queue. The busy
# process's own cluster fetches tasks ahead while its worker runs the refresh: up to its
# queue_limit (Q_WORKERS² = 1) waiting, plus one in its pusher's hand. Those two only run after
# the refresh, when there is nothing left to help with, so a third task is what makes sure the
# idle process gets one, whichever cluster the broker hands the first ones to.
CHUNK_TASKS_BESIDE_A_BUSY_CLUSTER = 3
CHUNK_TASK = "portfolios.tasks.calculate_chunks"


def queued_full_refresh(*, processes: int, logs: Path, timeout: float = 3600) -> dict[str, Any]:
    """Start `processes` single-worker clusters, request a full refresh of everything through the
    queue, and measure it: wall time, its steps, each process's peak memory, and how many chunks
    queued chunk tasks calculated (in the two-process case: the other process's share)."""
    from django.utils import timezone
    from django_q.brokers import get_broker

    from refresh.models import RunSource
    from refresh.services.requests import request_refresh

    chunk_tasks = CHUNK_TASKS_BESIDE_A_BUSY_CLUSTER if processes > 1 else 0
    env = {"Q_WORKERS": "1", "REFRESH_CHUNK_TASKS": str(chunk_tasks)}
    get_broker().purge_queue()  # what an earlier measurement left queued would run first
    clusters = [start_qcluster(logs / f"qcluster-scale-out-{processes}-{i}.log", env=env) for i in range(processes)]
    try:
        _wait_until_serving(clusters, logs=logs)
        since = timezone.now()
        run, _ = request_refresh(kind="all", mode="full", requested_by=None, source=RunSource.COMMAND)
        run = wait_for_run(run, started=False, timeout=timeout, poll=0.5)
        peaks = [max(map(peak_rss_mb, descendants(cluster.pid)), default=0.0) for cluster in clusters]
    finally:
        for cluster in clusters:
            stop(cluster)
    steps = {step.name: step.duration_ms for step in run.steps.order_by("position")}
    return {
        "processes": processes,
        "chunk_tasks": chunk_tasks,
        "status": run.status,
        "errors": run.errors[:5],
        "seconds": (run.finished_at - run.started_at).total_seconds(),
        "queued_seconds": (run.started_at - run.created_at).total_seconds(),
        "steps": steps,
        "items_updated": run.items_updated,
        "peak_rss_mb": peaks,
        "chunks_by_tasks": _chunks_calculated_by_tasks(since),
    }


def _wait_until_serving(clusters: list, *, logs: Path, timeout: float = 120) -> None:
    """Queue tasks that answer with their worker's pid until every cluster has answered one,
    so that none is still starting when the refresh is requested."""
    from django_q.tasks import async_task, result

    waiting = {cluster.pid for cluster in clusters}
    deadline = time.monotonic() + timeout
    while waiting:
        if time.monotonic() > deadline:
            raise RuntimeError(f"a qcluster did not start in {timeout:.0f} s; see the qcluster logs in {logs}")
        pid = result(async_task("os.getpid"), wait=10_000)
        waiting -= {cluster.pid for cluster in clusters if pid in descendants(cluster.pid)}


def _chunks_calculated_by_tasks(since: datetime) -> int:
    """Chunks that queued chunk tasks calculated (each task returns its count) since a time."""
    from django_q.models import Task

    results = Task.objects.filter(func=CHUNK_TASK, started__gte=since).values_list("result", flat=True)
    return sum(result or 0 for result in results)
