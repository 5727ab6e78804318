"""Each symbol's outcome in a run, over HTTP: updated, unchanged, skipped, failed and quarantined,
paginated and filtered, visible to whoever may see the run, written without a query per symbol.

The clock stands still on a Monday at 15:00 UTC (the `clock` fixture), with the market open;
the mock's quotes move once a minute, so two runs in the same minute fetch the same prices.
"""

import re
from datetime import date, timedelta
from http import HTTPStatus

import pytest
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.pagination import PageNumberPagination

from market_data.models import PriceBar, Quote
from refresh.models import RefreshRun, RunStatus, RunSymbol
from refresh.services.execution import execute_run_in_process
from tests.refresh.test_api import BASE

pytestmark = pytest.mark.django_db

SYMBOLS = ["AAPL", "AMZN", "GOOGL", "JNJ", "JPM", "META", "MSFT", "NVDA", "PG", "SPY", "XOM"]  # the demo's
OUTCOMES_TABLE = RunSymbol._meta.db_table


@pytest.fixture(autouse=True)
def market(clock, no_rate_limits):
    """The clock stands still before the demo is seeded; the runs repeat requests freely."""


def start(api, run_tasks, kind="prices", **body) -> str:
    response = run_tasks(api.post, f"{BASE}/{kind}", body, format="json")
    assert response.status_code == HTTPStatus.ACCEPTED, response.json()
    return response.json()["refresh_id"]


def outcomes(api, refresh_id: str, query: str = "") -> dict[str, tuple[str, str | None]]:
    """Symbol -> (outcome, reason), from one page big enough for the demo."""
    response = api.get(f"{BASE}/runs/{refresh_id}/symbols/{query}")
    assert response.status_code == HTTPStatus.OK, response.json()
    body = response.json()
    assert body["count"] == len(body["results"])
    return {row["symbol"]: (row["outcome"], row["reason"]) for row in body["results"]}


def test_a_prices_run_lists_updated_symbols_and_failed_ones_with_the_reason(admin_api, run_tasks, settings):
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = ["AAPL", "MSFT"]

    refresh_id = start(admin_api, run_tasks)

    assert RefreshRun.objects.get(refresh_id=refresh_id).status == RunStatus.PARTIAL
    listed = outcomes(admin_api, refresh_id)
    assert listed == {
        **dict.fromkeys(SYMBOLS, ("updated", None)),
        "AAPL": ("failed", "symbol not found: AAPL"),
        "MSFT": ("failed", "symbol not found: MSFT"),
    }
    assert list(listed) == sorted(SYMBOLS)  # by symbol


def test_a_smart_run_right_after_lists_every_symbol_skipped(admin_api, run_tasks):
    start(admin_api, run_tasks)

    refresh_id = start(admin_api, run_tasks, mode="smart")

    run = RefreshRun.objects.get(refresh_id=refresh_id)
    assert run.provider_calls == 0
    assert outcomes(admin_api, refresh_id) == dict.fromkeys(SYMBOLS, ("skipped", None))


def test_a_refetch_in_the_same_minute_lists_unchanged_and_the_next_minute_updated(admin_api, run_tasks, clock):
    start(admin_api, run_tasks)
    clock.shift(timedelta(seconds=30))

    same_minute = start(admin_api, run_tasks)

    assert outcomes(admin_api, same_minute) == dict.fromkeys(SYMBOLS, ("unchanged", None))
    assert set(Quote.objects.values_list("fetched_at", flat=True)) == {timezone.now()}  # fetched, stored as checked
    clock.shift(timedelta(minutes=1))
    next_minute = start(admin_api, run_tasks)
    assert outcomes(admin_api, next_minute) == dict.fromkeys(SYMBOLS, ("updated", None))


def test_a_price_held_back_as_an_anomaly_is_listed_quarantined_with_the_reason(admin_api, run_tasks):
    # Friday's stored close halved: Monday's quote then looks like a 100% jump.
    PriceBar.objects.filter(asset__symbol="AAPL", date=date(2030, 1, 4)).update(close=F("close") / 2)

    refresh_id = start(admin_api, run_tasks)

    outcome, reason = outcomes(admin_api, refresh_id).pop("AAPL")
    assert outcome == "quarantined"
    assert re.fullmatch(r"Moved \+\d+\.\d% from the previous close \d+\.\d+\.", reason or "")
    assert not Quote.objects.filter(asset__symbol="AAPL").exists()
    assert outcomes(admin_api, refresh_id, "?outcome=updated") == dict.fromkeys(
        set(SYMBOLS) - {"AAPL"}, ("updated", None)
    )


def test_symbols_come_in_pages_and_filter_by_outcome(admin_api, run_tasks, settings, monkeypatch):
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = ["JNJ", "XOM"]
    refresh_id = start(admin_api, run_tasks)
    monkeypatch.setattr(PageNumberPagination, "page_size", 4)
    url = f"{BASE}/runs/{refresh_id}/symbols/"

    first = admin_api.get(url).json()
    last = admin_api.get(url, {"page": 3}).json()
    failed = admin_api.get(url, {"outcome": "failed"}).json()

    assert first["count"] == last["count"] == len(SYMBOLS)
    assert [row["symbol"] for row in first["results"]] == sorted(SYMBOLS)[:4]
    assert first["previous"] is None
    assert first["next"].endswith(f"{url}?page=2")
    assert [row["symbol"] for row in last["results"]] == sorted(SYMBOLS)[8:]
    assert last["next"] is None
    assert failed["count"] == 2
    assert [(row["symbol"], row["outcome"]) for row in failed["results"]] == [("JNJ", "failed"), ("XOM", "failed")]
    assert admin_api.get(url, {"outcome": "skipped"}).json()["count"] == 0
    assert admin_api.get(url, {"page": 4}).status_code == HTTPStatus.NOT_FOUND


@pytest.mark.parametrize("query", ["outcome=lost", "outcome=FAILED", "status=failed", "symbol=AAPL"])
def test_an_unknown_filter_or_outcome_is_a_400(admin_api, run_tasks, query):
    refresh_id = start(admin_api, run_tasks)

    response = admin_api.get(f"{BASE}/runs/{refresh_id}/symbols/?{query}")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response.json()["status"] == "error"
    assert response.json()["error"]["code"] == "invalid_filter"


def test_the_browsable_api_shows_the_symbols_with_their_filter(admin, admin_api, run_tasks, settings):
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = ["XOM"]
    refresh_id = start(admin_api, run_tasks)
    browser = Client()
    browser.force_login(admin)

    page = browser.get(f"{BASE}/runs/{refresh_id}/symbols/", {"outcome": "failed"}, headers={"accept": "text/html"})

    assert page.status_code == HTTPStatus.OK
    html = page.content.decode()
    assert "symbol not found: XOM" in html
    assert "AAPL" not in html
    assert 'name="outcome"' in html  # django-filter's form, for this list's own filter


def test_who_may_see_the_run_may_see_its_symbols(admin_api, alice, alice_api, bob, run_tasks):
    admins = start(admin_api, run_tasks)
    bobs = start(admin_api, run_tasks, kind=f"portfolio/{bob.pk}")
    hers = start(alice_api, run_tasks, kind=f"portfolio/{alice.pk}")

    for other in (admins, bobs, "ref_doesnotexist"):
        response = alice_api.get(f"{BASE}/runs/{other}/symbols/")
        assert response.status_code == HTTPStatus.NOT_FOUND
        assert response.json()["error"]["code"] == "not_found"
    held = set(alice.portfolios.values_list("holdings__asset__symbol", flat=True))
    assert set(outcomes(alice_api, hers)) == held
    assert set(outcomes(admin_api, hers)) == held  # an admin sees every run


def test_a_run_that_stops_early_keeps_the_outcomes_of_what_it_did(admin_api, settings):
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = ["META"]
    refresh_id = admin_api.post(f"{BASE}/prices", {}, format="json").json()["refresh_id"]

    cancels: list[int] = []  # status codes of the cancel requests sent

    def cancel_while_storing(run):
        if run.current_step == "Updating database" and not cancels:
            cancels.append(admin_api.post(f"{BASE}/runs/{run.refresh_id}/cancel/").status_code)

    run = execute_run_in_process(run=RefreshRun.objects.get(refresh_id=refresh_id), listener=cancel_while_storing)

    assert cancels == [HTTPStatus.OK]
    assert run.status == RunStatus.CANCELLED
    assert outcomes(admin_api, refresh_id) == {
        **dict.fromkeys(SYMBOLS, ("updated", None)),
        "META": ("failed", "symbol not found: META"),
    }
    queued = admin_api.post(f"{BASE}/benchmark", {}, format="json").json()["refresh_id"]
    admin_api.post(f"{BASE}/runs/{queued}/cancel/")
    assert outcomes(admin_api, queued) == {}  # cancelled before it dealt with any symbol


def test_recording_outcomes_takes_no_query_per_symbol(admin_api, run_tasks, settings):
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = ["MSFT"]

    def queries_on_outcomes(**body) -> tuple[int, str]:
        with CaptureQueriesContext(connection) as queries:
            refresh_id = start(admin_api, run_tasks, **body)
        return sum(OUTCOMES_TABLE in query["sql"] for query in queries.captured_queries), refresh_id

    few, two_symbols = queries_on_outcomes(symbols=["AAPL", "MSFT"])
    many, every_symbol = queries_on_outcomes()

    assert len(outcomes(admin_api, two_symbols)) == 2
    assert len(outcomes(admin_api, every_symbol)) == len(SYMBOLS)
    # One insert a run where Django logs it (SQLite); on PostgreSQL bulk writes go through
    # psycopg's own cursor, unlogged, so what would count there is a query per symbol.
    assert many == few <= 1
