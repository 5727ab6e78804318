"""Worker processes share one credit budget against a Twelve Data stand-in served over HTTP.

The thread test beside this one controls the clock; this one is the deployment itself: two
qcluster processes (two machines, two workers each, since a busy cluster may hold the next
task), real time, the provider reached through `requests`, and the budget in the database
(SQLite and PostgreSQL passes) or in Redis (when REDIS_URL is set). Each run needs 4 credits
and the budget is 4 a minute, so whichever run comes second must wait for the next minute:
the test sees it waiting, having spent nothing, then cancels it (the thread test beside this
one follows both runs to the end).
"""

import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from django.utils import timezone

from refresh.models import RefreshRun, RunSource, RunStatus
from refresh.services.execution import cancel_run
from refresh.services.requests import request_refresh
from tests.market_data.test_twelvedata import quote_body, series_body
from tests.refresh.conftest import wait_until
from tests.refresh.test_provider_budget import seed_two_holders

pytestmark = pytest.mark.qcluster
KEY = "td-process-test-key-0123456789"
SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
PER_MINUTE = 4


class TwelveDataStandIn(ThreadingHTTPServer):
    """Answers /quote and /time_series in Twelve Data's shapes and notes each call's credits and minute."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.calls: list[tuple[datetime, str, list[str]]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: TwelveDataStandIn

    def do_GET(self):
        url = urlparse(self.path)
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        symbols = query.get("symbol", "").split(",")
        with self.server.lock:
            self.server.calls.append((datetime.now(UTC), url.path, symbols))
        if self.headers.get("Authorization") != f"apikey {KEY}":
            self._send(401, {"code": 401, "message": "Invalid API key", "status": "error"})
            return
        now = int(datetime.now(UTC).timestamp())
        entry = (
            (lambda s: quote_body(s, close="101.00000", previous_close="100.00000", change=None, timestamp=now))
            if url.path == "/quote"
            else (lambda s: series_body(s, []))
        )
        entries = {symbol: entry(symbol) for symbol in symbols}
        self._send(200, entries[symbols[0]] if len(symbols) == 1 else entries)

    def _send(self, status: int, body: dict):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def twelvedata():
    server = TwelveDataStandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_two_worker_processes_never_spend_more_than_the_minute_budget(workers, twelvedata):
    owners = seed_two_holders(SYMBOLS, through=timezone.now().date())
    for _ in range(2):
        workers.start(
            Q_WORKERS=2,
            MARKET_DATA_PROVIDER="twelvedata",
            TWELVEDATA_API_KEY=KEY,
            TWELVEDATA_BASE_URL=twelvedata.url,
            MARKET_DATA_CREDITS_PER_MINUTE=PER_MINUTE,
            MARKET_DATA_CREDITS_PER_DAY=800,
            MARKET_DATA_QUARANTINE_ANOMALIES="false",
        )
    # Everything below happens inside one minute: the stand-in counts a call in the minute it
    # arrives, a worker in the minute it reserved, and the second run may spend in the next one.
    if datetime.now(UTC).second >= 40:
        time.sleep(61 - datetime.now(UTC).second)
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    runs = [
        request_refresh(kind="portfolio", target_user_id=owner.pk, requested_by=None, source=RunSource.COMMAND)[0]
        for owner in owners
    ]
    ids = [run.pk for run in runs]

    def one_done_one_waiting():
        states = sorted(RefreshRun.objects.filter(pk__in=ids).values_list("status", "current_step"))
        return states == [(RunStatus.IN_PROGRESS, "Fetching data"), (RunStatus.SUCCESS, "Completed")]

    wait_until(one_done_one_waiting, timeout=15, message="one run to finish and the other to wait for credits")
    time.sleep(1.5)  # the waiting run is given every chance to overspend

    assert datetime.now(UTC).replace(second=0, microsecond=0) == minute, "the test outran its minute"
    finished = RefreshRun.objects.get(pk__in=ids, status=RunStatus.SUCCESS)
    waiting = RefreshRun.objects.get(pk__in=ids, status=RunStatus.IN_PROGRESS)
    assert finished.worker, workers.logs()
    assert waiting.worker not in ("", finished.worker), workers.logs()  # each in a worker process of its own
    quotes = [symbols for at, path, symbols in twelvedata.calls if path == "/quote"]
    assert sum(len(symbols) for symbols in quotes) == PER_MINUTE  # the first run's four; none of the second's
    assert finished.credits_used == sum(len(s) for _, _, s in twelvedata.calls)
    assert waiting.credits_used == 0
    # The waiting run stops between its checks for credits, having spent nothing.
    cancel_run(run=waiting, requested_by=None)
    wait_until(
        lambda: RefreshRun.objects.get(pk=waiting.pk).status == RunStatus.CANCELLED,
        timeout=10,
        message="the waiting run to stop",
    )
    assert sum(len(symbols) for at, path, symbols in twelvedata.calls if path == "/quote") == PER_MINUTE
