"""Dry runs: a trigger with "dry_run": true, `manage.py refresh --dry-run` and the admin's confirmation of a
full refresh show what the run would fetch, spend and recalculate, and start, record and spend nothing."""

import json
from datetime import timedelta
from http import HTTPStatus
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import OrmQ
from rest_framework.test import APIClient

from market_data.credits import credits_left, reserve_credits
from market_data.models import Asset, CreditWindow, ProviderUsage, Quote
from market_data.providers import MockProvider
from portfolios.models import Allocation, Portfolio
from refresh.models import IdempotentRequest, RefreshRun, RefreshStep, RunPriority, RunSource, RunStatus
from refresh.services.events import refresh_event
from refresh.services.requests import check_refresh_request
from tests.api_errors import assert_json_error

BASE = "/api/v1/manual/refresh"
REFRESH_NOW = "admin:refresh_refreshrun_refresh_now"


def _dry_run(client, path: str, body: dict | None = None, *, headers: dict | None = None) -> dict:
    response = client.post(f"{BASE}/{path}", {**(body or {}), "dry_run": True}, format="json", headers=headers)
    assert response.status_code == HTTPStatus.OK, response.content
    plan = response.json()
    assert plan["dry_run"] is True
    return plan


def _recorded() -> dict[str, int]:
    """Everything a request, a run or a provider call would leave behind."""
    return {
        "runs": RefreshRun.objects.count(),
        "steps": RefreshStep.objects.count(),
        "queued tasks": OrmQ.objects.count(),
        "idempotency keys": IdempotentRequest.objects.count(),
        "assets": Asset.objects.count(),
        "quotes": Quote.objects.count(),
        "credit windows": CreditWindow.objects.count(),
        "provider usage": ProviderUsage.objects.count(),
    }


def _history_symbols(plan: dict) -> set[str]:
    return {entry["symbol"] for entry in plan["symbols"] if entry["history_start"]}


@pytest.fixture
def events():
    """Every refresh event emitted while the test runs."""
    seen: list[str] = []

    def receiver(sender, event_type, payload, **kwargs):
        seen.append(event_type)

    refresh_event.connect(receiver, weak=False)
    yield seen
    refresh_event.disconnect(receiver)


@pytest.fixture
def no_provider(monkeypatch):
    """The provider fails the test if anything calls it."""

    def refuse(*args, **kwargs):
        raise AssertionError("a dry run called the provider")

    monkeypatch.setattr(MockProvider, "fetch_quotes", refuse)
    monkeypatch.setattr(MockProvider, "fetch_history", refuse)


# --- the plan against the run that follows it ---------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("all", {"mode": "full"}),
        ("all", {}),
        ("prices", {}),
        ("prices", {"mode": "full", "symbols": ["AAPL", "MSFT"]}),
        ("strategy", {}),
        ("benchmark", {}),
        ("portfolio/{alice}", {}),
    ],
)
def test_the_plan_is_what_the_real_run_then_does(admin_api, alice, run_tasks, path, body):
    path = path.format(alice=alice.pk)
    before = _recorded()

    plan = _dry_run(admin_api, path, body)

    assert _recorded() == before
    response = run_tasks(admin_api.post, f"{BASE}/{path}", body, format="json")
    assert response.status_code == HTTPStatus.ACCEPTED
    run = RefreshRun.objects.get()
    assert run.status == RunStatus.SUCCESS, run.errors
    assert (plan["kind"], plan["mode"], plan["priority"]) == (run.kind, run.mode, run.priority_name)
    assert plan["outcome"] == "start"
    assert plan["provider_calls"] == run.provider_calls
    assert plan["credits"] == run.credits_used
    quoted = [entry["symbol"] for entry in plan["symbols"] if entry["quote"]]
    assert len(quoted) == run.items_updated["prices"]
    assert set(quoted) == set(Quote.objects.values_list("asset__symbol", flat=True))
    assert bool(_history_symbols(plan)) == bool(run.items_updated.get("bars"))  # a backfill writes bars
    if plan["recalculates"] and "metrics" not in plan["recalculates"] and "comparisons" not in plan["recalculates"]:
        # A strategy run recalculates strategies only, which its items_updated does not count as portfolios.
        assert plan["portfolios"] == Allocation.objects.values("strategy__portfolio").distinct().count()
    else:
        assert plan["portfolios"] == run.items_updated["portfolios"]
    assert plan["expected_duration_seconds"] > 0
    assert plan["estimated_completion"]


def test_a_full_refresh_backfills_the_whole_window_and_an_incremental_one_only_the_days_missing(admin_api):
    full = _dry_run(admin_api, "all", {"mode": "full"})
    incremental = _dry_run(admin_api, "all")

    symbols = set(Asset.objects.values_list("symbol", flat=True))
    assert {entry["symbol"] for entry in full["symbols"]} == symbols
    assert all(entry["quote"] for entry in full["symbols"])
    assert full["symbols"][0]["symbol"] == "SPY"  # the benchmark first
    assert _history_symbols(full) == symbols
    assert min(entry["history_start"] for entry in full["symbols"]) < min(
        (entry["history_start"] for entry in incremental["symbols"] if entry["history_start"]), default="9999"
    )
    assert full["recalculates"] == ["signals", "strategies", "metrics", "comparisons"]
    assert full["portfolios"] == Portfolio.objects.count()
    assert not full["portfolios_only_if_changed"]
    assert incremental["portfolios_only_if_changed"]


def test_a_missing_benchmark_is_planned_as_the_run_would_create_it_and_not_created(admin_api, settings, run_tasks):
    settings.BENCHMARK_SYMBOL = "IVV"  # another S&P 500 fund, which no asset has yet

    plan = _dry_run(admin_api, "all", {"mode": "full"})

    assert not Asset.objects.filter(symbol="IVV").exists()
    assert plan["symbols"][0] == {
        "symbol": "IVV",
        "quote": True,
        **{k: plan["symbols"][1][k] for k in ("history_start", "history_end")},
    }
    assert len(plan["symbols"]) == Asset.objects.count() + 1
    run_tasks(admin_api.post, f"{BASE}/all", {"mode": "full"}, format="json")
    run = RefreshRun.objects.get()
    assert (run.status, run.provider_calls, run.credits_used) == (
        RunStatus.SUCCESS,
        plan["provider_calls"],
        plan["credits"],
    )
    assert Quote.objects.filter(asset__symbol="IVV").exists()


def test_smart_mode_right_after_a_refresh_plans_nothing_to_fetch(admin_api, run_tasks, no_rate_limits):
    run_tasks(admin_api.post, f"{BASE}/all", {"mode": "full"}, format="json")

    plan = _dry_run(admin_api, "all", {"mode": "smart"})

    assert plan["symbols"] == []
    assert (plan["provider_calls"], plan["credits"]) == (0, 0)
    assert set(plan["skipped_fresh"]) == set(Asset.objects.values_list("symbol", flat=True))
    assert plan["recalculates"] == []
    assert plan["portfolios"] == 0
    run_tasks(admin_api.post, f"{BASE}/all", {"mode": "smart"}, format="json")
    smart = RefreshRun.objects.filter(mode="smart").get()
    assert (smart.status, smart.provider_calls, smart.items_updated["portfolios"]) == (RunStatus.SUCCESS, 0, 0)


def test_the_plan_counts_provider_calls_in_batches_within_todays_credits(admin_api, settings, run_tasks):
    settings.TWELVEDATA_BATCH_SIZE = 4  # 11 quotes: 3 calls
    settings.MARKET_DATA_CREDITS_PER_DAY = 15
    reserve_credits(wanted=3)  # spent earlier today, in whichever store the budget lives

    quotes = _dry_run(admin_api, "prices")
    plan = _dry_run(admin_api, "prices", {"mode": "full"})

    assert (quotes["provider_calls"], quotes["credits"], quotes["symbols_not_fetched_today"]) == (3, 11, 0)
    assert plan["credits_left_today"] == 12
    # 11 quotes, then 11 histories of which today's 12 credits pay one: the rest wait for tomorrow.
    assert (plan["provider_calls"], plan["credits"], plan["symbols_not_fetched_today"]) == (4, 12, 10)
    assert credits_left().today == 12  # read, not reserved
    run_tasks(admin_api.post, f"{BASE}/prices", {"mode": "full"}, format="json")
    run = RefreshRun.objects.get()
    assert run.status == RunStatus.PARTIAL
    assert (run.provider_calls, run.credits_used, len(run.failed_symbols)) == (4, 12, 10)


def test_a_per_minute_budget_spreads_the_fetch_over_minutes(admin_api, settings, clock, monkeypatch, run_tasks):
    settings.MARKET_DATA_CREDITS_PER_MINUTE = 4
    monkeypatch.setattr("market_data.fetching.sleep", clock.shift)  # waiting for credits moves the clock

    plan = _dry_run(admin_api, "prices")

    assert plan["credits_left_today"] is None  # no daily limit
    assert plan["credit_minutes"] == -(-plan["credits"] // 4) > 1
    run_tasks(admin_api.post, f"{BASE}/prices", {}, format="json")
    run = RefreshRun.objects.get()
    assert run.status == RunStatus.SUCCESS
    assert (run.provider_calls, run.credits_used) == (plan["provider_calls"], plan["credits"])
    assert plan["provider_calls"] >= plan["credit_minutes"]  # at least a call in each minute: batches of at most 4


# --- nothing recorded, nothing spent --------------------------------------------------------------
def test_dry_runs_record_nothing_emit_nothing_call_no_provider_and_spend_no_limit(
    admin_api, settings, events, no_provider
):
    settings.REFRESH_BURST_RATE = "1/m"
    settings.REFRESH_RATE_LIMITS = {**settings.REFRESH_RATE_LIMITS, "admin": "1/h"}
    before = _recorded()

    for path in ("all", "all", "prices", "benchmark", "strategy"):
        _dry_run(admin_api, path, {"mode": "full"})
    _dry_run(admin_api, "prices", headers={"Idempotency-Key": "nightly"})

    assert _recorded() == before
    assert events == []
    real = admin_api.post(f"{BASE}/benchmark", {}, format="json")  # same kind: no cooldown either
    assert real.status_code == HTTPStatus.ACCEPTED
    # The limits are live: the next real request is the one refused.
    assert_json_error(admin_api.post(f"{BASE}/prices", {}, format="json"), HTTPStatus.TOO_MANY_REQUESTS, "burst")
    assert RefreshRun.objects.count() == 1


def test_a_dry_run_within_a_cooldown_still_answers_and_the_cooldown_is_not_moved(admin_api, run_tasks, clock):
    run_tasks(admin_api.post, f"{BASE}/benchmark", {}, format="json")
    clock.shift(30)

    _dry_run(admin_api, "benchmark")

    clock.shift(31)  # 61 s after the accepted request: a dry run at 30 s would have restarted the wait
    assert admin_api.post(f"{BASE}/benchmark", {}, format="json").status_code == HTTPStatus.ACCEPTED


# --- joining and queueing --------------------------------------------------------------------------
def test_an_identical_active_run_is_reported_as_the_one_the_request_would_join(admin_api):
    queued = admin_api.post(f"{BASE}/benchmark", {}, format="json").json()  # not executed: stays queued

    plan = _dry_run(admin_api, "benchmark")

    assert (plan["outcome"], plan["refresh_id"]) == ("join", queued["refresh_id"])
    assert plan["queue_position"] == 1
    assert RefreshRun.objects.count() == 1


def test_conflicting_active_runs_are_the_ones_a_new_run_would_queue_behind(admin_api, alice, alice_api):
    running = RefreshRun.objects.create(
        kind="prices",
        mode="incremental",
        status=RunStatus.IN_PROGRESS,
        requested_role="system",
        source=RunSource.SCHEDULE,
        scope="prices",
        dedup_key="prices-running",
        started_at=timezone.now(),
        lease_expires_at=timezone.now() + timedelta(seconds=30),
    )
    queued_all = admin_api.post(f"{BASE}/all", {}, format="json").json()

    benchmark = _dry_run(admin_api, "benchmark")  # benchmark conflicts with prices and all
    assert (benchmark["outcome"], benchmark["refresh_id"]) == ("queue", None)
    assert benchmark["queued_behind"] == [running.refresh_id, queued_all["refresh_id"]]
    assert benchmark["queue_position"] == 2

    low = _dry_run(admin_api, "benchmark", {"priority": "low"})
    assert low["queued_behind"] == [running.refresh_id, queued_all["refresh_id"]]
    mine = _dry_run(alice_api, f"portfolio/{alice.pk}")  # at medium, behind the admin's high "all"
    assert mine["queued_behind"] == [running.refresh_id, queued_all["refresh_id"]]

    RefreshRun.objects.filter(refresh_id=queued_all["refresh_id"]).update(status=RunStatus.CANCELLED)
    assert _dry_run(admin_api, "strategy")["outcome"] == "start"  # strategy does not conflict with prices
    assert _dry_run(admin_api, "benchmark")["queued_behind"] == [running.refresh_id]


def test_an_identical_run_whose_worker_is_lost_is_not_joined(admin_api, admin):
    checked = check_refresh_request(kind="benchmark", requested_by=admin)
    RefreshRun.objects.create(
        kind="benchmark",
        mode="incremental",
        status=RunStatus.IN_PROGRESS,
        requested_role="admin",
        source=RunSource.API,
        scope="benchmark",
        dedup_key=checked.dedup_key,
        started_at=timezone.now() - timedelta(minutes=5),
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )

    plan = _dry_run(admin_api, "benchmark")

    assert (plan["outcome"], plan["queued_behind"]) == ("start", [])
    assert RefreshRun.objects.get().status == RunStatus.IN_PROGRESS  # only the real request fails it


def test_an_idempotency_key_already_used_is_reported_as_the_run_it_would_return(admin_api):
    first = admin_api.post(f"{BASE}/prices", {}, format="json", headers={"Idempotency-Key": "k1"}).json()

    plan = _dry_run(admin_api, "prices", headers={"Idempotency-Key": "k1"})

    assert (plan["outcome"], plan["refresh_id"]) == ("replay", first["refresh_id"])
    reused = admin_api.post(
        f"{BASE}/prices", {"mode": "smart", "dry_run": True}, format="json", headers={"Idempotency-Key": "k1"}
    )
    assert_json_error(reused, HTTPStatus.UNPROCESSABLE_ENTITY, "idempotency_key_reused")


# --- refused exactly as the real request ----------------------------------------------------------
@pytest.mark.parametrize(
    ("who", "path", "body", "status", "code"),
    [
        ("alice", "all", {}, HTTPStatus.FORBIDDEN, "forbidden"),
        ("alice", "portfolio/{bob}", {}, HTTPStatus.FORBIDDEN, "forbidden"),
        ("alice", "portfolio/999999", {}, HTTPStatus.FORBIDDEN, "forbidden"),
        ("alice", "portfolio/{alice}", {"mode": "full"}, HTTPStatus.FORBIDDEN, "forbidden"),
        ("alice", "portfolio/{alice}", {"priority": "high"}, HTTPStatus.FORBIDDEN, "forbidden"),
        ("admin", "portfolio/999999", {}, HTTPStatus.NOT_FOUND, "not_found"),
        ("admin", "prices", {"symbols": ["NOPE"]}, HTTPStatus.BAD_REQUEST, "unknown_symbols"),
        ("admin", "prices", {"symbols": ["bad symbol!"]}, HTTPStatus.BAD_REQUEST, "invalid_symbols"),
        ("admin", "all", {"symbols": ["AAPL"]}, HTTPStatus.BAD_REQUEST, "invalid_symbols"),
        ("admin", "benchmark", {"apply_rebalancing": True}, HTTPStatus.BAD_REQUEST, "invalid_request"),
        ("admin", "all", {"mode": "sometimes"}, HTTPStatus.BAD_REQUEST, "invalid_request"),
        ("admin", "all", {"colour": "red"}, HTTPStatus.BAD_REQUEST, "invalid_request"),
    ],
)
def test_a_dry_run_is_refused_exactly_where_the_real_request_is(
    admin_api, alice_api, alice, bob, who, path, body, status, code
):
    client = {"admin": admin_api, "alice": alice_api}[who]
    url = f"{BASE}/{path.format(alice=alice.pk, bob=bob.pk)}"

    real = client.post(url, body, format="json")
    dry = client.post(url, {**body, "dry_run": True}, format="json")

    assert_json_error(real, status, code)
    assert_json_error(dry, status, code)
    assert dry.json()["error"]["message"] == real.json()["error"]["message"]
    assert not RefreshRun.objects.exists()


def test_a_dry_run_needs_a_login_and_a_well_formed_idempotency_key(admin_api):
    anonymous = APIClient().post(f"{BASE}/all", {"dry_run": True}, format="json")
    assert_json_error(anonymous, HTTPStatus.UNAUTHORIZED, "not_authenticated")
    bad_key = admin_api.post(f"{BASE}/all", {"dry_run": True}, format="json", headers={"Idempotency-Key": "é"})
    assert_json_error(bad_key, HTTPStatus.BAD_REQUEST, "invalid_idempotency_key")


def test_wait_with_dry_run_is_a_400(admin_api):
    response = admin_api.post(f"{BASE}/prices", {"dry_run": True, "wait": 5}, format="json")

    body = assert_json_error(response, HTTPStatus.BAD_REQUEST, "invalid_request")
    assert "wait" in body["error"]["fields"]
    assert not RefreshRun.objects.exists()


def test_the_schema_documents_both_shapes_of_a_triggers_200(admin_api):
    schema = admin_api.get("/api/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]

    for kind in ("all", "prices", "strategy", "benchmark", "portfolio/{target_user_id}"):
        ok = schema["paths"][f"{BASE}/{kind}/"]["post"]["responses"]["200"]
        assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/RunStatusOrPlan")
    shapes = [ref["$ref"].rsplit("/", 1)[1] for ref in components["RunStatusOrPlan"]["oneOf"]]
    assert shapes == ["RunStatus", "RefreshPlan"]
    plan = _dry_run(admin_api, "all")
    assert set(components["RefreshPlan"]["required"]) <= set(plan) == set(components["RefreshPlan"]["properties"])
    status_shapes = [ref["$ref"].rsplit("/", 1)[1] for ref in components["RunStatus"]["oneOf"]]
    assert status_shapes == ["ActiveRunStatus", "FinishedRunStatus"]
    for shape in status_shapes:  # so only one shape matches
        assert not set(components[shape]["required"]) <= set(plan)


# --- manage.py refresh --dry-run -----------------------------------------------------------------
def test_the_command_prints_the_plan_as_text(demo, events):
    out = StringIO()

    call_command("refresh", "--all", "--mode", "full", "--dry-run", stdout=out)

    text = out.getvalue()
    assert text.startswith("Dry run: nothing was started, recorded or spent.")
    assert "all refresh, full mode, low priority." in text  # the system role's default
    assert "Would start a new run" in text
    assert "Fetch 11 symbols from mock: 2 provider calls, 22 credits." in text
    listed = [line.split() for line in text.splitlines() if line.startswith("  ")]
    assert len(listed) == 11
    assert listed[0][:3] == ["SPY", "quote,", "history"]  # the benchmark first, then by value held
    assert "Recalculate signals, strategies, metrics, comparisons for 3 portfolios." in text
    assert not RefreshRun.objects.exists()
    assert events == []


def test_the_command_names_the_runs_it_would_join_or_queue_behind(admin_api):
    queued = admin_api.post(f"{BASE}/all", {}, format="json").json()["refresh_id"]  # not executed: stays queued

    def text(*args):
        out = StringIO()
        call_command("refresh", *args, "--dry-run", stdout=out)
        return out.getvalue().splitlines()

    assert text("--benchmark")[2] == f"Would queue a new run behind {queued} (position 2)."
    assert text("--all", "--as-user", "admin")[2] == f"Would join the identical active run {queued}."
    assert RefreshRun.objects.count() == 1


def test_the_command_prints_the_plan_as_json_as_the_api_renders_it(admin_api, admin):
    out = StringIO()

    call_command(
        "refresh", "--prices", "--symbols", "AAPL,MSFT", "--as-user", "admin", "--dry-run", "--json", stdout=out
    )

    [line] = out.getvalue().splitlines()
    plan = json.loads(line)
    api = _dry_run(admin_api, "prices", {"symbols": ["AAPL", "MSFT"]})
    assert plan == {**api, "estimated_completion": plan["estimated_completion"]}
    assert [entry["symbol"] for entry in plan["symbols"]] == ["AAPL", "MSFT"]
    assert not RefreshRun.objects.exists()


def test_the_command_refuses_a_dry_run_as_it_would_the_run(demo):
    with pytest.raises(CommandError) as refused:
        call_command("refresh", "--prices", "--symbols", "NOPE", "--dry-run", stdout=StringIO())
    assert refused.value.returncode == 64
    with pytest.raises(CommandError) as queued:
        call_command("refresh", "--prices", "--dry-run", "--queue", stdout=StringIO())
    assert queued.value.returncode == 64
    assert not RefreshRun.objects.exists()


# --- the admin's "Refresh now" of a full refresh ---------------------------------------------------
def _admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_full_refresh_from_the_admin_shows_its_plan_and_starts_on_the_second_click(admin, run_tasks, events):
    client = _admin_client(admin)

    page = client.post(reverse(REFRESH_NOW), {"kind": "all", "mode": "full"})

    assert page.status_code == HTTPStatus.OK
    html = page.content.decode()
    assert 'id="refresh-confirm"' in html
    assert '<input type="hidden" name="confirmed" value="1">' in html
    assert "<td>SPY</td>" in html
    assert page.context["plan"]["provider_calls"] == 2
    assert page.context["plan"]["portfolios"] == 3
    assert not RefreshRun.objects.exists()
    assert events == []

    started = run_tasks(client.post, reverse(REFRESH_NOW), {"kind": "all", "mode": "full", "confirmed": "1"})

    assert started.status_code == HTTPStatus.FOUND
    run = RefreshRun.objects.get()
    assert (run.kind, run.mode, run.source, run.status) == ("all", "full", RunSource.ADMIN, RunStatus.SUCCESS)
    assert run.provider_calls == page.context["plan"]["provider_calls"]


def test_the_admin_confirmation_is_refused_as_the_click_would_be(demo):
    support = get_user_model().objects.create_user("support1", password="pw", is_staff=True)
    support.groups.add(Group.objects.get(name="support"))
    client = _admin_client(support)

    assert client.post(reverse(REFRESH_NOW), {"kind": "prices", "mode": "full"}).status_code == HTTPStatus.FORBIDDEN
    assert not RefreshRun.objects.exists()


def test_other_modes_start_at_once_from_the_admin(admin, run_tasks):
    response = run_tasks(_admin_client(admin).post, reverse(REFRESH_NOW), {"kind": "prices", "mode": "incremental"})

    assert response.status_code == HTTPStatus.FOUND
    assert RefreshRun.objects.get().priority == RunPriority.HIGH
