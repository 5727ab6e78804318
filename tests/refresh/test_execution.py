"""The run engine: what each kind does, partial failures, priorities, scopes, stops, recovery."""

import time
from datetime import timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from market_data.models import Asset, PriceBar, Quote
from market_data.providers.base import ProviderAuthError
from portfolios.models import BenchmarkComparison, Holding, PortfolioMetrics, RebalanceProposal, Signal
from refresh.models import RefreshRun, RefreshStep, RunPriority, RunSource, RunStatus, ScopeLease
from refresh.selectors import active_runs_with_key
from refresh.services.execution import (
    claim_next_run,
    execute_claimed_run,
    execute_next_refresh,
    execute_run_in_process,
    reap_lost_runs,
)
from refresh.services.requests import request_refresh


def make_run(kind, *, user=None, mode="incremental", **kwargs):
    run, created = request_refresh(
        kind=kind, requested_by=user, source=RunSource.COMMAND, mode=mode, enqueue=False, **kwargs
    )
    assert created
    return run


def run_now(kind, **kwargs):
    return execute_run_in_process(run=make_run(kind, **kwargs))


def step(run, name):
    return RefreshStep.objects.get(run=run, name=name)


def test_the_request_checks_become_the_first_steps_when_a_worker_starts_the_run(demo, admin):
    run, _ = request_refresh(kind="prices", requested_by=admin, source=RunSource.API, enqueue=False)
    assert not run.steps.exists()  # the request itself writes only the run

    run = execute_run_in_process(run=run)
    steps = list(run.steps.order_by("position"))
    assert [(s.position, s.name, s.status, s.message) for s in steps[:3]] == [
        (1, "Validating request", "done", ""),
        (2, "Checking permissions", "done", "role admin"),
        (3, "Acquiring lock", "done", "Holding scope prices"),
    ]
    assert steps[0].started_at == steps[1].finished_at == run.created_at
    assert [s.position for s in steps] == list(range(1, len(steps) + 1))


def test_prices_refresh_stores_quotes_and_skips_calculations(demo):
    run = run_now("prices")
    assert run.status == RunStatus.SUCCESS
    assert run.items_updated["prices"] == Asset.objects.count() == 11  # ten demo assets and the benchmark
    assert run.provider_calls >= 1
    assert Quote.objects.count() == 11
    assert step(run, "Recalculating metrics").status == "skipped"
    assert not PortfolioMetrics.objects.exists()


def test_full_all_refresh_backfills_history_and_stores_every_figure(demo, settings):
    settings.REFRESH_HISTORY_YEARS = 2
    bars_before = PriceBar.objects.count()
    run = run_now("all", mode="full")
    assert run.status == RunStatus.SUCCESS, run.errors
    assert PriceBar.objects.count() > bars_before  # a second year of history came in
    assert PortfolioMetrics.objects.count() == 3
    assert BenchmarkComparison.objects.count() == 3
    assert Signal.objects.exists()
    assert RebalanceProposal.objects.exists() or run.items_updated.get("metrics", 0) > 0
    assert run.items_updated["bars"] > 0
    assert run.duration_ms is not None
    assert run.finished_at is not None


def test_smart_refresh_right_after_a_successful_one_makes_no_provider_calls(demo):
    assert run_now("all").status == RunStatus.SUCCESS
    smart = run_now("all", mode="smart")
    assert smart.status == RunStatus.SUCCESS
    assert smart.provider_calls == 0
    assert step(smart, "Fetching data").status == "skipped"


def test_one_failing_symbol_keeps_the_rest_and_ends_partial(demo, settings):
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = ["AAPL"]
    run = run_now("prices")
    assert run.status == RunStatus.PARTIAL
    assert "AAPL" in run.failed_symbols
    assert Quote.objects.count() == Asset.objects.count() - 1
    assert not Quote.objects.filter(asset__symbol="AAPL").exists()


def test_a_rejected_key_fails_the_run_with_a_clear_message(demo, monkeypatch):
    class RejectingProvider:
        name, batch_size = "twelvedata", 120

        def fetch_quotes(self, symbols):
            raise ProviderAuthError("Twelve Data rejected the API key (401).")

    monkeypatch.setattr("refresh.steps.flow.get_provider", RejectingProvider)
    run = run_now("prices")
    assert run.status == RunStatus.FAILED
    assert any("rejected the API key" in e for e in run.errors)
    assert not ScopeLease.objects.exists()


def test_portfolio_refresh_touches_only_that_users_portfolios(demo, alice):
    run = run_now("portfolio", user=alice, target_user_id=alice.pk)
    assert run.status == RunStatus.SUCCESS
    assert list(PortfolioMetrics.objects.values_list("portfolio__owner", flat=True)) == [alice.pk]
    held = set(Holding.objects.filter(portfolio__owner=alice).values_list("asset__symbol", flat=True))
    assert set(Quote.objects.values_list("asset__symbol", flat=True)) == held


def test_strategy_applies_rebalancing_only_when_asked(demo, admin):
    before = list(Holding.objects.order_by("id").values_list("quantity", flat=True))
    assert run_now("strategy", user=admin).status == RunStatus.SUCCESS
    assert list(Holding.objects.order_by("id").values_list("quantity", flat=True)) == before
    assert RebalanceProposal.objects.filter(status="proposed").exists()

    applied = run_now("strategy", user=admin, apply_rebalancing=True)
    assert applied.status == RunStatus.SUCCESS
    assert RebalanceProposal.objects.filter(status="applied").exists()
    assert list(Holding.objects.order_by("id").values_list("quantity", flat=True)) != before


def test_queued_runs_start_by_priority_and_wait_for_conflicting_scopes(demo, alice):
    low = make_run("strategy", priority="low")
    high = make_run("benchmark", priority="high")
    medium = make_run("portfolio", target_user_id=alice.pk, priority="medium")
    assert claim_next_run() == high
    assert claim_next_run() == medium
    assert claim_next_run() is None  # strategy conflicts with a running portfolio refresh
    execute_claimed_run(medium)  # frees portfolio:alice and picks up what waits (inline tasks)
    low.refresh_from_db()
    assert low.status == RunStatus.SUCCESS
    assert ScopeLease.objects.get().run == high


def test_emergency_lane_takes_only_emergencies(demo, admin):
    make_run("prices", user=admin, priority="high")
    assert execute_next_refresh(min_priority=RunPriority.EMERGENCY) is None
    urgent = make_run("benchmark", user=admin, priority="emergency")
    assert execute_next_refresh(min_priority=RunPriority.EMERGENCY) == urgent


def test_a_run_past_its_time_limit_ends_as_timeout_and_frees_its_scope(demo, settings):
    settings.REFRESH_TIME_LIMIT_SECONDS = {"prices": 0}
    run = run_now("prices")
    assert run.status == RunStatus.TIMEOUT
    assert "time limit" in run.errors[0]
    assert not ScopeLease.objects.exists()


def test_a_running_run_cancelled_stops_at_its_next_batch(demo):
    run = claim_next_run(run_id=make_run("prices").pk)
    assert run is not None
    RefreshRun.objects.filter(pk=run.pk).update(cancel_requested_at=timezone.now())
    run = execute_claimed_run(run)
    assert run.status == RunStatus.CANCELLED
    assert not ScopeLease.objects.exists()
    assert not Quote.objects.exists()


def test_reaper_fails_runs_of_lost_workers_and_the_queue_moves_on(demo):
    lost = claim_next_run(run_id=make_run("prices").pk)
    past = timezone.now() - timedelta(seconds=1)
    RefreshRun.objects.filter(pk=lost.pk).update(lease_expires_at=past)
    ScopeLease.objects.filter(run=lost).update(expires_at=past)
    waiting = make_run("prices", mode="full")
    assert reap_lost_runs() == 1
    lost.refresh_from_db()
    waiting.refresh_from_db()
    assert lost.status == RunStatus.FAILED
    assert "worker lost" in lost.errors
    assert waiting.status == RunStatus.SUCCESS


def test_an_identical_request_does_not_join_a_run_whose_worker_is_lost(demo):
    running = claim_next_run(run_id=make_run("prices").pk)
    same, created = request_refresh(kind="prices", requested_by=None, source=RunSource.COMMAND, enqueue=False)
    assert (same.pk, created) == (running.pk, False)  # its worker still renews the lease: joined

    RefreshRun.objects.filter(pk=running.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    fresh, created = request_refresh(kind="prices", requested_by=None, source=RunSource.COMMAND, enqueue=False)

    running.refresh_from_db()
    assert created
    assert fresh.pk != running.pk
    assert fresh.status == RunStatus.QUEUED
    assert (running.status, running.errors[-1]) == (RunStatus.FAILED, "worker lost")
    assert not ScopeLease.objects.filter(run=running).exists()


def test_estimated_completion_follows_recent_durations(demo):
    done = run_now("benchmark")
    RefreshRun.objects.filter(pk=done.pk).update(duration_ms=40_000)
    queued = make_run("benchmark")
    eta = (queued.estimated_completion - timezone.now()).total_seconds()
    assert 35 < eta <= 40


def test_each_process_keeps_an_estimate_a_few_seconds_and_forgets_it_when_a_run_finishes(demo, monkeypatch):
    from django.core.cache import cache

    from refresh.services import tracking

    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])  # the clock tracking's memo reads
    done = run_now("benchmark")
    RefreshRun.objects.filter(pk=done.pk).update(duration_ms=40_000)
    assert tracking.estimate_duration_seconds(kind="benchmark", mode="incremental") == 40
    RefreshRun.objects.filter(pk=done.pk).update(duration_ms=20_000)
    cache.clear()  # as when another process's run finished: only the shared cache is told
    assert tracking.estimate_duration_seconds(kind="benchmark", mode="incremental") == 40
    now[0] += 5.1
    assert tracking.estimate_duration_seconds(kind="benchmark", mode="incremental") == 20
    RefreshRun.objects.filter(pk=done.pk).update(duration_ms=10_000)
    tracking.forget_duration_estimate(kind="benchmark", mode="incremental")  # a run of this process finished
    assert tracking.estimate_duration_seconds(kind="benchmark", mode="incremental") == 10


def test_dedup_is_enforced_by_the_database(demo):
    first = make_run("benchmark")
    again, created = request_refresh(kind="benchmark", requested_by=None, source=RunSource.API, enqueue=False)
    assert (again, created) == (first, False)
    RefreshRun.objects.filter(pk=first.pk).update(status=RunStatus.SUCCESS)
    third, created = request_refresh(kind="benchmark", requested_by=None, source=RunSource.API, enqueue=False)
    assert created
    assert third != first


def test_the_active_run_of_a_request_is_found_through_its_unique_index(demo):
    run = make_run("benchmark")
    assert list(active_runs_with_key(run.dedup_key)) == [run]
    if connection.vendor == "sqlite":  # bound statuses made SQLite scan every active run instead
        assert "USING INDEX one_active_run_per_request" in active_runs_with_key(run.dedup_key).explain()
    RefreshRun.objects.filter(pk=run.pk).update(status=RunStatus.SUCCESS)
    assert not active_runs_with_key(run.dedup_key).exists()


def test_quotes_are_decimal_and_positive(demo):
    run_now("prices")
    assert all(isinstance(q, Decimal) and q > 0 for q in Quote.objects.values_list("price", flat=True))


def test_a_run_in_process_does_not_jump_ahead_of_a_more_urgent_conflicting_run(demo, admin):
    mine = make_run("prices", user=admin, priority="low")
    make_run("all", user=admin, priority="emergency")
    assert claim_next_run(run_id=mine.pk) is None  # "all" conflicts and goes first
    assert claim_next_run().kind == "all"


def test_a_worker_whose_run_was_reaped_does_not_overwrite_the_verdict(demo):
    run = claim_next_run(run_id=make_run("prices").pk)
    assert run is not None
    RefreshRun.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, errors=["worker lost"])
    ScopeLease.objects.filter(run=run).delete()
    run = execute_claimed_run(run)
    assert run.status == RunStatus.FAILED
    assert run.errors == ["worker lost"]


def test_an_unexpected_error_is_recorded_without_its_internals(demo, monkeypatch, settings):
    settings.TWELVEDATA_API_KEY = "sk-secret-key-123456"

    def explode(*args, **kwargs):
        raise RuntimeError("connection to db-host failed with key sk-secret-key-123456")

    monkeypatch.setattr("refresh.steps.flow.store_quotes", explode)
    run = run_now("prices")
    assert run.status == RunStatus.FAILED
    assert run.errors[0].startswith("Internal error (RuntimeError)")
    assert "sk-secret-key-123456" not in run.errors[0]


def test_a_stop_after_data_was_saved_drops_every_cached_figure(demo, monkeypatch):
    from core import read_cache
    from refresh.services.tracking import RunTracker

    before = read_cache.generation()
    monkeypatch.setattr(RunTracker, "checkpoint", _stop_once_written)
    run = run_now("prices")
    assert run.status == RunStatus.CANCELLED
    assert read_cache.generation() == before + 1


def _stop_once_written(tracker):
    from refresh.errors import RunStopped

    if tracker.wrote_data:
        raise RunStopped(RunStatus.CANCELLED, "Cancelled on request.")


def test_queued_runs_never_show_an_estimated_completion_in_the_past(demo):
    from refresh.api.serializers import run_status

    queued = make_run("benchmark")
    RefreshRun.objects.filter(pk=queued.pk).update(estimated_completion=timezone.now() - timedelta(minutes=5))
    queued.refresh_from_db()
    eta = run_status(queued)["estimated_completion"]
    assert eta > timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
