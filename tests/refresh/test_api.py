"""The refresh HTTP API: triggers, run status, errors, dedup and cancel."""

from http import HTTPStatus

import pytest
from django.test.utils import override_script_prefix
from django.urls import reverse
from rest_framework.test import APIClient

from market_data.models import Quote
from portfolios.models import PortfolioMetrics
from refresh.api.serializers import run_status
from refresh.models import RefreshRun, RunStatus
from refresh.services.execution import execute_run_in_process
from refresh.services.requests import request_refresh
from refresh.services.schedules import trigger_scheduled_refresh

BASE = "/api/v1/manual/refresh"


def test_unauthenticated_request_is_refused_and_creates_nothing(demo):
    response = APIClient().post(f"{BASE}/all", {}, format="json")
    assert response.status_code == HTTPStatus.UNAUTHORIZED
    assert response.json()["error"]["code"] == "not_authenticated"
    assert not RefreshRun.objects.exists()


def test_admin_refresh_all_is_accepted_then_polled_to_success(admin_api, run_tasks):
    response = run_tasks(admin_api.post, f"{BASE}/all", {"mode": "full"}, format="json")
    assert response.status_code == HTTPStatus.ACCEPTED
    body = response.json()
    assert body["refresh_id"].startswith("ref_")
    assert body["status"] == "queued"
    assert set(body) >= {"status", "refresh_id", "progress", "current_step", "estimated_completion"}
    assert response["Location"] == f"{BASE}/runs/{body['refresh_id']}/"

    run = admin_api.get(response["Location"]).json()
    assert run["status"] == "success"
    assert run["items_updated"]["prices"] > 0
    assert run["items_updated"]["portfolios"] == 3
    assert run["progress"] == 1.0
    assert [s["name"] for s in run["steps"]] == [
        "Validating request",
        "Checking permissions",
        "Acquiring lock",
        "Fetching data",
        "Updating database",
        "Recalculating metrics",
        "Invalidating cache",
        "Reporting status",
    ]
    assert Quote.objects.count() == 11  # ten demo assets and the benchmark
    assert PortfolioMetrics.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_wait_answers_200_with_the_success_response(admin_api):
    # Outside a test transaction the queued task runs (inline) as soon as the request commits.
    response = admin_api.post(f"{BASE}/prices", {"wait": 5}, format="json")
    assert response.status_code == HTTPStatus.OK
    body = response.json()
    assert {"status", "refresh_id", "timestamp", "duration_ms", "items_updated"} <= set(body)
    assert body["status"] == "success"
    assert body["timestamp"].endswith("Z")
    assert isinstance(body["duration_ms"], int)
    assert body["items_updated"]["prices"] == 11
    assert "errors" not in body


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"mode": "sometimes"}, "invalid_request"),
        ({"priority": "urgent"}, "invalid_request"),
        ({"wait": 61}, "invalid_request"),
        ({"symbols": ["AAPL"], "colour": "red"}, "invalid_request"),
        ({"symbols": ["NOPE"]}, "unknown_symbols"),
        ({"symbols": ["bad symbol!"]}, "invalid_symbols"),
    ],
)
def test_bad_input_is_a_400_that_changes_nothing(admin_api, run_tasks, body, code):
    response = run_tasks(admin_api.post, f"{BASE}/prices", body, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["status"] == "error"
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert not RefreshRun.objects.exists()


def test_malformed_json_is_a_400(admin_api):
    response = admin_api.post(f"{BASE}/all", "{not json", content_type="application/json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"]["code"] == "malformed_json"


def test_symbols_are_only_for_prices(admin_api):
    response = admin_api.post(f"{BASE}/all", {"symbols": ["AAPL"]}, format="json")
    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert not RefreshRun.objects.exists()


def test_unknown_user_portfolio_is_404(admin_api):
    response = admin_api.post(f"{BASE}/portfolio/999999", {}, format="json")
    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response.json()["error"]["code"] == "not_found"
    assert not RefreshRun.objects.exists()


def test_user_may_refresh_own_portfolio_only(alice_api, alice, bob, run_tasks):
    own = run_tasks(alice_api.post, f"{BASE}/portfolio/{alice.pk}", {}, format="json")
    assert own.status_code == HTTPStatus.ACCEPTED
    run = RefreshRun.objects.get()
    assert run.status == RunStatus.SUCCESS
    assert run.requested_role == "user"
    assert PortfolioMetrics.objects.filter(portfolio__owner=alice).count() == 1
    assert not PortfolioMetrics.objects.filter(portfolio__owner=bob).exists()

    other = alice_api.post(f"{BASE}/portfolio/{bob.pk}", {}, format="json")
    assert other.status_code == HTTPStatus.FORBIDDEN
    assert other.json()["error"]["code"] == "forbidden"
    for kind in ("all", "prices", "strategy", "benchmark"):
        assert alice_api.post(f"{BASE}/{kind}", {}, format="json").status_code == HTTPStatus.FORBIDDEN
    assert RefreshRun.objects.count() == 1


def test_another_users_run_is_404_and_not_listed(admin_api, alice_api, run_tasks):
    run_tasks(admin_api.post, f"{BASE}/prices", {}, format="json")
    run = RefreshRun.objects.get()
    assert alice_api.get(f"{BASE}/runs/{run.refresh_id}").status_code == HTTPStatus.NOT_FOUND
    assert alice_api.get(f"{BASE}/runs/").json()["count"] == 0
    assert admin_api.get(f"{BASE}/runs/").json()["count"] == 1


def test_identical_active_request_returns_the_same_run(admin_api):
    first = admin_api.post(f"{BASE}/benchmark", {}, format="json")
    second = admin_api.post(f"{BASE}/benchmark", {}, format="json")
    assert first.status_code == HTTPStatus.ACCEPTED
    assert second.status_code == HTTPStatus.OK
    assert second.json()["refresh_id"] == first.json()["refresh_id"]
    # Joining an active run starts nothing, so it spends no rate limit; another mode would
    # start a new run of the same kind and target, which the cooldown refuses.
    other_mode = admin_api.post(f"{BASE}/benchmark", {"mode": "full"}, format="json")
    assert other_mode.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert other_mode.json()["error"]["code"] == "cooldown"
    assert RefreshRun.objects.count() == 1


def test_runs_list_filters(admin_api, run_tasks):
    run_tasks(admin_api.post, f"{BASE}/prices", {}, format="json")
    admin_api.post(f"{BASE}/benchmark", {}, format="json")
    assert admin_api.get(f"{BASE}/runs/?kind=prices").json()["count"] == 1
    assert admin_api.get(f"{BASE}/runs/?status=queued").json()["results"][0]["kind"] == "benchmark"
    assert admin_api.get(f"{BASE}/prices").json()["count"] == 1


def test_cancel_a_queued_run(admin_api, alice_api):
    queued = admin_api.post(f"{BASE}/strategy", {}, format="json").json()
    assert alice_api.post(f"{BASE}/runs/{queued['refresh_id']}/cancel/").status_code == HTTPStatus.NOT_FOUND
    response = admin_api.post(f"{BASE}/runs/{queued['refresh_id']}/cancel/")
    assert response.status_code == HTTPStatus.OK
    assert response.json()["status"] == "cancelled"
    again = admin_api.post(f"{BASE}/runs/{queued['refresh_id']}/cancel/")
    assert again.status_code == HTTPStatus.CONFLICT
    assert again.json()["error"]["code"] == "not_cancellable"


def test_the_status_shows_progress_while_active_and_the_outcome_once_finished(admin_api):
    queued = admin_api.post(f"{BASE}/strategy", {}, format="json").json()
    assert list(queued) == [
        "status",
        "refresh_id",
        "kind",
        "mode",
        "priority",
        "progress",
        "current_step",
        "queue_position",
        "estimated_completion",
        "run_at",
        "cancel_requested_at",
    ]
    assert (queued["priority"], queued["progress"], queued["current_step"]) == ("high", 0.0, "Queued")

    cancelled = admin_api.post(f"{BASE}/runs/{queued['refresh_id']}/cancel/").json()
    assert list(cancelled) == [
        "status",
        "refresh_id",
        "kind",
        "mode",
        "timestamp",
        "duration_ms",
        "items_updated",
        "provider_calls",
        "errors",
    ]
    assert cancelled["timestamp"].endswith("Z")
    # Cancelled before it started: no duration was recorded, and the status says 0.
    no_items = {"prices": 0, "portfolios": 0, "metrics": 0}
    assert (cancelled["duration_ms"], cancelled["items_updated"], cancelled["errors"]) == (0, no_items, [])


def test_the_location_names_the_run_where_the_api_is_mounted(admin_api):
    plain = admin_api.post(f"{BASE}/strategy", {}, format="json")
    with override_script_prefix("/refresher/"):  # as a WSGI server mounting the service there sets it
        mounted = admin_api.post(f"{BASE}/benchmark", {}, format="json")
    for response, prefix in ((plain, ""), (mounted, "/refresher")):
        refresh_id = response.json()["refresh_id"]
        assert response["Location"] == prefix + reverse("refresh-run-detail", kwargs={"refresh_id": refresh_id}) + "/"
    assert admin_api.get(plain["Location"]).json()["refresh_id"] == plain.json()["refresh_id"]


def test_each_status_answers_with_the_shape_the_schema_gives_its_state(admin_api):
    components = admin_api.get("/api/schema/", {"format": "json"}).json()["components"]["schemas"]
    active, finished = components["ActiveRunStatus"], components["FinishedRunStatus"]
    queued = admin_api.post(f"{BASE}/strategy", {}, format="json").json()
    assert list(queued) == list(active["properties"])
    assert sorted(queued) == sorted(active["required"])

    cancelled = admin_api.post(f"{BASE}/runs/{queued['refresh_id']}/cancel/").json()
    assert set(finished["required"]) <= set(cancelled) <= set(finished["properties"])
    assert not set(active["required"]) <= set(cancelled)
    assert not set(finished["required"]) <= set(queued)


def test_a_skipped_runs_status_says_why(demo, admin):
    manual, _ = request_refresh(kind="prices", requested_by=admin, source="command", enqueue=False)
    execute_run_in_process(run=manual)
    skipped = trigger_scheduled_refresh(kind="prices", mode="incremental", interval_minutes=15)
    assert skipped is not None
    status = run_status(skipped)
    assert status["status"] == "skipped"
    assert manual.refresh_id in status["reason"]
    assert status["errors"] == []
    assert "reason" not in run_status(manual)


def test_token_authentication(admin, run_tasks):
    from rest_framework.authtoken.models import Token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin).key}")
    assert run_tasks(client.post, f"{BASE}/prices", {}, format="json").status_code == HTTPStatus.ACCEPTED


def test_an_out_of_range_user_id_is_404_not_500(admin_api):
    assert admin_api.get(f"{BASE}/portfolio/99999999999999999999999").status_code == HTTPStatus.NOT_FOUND
    assert admin_api.post(f"{BASE}/portfolio/99999999999999999999999", {}).status_code == HTTPStatus.NOT_FOUND


def test_the_browsable_api_form_with_its_csrf_token_is_accepted(admin, run_tasks):
    client = APIClient(enforce_csrf_checks=False)
    client.force_login(admin)
    response = run_tasks(client.post, f"{BASE}/prices", {"mode": "incremental", "csrfmiddlewaretoken": "x"})
    assert response.status_code == HTTPStatus.ACCEPTED, response.content
