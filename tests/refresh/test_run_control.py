"""Run control over HTTP: reprioritise, retry, idempotency keys, history filters, a visible cancel,
and the counts every run reports."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.utils import timezone

from refresh.models import IdempotentRequest, RefreshRun, RunPriority, RunStatus
from refresh.services.execution import execute_next_refresh
from tests.refresh.test_api import BASE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_cooldown(settings):
    """A retry or a second request for the same target is a request like any other; the
    cooldown between identical requests is tested in test_rate_limits."""
    settings.REFRESH_COOLDOWN_SECONDS = 0


def step_names(run: RefreshRun) -> list[str]:
    return list(run.steps.values_list("name", flat=True))


# --- items_updated ---------------------------------------------------------------------------------


def test_every_finished_run_reports_prices_portfolios_and_metrics(admin_api, run_tasks):
    body = run_tasks(admin_api.post, f"{BASE}/prices", {"wait": 0}, format="json").json()
    status = admin_api.get(f"{BASE}/runs/{body['refresh_id']}/").json()

    assert status["status"] == "success"
    assert status["items_updated"]["portfolios"] == status["items_updated"]["metrics"] == 0
    assert status["items_updated"]["prices"] > 0


# --- cancelling is visible -------------------------------------------------------------------------


def test_a_cancel_of_a_running_run_shows_until_it_stops(admin_api):
    body = admin_api.post(f"{BASE}/strategy", {}, format="json").json()
    assert body["cancel_requested_at"] is None
    RefreshRun.objects.filter(refresh_id=body["refresh_id"]).update(status=RunStatus.IN_PROGRESS)

    first = admin_api.post(f"{BASE}/runs/{body['refresh_id']}/cancel/").json()
    again = admin_api.post(f"{BASE}/runs/{body['refresh_id']}/cancel/").json()

    assert first["status"] == again["status"] == "in_progress"
    assert first["cancel_requested_at"] is not None
    assert again["cancel_requested_at"] == first["cancel_requested_at"]  # the first request's time
    detail = admin_api.get(f"{BASE}/runs/{body['refresh_id']}/").json()
    assert detail["cancel_requested_at"] == first["cancel_requested_at"]


# --- reprioritise ----------------------------------------------------------------------------------


def test_reprioritising_a_queued_run_reorders_execution_and_is_recorded(admin, admin_api):
    older = admin_api.post(f"{BASE}/benchmark", {"priority": "low"}, format="json").json()
    newer = admin_api.post(f"{BASE}/strategy", {"priority": "low"}, format="json").json()

    response = admin_api.patch(f"{BASE}/runs/{newer['refresh_id']}/", {"priority": "high"}, format="json")

    assert response.status_code == HTTPStatus.OK
    assert response.json()["priority"] == "high"
    raised = RefreshRun.objects.get(refresh_id=newer["refresh_id"])
    step = raised.steps.get(name="Reprioritised")
    assert step.message == "Set to high by admin. Was low."
    assert execute_next_refresh().refresh_id == newer["refresh_id"]  # the newer run now goes first
    runs = RefreshRun.objects.order_by("started_at")
    assert [run.refresh_id for run in runs] == [newer["refresh_id"], older["refresh_id"]]  # then the queue moves on


def test_only_a_queued_run_can_be_reprioritised(admin_api, run_tasks):
    done = run_tasks(admin_api.post, f"{BASE}/benchmark", {}, format="json").json()
    running = admin_api.post(f"{BASE}/strategy", {}, format="json").json()
    RefreshRun.objects.filter(refresh_id=running["refresh_id"]).update(status=RunStatus.IN_PROGRESS)

    for body in (done, running):
        response = admin_api.patch(f"{BASE}/runs/{body['refresh_id']}/", {"priority": "emergency"}, format="json")
        assert response.status_code == HTTPStatus.CONFLICT
        assert response.json()["error"]["code"] == "not_queued"
    assert not RefreshRun.objects.filter(priority=RunPriority.EMERGENCY).exists()


def test_reprioritising_needs_the_run_and_the_priority(admin_api, alice, alice_api):
    own = alice_api.post(f"{BASE}/portfolio/{alice.pk}", {}, format="json").json()
    admins = admin_api.post(f"{BASE}/strategy", {}, format="json").json()

    def patch(body, priority):
        return alice_api.patch(f"{BASE}/runs/{body['refresh_id']}/", {"priority": priority}, format="json")

    assert patch(own, "high").status_code == HTTPStatus.FORBIDDEN  # a user's role may not ask for high
    assert patch(admins, "low").status_code == HTTPStatus.NOT_FOUND  # not hers to see
    assert patch(own, "low").json()["priority"] == "low"  # lowering her own is fine
    for bad in ({"priority": "urgent"}, {}, {"priority": "low", "kind": "all"}):
        response = alice_api.patch(f"{BASE}/runs/{own['refresh_id']}/", bad, format="json")
        assert response.status_code == HTTPStatus.BAD_REQUEST, bad
    assert RefreshRun.objects.get(refresh_id=own["refresh_id"]).priority == RunPriority.LOW


def test_joining_an_identical_queued_run_at_a_higher_priority_raises_it(alice, alice_api, admin_api):
    first = alice_api.post(f"{BASE}/portfolio/{alice.pk}", {}, format="json").json()
    assert first["priority"] == "medium"

    joined = admin_api.post(f"{BASE}/portfolio/{alice.pk}", {"priority": "high"}, format="json")

    assert joined.status_code == HTTPStatus.OK
    assert joined.json()["refresh_id"] == first["refresh_id"]
    assert joined.json()["priority"] == "high"
    run = RefreshRun.objects.get(refresh_id=first["refresh_id"])
    assert "Reprioritised" in step_names(run)
    lower = alice_api.post(f"{BASE}/portfolio/{alice.pk}", {"priority": "low"}, format="json").json()
    assert lower["priority"] == "high"  # joining lower never lowers it


# --- retry -----------------------------------------------------------------------------------------


def test_a_retry_refetches_exactly_the_failed_symbols(admin_api, run_tasks, settings):
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = ["AAPL", "MSFT"]
    failed = run_tasks(admin_api.post, f"{BASE}/prices", {}, format="json").json()
    first = RefreshRun.objects.get(refresh_id=failed["refresh_id"])
    assert first.status == RunStatus.PARTIAL
    assert sorted(first.failed_symbols) == ["AAPL", "MSFT"]
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = []

    response = run_tasks(admin_api.post, f"{BASE}/runs/{first.refresh_id}/retry/", {}, format="json")

    assert response.status_code == HTTPStatus.ACCEPTED
    retry = RefreshRun.objects.get(refresh_id=response.json()["refresh_id"])
    assert retry.retry_of == first
    assert retry.params["symbols"] == ["AAPL", "MSFT"]
    assert retry.status == RunStatus.SUCCESS
    assert retry.items_updated["prices"] == 2
    detail = admin_api.get(f"{BASE}/runs/{retry.refresh_id}/").json()
    assert detail["retry_of"] == first.refresh_id
    listed = admin_api.get(f"{BASE}/runs/?retry_of={first.refresh_id}").json()
    assert [run["refresh_id"] for run in listed["results"]] == [retry.refresh_id]


def test_a_retry_of_every_symbol_when_asked(admin_api, run_tasks, settings):
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = ["AAPL"]
    failed = run_tasks(admin_api.post, f"{BASE}/prices", {}, format="json").json()
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = []

    response = run_tasks(
        admin_api.post, f"{BASE}/runs/{failed['refresh_id']}/retry/", {"all_symbols": True}, format="json"
    )

    retry = RefreshRun.objects.get(refresh_id=response.json()["refresh_id"])
    assert retry.params["symbols"] == []  # every symbol, as the original asked
    assert retry.items_updated["prices"] > 1


def test_only_an_unsuccessful_finished_run_can_be_retried(admin_api, run_tasks):
    done = run_tasks(admin_api.post, f"{BASE}/benchmark", {}, format="json").json()
    queued = admin_api.post(f"{BASE}/strategy", {}, format="json").json()
    for body in (done, queued):
        response = admin_api.post(f"{BASE}/runs/{body['refresh_id']}/retry/", {}, format="json")
        assert response.status_code == HTTPStatus.CONFLICT
        assert response.json()["error"]["code"] == "not_retryable"
    cancelled = admin_api.post(f"{BASE}/runs/{queued['refresh_id']}/cancel/").json()
    retried = admin_api.post(f"{BASE}/runs/{cancelled['refresh_id']}/retry/", {}, format="json")
    assert retried.status_code == HTTPStatus.ACCEPTED
    assert RefreshRun.objects.get(refresh_id=retried.json()["refresh_id"]).retry_of.refresh_id == queued["refresh_id"]


def test_a_retry_is_a_request_like_any_other(admin, alice_api, admin_api, settings, run_tasks):
    """Its requester's permissions and limits apply; a run she cannot see is a 404."""
    settings.REFRESH_BURST_RATE = "1/m"
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = ["AAPL"]
    failed = run_tasks(admin_api.post, f"{BASE}/prices", {}, format="json").json()
    not_hers = alice_api.post(f"{BASE}/runs/{failed['refresh_id']}/retry/", {}, format="json")
    assert not_hers.status_code == HTTPStatus.NOT_FOUND
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = []

    again = admin_api.post(f"{BASE}/runs/{failed['refresh_id']}/retry/", {}, format="json")

    assert again.status_code == HTTPStatus.TOO_MANY_REQUESTS
    assert again.json()["error"]["code"] == "burst"
    assert not RefreshRun.objects.filter(retry_of__refresh_id=failed["refresh_id"]).exists()


# --- idempotency keys ------------------------------------------------------------------------------


def test_the_same_idempotency_key_gives_one_run_even_after_it_finished(admin_api, run_tasks):
    key = {"Idempotency-Key": "order-7f3a"}
    first = run_tasks(admin_api.post, f"{BASE}/prices", {"mode": "smart"}, format="json", headers=key)
    assert first.status_code == HTTPStatus.ACCEPTED
    assert RefreshRun.objects.get().status == RunStatus.SUCCESS

    # Well past the burst limit (5 in 10 s): a replay spends nothing.
    replays = [admin_api.post(f"{BASE}/prices", {"mode": "smart"}, format="json", headers=key) for _ in range(8)]

    assert {r.status_code for r in replays} == {HTTPStatus.OK}
    assert {r.json()["refresh_id"] for r in replays} == {first.json()["refresh_id"]}
    assert replays[0].json()["status"] == "success"
    assert RefreshRun.objects.count() == 1
    assert admin_api.post(f"{BASE}/prices", {}, format="json").status_code == HTTPStatus.ACCEPTED


def test_the_same_key_with_another_request_is_422_and_changes_nothing(admin_api, alice, alice_api):
    key = {"Idempotency-Key": "k-1"}
    first = admin_api.post(f"{BASE}/prices", {"mode": "smart"}, format="json", headers=key).json()

    for path, body in ((f"{BASE}/prices", {"mode": "full"}), (f"{BASE}/benchmark", {"mode": "smart"})):
        response = admin_api.post(path, body, format="json", headers=key)
        assert response.status_code == HTTPStatus.UNPROCESSABLE_ENTITY
        assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert [run.refresh_id for run in RefreshRun.objects.all()] == [first["refresh_id"]]
    # Keys belong to their requester: alice's "k-1" is hers.
    own = alice_api.post(f"{BASE}/portfolio/{alice.pk}", {}, format="json", headers=key)
    assert own.status_code == HTTPStatus.ACCEPTED


def test_a_key_expires_after_24_hours(admin_api):
    key = {"Idempotency-Key": "nightly-1"}
    first = admin_api.post(f"{BASE}/benchmark", {}, format="json", headers=key).json()
    admin_api.post(f"{BASE}/runs/{first['refresh_id']}/cancel/")
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=24, seconds=1))

    again = admin_api.post(f"{BASE}/benchmark", {"mode": "full"}, format="json", headers=key)

    assert again.status_code == HTTPStatus.ACCEPTED
    assert again.json()["refresh_id"] != first["refresh_id"]


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9", "a b"])
def test_a_malformed_idempotency_key_is_a_400(admin_api, key):
    response = admin_api.post(f"{BASE}/benchmark", {}, format="json", headers={"Idempotency-Key": key})

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert not RefreshRun.objects.exists()


def test_a_refused_request_leaves_its_key_unused(admin_api, alice, alice_api, bob):
    key = {"Idempotency-Key": "k-2"}
    refused = alice_api.post(f"{BASE}/portfolio/{bob.pk}", {}, format="json", headers=key)
    assert refused.status_code == HTTPStatus.FORBIDDEN

    accepted = alice_api.post(f"{BASE}/portfolio/{alice.pk}", {}, format="json", headers=key)

    assert accepted.status_code == HTTPStatus.ACCEPTED


# --- history filters -------------------------------------------------------------------------------


def test_run_history_filters_by_requester_target_priority_and_dates(admin, admin_api, alice, alice_api, bob):
    alice_api.post(f"{BASE}/portfolio/{alice.pk}", {}, format="json")
    admin_api.post(f"{BASE}/portfolio/{bob.pk}", {"priority": "emergency"}, format="json")
    admin_api.post(f"{BASE}/benchmark", {"priority": "low"}, format="json")
    RefreshRun.objects.filter(kind="benchmark").update(created_at=timezone.now() - timedelta(days=2))

    def ids(query):
        response = admin_api.get(f"{BASE}/runs/?{query}")
        assert response.status_code == HTTPStatus.OK, response.json()
        return sorted((run["kind"], run["target_user_id"]) for run in response.json()["results"])

    assert ids("requested_by=alice") == [("portfolio", alice.pk)]
    assert ids(f"target_user_id={bob.pk}") == [("portfolio", bob.pk)]
    assert ids("priority=emergency") == [("portfolio", bob.pk)]
    yesterday = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ids(f"created_before={yesterday}") == [("benchmark", None)]
    assert len(ids(f"created_after={yesterday}")) == 2
    assert ids(f"requested_by=admin&created_after={yesterday}&kind=portfolio") == [("portfolio", bob.pk)]
    # A user's filters narrow her own runs only.
    assert alice_api.get(f"{BASE}/runs/?requested_by=admin").json()["count"] == 0


@pytest.mark.parametrize(
    "query",
    [
        "requested=alice",  # unknown
        "target_user=1",  # unknown
        "target_user_id=1.5",
        "target_user_id=me",
        "priority=urgent",
        "created_after=yesterday",
        "created_before=2026-13-01",
        "page_size=5",
    ],
)
def test_an_unknown_or_malformed_filter_is_a_400(admin_api, query):
    response = admin_api.get(f"{BASE}/runs/?{query}")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["error"]["code"] == "invalid_filter"
