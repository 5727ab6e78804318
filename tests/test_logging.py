"""Structured JSON logs: request details, runs logged apart by origin, and no key or secret anywhere."""

import io
import json
import logging
import time
from functools import partial
from http import HTTPStatus
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from core.log_context import current_request_id
from market_data.models import PriceBar
from notifications.models import WebhookSource
from notifications.signing import signed_headers
from refresh.models import RefreshRun, RunStatus
from refresh.services.execution import execute_next_refresh
from refresh.services.schedules import trigger_scheduled_refresh

BASE = "/api/v1/manual/refresh"
TD_KEY = "td-live-key-8f3a9c2e71b4"
WEBHOOK_SECRET = "whsec-leak-check-5d1e0b7a93"


@pytest.fixture
def log_output():
    """What the configured console handler writes (its filters and JSON formatter included)."""
    handler = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    assert isinstance(handler, logging.StreamHandler)
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


def records(buffer) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]


def test_each_request_is_one_json_record_with_who_what_and_how_long(admin_api, run_tasks, log_output):
    response = run_tasks(
        admin_api.post,
        f"{BASE}/prices?trace=1",
        {"mode": "smart"},
        format="json",
        headers={"X-Request-ID": "req-abc.123"},
    )

    assert response["X-Request-ID"] == "req-abc.123"
    access = [r for r in records(log_output) if r.get("event") == "http_request"]
    assert len(access) == 1
    entry = access[0]
    assert entry["logger"] == "refresh.http"
    assert entry["level"] == "INFO"
    assert entry["request_id"] == "req-abc.123"
    assert (entry["method"], entry["endpoint"], entry["status_code"]) == ("POST", f"{BASE}/prices", 202)
    assert (entry["user"], entry["role"], entry["client_address"]) == ("admin", "admin", "127.0.0.1")
    assert entry["parameters"] == {"query": {"trace": "1"}, "body": {"mode": "smart"}}
    assert entry["user_action"] is True
    assert isinstance(entry["duration_ms"], int)
    assert entry["time"].endswith("+00:00")


def test_records_written_while_serving_a_request_carry_its_id(demo, client, log_output):
    WebhookSource.objects.create(name="feed", secret=WEBHOOK_SECRET)
    body = json.dumps({"id": "evt-9", "type": "benchmark.update"}).encode()
    response = client.post(
        f"{BASE}/webhooks/feed/",
        data=body,
        content_type="application/json",
        headers=signed_headers(secret=WEBHOOK_SECRET, body=body),
    )

    received = [r for r in records(log_output) if r.get("event") == "webhook_received"]
    assert len(received) == 1
    assert received[0]["request_id"] == response["X-Request-ID"]
    assert received[0]["refresh_id"] == response.json()["refresh_id"]


def test_a_workers_records_carry_the_request_id_of_the_request_that_started_the_run(admin_api, log_output):
    response = admin_api.post(
        f"{BASE}/prices", {"mode": "smart"}, format="json", headers={"X-Request-ID": "req-worker.7"}
    )  # queued: nothing runs it here
    run = RefreshRun.objects.get(refresh_id=response.json()["refresh_id"])
    assert run.request_id == "req-worker.7"
    assert admin_api.get(response["Location"]).json()["request_id"] == "req-worker.7"
    log_output.truncate(0)
    log_output.seek(0)

    # Later, in a worker: no request around it.
    executed = execute_next_refresh()

    assert executed.refresh_id == run.refresh_id
    finished = [r for r in records(log_output) if r["logger"] == "refresh.manual"]
    assert finished
    assert all(r["request_id"] == "req-worker.7" for r in finished)
    assert all(r.get("refresh_id") == run.refresh_id for r in records(log_output))
    assert current_request_id() is None  # the worker's context ends with the run


def test_a_bad_or_missing_request_id_is_replaced(admin_api, log_output):
    response = admin_api.get(f"{BASE}/runs/", headers={"X-Request-ID": "bad id\nforged: line"})
    assert len(response["X-Request-ID"]) == 32
    assert records(log_output)[-1]["request_id"] == response["X-Request-ID"]


def test_manual_and_scheduled_runs_go_to_their_own_loggers(admin_api, run_tasks, log_output):
    run_tasks(admin_api.post, f"{BASE}/benchmark", {}, format="json")
    run_tasks(trigger_scheduled_refresh, kind="prices", mode="incremental")

    finished = {r["logger"]: r for r in records(log_output) if r.get("event") == "refresh.completed"}
    assert set(finished) == {"refresh.manual", "refresh.scheduled"}
    manual, scheduled = finished["refresh.manual"], finished["refresh.scheduled"]
    assert (manual["kind"], manual["source"], manual["status"]) == ("benchmark", "api", "success")
    assert (scheduled["kind"], scheduled["source"]) == ("prices", "schedule")
    assert scheduled["items_updated"]["prices"] == 11  # data changes, per table
    assert isinstance(scheduled["duration_ms"], int)


def test_errors_are_logged_with_their_stack_trace_redacted(log_output, settings):
    settings.TWELVEDATA_API_KEY = TD_KEY

    def fetch():
        raise RuntimeError(f"GET https://api.twelvedata.com/quote?symbol=AAPL&apikey={TD_KEY} failed")

    try:
        fetch()
    except RuntimeError:
        logging.getLogger("refresh.execution").exception("refresh run ref_x failed")

    entry = records(log_output)[-1]
    assert entry["level"] == "ERROR"
    assert "Traceback" in entry["exc_info"]
    assert "RuntimeError" in entry["exc_info"]
    assert TD_KEY not in log_output.getvalue()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"api_key": "plain-value-1234567"}, "nothing here"),
        ({"headers": {"Authorization": "Token 0123456789abcdef0123456789abcdef"}}, "calling"),
        ({"payload": {"nested": {"webhook_secret": "plain-value-1234567"}}}, "event"),
        ({}, "url https://x.test/q?apikey=plain-value-1234567&symbol=A"),
        ({}, "header Authorization: Bearer plain-value-1234567"),
        ({}, 'body {"client_secret": "plain-value-1234567"}'),
    ],
)
def test_secret_looking_values_are_redacted(log_output, extra, message):
    logging.getLogger("refresh.anything").warning(message, extra=extra)
    written = log_output.getvalue()
    assert "plain-value-1234567" not in written
    assert "0123456789abcdef0123456789abcdef" not in written
    assert "[redacted]" in written


def _twelvedata(closes: dict, request):
    """Quotes for every requested symbol; one symbol's error echoes the key, as a careless API might.

    Provider calls run in the fetch step's threads, which do not see this test's uncommitted
    rows, so the closes are read beforehand."""
    query = parse_qs(urlparse(request.url).query)
    symbols = query["symbol"][0].split(",")
    if request.url.startswith("https://td.test/time_series"):
        entries = {
            s: {"code": 400, "status": "error", "message": "No data is available on the specified dates."}
            for s in symbols
        }
    else:
        entries = {}
        for s in symbols:
            close = closes[s]
            entries[s] = {
                "symbol": s,
                "close": str(close),
                "previous_close": str(close),
                "open": str(close),
                "high": str(close),
                "low": str(close),
                "volume": "1000",
                "datetime": "2026-01-02",
                "timestamp": int(time.time()) - 60,
                "currency": "USD",
                "is_market_open": False,
            }
        entries[symbols[0]] = {"code": 400, "status": "error", "message": f"symbol not found for apikey {TD_KEY}"}
    body = entries[symbols[0]] if len(symbols) == 1 else entries
    return 200, {"api-credits-used": str(len(symbols))}, json.dumps(body)


def test_a_refresh_with_a_twelve_data_key_and_a_webhook_secret_logs_neither(
    demo, settings, client, run_tasks, log_output
):
    settings.TWELVEDATA_API_KEY = TD_KEY
    settings.MARKET_DATA_PROVIDER = "twelvedata"
    settings.TWELVEDATA_BASE_URL = "https://td.test"
    WebhookSource.objects.create(name="feed", secret=WEBHOOK_SECRET)
    # A careless sender even puts the secret in the event it signs.
    body = json.dumps(
        {"id": "evt-1", "type": "alert.condition", "data": {"note": f"signed with {WEBHOOK_SECRET}"}}
    ).encode()
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.DEBUG)
    logging.getLogger("urllib3").setLevel(logging.DEBUG)
    try:
        # The latest wins.
        closes = dict(PriceBar.objects.order_by("date").values_list("asset__symbol", "close"))
        answer = partial(_twelvedata, closes)
        with responses.RequestsMock(assert_all_requests_are_fired=False) as api:
            api.add_callback(responses.GET, "https://td.test/quote", callback=answer)
            api.add_callback(responses.GET, "https://td.test/time_series", callback=answer)
            response = run_tasks(
                client.post,
                f"{BASE}/webhooks/feed/",
                data=body,
                content_type="application/json",
                headers=signed_headers(secret=WEBHOOK_SECRET, body=body),
            )
            assert api.calls, "the refresh must have called the (replayed) Twelve Data API"
            assert all(call.request.headers["Authorization"] == f"apikey {TD_KEY}" for call in api.calls)
    finally:
        root.setLevel(level)
        logging.getLogger("urllib3").setLevel(logging.WARNING)

    assert response.status_code == HTTPStatus.ACCEPTED
    run = RefreshRun.objects.get()
    assert run.status == RunStatus.PARTIAL
    assert run.provider_calls > 0
    written = log_output.getvalue()
    logged = records(log_output)
    assert any(r.get("refresh_id") == run.refresh_id and r["logger"] == "refresh.manual" for r in logged)
    assert any(r.get("event") == "http_request" and r["endpoint"] == f"{BASE}/webhooks/feed/" for r in logged)
    assert TD_KEY not in written
    assert WEBHOOK_SECRET not in written


def test_runservers_access_log_goes_through_the_redacting_handler(log_output):
    token = "9f1c2e3d4b5a69788796a5b4c3d2e1f0a1b2c3d4"
    logging.getLogger("django.server").info(
        '"%s" %s %s', f"GET /api/v1/portfolios/?token={token} HTTP/1.1", "200", "12"
    )
    assert token not in log_output.getvalue()
    assert records(log_output)[-1]["logger"] == "django.server"


def test_gunicorns_access_log_lines_are_redacted():
    import importlib.util
    from datetime import timedelta
    from pathlib import Path
    from types import SimpleNamespace

    from gunicorn.config import Config

    spec = importlib.util.spec_from_file_location("gunicorn_conf", Path(__file__).parents[1] / "gunicorn.conf.py")
    assert spec is not None
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    token = "9f1c2e3d4b5a69788796a5b4c3d2e1f0a1b2c3d4"
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/api/v1/assets/?token={token}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": "/api/v1/assets/",
        "QUERY_STRING": f"token={token}",
        "HTTP_AUTHORIZATION": f"Token {token}",
    }
    request = SimpleNamespace(headers=[("AUTHORIZATION", f"Token {token}"), ("COOKIE", f"sessionid={token}")])
    response = SimpleNamespace(status="200 OK", headers=[], sent=10)

    atoms = conf.RedactingLogger(Config()).atoms(response, request, environ, timedelta(milliseconds=5))

    assert token not in json.dumps(atoms, default=str)
    assert atoms["s"] == "200"
    assert atoms["U"] == "/api/v1/assets/"
    assert conf.worker_class == "gthread"
    assert conf.threads >= 4
    assert conf.timeout > 20
