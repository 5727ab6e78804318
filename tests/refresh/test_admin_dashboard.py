"""The admin dashboard page: who may see it, and that it carries the data its charts draw."""

import json
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from refresh.models import RefreshRun, RunSource, RunStatus

DASHBOARD = "admin:refresh_refreshrun_dashboard"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _chart_data(html: str) -> dict:
    start = html.index('<script id="dashboard-data" type="application/json">') + len(
        '<script id="dashboard-data" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def test_dashboard_shows_charts_of_real_runs_from_vendored_files(admin):
    RefreshRun.objects.create(
        kind="all",
        mode="full",
        status=RunStatus.SUCCESS,
        requested_role="admin",
        source=RunSource.ADMIN,
        scope="all",
        dedup_key="a",
        duration_ms=3000,
        credits_used=12,
        provider_calls=3,
    )
    RefreshRun.objects.create(
        kind="prices",
        mode="incremental",
        status=RunStatus.FAILED,
        requested_role="admin",
        source=RunSource.API,
        scope="prices",
        dedup_key="b",
        duration_ms=100,
    )

    response = _client(admin).get(reverse(DASHBOARD))

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    data = _chart_data(html)
    assert data["success_rate"]["rate"] == 0.5
    assert data["durations"] == [{"kind": "all", "runs": 1, "p50_ms": 3000, "p95_ms": 3000}]
    assert data["provider_use"]["credits"][-1] == 12
    assert data["runs_per_day"]["series"]["failed"][-1] == 1
    assert data["freshness"]["assets"] == 11  # the demo's ten assets and the benchmark
    for chart in ("runs-per-day", "success-rate", "durations", "credits", "freshness"):
        assert f'<canvas id="chart-{chart}">' in html
    assert "/static/core/vendor/chartjs/chart.umd.min.js" in html
    assert "50%" in html  # the success-rate tile
    assert "cdn" not in html.lower()
    assert 'src="http' not in html


def test_the_runs_list_links_to_the_dashboard(admin):
    html = _client(admin).get(reverse("admin:refresh_refreshrun_changelist")).content.decode()

    assert f'href="{reverse(DASHBOARD)}"' in html


@pytest.mark.django_db
def test_dashboard_needs_permission_to_view_runs():
    staff = get_user_model().objects.create_user(username="staff", password="pw", is_staff=True)

    assert _client(staff).get(reverse(DASHBOARD)).status_code == HTTPStatus.FORBIDDEN
    anonymous = Client().get(reverse(DASHBOARD))
    assert anonymous.status_code == HTTPStatus.FOUND
    assert anonymous["Location"].startswith(reverse("admin:login"))
