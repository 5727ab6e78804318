"""GET /metrics/prometheus/: the same figures as counters and histograms, closed to the public by default."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from .test_monitoring import make_run

URL = "/api/v1/manual/refresh/metrics/prometheus/"


def samples(response) -> dict:
    text = response.content.decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def runs(demo):
    make_run(duration_ms=800, calls=1, credits=8, cache_impact={"invalidated": 3, "warmed": 1})
    make_run(duration_ms=4000, calls=2, credits=16, cache_impact={"invalidated": ["k1", "k2"]})
    make_run(status="failed", duration_ms=45_000, source="schedule", age=timedelta(days=30))
    make_run(status="queued")
    make_run(kind="benchmark", status="cancelled")


def test_counters_and_histograms_match_the_runs(runs, admin_api):
    response = admin_api.get(URL)

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/plain")
    got = samples(response)
    prices = (("kind", "prices"),)
    assert got[("refresh_runs_finished_total", (("kind", "prices"), ("source", "api"), ("status", "success")))] == 2
    assert got[("refresh_runs_finished_total", (("kind", "prices"), ("source", "schedule"), ("status", "failed")))] == 1
    assert (
        got[("refresh_runs_finished_total", (("kind", "benchmark"), ("source", "api"), ("status", "cancelled")))] == 1
    )
    assert got[("refresh_runs_active", (("kind", "prices"), ("status", "queued")))] == 1
    assert got[("refresh_provider_calls_total", prices)] == 3
    assert got[("refresh_provider_credits_total", prices)] == 24
    assert got[("refresh_run_duration_seconds_bucket", (("kind", "prices"), ("le", "1.0")))] == 1
    assert got[("refresh_run_duration_seconds_bucket", (("kind", "prices"), ("le", "5.0")))] == 2
    assert got[("refresh_run_duration_seconds_bucket", (("kind", "prices"), ("le", "30.0")))] == 2
    assert got[("refresh_run_duration_seconds_bucket", (("kind", "prices"), ("le", "60.0")))] == 3
    assert got[("refresh_run_duration_seconds_bucket", (("kind", "prices"), ("le", "+Inf")))] == 3
    assert got[("refresh_run_duration_seconds_count", prices)] == 3
    assert got[("refresh_run_duration_seconds_sum", prices)] == pytest.approx(49.8)
    assert got[("refresh_cache_keys_total", (("action", "invalidated"), ("kind", "prices")))] == 5
    assert got[("refresh_cache_keys_total", (("action", "warmed"), ("kind", "prices")))] == 1


def test_closed_to_anonymous_and_users_by_default(runs, alice_api):
    anonymous = APIClient().get(URL)
    assert anonymous.status_code == HTTPStatus.UNAUTHORIZED
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    assert alice_api.get(URL).status_code == HTTPStatus.FORBIDDEN


def test_scraper_token_opens_it(runs, settings):
    settings.PROMETHEUS_METRICS_TOKEN = "scrape-token-0123456789"
    client = APIClient()
    assert client.get(URL, headers={"Authorization": "Bearer scrape-token-0123456789"}).status_code == 200
    wrong = client.get(URL, headers={"Authorization": "Bearer guessed"})
    assert wrong.status_code == HTTPStatus.UNAUTHORIZED
    assert b"refresh_runs" not in wrong.content


def test_no_token_configured_means_no_bearer_access(runs):
    response = APIClient().get(URL, headers={"Authorization": "Bearer "})
    assert response.status_code == HTTPStatus.UNAUTHORIZED


def test_public_only_when_configured(runs, settings):
    settings.PROMETHEUS_METRICS_PUBLIC = True
    assert APIClient().get(URL).status_code == HTTPStatus.OK
