"""Dashboard selectors: runs per day, success rate, duration percentiles, provider use, freshness."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from market_data.models import Asset, Quote
from refresh import dashboard
from refresh.models import RefreshRun, RunSource, RunStatus

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
pytestmark = pytest.mark.django_db


def _run(*, days_ago: float, status=RunStatus.SUCCESS, kind="prices", **fields) -> RefreshRun:
    run = RefreshRun.objects.create(
        kind=kind,
        mode="incremental",
        status=status,
        requested_role="admin",
        source=RunSource.API,
        scope=kind,
        dedup_key=f"k{RefreshRun.objects.count()}",
        **fields,
    )
    RefreshRun.objects.filter(pk=run.pk).update(created_at=NOW - timedelta(days=days_ago))
    return run


def test_runs_per_day_counts_each_status_per_day_zero_filled():
    _run(days_ago=1, status=RunStatus.SUCCESS)
    _run(days_ago=1, status=RunStatus.SUCCESS)
    _run(days_ago=1, status=RunStatus.FAILED)
    _run(days_ago=0, status=RunStatus.QUEUED)
    _run(days_ago=20, status=RunStatus.FAILED)  # outside the window

    result = dashboard.runs_per_day_by_status(days=14, now=NOW)

    assert len(result["days"]) == 14
    assert result["days"][-1] == "2026-03-10"
    assert result["days"][0] == "2026-02-25"
    assert set(result["series"]) == {"queued", "success", "failed"}
    assert result["series"]["success"][-2:] == [2, 0]
    assert result["series"]["failed"][-2:] == [1, 0]
    assert result["series"]["queued"][-1] == 1
    assert sum(result["series"]["failed"]) == 1


def test_success_rate_counts_only_runs_with_an_outcome():
    _run(days_ago=2, status=RunStatus.SUCCESS)
    _run(days_ago=2, status=RunStatus.PARTIAL)
    _run(days_ago=1, status=RunStatus.SUCCESS)
    _run(days_ago=1, status=RunStatus.TIMEOUT)
    _run(days_ago=1, status=RunStatus.CANCELLED)
    _run(days_ago=1, status=RunStatus.SKIPPED)
    _run(days_ago=0, status=RunStatus.IN_PROGRESS)

    result = dashboard.success_rate(days=7, now=NOW)

    assert (result["succeeded"], result["finished"], result["rate"]) == (2, 4, 0.5)
    assert result["daily"] == [None, None, None, None, 0.5, 0.5, None]


def test_success_rate_without_runs_is_none():
    assert dashboard.success_rate(days=3, now=NOW)["rate"] is None


def test_duration_percentiles_per_kind_use_completed_runs_only():
    for ms in (1000, 2000, 3000, 4000):
        _run(days_ago=1, kind="all", duration_ms=ms)
    _run(days_ago=1, kind="all", status=RunStatus.FAILED, duration_ms=999_999)
    _run(days_ago=1, kind="prices", status=RunStatus.PARTIAL, duration_ms=700)
    _run(days_ago=30, kind="benchmark", duration_ms=5000)  # outside the window

    result = dashboard.duration_percentiles_by_kind(days=14, now=NOW)

    assert result == [
        # Nearest rank, as /metrics: the 2nd of 4 is the median, the 4th the 95th percentile.
        {"kind": "all", "runs": 4, "p50_ms": 2000, "p95_ms": 4000},
        {"kind": "prices", "runs": 1, "p50_ms": 700, "p95_ms": 700},
    ]


def test_provider_use_sums_credits_and_calls_per_day():
    _run(days_ago=1, credits_used=8, provider_calls=2)
    _run(days_ago=1, credits_used=3, provider_calls=1)
    _run(days_ago=0, credits_used=0, provider_calls=0)

    result = dashboard.provider_use_per_day(days=3, now=NOW)

    assert result == {"days": ["2026-03-08", "2026-03-09", "2026-03-10"], "credits": [0, 11, 0], "calls": [0, 3, 0]}


def test_price_freshness_buckets_active_assets_by_quote_age(settings):
    settings.REFRESH_QUOTE_FRESHNESS_SECONDS = 900
    ages = {"FRESH": 60, "HOUR": 1800, "DAY": 7200, "OLD": 3 * 86400}
    for symbol, seconds in ages.items():
        asset = Asset.objects.create(symbol=symbol)
        when = NOW - timedelta(seconds=seconds)
        Quote.objects.create(asset=asset, price=Decimal("1"), as_of=when, fetched_at=when, source="mock")
    Asset.objects.create(symbol="NEVER")
    gone = Asset.objects.create(symbol="GONE", is_active=False)
    Quote.objects.create(asset=gone, price=Decimal("1"), as_of=NOW, fetched_at=NOW, source="mock")

    result = dashboard.price_freshness(now=NOW)

    assert result["assets"] == 5
    assert result["never_fetched"] == 1
    assert [(b["label"], b["count"]) for b in result["buckets"]] == [
        ("≤ 15 min", 1),
        ("≤ 1 hour", 1),
        ("≤ 1 day", 1),
        ("older", 1),
    ]
    assert [row["symbol"] for row in result["stalest"]] == ["OLD", "DAY", "HOUR", "FRESH"]
    assert result["stalest"][0]["age_seconds"] == 3 * 86400
    assert result["newest_age_seconds"] == 60


def test_dashboard_data_holds_every_panel():
    _run(days_ago=0, status=RunStatus.QUEUED)

    data = dashboard.dashboard_data(days=14, now=NOW)

    assert set(data) >= {"runs_per_day", "success_rate", "durations", "provider_use", "freshness", "active_runs"}
    assert data["active_runs"] == 1
