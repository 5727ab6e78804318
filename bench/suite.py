"""Every measurement on one database, from an empty database to the queue; writes JSON.

Run by ``python -m bench`` as ``python -m bench.suite --json PATH ...`` with the database,
cache, broker and mock provider already chosen in the environment.
"""

import argparse
import json
import math
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import django

from bench.processes import command_start_seconds, descendants, peak_rss_mb, run_json, start_qcluster, stop


def timed_run(kind: str, mode: str) -> dict:
    from refresh.models import RunSource
    from refresh.services.execution import execute_run_in_process
    from refresh.services.requests import request_refresh

    run, _ = request_refresh(kind=kind, mode=mode, requested_by=None, source=RunSource.COMMAND, enqueue=False)
    began = time.perf_counter()
    run = execute_run_in_process(run=run)
    steps = {step.name: step for step in run.steps.all()}
    return {
        "kind": kind,
        "mode": mode,
        "seconds": time.perf_counter() - began,
        "status": run.status,
        "provider_calls": run.provider_calls,
        "items_updated": run.items_updated,
        "quotes_changed": steps["Updating database"].counts.get("quotes_changed"),
        "steps": {name: step.duration_ms for name, step in steps.items()},
    }


def full_refresh(*, years: int, chunk_workers: int, logs: Path) -> dict:
    """bench.full_refresh in a fresh process, with a qcluster of `chunk_workers` workers beside it
    taking its portfolio chunk tasks (none: the run's process calculates every chunk)."""
    env = {"REFRESH_HISTORY_YEARS": str(years), "REFRESH_CHUNK_TASKS": str(chunk_workers)}
    if not chunk_workers:
        return run_json("bench.full_refresh", env=env, timeout=3600)
    from django.db import connection
    from django_q.tasks import async_task, result

    log = logs / f"qcluster-{connection.vendor}-chunks.log"
    cluster = start_qcluster(log, env={"Q_WORKERS": str(chunk_workers)})
    try:
        # Started and warmed up before the refresh, which should not share the CPU with its start.
        if result(async_task("math.floor", 1.5), wait=120_000) != 1:
            raise RuntimeError(f"the qcluster taking chunk tasks did not start; see {log}")
        measured = run_json("bench.full_refresh", env=env, timeout=3600)
        measured["chunk_workers_peak_rss_mb"] = max(map(peak_rss_mb, descendants(cluster.pid)), default=0.0)
    finally:
        stop(cluster)
    return measured


def _wait_for_new_quotes() -> None:
    """The mock's quotes move once a minute: wait for the minute after the stored quotes' one."""
    from market_data.models import Quote

    latest = Quote.objects.order_by("-as_of").values_list("as_of", flat=True).first()
    while latest and datetime.now(UTC).replace(second=0, microsecond=0) <= latest:
        time.sleep(0.5)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--logs", type=Path, required=True)
    parser.add_argument("--users", type=int, required=True)
    parser.add_argument("--assets", type=int, required=True)
    parser.add_argument("--years", type=int, required=True)
    parser.add_argument("--short-years", type=int, default=1)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--load-seconds", type=float, default=20)
    parser.add_argument("--warmup-seconds", type=float, default=3)
    parser.add_argument("--load-repeats", type=int, default=3)
    parser.add_argument("--refresh-repeats", type=int, default=3)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--queue-runs", type=int, default=20)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--naive-bar-sample", type=int, default=2000)
    parser.add_argument("--provider-latency", type=float, default=0.3)
    parser.add_argument("--provider-concurrency", type=int, default=4)
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--wait-for-new-prices", action="store_true")
    return parser.parse_args()


def prepare_database(results: dict[str, Any]) -> None:
    """Migrate, empty the caches an earlier run filled, and note the database's version."""
    from django.core.cache import caches
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    for alias in ("default", "data", "ratelimit"):  # rate-limit counters and cached reads of an earlier run
        cache = caches[alias]
        cache.delete_pattern("*") if hasattr(cache, "delete_pattern") else cache.clear()
    with connection.cursor() as cursor:
        cursor.execute("select sqlite_version()" if connection.vendor == "sqlite" else "show server_version")
        results["database_version"] = cursor.fetchone()[0]


def seed(*, users: int, assets: int, years: int) -> dict[str, Any]:
    """seed_demo, timed: what it seeded and how long it took."""
    from refresh.services.demo import seed_demo

    began = time.perf_counter()
    seeded = seed_demo(users=users, assets=assets, years=years)
    return {
        "seconds": time.perf_counter() - began,
        "users": seeded["users"],
        "assets": seeded["assets"],
        "bars": seeded["bars"],
    }


def _seed(args: argparse.Namespace, results: dict[str, Any]) -> None:
    from django.conf import settings

    from market_data.models import Asset

    results["seed"] = seed(users=args.users, assets=args.assets, years=args.years)
    symbols = Asset.objects.filter(is_active=True).count()
    results["symbols"] = symbols
    results["expected_incremental_calls"] = math.ceil(symbols / settings.TWELVEDATA_BATCH_SIZE)


def _empty_history() -> None:
    """Every bar gone, as on a new deployment and as the COPY floor empties a table before loading it.

    On PostgreSQL a TRUNCATE: a DELETE would leave 650,000 dead rows for the cold refresh to insert
    among, and autovacuum cleaning them up while it runs, which neither a new deployment nor the
    floor it is held to pays.
    """
    from django.db import connection

    from bench.floors import empty_table_sql
    from market_data.models import PriceBar

    if connection.vendor != "postgresql":
        PriceBar.objects.all().delete()
        return
    with connection.cursor() as cursor:
        cursor.execute(*empty_table_sql(PriceBar))


def _measure_full_refreshes(args: argparse.Namespace, section: Callable[[str], None]) -> list[dict[str, Any]]:
    """`args.refresh_repeats` runs, each of: the full refresh, the same with a short history, the floors
    (on PostgreSQL COPY's too), the naive baseline, then the full refresh cold. Taken in turns, so that a
    burst of load from elsewhere falls on one run's refresh and floors alike: each run's ratios are its own."""
    from django.conf import settings
    from django.db import connection

    from bench.floors import measure_compute_floor, measure_copy_floor, measure_naive_baseline, measure_write_floor

    def refresh(years: int) -> dict[str, Any]:
        return full_refresh(years=years, chunk_workers=settings.REFRESH_CHUNK_TASKS, logs=args.logs)

    runs = []
    for n in range(1, args.refresh_repeats + 1):
        measured: dict[str, Any] = {}
        section(f"full refresh, run {n}")
        measured["full_refresh"] = refresh(args.years)
        section(f"full refresh, short history, run {n}")  # same data, same state: only the history differs
        measured["full_refresh_short"] = refresh(args.short_years)
        section(f"floors, run {n}")
        measured["write_floor"] = measure_write_floor()
        if connection.vendor == "postgresql":
            measured["copy_write_floor"] = measure_copy_floor()
        measured["compute_floor"] = measure_compute_floor()
        section(f"naive baseline, run {n}")
        measured["naive"] = measure_naive_baseline(sample=args.naive_sample, bar_sample=args.naive_bar_sample)
        section(f"full refresh, cold, run {n}")
        _empty_history()
        measured["full_refresh_cold"] = refresh(args.years)
        runs.append(measured)
    return runs


def _measure_refreshes(args: argparse.Namespace, results: dict[str, Any], section: Callable[[str], None]) -> None:
    """Full refreshes against their floors (repeated: every run's in `refresh_runs`, the median run's
    in the keys of one), the full refresh run alone, then incremental and smart runs."""
    from django.conf import settings
    from django.db import connection

    from bench.report import median_refresh_runs

    # As deployed by default (two workers: one runs the refresh, the other takes its chunk tasks),
    # and once with the run's process alone, to show what spreading portfolio chunks pays.
    results["chunk_workers"] = {"default": settings.REFRESH_CHUNK_TASKS, "other": 0}
    results["refresh_runs"] = _measure_full_refreshes(args, section)
    results.update(median_refresh_runs(results["refresh_runs"], connection.vendor))
    section("full refresh, run alone")
    results["full_refresh_other_chunk_workers"] = full_refresh(years=args.years, chunk_workers=0, logs=args.logs)

    timed_run("prices", "smart")  # warm-up: a worker pays its first plan's one-off costs once, not per run
    section("incremental")
    for name, kind in (("incremental_all", "all"), ("incremental_prices", "prices")):
        if args.wait_for_new_prices:  # so that every quote has moved since the last refresh
            _wait_for_new_quotes()
        results[name] = timed_run(kind, "incremental")
    section("smart")
    results["smart"] = timed_run("all", "smart")


def _measure_serving(args: argparse.Namespace, results: dict[str, Any], section: Callable[[str], None]) -> None:
    """A slow provider at two concurrencies, the trigger endpoint under load, and the queue's latency."""
    from django.conf import settings
    from django.db import connection

    from bench.load import measure_trigger_load, request_costs

    section("provider concurrency")  # a slow provider: batches one at a time, then several at once
    results["provider_concurrency"] = {
        str(concurrency): run_json(
            "bench.provider_concurrency",
            timeout=600,
            env={"MOCK_PROVIDER_LATENCY": str(args.provider_latency), "MARKET_DATA_CONCURRENCY": str(concurrency)},
        )
        for concurrency in (1, args.provider_concurrency)
    }

    section("trigger load")
    results["request_costs"] = request_costs(samples=min(50, max(1, args.users // 20)))
    results["trigger"] = measure_trigger_load(
        clients=args.clients,
        seconds=args.load_seconds,
        warmup=args.warmup_seconds,
        repeats=args.load_repeats,
        workers=args.gunicorn_workers,
        log_path=args.logs / f"gunicorn-{connection.vendor}.log",
    )

    section("command start-up")  # heavy libraries load when a run needs them, not for --help
    results["command_start"] = command_start_seconds("refresh", "--help")

    section("queue latency")
    results["poll_seconds"] = settings.Q_CLUSTER.get("poll")
    brokers = {"orm": {"Q_BROKER": "orm"}}
    if args.redis_url:
        brokers["redis"] = {"Q_BROKER": "redis", "REDIS_URL": args.redis_url}
    results["queue"] = {}
    for broker, env in brokers.items():
        log = args.logs / f"qcluster-{connection.vendor}-{broker}.log"
        results["queue"][broker] = run_json(
            "bench.queue_latency",
            "--runs",
            str(args.queue_runs),
            "--log",
            str(log),
            env=env,
            timeout=600 + 60 * args.queue_runs,
        )


def main() -> None:
    args = _arguments()
    django.setup()
    from django.db import connection

    results: dict[str, Any] = {"database": connection.vendor, "load_average": {}, "started_after_s": {}}
    began_suite = time.perf_counter()

    def section(name: str) -> None:
        """Note the machine's load and the time as each section starts."""
        results["load_average"][name] = os.getloadavg()[0]
        results["started_after_s"][name] = round(time.perf_counter() - began_suite, 2)

    section("migrate")
    prepare_database(results)
    section("seed")
    _seed(args, results)
    _measure_refreshes(args, results, section)
    _measure_serving(args, results, section)
    section("done")
    args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
