"""One full refresh of everything in a fresh process, for its wall time and peak memory.

Run as ``python -m bench.full_refresh``; the history window comes from the environment
(REFRESH_HISTORY_YEARS). Prints JSON.
"""
import json
import resource
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


def main():
    django.setup()
    from django.conf import settings

    from refresh.models import RunSource
    from refresh.services.execution import execute_run_in_process
    from refresh.services.requests import request_refresh

    before = _rss_mb()
    run, _ = request_refresh(kind="all", mode="full", requested_by=None, source=RunSource.COMMAND, enqueue=False)
    began = time.perf_counter()
    run = execute_run_in_process(run=run)
    seconds = time.perf_counter() - began
    print(json.dumps({
        "seconds": seconds, "peak_rss_mb": _rss_mb(), "rss_before_mb": before, "status": run.status,
        "history_years": settings.REFRESH_HISTORY_YEARS, "provider_calls": run.provider_calls,
        "items_updated": run.items_updated, "errors": run.errors[:5], "refresh_id": run.refresh_id,
        "steps": {step.name: step.duration_ms for step in run.steps.order_by("position")},
    }))


if __name__ == "__main__":
    main()
