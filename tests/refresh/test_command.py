"""manage.py refresh and seed_demo from the terminal's point of view."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from market_data.models import Asset
from portfolios.models import BenchmarkComparison, Portfolio, PortfolioMetrics, Signal
from refresh.models import RefreshRun, RunStatus


def refresh(*args):
    out = StringIO()
    call_command("refresh", *args, stdout=out)
    return json.loads(out.getvalue())


def test_refresh_all_prints_the_success_json_and_stores_everything(demo):
    body = refresh("--all", "--json")
    assert body["status"] == "success"
    assert body["refresh_id"].startswith("ref_")
    assert body["items_updated"]["prices"] > 0
    run = RefreshRun.objects.get()
    assert (run.source, run.requested_role) == ("command", "system")
    assert PortfolioMetrics.objects.count() == Portfolio.objects.count() == 3
    assert BenchmarkComparison.objects.count() == 3
    assert Signal.objects.exists()


def test_refresh_exits_non_zero_when_the_run_fails(demo, settings):
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = list(Asset.objects.values_list("symbol", flat=True))
    with pytest.raises(SystemExit) as exit_info:
        refresh("--prices", "--json")
    assert exit_info.value.code == 1
    assert RefreshRun.objects.get().status == RunStatus.FAILED


def test_refresh_exits_2_on_partial_and_lists_each_failed_symbol(demo, settings):
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = ["MSFT", "AAPL"]
    out = StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("refresh", "--prices", "--json", stdout=out)
    assert exit_info.value.code == 2
    body = json.loads(out.getvalue())
    assert body["status"] == "partial"
    assert [error.split(":")[0] for error in body["errors"]] == ["AAPL", "MSFT"]  # each with its reason, by symbol


def test_bad_arguments_change_nothing(demo):
    with pytest.raises(CommandError):
        call_command("refresh", "--portfolio", "99999", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("refresh", "--prices", "--symbols", "NOPE", stdout=StringIO())
    assert not RefreshRun.objects.exists()


def test_queue_detach_hands_the_run_to_workers(demo):
    body = refresh("--benchmark", "--queue", "--detach", "--json")
    assert body["status"] == "queued"


def test_portfolio_as_user(demo, alice):
    body = refresh("--portfolio", str(alice.pk), "--as-user", "alice", "--json")
    assert body["status"] == "success"
    assert RefreshRun.objects.get().requested_role == "user"


def test_seed_demo_is_idempotent(demo):
    out = StringIO()
    call_command("seed_demo", "--users", "3", "--assets", "10", "--years", "0", stdout=out)
    assert "Admin login: admin / admin-demo" in out.getvalue()
    assert Portfolio.objects.count() == 3
