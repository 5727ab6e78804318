"""One full refresh of everything in a fresh process, for its wall time and peak memory.

Run as ``python -m bench.full_refresh``; the history window and the chunk tasks it queues for
other workers come from the environment (REFRESH_HISTORY_YEARS, REFRESH_CHUNK_TASKS). Prints JSON.
"""

import json
import time
from importlib import import_module

import django

from bench.processes import peak_rss_mb


def main():
    django.setup()
    from django.conf import settings
    from django.utils import timezone

    from market_data.calendar import trading_calendar
    from refresh.models import RunSource
    from refresh.services.execution import execute_run_in_process
    from refresh.services.requests import request_refresh

    # A worker builds the exchange calendar and imports the run's code (refresh.steps, numpy and the
    # analytics: about 0.1 s) once, on its first run, not on every refresh (together about half a
    # second); this fresh process would otherwise time them (as bench.provider_concurrency).
    trading_calendar(when=timezone.now())
    import_module("refresh.steps.flow")
    before = peak_rss_mb()
    run, _ = request_refresh(kind="all", mode="full", requested_by=None, source=RunSource.COMMAND, enqueue=False)
    began = time.perf_counter()
    run = execute_run_in_process(run=run)
    seconds = time.perf_counter() - began
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak_rss_mb(),
                "rss_before_mb": before,
                "status": run.status,
                "chunk_tasks": settings.REFRESH_CHUNK_TASKS,
                "history_years": settings.REFRESH_HISTORY_YEARS,
                "provider_calls": run.provider_calls,
                "items_updated": run.items_updated,
                "errors": run.errors[:5],
                "refresh_id": run.refresh_id,
                "steps": {step.name: step.duration_ms for step in run.steps.order_by("position")},
            }
        )
    )


if __name__ == "__main__":
    main()
