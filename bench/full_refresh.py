"""One full refresh of everything in a fresh process, for its wall time and peak memory.

Run as ``python -m bench.full_refresh``; the history window comes from the environment
(REFRESH_HISTORY_YEARS). Prints JSON.
"""
import json
import os
import resource
import threading
import time
from pathlib import Path

import django


def _rss_mb() -> float:
    """This process's peak resident memory so far. Linux's VmHWM, unlike ru_maxrss, does not carry
    over the parent's size from before exec, which would hide a smaller peak."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _pss_mb(pid: int) -> float:
    """A process's proportional set size: its private pages plus its share of pages it shares
    (a forked worker shares most of its parent's), so summing it over processes counts each once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:  # the process ended, or this is not Linux
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    pids = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            pids += [int(child) for child in task.read_text().split()]
        except OSError:
            pass
    return pids


class TreeMemory(threading.Thread):
    """Samples the summed PSS of this process and its worker processes; keeps the peak and
    the most workers seen at once."""

    def __init__(self, interval: float = 0.02):
        super().__init__(daemon=True)
        self.interval, self.peak_mb, self.workers = interval, 0.0, 0
        self.done = threading.Event()

    def run(self):
        me = os.getpid()
        while not self.done.wait(self.interval):
            children = _children(me)
            if children:  # alone, VmHWM already gives this process's exact peak
                self.workers = max(self.workers, len(children))
                self.peak_mb = max(self.peak_mb, _pss_mb(me) + sum(_pss_mb(child) for child in children))


def main():
    django.setup()
    from django.conf import settings

    from refresh.models import RunSource
    from refresh.services.execution import execute_run_in_process
    from refresh.services.requests import request_refresh

    before = _rss_mb()
    run, _ = request_refresh(kind="all", mode="full", requested_by=None, source=RunSource.COMMAND, enqueue=False)
    tree = TreeMemory()
    tree.start()
    began = time.perf_counter()
    run = execute_run_in_process(run=run)
    seconds = time.perf_counter() - began
    tree.done.set()
    tree.join()
    print(json.dumps({
        "seconds": seconds, "peak_rss_mb": max(_rss_mb(), tree.peak_mb), "process_peak_rss_mb": _rss_mb(),
        "workers_peak_pss_mb": tree.peak_mb, "worker_processes": tree.workers,
        "rss_before_mb": before, "status": run.status,
        "history_years": settings.REFRESH_HISTORY_YEARS, "provider_calls": run.provider_calls,
        "items_updated": run.items_updated, "errors": run.errors[:5], "refresh_id": run.refresh_id,
        "steps": {step.name: step.duration_ms for step in run.steps.order_by("position")},
    }))


if __name__ == "__main__":
    main()
