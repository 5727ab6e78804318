"""Reads behind the admin dashboard: run outcomes, durations, provider credits, price freshness."""

from datetime import date, datetime, timedelta
from typing import TypedDict

from django.conf import settings
from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django_q.models import Failure

from market_data.models import Asset, Quote
from refresh.models import ACTIVE_STATUSES, COMPLETED_STATUSES, RefreshKind, RefreshRun, RunStatus
from refresh.monitoring import OUTCOME_STATUSES, nearest_rank

# Durations describe completed work: a failure or a cancel stops early and would flatter the figures.


class _FreshnessBucket(TypedDict):
    label: str
    limit: int | None  # the largest age in seconds it holds; None: any older one
    count: int


def _days(*, days: int, now: datetime) -> list[date]:
    today = timezone.localdate(now)
    return [today - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def _window(*, days: int, now: datetime):
    start = timezone.make_aware(datetime.combine(_days(days=days, now=now)[0], datetime.min.time()))
    return RefreshRun.objects.filter(created_at__gte=start, created_at__lte=now)


def runs_per_day_by_status(*, days: int = 14, now: datetime | None = None) -> dict:
    """Runs created on each of the last ``days`` days, counted by status (zero-filled)."""
    now = now or timezone.now()
    day_list = _days(days=days, now=now)
    rows = (
        _window(days=days, now=now)
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values("day", "status")
        .annotate(n=Count("id"))
    )
    counts = {(row["day"], row["status"]): row["n"] for row in rows}
    present = {status for _, status in counts}
    series = {
        status: [counts.get((day, status), 0) for day in day_list] for status in RunStatus.values if status in present
    }
    return {"days": [day.isoformat() for day in day_list], "series": series}


def success_rate(*, days: int = 14, now: datetime | None = None) -> dict:
    """Share of runs that ran to an outcome and succeeded, overall and per day (None on a day without any)."""
    per_day = runs_per_day_by_status(days=days, now=now)
    zeros = [0] * len(per_day["days"])
    successes = per_day["series"].get(RunStatus.SUCCESS, zeros)
    outcomes = [
        sum(counts) for counts in zip(*(per_day["series"].get(s, zeros) for s in OUTCOME_STATUSES), strict=True)
    ]
    total, succeeded = sum(outcomes), sum(successes)
    return {
        "days": per_day["days"],
        "daily": [round(s / n, 4) if n else None for s, n in zip(successes, outcomes, strict=True)],
        "finished": total,
        "succeeded": succeeded,
        "rate": round(succeeded / total, 4) if total else None,
    }


def duration_percentiles_by_kind(*, days: int = 14, now: datetime | None = None) -> list[dict]:
    """p50 and p95 duration (ms) of each kind's completed runs in the window; kinds without any are left out."""
    now = now or timezone.now()
    rows = (
        _window(days=days, now=now)
        .filter(status__in=COMPLETED_STATUSES, duration_ms__isnull=False)
        .values_list("kind", "duration_ms")
    )
    by_kind: dict[str, list[int]] = {}
    for kind, duration in rows:
        by_kind.setdefault(kind, []).append(duration)
    result = []
    for kind in RefreshKind.values:
        durations = by_kind.get(kind)
        if durations:
            durations.sort()  # nearest rank, as the metrics endpoint reports them
            result.append(
                {
                    "kind": kind,
                    "runs": len(durations),
                    "p50_ms": nearest_rank(durations, 0.5),
                    "p95_ms": nearest_rank(durations, 0.95),
                }
            )
    return result


def provider_use_per_day(*, days: int = 14, now: datetime | None = None) -> dict:
    """Provider credits and calls spent by the runs created on each day (zero-filled)."""
    now = now or timezone.now()
    day_list = _days(days=days, now=now)
    rows = (
        _window(days=days, now=now)
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values("day")
        .annotate(credits=Sum("credits_used"), calls=Sum("provider_calls"))
    )
    by_day = {row["day"]: row for row in rows}
    empty = {"credits": 0, "calls": 0}
    return {
        "days": [day.isoformat() for day in day_list],
        "credits": [by_day.get(day, empty)["credits"] or 0 for day in day_list],
        "calls": [by_day.get(day, empty)["calls"] or 0 for day in day_list],
    }


def price_freshness(*, now: datetime | None = None) -> dict:
    """How long ago each active asset's latest quote was fetched, in buckets, with the stalest ones."""
    now = now or timezone.now()
    fresh = settings.REFRESH_QUOTE_FRESHNESS_SECONDS
    limits = [(f"≤ {fresh // 60} min", fresh), ("≤ 1 hour", 3600), ("≤ 1 day", 86400), ("older", None)]
    active = Asset.objects.filter(is_active=True)
    quotes = list(
        Quote.objects.filter(asset__in=active).order_by("fetched_at").values_list("asset__symbol", "fetched_at")
    )
    ages = [(symbol, max((now - fetched).total_seconds(), 0.0)) for symbol, fetched in quotes]
    fetched_at = dict(quotes)
    buckets: list[_FreshnessBucket] = []
    for label, limit in limits:
        lower = buckets[-1]["limit"] if buckets else None
        buckets.append(
            {
                "label": label,
                "limit": limit,
                "count": sum(
                    1 for _, age in ages if (lower is None or age > lower) and (limit is None or age <= limit)
                ),
            }
        )
    return {
        "assets": active.count(),
        "never_fetched": active.count() - len(quotes),
        "buckets": [{"label": b["label"], "count": b["count"]} for b in buckets],
        "stalest": [
            {"symbol": symbol, "age_seconds": int(age), "fetched_at": fetched_at[symbol]} for symbol, age in ages[:5]
        ],
        "newest_age_seconds": int(ages[-1][1]) if ages else None,
    }


def dashboard_data(*, days: int = 14, now: datetime | None = None) -> dict:
    """Everything the dashboard shows, as plain JSON-ready data."""
    now = now or timezone.now()
    return {
        "days": days,
        "generated_at": now.isoformat(),
        "runs_per_day": runs_per_day_by_status(days=days, now=now),
        "success_rate": success_rate(days=days, now=now),
        "durations": duration_percentiles_by_kind(days=days, now=now),
        "provider_use": provider_use_per_day(days=days, now=now),
        "freshness": price_freshness(now=now),
        "active_runs": active_run_count(),
        "failed_schedules": failed_scheduled_tasks(days=days, now=now),
    }


def failed_scheduled_tasks(*, days: int = 14, now: datetime | None = None, limit: int = 10) -> list[dict]:
    """The latest failures of tasks started by a schedule (django-q2 groups them under its name)."""
    now = now or timezone.now()
    failures = (
        Failure.objects.filter(group__isnull=False, stopped__gte=now - timedelta(days=days))
        .exclude(group="")
        .order_by("-stopped")[:limit]
    )
    return [
        {
            "schedule": failure.group,
            "func": failure.func,
            "failed_at": failure.stopped.isoformat(),
            "error": str(failure.result)[:300],
        }
        for failure in failures
    ]


def active_run_count() -> int:
    """Runs queued or in progress right now."""
    return RefreshRun.objects.filter(status__in=ACTIVE_STATUSES).count()
