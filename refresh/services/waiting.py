"""Waiting for a run inside a request, bounded so that waiting requests cannot starve the web server.

A wait holds a web thread. Each requester may hold ``REFRESH_MAX_CONCURRENT_WAITS`` of them at
once, counted in the store the rate limits use (shared by every web process), and each web
process lends at most ``REFRESH_MAX_WAITS_PER_PROCESS`` threads to waiting; a request past
either bound answers at once with the run's status, as it would with no ``wait``.
"""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from django.conf import settings

from refresh.models import RefreshRun
from refresh.selectors import wait_for_run
from refresh.services.rate_limits import counter_cache

logger = logging.getLogger("refresh.waiting")
_process_slots = threading.BoundedSemaphore(max(settings.REFRESH_MAX_WAITS_PER_PROCESS, 1))


@contextmanager
def _requester_slot(requester_id: int) -> Iterator[bool]:
    """Whether this requester may wait now; the slot is given back on exit (or lapses with its key)."""
    cache = counter_cache()
    key = f"refresh:waiting:{requester_id}"
    held = 1
    if not cache.add(key, 1, timeout=settings.REFRESH_MAX_WAIT_SECONDS + 60):
        try:
            held = cache.incr(key)
        except ValueError:  # the key lapsed between the two calls
            cache.add(key, 1, timeout=settings.REFRESH_MAX_WAIT_SECONDS + 60)
    try:
        yield held <= settings.REFRESH_MAX_CONCURRENT_WAITS
    finally:
        with suppress(ValueError):
            cache.decr(key)


def wait_for_run_within_bounds(*, run: RefreshRun, requester_id: int, seconds: float) -> RefreshRun:
    """The run once finished, or after ``seconds`` (at most REFRESH_MAX_WAIT_SECONDS), or at once
    when the requester or this process already holds as many waits as allowed."""
    seconds = min(seconds, settings.REFRESH_MAX_WAIT_SECONDS)
    if seconds <= 0 or settings.REFRESH_MAX_WAITS_PER_PROCESS <= 0 or not _process_slots.acquire(blocking=False):
        return run
    try:
        with _requester_slot(requester_id) as granted:
            if not granted:
                logger.info(
                    "wait for %s not granted: the requester already holds %s",
                    run.refresh_id,
                    settings.REFRESH_MAX_CONCURRENT_WAITS,
                    extra={"event": "wait_refused", "refresh_id": run.refresh_id, "user_id": requester_id},
                )
                return run
            return wait_for_run(run=run, timeout=seconds)
    finally:
        _process_slots.release()
