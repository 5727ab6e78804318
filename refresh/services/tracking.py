"""Recording a run's steps, progress and estimated completion, and stopping it between batches."""

import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import F
from django.utils import timezone

from refresh.errors import RunPreempted, RunStopped
from refresh.models import COMPLETED_STATUSES, RefreshRun, RefreshStep, RunStatus, StepStatus
from refresh.services import preemption
from refresh.services.scopes import keep_lease, renew_lease
from refresh.services.symbol_outcomes import SymbolOutcomes

# Share of the whole run each step stands for; progress moves by these weights.
STEP_WEIGHTS = {
    "Acquiring lock": 0.02,
    "Fetching data": 0.38,
    "Updating database": 0.2,
    "Recalculating metrics": 0.3,
    "Invalidating cache": 0.05,
    "Reporting status": 0.05,
}
_PRE_RUN_WEIGHT = 1.0 - sum(STEP_WEIGHTS.values())  # validation and permissions, done at request time
# Done at request time, before the run was recorded, so every run that exists passed both.
# They take the first positions of its timeline, written by the worker that starts it in
# the same insert as its own first step: a request writes one row, not three.
REQUEST_STEPS = ("Validating request", "Checking permissions")
# Estimates are read on every request; each process keeps one this long before asking the cache.
_ESTIMATE_MEMO_SECONDS = 5.0
# A run's progress is written at most this often between step changes: batches can be many and small.
_PROGRESS_SAVE_SECONDS = 0.5
_estimate_memo: dict[str, tuple[float, float]] = {}


def _estimate_key(kind: str, mode: str) -> str:
    return f"refresh-eta:{kind}:{mode}"


def estimate_duration_seconds(*, kind: str, mode: str) -> float:
    """Median duration of recent finished runs of the same kind and mode, else the setting.

    Cached until the next run of that kind and mode finishes (another process's memo may
    lag by a few seconds): every request needs it.
    """
    key = _estimate_key(kind, mode)
    memo = _estimate_memo.get(key)
    if memo is not None and memo[0] > time.monotonic():
        return memo[1]
    estimate: float | None = cache.get(key)
    if estimate is None:
        estimate = _median_recent_duration(kind=kind, mode=mode)
        cache.set(key, estimate, timeout=60)  # per process without Redis: keep it short
    _estimate_memo[key] = (time.monotonic() + _ESTIMATE_MEMO_SECONDS, estimate)
    return estimate


def _median_recent_duration(*, kind: str, mode: str) -> float:
    durations = (
        RefreshRun.objects.filter(kind=kind, mode=mode, status__in=COMPLETED_STATUSES, duration_ms__isnull=False)
        .order_by("-finished_at")
        .values_list("duration_ms", flat=True)[:10]
    )
    recent = [duration for duration in durations if duration is not None]
    if recent:
        return statistics.median(recent) / 1000
    return float(settings.REFRESH_DEFAULT_DURATION_SECONDS.get(kind, 30))


def current_eta(run: RefreshRun) -> datetime:
    """The run's estimated completion, moved on when waiting has made the stored one pass."""
    now = timezone.now()
    left = remaining_seconds(kind=run.kind, mode=run.mode, progress=run.progress, eta=run.estimated_completion, now=now)
    return now + timedelta(seconds=left)


def remaining_seconds(*, kind: str, mode: str, progress: float, eta: datetime | None, now: datetime) -> float:
    """Seconds an active run has left: to its stored estimate, or once that has passed, the rest of
    its kind's usual duration by its progress."""
    if eta is not None and eta > now:
        return (eta - now).total_seconds()
    return estimate_duration_seconds(kind=kind, mode=mode) * (1 - progress)


def forget_duration_estimate(*, kind: str, mode: str) -> None:
    _estimate_memo.pop(_estimate_key(kind, mode), None)
    cache.delete(_estimate_key(kind, mode))


def forget_memoised_estimates() -> None:
    """Drop this process's memo of every estimate (the shared cache keeps them): for tests."""
    _estimate_memo.clear()


def _last_position(positions: Iterable[int]) -> int:
    """The last recorded step's position; the request's checks hold the first ones, written or not."""
    return max([*positions, len(REQUEST_STEPS)])


def last_step_position(run: RefreshRun) -> int:
    return _last_position(run.steps.values_list("position", flat=True))


def record_instant_step(*, run: RefreshRun, position: int, name: str, message: str = "") -> None:
    """A step with no duration of its own: a take-over, a skipped schedule."""
    now = timezone.now()
    RefreshStep.objects.create(
        run=run,
        position=position,
        name=name,
        status=StepStatus.DONE,
        started_at=now,
        finished_at=now,
        duration_ms=0,
        message=message,
    )


class RunTracker:
    """Follows one executing run: its steps, counters, progress, lease and stop conditions."""

    def __init__(
        self, run: RefreshRun, listener: Callable[[RefreshRun], object] | None = None, *, holds_worker: bool = True
    ) -> None:
        if run.started_at is None:
            raise ValueError(f"Run {run.refresh_id} has not been claimed: only a started run is tracked.")
        self.run = run
        self.started_at: datetime = run.started_at
        self.listener = listener  # called with the run whenever its progress is saved
        # Only a run executed by a worker can yield it to a starved emergency run (not the command's).
        self.holds_worker = holds_worker
        self._next_emergency_look = 0.0
        positions = set(run.steps.values_list("position", flat=True))  # a take-over may have added one
        self.position = _last_position(positions)
        self._request_steps_written = 1 in positions
        self.done_weight = _PRE_RUN_WEIGHT
        self.current_weight = 0.0
        self.estimate = estimate_duration_seconds(kind=run.kind, mode=run.mode)
        limit = settings.REFRESH_TIME_LIMIT_SECONDS.get(run.kind, 600)
        self.deadline = time.monotonic() + limit
        self.limit = limit
        self._next_renewal = time.monotonic() + settings.REFRESH_LEASE_SECONDS / 3
        self._last_save = 0.0
        # A worker renews from a heartbeat thread; inside an outer transaction (tests, or a
        # caller's atomic block) another connection could not see the lease, so the run
        # renews at its checkpoints instead.
        self.keeper = None if connection.in_atomic_block else keep_lease(run=run)
        self.wrote_data = False  # set once the run starts saving: a later stop must drop cached figures
        self.symbol_outcomes = SymbolOutcomes()  # written when the run ends, however it ends

    def close(self) -> None:
        """Stop the heartbeat; call once the run has finished."""
        if self.keeper:
            self.keeper.stop()

    # --- steps ----------------------------------------------------------------------
    @contextmanager
    def step(self, name: str, *, checkpoint: bool = True) -> Iterator[RefreshStep]:
        """Record a step; the body may set ``counts`` and ``message`` on the yielded record."""
        if checkpoint:
            self.checkpoint()
        self.position += 1
        record = RefreshStep.objects.create(run=self.run, position=self.position, name=name, started_at=timezone.now())
        self.current_weight = STEP_WEIGHTS.get(name, 0.0)
        self._save_progress(name, 0.0, force=True)
        began = time.monotonic()
        try:
            yield record
        except BaseException as exc:
            record.status = StepStatus.FAILED
            record.message = record.message or str(exc)[:1000]
            raise
        else:
            if record.status == StepStatus.RUNNING:
                record.status = StepStatus.DONE
        finally:
            record.finished_at = timezone.now()
            record.duration_ms = int((time.monotonic() - began) * 1000)
            record.save(update_fields=["status", "finished_at", "duration_ms", "counts", "message"])
            self.done_weight += self.current_weight
            self.current_weight = 0.0

    def record_finished_step(self, name: str, *, started_at: datetime, duration_ms: int, message: str = "") -> None:
        """A step whose work happened before the tracker existed (claiming the scope).

        The first one also records the request's checks, at the time the run was recorded.
        """
        steps = [] if self._request_steps_written else self._request_steps()
        self.position += 1
        steps.append(
            RefreshStep(
                run=self.run,
                position=self.position,
                name=name,
                status=StepStatus.DONE,
                started_at=started_at,
                finished_at=timezone.now(),
                duration_ms=duration_ms,
                message=message,
            )
        )
        RefreshStep.objects.bulk_create(steps)
        self._request_steps_written = True
        self.done_weight += STEP_WEIGHTS.get(name, 0.0)

    def _request_steps(self) -> list[RefreshStep]:
        run, messages = self.run, ("", f"role {self.run.requested_role}")
        return [
            RefreshStep(
                run=run,
                position=position,
                name=name,
                status=StepStatus.DONE,
                started_at=run.created_at,
                finished_at=run.created_at,
                duration_ms=0,
                message=message,
            )
            for position, (name, message) in enumerate(zip(REQUEST_STEPS, messages, strict=True), start=1)
        ]

    def skip(self, name: str, reason: str) -> None:
        """Record a step this kind or mode does not need."""
        with self.step(name) as record:
            record.status = StepStatus.SKIPPED
            record.message = reason

    # --- progress -------------------------------------------------------------------
    def progress_within_step(self, done: int, total: int) -> None:
        """Called between batches: move the bar, renew the lease, stop if asked to."""
        self.checkpoint()
        self.report_progress(done, total)

    def report_progress(self, done: int, total: int) -> None:
        """Move the bar without a chance to stop (between writes that belong together)."""
        self._save_progress(self.run.current_step, done / total if total else 1.0)

    def _save_progress(self, step_name: str, fraction: float, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_save < _PROGRESS_SAVE_SECONDS:
            return
        self._last_save = now
        progress = min(0.99, self.done_weight + self.current_weight * fraction)
        elapsed = (timezone.now() - self.started_at).total_seconds()
        remaining = max(self.estimate - elapsed, self.estimate * (1 - progress), 0.0)
        self.run.progress = round(progress, 4)
        self.run.current_step = step_name
        self.run.estimated_completion = timezone.now() + timedelta(seconds=remaining)
        RefreshRun.objects.filter(pk=self.run.pk).update(
            progress=self.run.progress,
            current_step=step_name,
            estimated_completion=self.run.estimated_completion,
        )
        if self.listener:
            self.listener(self.run)

    # --- counters -------------------------------------------------------------------
    def count_items(self, key: str, n: int) -> None:
        self.run.items_updated[key] = self.run.items_updated.get(key, 0) + int(n)

    def count_provider_use(self, *, calls: int, credits: int) -> None:
        """Saved at once, so calls are accounted for even if the run later fails."""
        self.run.provider_calls += calls
        self.run.credits_used += credits
        RefreshRun.objects.filter(pk=self.run.pk).update(
            provider_calls=F("provider_calls") + calls, credits_used=F("credits_used") + credits
        )

    def add_error(self, message: str) -> None:
        self.run.errors.append(message)

    def fail_symbols(self, failures: dict[str, str]) -> None:
        self.run.failed_symbols.update(failures)
        self.symbol_outcomes.fail(failures)

    # --- stopping -------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Raise RunStopped when the run was cancelled, is past its limit or lost its lease, and
        RunPreempted when an emergency run needs its scope or its worker."""
        if time.monotonic() > self.deadline:
            raise RunStopped(RunStatus.TIMEOUT, f"Stopped after its {self.limit}s time limit.")
        # Now and then the same query also asks whether an emergency run is starved of a worker.
        looks = self.holds_worker and time.monotonic() >= self._next_emergency_look
        emergency = [preemption.emergency_waits(self.run)] if looks else []
        cancelled, preempted_by, *emergency_waits = (
            RefreshRun.objects.filter(pk=self.run.pk)
            .values_list("cancel_requested_at", "preempted_by__refresh_id", *emergency)
            .get()
        )
        if cancelled is not None:
            raise RunStopped(RunStatus.CANCELLED, "Cancelled on request.")
        if preempted_by is not None:
            raise RunPreempted(preempted_by)
        if self.keeper is not None:
            if self.keeper.lost.is_set():
                raise RunStopped(RunStatus.FAILED, "Lease lost: another worker took over the scope.")
        elif time.monotonic() >= self._next_renewal:
            self._next_renewal = time.monotonic() + settings.REFRESH_LEASE_SECONDS / 3
            if not renew_lease(run=self.run):
                raise RunStopped(RunStatus.FAILED, "Lease lost: another worker took over the scope.")
        if looks:
            self._next_emergency_look = time.monotonic() + preemption.LOOK_SECONDS
            if any(emergency_waits) and (starved := preemption.yield_worker(self.run)) is not None:
                raise RunPreempted(starved, worker_busy=True)
