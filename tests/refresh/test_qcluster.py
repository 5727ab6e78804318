"""Real django-q2 worker processes: a run requested over HTTP, and portfolio chunks spread over them."""

import os
import time
from http import HTTPStatus
from itertools import chain
from pathlib import Path

import pytest
import requests
from rest_framework.authtoken.models import Token

from portfolios.models import BenchmarkComparison, CalculationBatch, Portfolio, PortfolioMetrics
from portfolios.services.benchmark import recalculate_benchmark_comparisons
from portfolios.services.chunks import calculate_in_chunks
from portfolios.services.performance import recalculate_portfolio_metrics
from refresh.models import RefreshRun, RunSource, RunStatus
from refresh.services.demo import seed_demo
from refresh.services.requests import request_refresh
from tests.refresh.conftest import wait_until


@pytest.mark.qcluster
def test_a_run_requested_over_http_finishes_in_a_real_worker(live_server, workers, admin):
    workers.start()
    headers = {"Authorization": f"Token {Token.objects.create(user=admin).key}"}
    response = requests.post(
        f"{live_server.url}/api/v1/manual/refresh/all", json={"mode": "full"}, headers=headers, timeout=10
    )
    assert response.status_code == HTTPStatus.ACCEPTED, response.text
    location = f"{live_server.url}{response.headers['Location']}"
    deadline = time.monotonic() + 90
    body = {}
    while time.monotonic() < deadline:
        body = requests.get(location, headers=headers, timeout=10).json()
        if body["status"] not in ("queued", "in_progress"):
            break
        time.sleep(0.3)
    assert body["status"] == "success", (body, workers.logs())
    assert body["items_updated"]["prices"] > 0
    assert body["steps"][-1]["name"] == "Reporting status"


@pytest.mark.qcluster
def test_a_run_with_chunk_tasks_for_other_workers_stores_the_figures_of_one_chunk(workers, settings):
    seed_demo(users=6, assets=8, years=1)
    for _ in range(2):
        workers.start(REFRESH_METRICS_CHUNK="2", REFRESH_CHUNK_TASKS="1")
    run, _ = request_refresh(kind="all", mode="full", requested_by=None, source=RunSource.COMMAND)

    wait_until(lambda: RefreshRun.objects.get(pk=run.pk).is_finished, timeout=90, message="the run to finish")
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCESS, (run.errors, workers.logs())
    assert PortfolioMetrics.objects.count() == BenchmarkComparison.objects.count() == Portfolio.objects.count() == 6
    assert not CalculationBatch.objects.exists()
    stored = _figures()
    settings.REFRESH_METRICS_CHUNK = 1000  # the same portfolios in one chunk, in this process
    recalculate_portfolio_metrics()
    recalculate_benchmark_comparisons()
    assert _figures() == stored


def _figures():
    def rows(model):
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "calculated_at"]
        return sorted(model.objects.values_list(*fields))

    return rows(PortfolioMetrics), rows(BenchmarkComparison)


def take_part(params, chunk):
    """Chunk work that notes in params["log"] who started and finished which portfolios.

    On its first chunk each process waits until params["parties"] processes have started one, so
    that all of them provably calculate at once. A helper (not params["coordinator"]) dies at
    once with params["die"], or takes params["linger"] seconds over its chunk.
    """
    log, me, ids = Path(params["log"]), os.getpid(), " ".join(map(str, chunk))
    _note(log, f"start {me} {ids}")
    helper = me != params["coordinator"]
    if helper and params.get("die"):
        os._exit(1)  # as if killed: the chunk stays claimed until its lease lapses
    deadline = time.monotonic() + 60
    while len({line.split()[1] for line in _lines(log) if line.startswith("start")}) < params["parties"]:
        if time.monotonic() > deadline:
            raise TimeoutError("the other workers never started a chunk")
        time.sleep(0.05)
    time.sleep(params.get("linger", 0) if helper else 0)
    _note(log, f"done {me} {ids}")
    return {"portfolios": len(chunk)}


def _note(log: Path, line: str) -> None:
    with log.open("a") as file:
        file.write(line + "\n")


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def _calculated(log: Path, what: str = "done") -> dict[str, list[int]]:
    """Process id to the portfolios it started or finished."""
    found: dict[str, list[int]] = {}
    for line in _lines(log):
        kind, pid, *ids = line.split()
        if kind == what:
            found.setdefault(pid, []).extend(map(int, ids))
    return found


@pytest.fixture
def chunk_log(tmp_path, settings):
    settings.REFRESH_METRICS_CHUNK = 2
    settings.REFRESH_CHUNK_TASKS = 2
    return tmp_path / "chunks.log"


@pytest.mark.qcluster
def test_chunks_are_spread_by_the_queue_over_two_workers_and_this_process(workers, chunk_log, settings):
    # A cluster of one busy worker holds up to three tasks (one running, one in its queue_limit
    # of 1, one in its pusher's hand): with four, the other cluster gets one too.
    settings.REFRESH_CHUNK_TASKS = 4
    workers.start()
    workers.start()

    counts = calculate_in_chunks(
        work=take_part,
        portfolio_ids=list(range(1, 11)),
        params={"log": str(chunk_log), "coordinator": os.getpid(), "parties": 3},
    )

    assert counts == {"portfolios": 10}, workers.logs()
    calculated = _calculated(chunk_log)
    assert len(calculated) == 3
    assert str(os.getpid()) in calculated
    assert sorted(chain(*calculated.values())) == list(range(1, 11))  # each portfolio once
    assert not CalculationBatch.objects.exists()


@pytest.mark.qcluster
def test_a_chunk_whose_worker_dies_is_calculated_again(workers, chunk_log, settings):
    settings.REFRESH_LEASE_SECONDS = 1
    settings.REFRESH_CHUNK_TASKS = 1
    workers.start(REFRESH_LEASE_SECONDS="1")

    counts = calculate_in_chunks(
        work=take_part,
        portfolio_ids=list(range(1, 9)),
        params={"log": str(chunk_log), "coordinator": os.getpid(), "parties": 2, "die": True},
    )

    assert counts == {"portfolios": 8}
    started, done = _calculated(chunk_log, "start"), _calculated(chunk_log)
    helper = next(pid for pid in started if pid != str(os.getpid()))
    assert helper not in done  # it died on its chunk...
    assert sorted(done[str(os.getpid())]) == list(range(1, 9))  # ...which was calculated here again


@pytest.mark.qcluster
def test_stopping_drops_pending_chunks_and_lets_the_one_under_way_finish(workers, chunk_log):
    workers.start()

    def cancel(done, total):
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        calculate_in_chunks(
            work=take_part,
            portfolio_ids=list(range(1, 9)),
            on_progress=cancel,
            params={"log": str(chunk_log), "coordinator": os.getpid(), "parties": 2, "linger": 2},
        )

    started, done = _calculated(chunk_log, "start"), _calculated(chunk_log)
    assert started == done  # this process's chunk and the helper's, both finished
    assert len(done) == 2
    assert sorted(chain(*done.values())) == [
        1,
        2,
        7,
        8,
    ]  # the first and, from the end, the last: the others never started
    assert not CalculationBatch.objects.exists()
