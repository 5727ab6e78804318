"""How runs look in the admin: status badges, progress bars, durations and the step timeline."""

from datetime import datetime

from django.utils import timezone
from django.utils.html import format_html

from refresh.models import RefreshRun, RunStatus

MS_PER_SECOND = 1000
MS_PER_MINUTE = 60 * MS_PER_SECOND
MINUTES_PER_HOUR = 60


def status_badge(status: str) -> str:
    return format_html('<span class="refresh-badge refresh-badge--{}">{}</span>', status, RunStatus(status).label)


def progress_bar(*, progress: float, status: str) -> str:
    percent = max(0, min(100, round(progress * 100)))
    return format_html(
        '<span class="refresh-progress refresh-progress--{}" role="progressbar" aria-valuenow="{}" '
        'aria-valuemin="0" aria-valuemax="100"><span class="refresh-progress__bar" style="width: {}%"></span>'
        '</span> <span class="refresh-progress__label">{}%</span>',
        status,
        percent,
        percent,
        percent,
    )


def format_duration(ms: float | None) -> str:
    """Milliseconds for a person: 850 ms, 4.2 s, 3 min 5 s, 1 h 2 min."""
    if ms is None:
        return "—"
    if ms < MS_PER_SECOND:
        return f"{int(ms)} ms"
    if ms < MS_PER_MINUTE:
        return f"{ms / MS_PER_SECOND:.1f} s"
    minutes, seconds = divmod(round(ms / MS_PER_SECOND), 60)
    if minutes < MINUTES_PER_HOUR:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, MINUTES_PER_HOUR)
    return f"{hours} h {minutes} min"


def run_duration(run: RefreshRun, *, now: datetime | None = None) -> str:
    """A finished run's duration; a running run's time so far; nothing for a queued one."""
    if run.duration_ms is not None:
        return format_duration(run.duration_ms)
    if run.status == RunStatus.IN_PROGRESS and run.started_at:
        elapsed = ((now or timezone.now()) - run.started_at).total_seconds() * 1000
        return f"{format_duration(elapsed)} so far"
    return "—"


def step_timeline(run: RefreshRun, *, now: datetime | None = None) -> list[dict]:
    """The run's steps with bar offsets and widths (in % of the run's span from request to end)."""
    steps = list(run.steps.order_by("position"))
    if not steps:
        return []
    now = now or timezone.now()
    start = min([run.created_at, *(s.started_at for s in steps)])
    end = max([run.finished_at or now, *(s.finished_at or now for s in steps)])
    span = max((end - start).total_seconds(), 0.001)
    rows = []
    for step in steps:
        finished = step.finished_at or now
        offset = (step.started_at - start).total_seconds() / span * 100
        width = (finished - step.started_at).total_seconds() / span * 100
        rows.append(
            {
                "step": step,
                "duration": format_duration(step.duration_ms) if step.duration_ms is not None else "running",
                "offset": f"{min(offset, 99.5):.2f}",
                "width": f"{max(width, 0.5):.2f}",
                "counts": sorted(step.counts.items()) if isinstance(step.counts, dict) else [],
            }
        )
    return rows
