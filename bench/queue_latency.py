"""Queue latency: from a refresh request to its run starting on a worker, for one broker.

Run as ``python -m bench.queue_latency --runs N`` with Q_BROKER (and REDIS_URL) already in the
environment: the process requests small prices refreshes one after another while a real
qcluster (started here, with the same environment) picks them up, and prints JSON.
"""

import argparse
import json
import time
from pathlib import Path

import django

from bench.processes import start_qcluster, stop


def wait_for_run(run, *, started: bool, timeout: float, poll: float | None = None):
    """Poll until the run has started (or finished); raise if it takes longer than timeout.
    A long run is better polled slowly (`poll` seconds), not to take CPU from it."""
    deadline = time.monotonic() + timeout
    while True:
        run.refresh_from_db()
        if run.started_at if started else run.is_finished:
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run.refresh_id} still {run.status} after {timeout}s")
        time.sleep(poll or (0.005 if started else 0.02))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()
    django.setup()
    from django.conf import settings
    from django.utils import timezone
    from django_q.brokers import get_broker

    from market_data.selectors import active_symbols
    from refresh.models import ACTIVE_STATUSES, RefreshRun, RunSource, RunStatus
    from refresh.services.requests import request_refresh

    # Runs the load test left queued would be picked up first: cancel them and empty the queue.
    RefreshRun.objects.filter(status__in=ACTIVE_STATUSES).update(status=RunStatus.CANCELLED, finished_at=timezone.now())
    get_broker().purge_queue()
    symbols = active_symbols()
    worker = start_qcluster(args.log)
    latencies = []
    try:
        for i in range(args.runs + 1):  # the first one only waits for the cluster to be up
            run, _ = request_refresh(
                kind="prices", requested_by=None, source=RunSource.COMMAND, symbols=[symbols[i % len(symbols)]]
            )
            run = wait_for_run(run, started=True, timeout=120 if i == 0 else 30)
            if i:
                latencies.append((run.started_at - run.created_at).total_seconds())
            wait_for_run(run, started=False, timeout=60)
    finally:
        stop(worker)
    print(
        json.dumps(
            {
                "broker": "redis" if "redis" in settings.Q_CLUSTER else "orm",
                "runs": len(latencies),
                "latencies_s": latencies,
            }
        )
    )


if __name__ == "__main__":
    main()
