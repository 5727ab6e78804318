"""Refresh figures for operators: per kind and overall, over a recent window or since the start.

Every figure is read from the runs table, so any process (web, worker) gives the same
answer and nothing is lost when a process restarts.
"""

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from refresh.errors import InvalidRefreshRequest
from refresh.models import ACTIVE_STATUSES, COMPLETED_STATUSES, RefreshKind, RefreshRun, RunSource, RunStatus

_WINDOW = re.compile(r"^([1-9][0-9]{0,3})([hd])$")
DEFAULT_WINDOW = "24h"
MAX_WINDOW = timedelta(days=90)
# Runs that ran to an outcome; cancelled and skipped runs say nothing about success.
OUTCOME_STATUSES = (*COMPLETED_STATUSES, RunStatus.FAILED, RunStatus.TIMEOUT)
# Upper bounds of the duration histogram, in seconds.
DURATION_BUCKETS = (1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800)


def parse_window(value: str) -> timedelta:
    """Parse "1h", "24h", "7d": hours or days, up to 90 days."""
    match = _WINDOW.match(value)
    window = None
    if match:
        amount = int(match[1])
        window = timedelta(hours=amount) if match[2] == "h" else timedelta(days=amount)
    if window is None or window > MAX_WINDOW:
        raise InvalidRefreshRequest(
            "Unknown window: use hours or days such as 1h, 24h or 7d, at most 90d.", code="invalid_window"
        )
    return window


def nearest_rank(sorted_values: list[int], fraction: float) -> int | None:
    """The smallest value with at least ``fraction`` of the values at or below it."""
    if not sorted_values:
        return None
    return sorted_values[max(math.ceil(fraction * len(sorted_values)), 1) - 1]


def add_cache_impact(total: Counter[str], impact: object) -> None:
    """Counts add up; lists (of keys) count their length; anything else is ignored."""
    if not isinstance(impact, dict):
        return
    for name, value in impact.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            total[name] += value
        elif isinstance(value, list | tuple):
            total[name] += len(value)


def _figures(rows: Sequence[Mapping[str, Any]], hours: float) -> dict[str, Any]:
    statuses = Counter(r["status"] for r in rows)
    outcomes = sum(statuses[s] for s in OUTCOME_STATUSES)
    durations = sorted(
        r["duration_ms"] for r in rows if r["status"] in OUTCOME_STATUSES and r["duration_ms"] is not None
    )
    cache: Counter[str] = Counter()
    for r in rows:
        add_cache_impact(cache, r["cache_impact"])
    sources = Counter(r["source"] for r in rows)
    return {
        "runs": len(rows),
        "runs_per_hour": round(len(rows) / hours, 3),
        "manual": sum(n for s, n in sources.items() if s != RunSource.SCHEDULE),
        "scheduled": sources[RunSource.SCHEDULE],
        "statuses": {s: statuses[s] for s in RunStatus.values if statuses[s]},
        "active": sum(statuses[s] for s in ACTIVE_STATUSES),
        "success_rate": round(statuses[RunStatus.SUCCESS] / outcomes, 4) if outcomes else None,
        "duration_ms": {
            "p50": nearest_rank(durations, 0.5),
            "p95": nearest_rank(durations, 0.95),
            "max": durations[-1] if durations else None,
            "count": len(durations),
        },
        "provider_calls": sum(r["provider_calls"] for r in rows),
        "credits_used": sum(r["credits_used"] for r in rows),
        "cache_impact": dict(sorted(cache.items())),
    }


def refresh_metrics(*, window: timedelta, now: datetime | None = None) -> dict[str, Any]:
    """Figures of the runs requested in the window, overall and per kind (every kind listed)."""
    until = now or timezone.now()
    since = until - window
    rows = list(
        RefreshRun.objects.filter(created_at__gt=since, created_at__lte=until).values(
            "kind", "status", "source", "duration_ms", "provider_calls", "credits_used", "cache_impact"
        )
    )
    by_kind: defaultdict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    hours = window.total_seconds() / 3600
    return {
        "since": since,
        "until": until,
        "window_hours": hours,
        "overall": _figures(rows, hours),
        "by_kind": {kind: _figures(by_kind[kind], hours) for kind in RefreshKind.values},
    }


def lifetime_totals() -> list[dict[str, Any]]:
    """Per kind, source and status since the first run: counts, provider use and the duration histogram."""
    outcome = Q(status__in=OUTCOME_STATUSES, duration_ms__isnull=False)
    buckets = {
        f"le_{i}": Count("id", filter=outcome & Q(duration_ms__lte=int(b * 1000)))
        for i, b in enumerate(DURATION_BUCKETS)
    }
    return [
        dict(row)
        for row in RefreshRun.objects.values("kind", "source", "status")
        .annotate(
            runs=Count("id"),
            provider_calls=Sum("provider_calls"),
            credits_used=Sum("credits_used"),
            timed=Count("id", filter=outcome),
            duration_ms_sum=Sum("duration_ms", filter=outcome),
            **buckets,
        )
        .order_by("kind", "source", "status")
    ]


def lifetime_cache_impact() -> dict[str, Counter[str]]:
    """Per kind, the cache keys each action (invalidated, warmed...) touched since the first run."""
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for kind, impact in RefreshRun.objects.exclude(cache_impact={}).values_list("kind", "cache_impact").iterator():
        add_cache_impact(totals[kind], impact)
    return totals
