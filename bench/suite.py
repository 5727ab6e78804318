"""Every measurement on one database, from an empty database to the queue; writes JSON.

Run by ``python -m bench`` as ``python -m bench.suite --json PATH ...`` with the database,
cache, broker and mock provider already chosen in the environment.
"""
import argparse
import json
import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import django

from bench.processes import run_json


def timed_run(kind: str, mode: str) -> dict:
    from refresh.models import RunSource
    from refresh.services.execution import execute_run_in_process
    from refresh.services.requests import request_refresh

    run, _ = request_refresh(kind=kind, mode=mode, requested_by=None, source=RunSource.COMMAND, enqueue=False)
    began = time.perf_counter()
    run = execute_run_in_process(run=run)
    steps = {step.name: step for step in run.steps.all()}
    return {"kind": kind, "mode": mode, "seconds": time.perf_counter() - began, "status": run.status,
            "provider_calls": run.provider_calls, "items_updated": run.items_updated,
            "quotes_changed": steps["Updating database"].counts.get("quotes_changed"),
            "steps": {name: step.duration_ms for name, step in steps.items()}}


def _wait_for_new_quotes() -> None:
    """The mock's quotes move once a minute: wait for the minute after the stored quotes' one."""
    from market_data.models import Quote

    latest = Quote.objects.order_by("-as_of").values_list("as_of", flat=True).first()
    while latest and datetime.now(UTC).replace(second=0, microsecond=0) <= latest:
        time.sleep(0.5)


def main():
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
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--queue-runs", type=int, default=20)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--naive-bar-sample", type=int, default=2000)
    parser.add_argument("--provider-latency", type=float, default=0.3)
    parser.add_argument("--provider-concurrency", type=int, default=4)
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--wait-for-new-prices", action="store_true")
    args = parser.parse_args()
    django.setup()
    from django.conf import settings
    from django.core.cache import caches
    from django.core.management import call_command
    from django.db import connection

    from bench.floors import measure_compute_floor, measure_naive_baseline, measure_write_floor
    from bench.load import measure_trigger_load, request_costs
    from market_data.models import Asset, PriceBar
    from refresh.services.demo import seed_demo

    results = {"database": connection.vendor, "load_average": {}, "started_after_s": {}}
    began_suite = time.perf_counter()

    def section(name):
        """Note the machine's load and the time as each section starts."""
        results["load_average"][name] = os.getloadavg()[0]
        results["started_after_s"][name] = round(time.perf_counter() - began_suite, 2)

    section("migrate")
    call_command("migrate", verbosity=0)
    for alias in ("default", "data", "ratelimit"):  # rate-limit counters and cached reads of an earlier run
        cache = caches[alias]
        cache.delete_pattern("*") if hasattr(cache, "delete_pattern") else cache.clear()
    with connection.cursor() as cursor:
        cursor.execute("select sqlite_version()" if connection.vendor == "sqlite" else "show server_version")
        results["database_version"] = cursor.fetchone()[0]
    section("seed")
    began = time.perf_counter()
    seeded = seed_demo(users=args.users, assets=args.assets, years=args.years)
    results["seed"] = {"seconds": time.perf_counter() - began, "users": seeded["users"],
                       "assets": seeded["assets"], "bars": seeded["bars"]}
    symbols = Asset.objects.filter(is_active=True).count()
    results["symbols"] = symbols
    results["expected_incremental_calls"] = math.ceil(symbols / settings.TWELVEDATA_BATCH_SIZE)

    section("full refresh")
    results["full_refresh"] = run_json("bench.full_refresh", env={"REFRESH_HISTORY_YEARS": str(args.years)},
                                       timeout=3600)
    section("full refresh, short history")  # same data, same state: only the history window differs
    results["full_refresh_short"] = run_json(
        "bench.full_refresh", env={"REFRESH_HISTORY_YEARS": str(args.short_years)}, timeout=3600)
    # Worker processes for portfolio chunks: the same refresh with the other setting, to show what they pay.
    other = 1 if settings.REFRESH_PROCESSES > 1 else 2
    section(f"full refresh, {other} process(es)")
    results["processes"] = {"default": settings.REFRESH_PROCESSES, "other": other}
    results["full_refresh_other_processes"] = run_json(
        "bench.full_refresh", env={"REFRESH_HISTORY_YEARS": str(args.years), "REFRESH_PROCESSES": str(other)},
        timeout=3600)
    section("floors")
    results["write_floor"] = measure_write_floor()
    results["compute_floor"] = measure_compute_floor()
    section("naive baseline")
    results["naive"] = measure_naive_baseline(sample=args.naive_sample, bar_sample=args.naive_bar_sample)
    section("full refresh, cold")
    PriceBar.objects.all().delete()
    results["full_refresh_cold"] = run_json("bench.full_refresh", env={"REFRESH_HISTORY_YEARS": str(args.years)},
                                            timeout=3600)

    timed_run("prices", "smart")  # warm-up: a worker pays its first plan's one-off costs once, not per run
    section("incremental")
    for name, kind in (("incremental_all", "all"), ("incremental_prices", "prices")):
        if args.wait_for_new_prices:  # so that every quote has moved since the last refresh
            _wait_for_new_quotes()
        results[name] = timed_run(kind, "incremental")
    section("smart")
    results["smart"] = timed_run("all", "smart")

    section("provider concurrency")  # a slow provider: batches one at a time, then several at once
    results["provider_concurrency"] = {
        str(concurrency): run_json("bench.provider_concurrency", timeout=600, env={
            "MOCK_PROVIDER_LATENCY": str(args.provider_latency), "MARKET_DATA_CONCURRENCY": str(concurrency)})
        for concurrency in (1, args.provider_concurrency)}

    section("trigger load")
    results["request_costs"] = request_costs(samples=min(50, max(1, args.users // 20)))
    results["trigger"] = measure_trigger_load(
        clients=args.clients, seconds=args.load_seconds, warmup=args.warmup_seconds, repeats=args.load_repeats,
        workers=args.gunicorn_workers, log_path=args.logs / f"gunicorn-{connection.vendor}.log")

    section("queue latency")
    results["poll_seconds"] = settings.Q_CLUSTER.get("poll")
    brokers = {"orm": {"Q_BROKER": "orm"}}
    if args.redis_url:
        brokers["redis"] = {"Q_BROKER": "redis", "REDIS_URL": args.redis_url}
    results["queue"] = {}
    for broker, env in brokers.items():
        log = args.logs / f"qcluster-{connection.vendor}-{broker}.log"
        results["queue"][broker] = run_json("bench.queue_latency", "--runs", str(args.queue_runs), "--log", str(log),
                                            env=env, timeout=600 + 60 * args.queue_runs)
    section("done")
    args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
