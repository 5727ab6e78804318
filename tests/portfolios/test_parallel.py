"""Portfolio chunks in worker processes: real forks, real connections, same results as one process."""
import logging
import multiprocessing
import os
from concurrent.futures.process import BrokenProcessPool
from datetime import date
from decimal import Decimal

import pytest

from portfolios import parallel
from portfolios.models import Allocation, BenchmarkComparison, PortfolioMetrics, RebalanceProposal
from portfolios.parallel import run_chunks, worker_processes
from portfolios.services.benchmark import recalculate_benchmark_comparisons
from portfolios.services.metrics import recalculate_portfolio_metrics
from portfolios.services.strategy import recalculate_strategies

# Workers open connections of their own, which only see committed rows.
committed = pytest.mark.django_db(transaction=True)
START = date(2025, 3, 3)


def _pid_and_chunk(context, chunk):
    return context, os.getpid(), list(chunk)


@pytest.fixture
def two_processes(settings):
    settings.REFRESH_PROCESSES = 2
    settings.REFRESH_METRICS_CHUNK = 2
    return settings


@committed
def test_chunks_run_in_worker_processes_and_report_progress(two_processes):
    progress = []

    results = run_chunks(_pid_and_chunk, "ctx", [1, 2, 3, 4, 5], on_progress=lambda *p: progress.append(p))

    assert sorted(chunk for _, _, chunk in results) == [[1, 2], [3, 4], [5]]
    assert {context for context, _, _ in results} == {"ctx"}
    assert os.getpid() not in {pid for _, pid, _ in results}
    assert [total for _, total in progress] == [5, 5, 5]
    assert sorted(done for done, _ in progress)[-1] == 5
    assert multiprocessing.active_children() == []


@pytest.mark.django_db
def test_inside_a_transaction_chunks_run_here(two_processes):
    # The caller's uncommitted rows would be invisible to a worker's own connection.
    assert worker_processes(3) == 1
    results = run_chunks(_pid_and_chunk, None, [1, 2, 3])
    assert {pid for _, pid, _ in results} == {os.getpid()}


@committed
def test_one_process_configured_or_one_chunk_runs_here(settings):
    settings.REFRESH_PROCESSES = 1
    assert worker_processes(5) == 1
    settings.REFRESH_PROCESSES = 4
    assert worker_processes(1) == 1
    assert worker_processes(2) == 2


@committed
def test_a_daemonic_process_calculates_itself(two_processes, monkeypatch, caplog):
    class Daemonic:
        daemon = True

    monkeypatch.setattr(parallel.multiprocessing, "current_process", lambda: Daemonic())
    with caplog.at_level(logging.WARNING, logger="portfolios.parallel"):
        assert worker_processes(3) == 1
    assert "daemonic" in caplog.text


@pytest.fixture
def book(make_asset, make_portfolio):
    """Five portfolios over two assets and the benchmark, each with a strategy."""
    a = make_asset("AAA", [100, 110, 105], start=START)
    b = make_asset("BBB", [200, 190, 195], start=START)
    make_asset("SPY", [400, 404, 402], start=START)
    return [make_portfolio({a: (i + 1, 100), b: (5 - i, 900)}, name=f"P{i}", targets={"AAA": 0.5, "BBB": 0.5})
            for i in range(5)]


def _stored():
    def rows(model, *fields):
        return sorted(model.objects.values_list(*fields))
    return (
        rows(PortfolioMetrics, "portfolio_id", "market_value", "cost", "return_1d", "volatility", "weights"),
        rows(BenchmarkComparison, "portfolio_id", "beta", "correlation", "asset_correlations"),
        rows(Allocation, "strategy_id", "asset_id", "target_weight", "tilted_weight", "current_weight"),
        rows(RebalanceProposal, "strategy_id", "asset_id", "quantity", "price", "value", "status"),
    )


def _recalculate_everything():
    strategy_counts = recalculate_strategies(refresh_id="ref_test")
    return (recalculate_portfolio_metrics(), recalculate_benchmark_comparisons(), strategy_counts)


@committed
def test_workers_store_the_same_figures_as_one_process(book, settings):
    settings.REFRESH_METRICS_CHUNK = 2
    settings.REFRESH_PROCESSES = 1
    alone = _recalculate_everything()
    stored_alone = _stored()
    PortfolioMetrics.objects.all().delete()
    BenchmarkComparison.objects.all().delete()
    Allocation.objects.all().delete()
    RebalanceProposal.objects.all().delete()

    settings.REFRESH_PROCESSES = 2
    assert worker_processes(3) == 2
    assert _recalculate_everything() == alone
    assert _stored() == stored_alone
    assert alone[0] == alone[1] == 5 and alone[2]["allocations"] == 10


@committed
def test_stopping_keeps_finished_chunks_and_stops_the_workers(book, two_processes):
    def cancel(done, total):
        raise RuntimeError("cancelled")

    with pytest.raises(RuntimeError, match="cancelled"):
        recalculate_portfolio_metrics(on_progress=cancel)

    assert multiprocessing.active_children() == []
    # Each chunk is stored whole or not at all, at least the one reported before the stop,
    # and what is stored is right.
    chunks = [{book[0].id, book[1].id}, {book[2].id, book[3].id}, {book[4].id}]
    stored = dict(PortfolioMetrics.objects.values_list("portfolio_id", "market_value"))
    assert set(stored) and all(chunk <= set(stored) or not chunk & set(stored) for chunk in chunks)
    for i, portfolio in enumerate(book):
        if portfolio.id in stored:
            assert stored[portfolio.id] == Decimal((i + 1) * 105 + (5 - i) * 195)


@committed
def test_a_failing_chunk_raises_here(two_processes):
    with pytest.raises(ZeroDivisionError):
        run_chunks(_divide, None, [1, 2, 0, 4])
    assert multiprocessing.active_children() == []


def _divide(context, chunk):
    return [1 / value for value in chunk]


def _die_on_zero(context, chunk):
    if 0 in chunk:
        os._exit(1)  # as if killed: no exception, no result
    return list(chunk)


@committed
def test_a_worker_that_dies_fails_the_run_instead_of_hanging_it(two_processes):
    with pytest.raises(BrokenProcessPool):
        run_chunks(_die_on_zero, None, [1, 2, 0, 4])
    assert multiprocessing.active_children() == []
