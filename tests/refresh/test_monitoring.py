"""GET /metrics/: figures of runs created with known outcomes, durations and provider use."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from refresh.models import RefreshRun

URL = "/api/v1/manual/refresh/metrics/"


def make_run(
    *,
    kind="prices",
    status="success",
    duration_ms=None,
    source="api",
    age=timedelta(hours=1),
    calls=0,
    credits=0,
    cache_impact=None,
):
    run = RefreshRun.objects.create(
        kind=kind,
        status=status,
        duration_ms=duration_ms,
        source=source,
        requested_role="admin",
        scope=kind,
        dedup_key=f"{kind}:{RefreshRun.objects.count()}",
        provider_calls=calls,
        credits_used=credits,
        cache_impact=cache_impact or {},
    )
    RefreshRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - age)
    return run


@pytest.fixture
def runs(demo):
    # prices: three successes, one partial, one failure, one timeout, one cancelled, one queued.
    for ms, calls in [(1000, 1), (2000, 1), (3000, 2)]:
        make_run(duration_ms=ms, calls=calls, credits=calls * 8, cache_impact={"invalidated": 4, "warmed": 2})
    make_run(status="partial", duration_ms=4000, calls=1, credits=8, cache_impact={"invalidated": ["a", "b"]})
    make_run(status="failed", duration_ms=500, source="schedule")
    make_run(status="timeout", duration_ms=600_000, source="schedule", calls=5, credits=40)
    make_run(status="cancelled", duration_ms=None)
    make_run(status="queued")
    # all: one success; benchmark: one success two days ago (outside 24h, inside 7d).
    make_run(kind="all", duration_ms=30_000, calls=2, credits=22, source="webhook")
    make_run(kind="benchmark", duration_ms=1500, age=timedelta(days=2))


def test_figures_per_kind_and_overall(runs, admin_api):
    response = admin_api.get(URL, {"window": "24h"})

    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert body["window"] == "24h"
    assert body["window_hours"] == 24
    prices = body["by_kind"]["prices"]
    assert prices["runs"] == 8
    assert prices["runs_per_hour"] == round(8 / 24, 3)
    assert (prices["manual"], prices["scheduled"]) == (6, 2)
    assert prices["statuses"] == {"queued": 1, "success": 3, "partial": 1, "failed": 1, "cancelled": 1, "timeout": 1}
    assert prices["active"] == 1
    assert prices["success_rate"] == 0.5  # 3 successes of 6 outcomes; cancelled and queued do not count
    # Outcome durations sorted: 500, 1000, 2000, 3000, 4000, 600000 (nearest rank).
    assert prices["duration_ms"] == {"p50": 2000, "p95": 600_000, "max": 600_000, "count": 6}
    assert (prices["provider_calls"], prices["credits_used"]) == (10, 80)
    assert prices["cache_impact"] == {"invalidated": 14, "warmed": 6}
    assert '"cache_impact":{"invalidated":14,"warmed":6}' in response.content.decode()  # counts, not 14.0

    overall = body["overall"]
    assert overall["runs"] == 9
    assert overall["success_rate"] == round(4 / 7, 4)
    assert overall["duration_ms"] == {"p50": 3000, "p95": 600_000, "max": 600_000, "count": 7}
    assert (overall["provider_calls"], overall["credits_used"]) == (12, 102)
    assert body["by_kind"]["all"]["duration_ms"]["p50"] == 30_000
    assert body["by_kind"]["benchmark"] == {
        "runs": 0,
        "runs_per_hour": 0.0,
        "manual": 0,
        "scheduled": 0,
        "statuses": {},
        "active": 0,
        "success_rate": None,
        "duration_ms": {"p50": None, "p95": None, "max": None, "count": 0},
        "provider_calls": 0,
        "credits_used": 0,
        "cache_impact": {},
    }
    assert set(body["by_kind"]) == {"all", "prices", "portfolio", "strategy", "benchmark"}


def test_window_decides_which_runs_count(runs, admin_api):
    week = admin_api.get(URL, {"window": "7d"}).json()
    assert week["overall"]["runs"] == 10
    assert week["by_kind"]["benchmark"]["duration_ms"]["max"] == 1500
    assert week["window_hours"] == 168
    make_run(age=timedelta(minutes=10), duration_ms=100)
    last_hour = admin_api.get(URL, {"window": "1h"}).json()["overall"]
    assert last_hour["runs"] == 1
    assert last_hour["duration_ms"]["max"] == 100


def test_default_window_is_24h(runs, admin_api):
    body = admin_api.get(URL).json()
    assert body["window"] == "24h"
    assert body["overall"]["runs"] == 9


@pytest.mark.parametrize("window", ["abc", "24", "0h", "1w", "-1h", "91d", "24h; drop"])
def test_bad_window_is_400(demo, admin_api, window):
    response = admin_api.get(URL, {"window": window})
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"]["code"] == "invalid_window"


def test_support_may_read_the_metrics(demo, django_user_model):
    user = django_user_model.objects.create_user("sam", password="x")
    user.groups.add(Group.objects.get_or_create(name="support")[0])
    client = APIClient()
    client.force_authenticate(user)
    assert client.get(URL).status_code == HTTPStatus.OK


def test_users_and_anonymous_may_not(demo, alice_api):
    assert alice_api.get(URL).status_code == HTTPStatus.FORBIDDEN
    assert alice_api.get(URL).json()["error"]["code"] == "forbidden"
    assert APIClient().get(URL).status_code == HTTPStatus.UNAUTHORIZED
