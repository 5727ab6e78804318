"""One size of the scale runs: seed it, then time full refreshes of it; writes JSON.

Run by ``python -m bench`` as ``python -m bench.scale --portfolios N --assets N --years N ...``
in an empty database of its own, chosen in the environment like the suite's. Each full refresh
runs in a fresh process with a qcluster beside it taking its chunk tasks (bench.suite's
full_refresh), so its peak memory is its own; with ``--scale-out`` the same refresh is then
requested through the queue for one and for two worker processes in turn (bench.scale_out).
"""

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import django


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--logs", type=Path, required=True)
    parser.add_argument("--portfolios", type=int, required=True)
    parser.add_argument("--assets", type=int, required=True)
    parser.add_argument("--years", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale-out", action="store_true", help="also with one and with two worker processes")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    began = time.perf_counter()
    django.setup()
    from django.conf import settings
    from django_q.brokers import get_broker

    from bench.scale_out import queued_full_refresh
    from bench.suite import full_refresh, prepare_database, seed

    args.logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"portfolios": args.portfolios, "assets": args.assets, "years": args.years}
    prepare_database(results)
    get_broker().purge_queue()  # the suite's load test may have left pickups in a shared broker
    results["seed"] = seed(users=args.portfolios, assets=args.assets, years=args.years)
    results["chunk_portfolios"] = settings.REFRESH_METRICS_CHUNK
    results["runs"] = []
    for _ in range(args.repeats):
        load = os.getloadavg()[0]
        run = full_refresh(years=args.years, chunk_workers=settings.REFRESH_CHUNK_TASKS, logs=args.logs)
        results["runs"].append({**run, "load_average": load})
    if args.scale_out:
        results["scale_out"] = {"one": [], "two": []}
        for _ in range(args.repeats):  # in turns, so that a burst of load from elsewhere hits both
            for name, processes in (("one", 1), ("two", 2)):
                load = os.getloadavg()[0]
                run = queued_full_refresh(processes=processes, logs=args.logs)
                results["scale_out"][name].append({**run, "load_average": load})
    results["elapsed_seconds"] = time.perf_counter() - began  # seeding and every measurement of this size
    args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
