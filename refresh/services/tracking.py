"""Recording a run's steps, progress and estimated completion, and stopping it between batches."""
import statistics
import time
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import F
from django.utils import timezone

from refresh.errors import RunStopped
from refresh.models import RefreshRun, RefreshStep, RunStatus, StepStatus
from refresh.services.scopes import LeaseKeeper, renew_lease

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


def _estimate_key(kind: str, mode: str) -> str:
    return f"refresh-eta:{kind}:{mode}"


def estimate_duration_seconds(*, kind: str, mode: str) -> float:
    """Median duration of recent finished runs of the same kind and mode, else the setting.

    Cached until the next run of that kind and mode finishes: every request needs it.
    """
    cached = cache.get(_estimate_key(kind, mode))
    if cached is not None:
        return cached
    recent = list(
        RefreshRun.objects.filter(kind=kind, mode=mode, status__in=[RunStatus.SUCCESS, RunStatus.PARTIAL],
                                  duration_ms__isnull=False)
        .order_by("-finished_at").values_list("duration_ms", flat=True)[:10]
    )
    estimate = statistics.median(recent) / 1000 if recent else float(
        settings.REFRESH_DEFAULT_DURATION_SECONDS.get(kind, 30))
    cache.set(_estimate_key(kind, mode), estimate, timeout=60)  # per process without Redis: keep it short
    return estimate


def current_eta(run: RefreshRun):
    """The run's estimated completion, moved on when waiting has made the stored one pass."""
    now = timezone.now()
    if run.estimated_completion and run.estimated_completion > now:
        return run.estimated_completion
    remaining = estimate_duration_seconds(kind=run.kind, mode=run.mode) * (1 - run.progress)
    return now + timedelta(seconds=remaining)


def forget_duration_estimate(*, kind: str, mode: str) -> None:
    cache.delete(_estimate_key(kind, mode))


def record_instant_steps(*, run: RefreshRun, steps: list[tuple[str, str]], first_position: int = 1) -> None:
    """Steps that happened at request time (validation, permission check), in one insert."""
    now = timezone.now()
    RefreshStep.objects.bulk_create([
        RefreshStep(run=run, position=first_position + i, name=name, status=StepStatus.DONE, started_at=now,
                    finished_at=now, duration_ms=0, message=message)
        for i, (name, message) in enumerate(steps)
    ])


def record_instant_step(*, run: RefreshRun, position: int, name: str, message: str = "") -> None:
    record_instant_steps(run=run, steps=[(name, message)], first_position=position)


class RunTracker:
    """Follows one executing run: its steps, counters, progress, lease and stop conditions."""

    def __init__(self, run: RefreshRun, listener=None):
        self.run = run
        self.listener = listener  # called with the run whenever its progress is saved
        self.position = run.steps.count()
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
        self.keeper = None if connection.in_atomic_block else LeaseKeeper(run).start()
        self.wrote_data = False  # set once the run starts saving: a later stop must drop cached figures

    def close(self) -> None:
        """Stop the heartbeat; call once the run has finished."""
        if self.keeper:
            self.keeper.stop()

    # --- steps ----------------------------------------------------------------------
    @contextmanager
    def step(self, name: str, *, checkpoint: bool = True):
        """Record a step; the body may set ``counts`` and ``message`` on the yielded record."""
        if checkpoint:
            self.checkpoint()
        self.position += 1
        record = RefreshStep.objects.create(run=self.run, position=self.position, name=name,
                                            started_at=timezone.now())
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

    def record_finished_step(self, name: str, *, started_at, duration_ms: int, message: str = "") -> None:
        """A step whose work happened before the tracker existed (claiming the scope)."""
        self.position += 1
        RefreshStep.objects.create(run=self.run, position=self.position, name=name, status=StepStatus.DONE,
                                   started_at=started_at, finished_at=timezone.now(), duration_ms=duration_ms,
                                   message=message)
        self.done_weight += STEP_WEIGHTS.get(name, 0.0)

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

    def _save_progress(self, step_name: str, fraction: float, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_save < 0.5:
            return
        self._last_save = now
        progress = min(0.99, self.done_weight + self.current_weight * fraction)
        elapsed = (timezone.now() - self.run.started_at).total_seconds()
        remaining = max(self.estimate - elapsed, self.estimate * (1 - progress), 0.0)
        self.run.progress = round(progress, 4)
        self.run.current_step = step_name
        self.run.estimated_completion = timezone.now() + timedelta(seconds=remaining)
        RefreshRun.objects.filter(pk=self.run.pk).update(
            progress=self.run.progress, current_step=step_name,
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

    # --- stopping -------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Raise RunStopped when the run was cancelled, is past its limit or lost its lease."""
        if time.monotonic() > self.deadline:
            raise RunStopped(RunStatus.TIMEOUT, f"Stopped after its {self.limit}s time limit.")
        if RefreshRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists():
            raise RunStopped(RunStatus.CANCELLED, "Cancelled on request.")
        if self.keeper is not None:
            if self.keeper.lost.is_set():
                raise RunStopped(RunStatus.FAILED, "Lease lost: another worker took over the scope.")
        elif time.monotonic() >= self._next_renewal:
            self._next_renewal = time.monotonic() + settings.REFRESH_LEASE_SECONDS / 3
            if not renew_lease(run=self.run):
                raise RunStopped(RunStatus.FAILED, "Lease lost: another worker took over the scope.")
