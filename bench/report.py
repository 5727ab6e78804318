"""The benchmark's verdicts against the targets, and the table and BENCHMARKS.md built from them."""

import os
import platform
import sqlite3
from collections.abc import Callable
from pathlib import Path

from bench import scale_report
from bench.rows import DATABASES, PEAK_MEMORY_LIMIT_MB, Row, fmt_ms, fmt_ratios, fmt_s, median_of, verdict

# Peak memory of a full refresh may grow this much at most from the short to the long history.
MEMORY_GROWTH_ALLOWED = 1.2
# The trigger's latency target holds for the production configuration only; SQLite, the
# embedded default, has its trigger figures reported without one.
TRIGGER_TARGET_DATABASES = ("postgresql",)
# The floors a full refresh is measured against (results key of its writes: what loads them), and
# the one each database is held to with the ratio allowed: SQLite writes through executemany,
# PostgreSQL through COPY, so each against the fastest plain load of the same rows on it.
FLOORS = {"write_floor": "executemany", "copy_write_floor": "COPY"}
HELD_FLOOR = {"sqlite": ("write_floor", 3), "postgresql": ("copy_write_floor", 1.5)}
# Target: a full refresh at least this many times faster than the naive baseline.
NAIVE_SPEEDUP = 20
# Target: the trigger's p99 as a multiple of the bare endpoint's.
TRIGGER_P99_RATIO = 2
# `manage.py refresh --help` must answer within this, Django's set-up included.
COMMAND_START_LIMIT_S = 1.0
# CPU shares below this would print as 0.00 ms.
SHOWN_CPU_MS = 0.005


def floor_seconds(r: dict, writes: str = "write_floor") -> float:
    """A floor: its writes (executemany or COPY) and the same numpy work."""
    return r[writes]["seconds"] + r["compute_floor"]["seconds"]


def over_floor(run: str, writes: str) -> Callable[[dict], float]:
    """One run's full refresh (`run`: warm or cold) ÷ the floor measured in the same run."""
    return lambda measured: measured[run]["seconds"] / floor_seconds(measured, writes)


def median_refresh_runs(runs: list[dict], database: str) -> dict:
    """The repeated measurements reported as one: those of the run whose full refresh has the median
    ratio to the floor the database is held to, with the cold refresh of the run whose cold one has."""
    held = HELD_FLOOR[database][0]
    cold = median_of(runs, over_floor("full_refresh_cold", held))
    return {**median_of(runs, over_floor("full_refresh", held)), "full_refresh_cold": cold["full_refresh_cold"]}


def median_ratio(r: dict, ratio: Callable[[dict], float]) -> float:
    """The median of the full refresh runs' `ratio`."""
    return ratio(median_of(r["refresh_runs"], ratio))


def _ratio_text(r: dict, ratio: Callable[[dict], float]) -> str:
    """The median of the full refresh runs' `ratio`, with every run's beside it."""
    return fmt_ratios(median_ratio(r, ratio), [ratio(run) for run in r["refresh_runs"]])


def _memory_growth(measured: dict) -> float:
    return measured["full_refresh"]["peak_rss_mb"] / measured["full_refresh_short"]["peak_rss_mb"]


def _naive_ratio(measured: dict) -> float:
    return measured["naive"]["estimated_seconds"] / measured["full_refresh"]["seconds"]


def peak_memory(r: dict, run: str = "full_refresh", key: str = "peak_rss_mb") -> float:
    """The highest peak of the repeated full refresh's runs (a memory target holds on every run)."""
    return max(measured[run].get(key, 0.0) for measured in r["refresh_runs"])


def _memory_growth_text(r: dict) -> str:
    median = median_of(r["refresh_runs"], _memory_growth)
    return (
        f"{_ratio_text(r, _memory_growth)}; {median['full_refresh']['peak_rss_mb']:.0f} / "
        f"{median['full_refresh_short']['peak_rss_mb']:.0f} MB"
    )


def _floor_rows(dbs: dict, writes: str) -> list[Row]:
    """A floor, and the full refresh (warm and cold) over it, with a verdict where the database is held to it."""
    name = FLOORS[writes]
    held = [db for db, (floor, _) in HELD_FLOOR.items() if floor == writes]
    limit = HELD_FLOOR[held[0]][1]

    def each(fn):
        return {db: fn(r) if writes in r else "n/a" for db, r in dbs.items()}

    def check(run):
        return {
            db: median_ratio(r, over_floor(run, writes)) <= limit if db in held and writes in r else None
            for db, r in dbs.items()
        }

    def cold(r):
        ratio = over_floor("full_refresh_cold", writes)
        return f"{fmt_s(median_of(r['refresh_runs'], ratio)['full_refresh_cold']['seconds'])}, {_ratio_text(r, ratio)}"

    target = f"≤ {limit:g}× on {', '.join(DATABASES[db] for db in held)}"
    return [
        Row(
            f"Floor: {name} of the same rows + numpy on the same figures",
            "",
            each(
                lambda r: (
                    f"{fmt_s(floor_seconds(r, writes))} "
                    f"({fmt_s(r[writes]['seconds'])} + {fmt_s(r['compute_floor']['seconds'])})"
                )
            ),
            {},
        ),
        Row(
            f"Full refresh ÷ {name} floor (the median run)",
            target,
            each(lambda r: _ratio_text(r, over_floor("full_refresh", writes))),
            check("full_refresh"),
        ),
        Row(
            f"Cold full refresh (empty price table, every bar inserted): wall time, ÷ {name} floor (the median run)",
            target,
            each(cold),
            check("full_refresh_cold"),
        ),
    ]


def _queue(r: dict, broker: str) -> dict | None:
    found = r.get("queue", {}).get(broker)
    if not found or not found["latencies_s"]:
        return None
    latencies = sorted(found["latencies_s"])

    def pick(q):
        return latencies[min(len(latencies) - 1, round(q * (len(latencies) - 1)))]

    return {"p50": pick(0.5), "p95": pick(0.95), "max": latencies[-1], "runs": len(latencies)}


def _queue_text(r: dict, broker: str) -> str:
    found = _queue(r, broker)
    if found is None:
        return "not measured (no Redis given)"
    return f"{fmt_s(found['p50'])} / {fmt_s(found['p95'])} ({found['runs']} runs)"


def _queue_met(r: dict, broker: str, limit: float) -> bool | None:
    found = _queue(r, broker)
    return None if found is None else found["p95"] < limit


def _chunk_worker_runs(r: dict) -> dict[int, dict]:
    """The full refresh by number of workers beside it taking its chunk tasks: the default run and the other one."""
    return {
        r["chunk_workers"]["default"]: r["full_refresh"],
        r["chunk_workers"]["other"]: r["full_refresh_other_chunk_workers"],
    }


def _chunk_workers_memory(r: dict) -> str:
    peak = peak_memory(r, key="chunk_workers_peak_rss_mb")
    return f"; a worker taking chunk tasks: {peak:.0f} MB" if peak else ""


def rows(results: dict) -> list[Row]:
    """Every line of the results table, in the issue's order."""
    dbs = results["databases"]

    def each(fn):
        return {db: fn(r) for db, r in dbs.items()}

    def check(fn):
        return {db: fn(r) for db, r in dbs.items()}

    def trigger_ratio(r):
        return r["trigger"]["trigger"]["p99_ms"] / r["trigger"]["bare"]["p99_ms"]

    scale = results["scale"]
    table = [
        Row("Full refresh: wall time (the median run)", "", each(lambda r: fmt_s(r["full_refresh"]["seconds"])), {}),
        *_floor_rows(dbs, "write_floor"),
        *_floor_rows(dbs, "copy_write_floor"),
        Row(
            "Naive baseline (row-by-row ORM saves), extrapolated from a sample",
            "",
            each(lambda r: f"{fmt_s(r['naive']['estimated_seconds'])} ({r['naive']['rows_sampled']} rows sampled)"),
            {},
        ),
        Row(
            "Naive ÷ full refresh (the median run)",
            f"≥ {NAIVE_SPEEDUP}×",
            each(lambda r: _ratio_text(r, _naive_ratio)),
            check(lambda r: median_ratio(r, _naive_ratio) >= NAIVE_SPEEDUP),
        ),
        Row(
            f"Full refresh: peak memory ({scale['years']} years of history; the highest run)",
            f"< {PEAK_MEMORY_LIMIT_MB} MB",
            each(
                lambda r: (
                    f"{peak_memory(r):.0f} MB (cold: {peak_memory(r, 'full_refresh_cold'):.0f} MB"
                    f"{_chunk_workers_memory(r)})"
                )
            ),
            check(lambda r: max(peak_memory(r), peak_memory(r, "full_refresh_cold")) < PEAK_MEMORY_LIMIT_MB),
        ),
        Row(
            f"Peak memory with {scale['years']} years ÷ with {scale['short_years']} year(s) of history "
            "(the median run)",
            f"≤ {MEMORY_GROWTH_ALLOWED}× (flat)",
            each(_memory_growth_text),
            check(lambda r: median_ratio(r, _memory_growth) <= MEMORY_GROWTH_ALLOWED),
        ),
        Row(
            'Portfolio chunks spread by the queue: full refresh wall time ("Recalculating metrics") '
            "by workers beside the run taking its chunk tasks",
            "",
            each(
                lambda r: "; ".join(
                    f"{n}: {fmt_s(run['seconds'])} ({fmt_s(run['steps'].get('Recalculating metrics', 0) / 1000)})"
                    + (" (default)" if n == r["chunk_workers"]["default"] else "")
                    for n, run in sorted(_chunk_worker_runs(r).items())
                )
            ),
            {},
        ),
        Row(
            "Provider batches in flight: incremental prices refresh with a provider answering in "
            f"{scale['provider_latency']:g} s a call, wall time by MARKET_DATA_CONCURRENCY",
            "",
            each(
                lambda r: "; ".join(
                    f"{n}: {fmt_s(run['seconds'])}, {run['provider_calls']} calls"
                    for n, run in r["provider_concurrency"].items()
                )
            ),
            {},
        ),
        Row(
            "Incremental prices refresh of every symbol: provider calls",
            "ceil(symbols / 120)",
            each(
                lambda r: (
                    f"{r['incremental_prices']['provider_calls']} for {r['symbols']} symbols "
                    f"(expected {r['expected_incremental_calls']})"
                )
            ),
            check(lambda r: r["incremental_prices"]["provider_calls"] == r["expected_incremental_calls"]),
        ),
        Row("Incremental prices refresh: wall time", "", each(lambda r: fmt_s(r["incremental_prices"]["seconds"])), {}),
        Row(
            "Incremental refresh of everything (prices moved): calls, wall time",
            "ceil(symbols / 120) calls",
            each(
                lambda r: (
                    f"{r['incremental_all']['provider_calls']} calls, {fmt_s(r['incremental_all']['seconds'])}, "
                    f"{r['incremental_all']['items_updated'].get('portfolios', 0)} portfolios recalculated"
                )
            ),
            check(lambda r: r["incremental_all"]["provider_calls"] == r["expected_incremental_calls"]),
        ),
        Row(
            "Smart refresh with nothing stale: provider calls, wall time",
            "0 calls",
            each(lambda r: f"{r['smart']['provider_calls']} calls, {fmt_s(r['smart']['seconds'])}"),
            check(lambda r: r["smart"]["provider_calls"] == 0),
        ),
        Row(
            "Bare DRF endpoint under load: p50 / p99, throughput",
            "",
            each(
                lambda r: (
                    f"{fmt_ms(r['trigger']['bare']['p50_ms'])} / {fmt_ms(r['trigger']['bare']['p99_ms'])}, "
                    f"{r['trigger']['bare']['throughput']:.0f} req/s"
                )
            ),
            {},
        ),
        Row(
            "Trigger endpoint under load: p50 / p99, throughput",
            "",
            each(
                lambda r: (
                    f"{fmt_ms(r['trigger']['trigger']['p50_ms'])} / {fmt_ms(r['trigger']['trigger']['p99_ms'])}, "
                    f"{r['trigger']['trigger']['throughput']:.0f} req/s"
                )
            ),
            {},
        ),
        Row(
            "Trigger p99 ÷ bare p99 (the median run)",
            f"≤ {TRIGGER_P99_RATIO}× on PostgreSQL",
            each(lambda r: fmt_ratios(trigger_ratio(r), r["trigger"]["p99_ratios"])),
            {
                db: trigger_ratio(r) <= TRIGGER_P99_RATIO if db in TRIGGER_TARGET_DATABASES else None
                for db, r in dbs.items()
            },
        ),
    ]
    for broker, limit in (("orm", 1.0), ("redis", 0.2)):
        table.append(
            Row(
                f"Queue latency, {'ORM' if broker == 'orm' else 'Redis'} broker: p50 / p95 (request to run started)",
                f"p95 < {limit:g} s",
                each(lambda r, b=broker: _queue_text(r, b)),
                check(lambda r, b=broker, lim=limit: _queue_met(r, b, lim)),
            )
        )
    table.append(
        Row(
            "`manage.py refresh --help`: start-up, median of 5 fresh processes",
            f"< {COMMAND_START_LIMIT_S:g} s",
            each(lambda r: fmt_s(r["command_start"]["median_s"]) if "command_start" in r else "n/a"),
            check(lambda r: r["command_start"]["median_s"] < COMMAND_START_LIMIT_S if "command_start" in r else None),
        )
    )
    return table + scale_report.rows(results)


def table_text(results: dict) -> str:
    """The results as a markdown table: one column per database, each value with its verdict."""
    dbs = list(results["databases"])
    lines = [
        "| measurement | target | " + " | ".join(DATABASES[db] for db in dbs) + " |",
        "|---|---|" + "---|" * len(dbs),
    ]
    for row in rows(results):
        cells = [
            f"{row.values[db]} **{verdict(row.met.get(db))}**" if row.met.get(db) is not None else row.values[db]
            for db in dbs
        ]
        lines.append(f"| {row.label} | {row.target} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


UPDATING, RECALCULATING = "Updating database", "Recalculating metrics"


def _step_s(r: dict, run: str, step: str) -> float:
    return r[run]["steps"].get(step, 0) / 1000


def _step_lines(r: dict, run: str = "full_refresh") -> list[str]:
    steps = r[run]["steps"]
    return [f"{name} {ms / 1000:.2f} s" for name, ms in steps.items() if ms]


def _cpu_total(endpoint: dict) -> float:
    return sum(endpoint["cpu_ms_per_request"].values())


def _cpu_split(endpoint: dict) -> str:
    """CPU per request under load, by process: '7.5 ms CPU (gunicorn 5.4, database 1.4, …)'."""
    parts = ", ".join(f"{who} {ms:.2f}" for who, ms in endpoint["cpu_ms_per_request"].items() if ms >= SHOWN_CPU_MS)
    return f"{_cpu_total(endpoint):.1f} ms CPU ({parts})"


def _repeats(dbs: dict) -> str:
    load = next(iter(dbs.values()))["trigger"]
    if load.get("repeats", 1) == 1:
        return ""
    return (
        f" The whole measurement is made {load['repeats']} times in a row and the table shows the run with the "
        f"median p99 ratio (every run's ratio beside it): a single {load['seconds']:g}-second p99 moves by a "
        "tenth or more from run to run."
    )


def _refresh_repeats(repeats: int) -> str:
    """How the full refreshes, their floors and the naive baseline were repeated."""
    if repeats == 1:
        return "- Measured once each (`--refresh-repeats 1`): every full refresh ratio below is that of a single run."
    return (
        f"- Repeated: the full refresh, the short-history one, the floors, the naive baseline and the cold full "
        f"refresh are measured {repeats} times in turns (all five, then all five again), so a burst of load from "
        "elsewhere falls on one run's refresh and floors alike. Each ratio is taken within a run (its refresh ÷ its "
        "own floors) and the table shows the median of the runs' ratios, every run's beside it; the wall times, "
        "floors and steps shown are those of the run with the median ratio, and peak memory is the highest of any "
        "run, as a memory target must hold on every run. The full refresh with no worker beside it is run once."
    )


def trigger_costs(db: str, r: dict) -> str:
    """What a trigger request costs against a bare one, under the load and alone, and where its time goes."""
    trigger, bare, costs = r["trigger"]["trigger"], r["trigger"]["bare"], r["request_costs"]
    profile = ", ".join(f"`{where}` {ms:.1f} ms" for where, ms in costs["trigger"]["profile_ms"].items())
    return (
        f"With {r['trigger']['clients']} clients on {r['trigger']['workers']} gunicorn workers and 2 cores the "
        f"machine is saturated, so latency follows the CPU each request costs. Under the load, per request: "
        f"{_cpu_split(bare)} for the bare endpoint, {_cpu_split(trigger)} for the trigger "
        f"({_cpu_total(trigger) / _cpu_total(bare):.1f}×; throughput {bare['throughput'] / trigger['throughput']:.1f}× "
        f"lower). In one process, without the load, a bare request takes {costs['bare']['cpu_ms']:.1f} ms and a "
        f"trigger request {costs['trigger']['cpu_ms']:.1f} ms "
        f"({costs['trigger']['cpu_ms'] / costs['bare']['cpu_ms']:.1f}×). "
        f"The trigger runs {costs['trigger']['statements']} SQL statements against the bare endpoint's "
        f"{costs['bare']['statements']}, {costs['trigger']['writes']} of them writes (to "
        f"{', '.join(costs['trigger']['written_tables']) or 'nothing'}), and checks the rate limits in the cache. "
        f"Where its time goes (cProfile, cumulative per request, profiler overhead included): {profile}"
        + ("; SQLite also lets only one writer commit at a time." if db == "sqlite" else ".")
        + f" Statuses: trigger {trigger['statuses']}, bare {bare['statuses']}."
    )


def explanations(results: dict) -> list[str]:
    """For each missed target: by how much, and what the measurements say about why."""
    notes = []
    for db, r in results["databases"].items():
        name = DATABASES[db]
        writes_key, limit = HELD_FLOOR[db]
        # The warm or the cold refresh, whichever has the higher median ratio, in its median run.
        run = max(("full_refresh", "full_refresh_cold"), key=lambda run: median_ratio(r, over_floor(run, writes_key)))
        worst = median_of(r["refresh_runs"], over_floor(run, writes_key))
        full, floor = worst[run]["seconds"], floor_seconds(worst, writes_key)
        if full > limit * floor:
            writes = worst[writes_key]["tables"]
            market = sum(v["seconds"] for t, v in writes.items() if t.startswith("market_data"))
            analytics = {t: v for t, v in writes.items() if not t.startswith("market_data")}
            notes.append(
                f"**{name}: full refresh up to {full / floor:.1f}× the {FLOORS[writes_key]} floor (target "
                f"{limit:g}×), {full - limit * floor:.1f} s over.** Steps: {', '.join(_step_lines(r))}; cold: "
                f"{', '.join(_step_lines(r, 'full_refresh_cold'))}. The floor loads the bars and quotes in "
                f'{market:.2f} s (the refresh\'s "{UPDATING}": {_step_s(r, "full_refresh", UPDATING):.2f} s, '
                f"cold {_step_s(r, 'full_refresh_cold', UPDATING):.2f} s) and the "
                f"{sum(v['rows'] for v in analytics.values())} analytics rows (signals, allocations, proposals, "
                f"metrics, comparisons) in {sum(v['seconds'] for v in analytics.values()):.2f} s, and computes every "
                f'figure in {worst["compute_floor"]["seconds"]:.2f} s (the refresh\'s "{RECALCULATING}", which also '
                f"reads prices and holdings back per chunk: {_step_s(r, 'full_refresh', RECALCULATING):.2f} s)."
            )
        if median_ratio(r, _naive_ratio) < NAIVE_SPEEDUP:
            notes.append(
                f"**{name}: the refresh is {median_ratio(r, _naive_ratio):.1f}× faster than the naive baseline "
                f"(target {NAIVE_SPEEDUP}×).** "
                f"Row-by-row saves are cheap here: "
                + ", ".join(
                    f"{t} {v['seconds'] / v['rows_sampled'] * 1000:.2f} ms/row" for t, v in r["naive"]["tables"].items()
                )
                + (
                    ". SQLite commits without an fsync in WAL mode with synchronous=NORMAL, so a transaction per "
                    "row costs little more than the statement."
                    if db == "sqlite"
                    else "."
                )
            )
        peak = max(peak_memory(r), peak_memory(r, "full_refresh_cold"))
        if peak >= PEAK_MEMORY_LIMIT_MB:
            notes.append(f"**{name}: peak memory {peak:.0f} MB (target < {PEAK_MEMORY_LIMIT_MB} MB).**")
        growth = median_ratio(r, _memory_growth)
        if growth > MEMORY_GROWTH_ALLOWED:
            notes.append(
                f"**{name}: peak memory grew {growth:.2f}× from the short to the long history.** The fetch "
                f"step holds every fetched history until the database step stores them."
            )
        trigger, bare = r["trigger"]["trigger"], r["trigger"]["bare"]
        if db in TRIGGER_TARGET_DATABASES and trigger["p99_ms"] > TRIGGER_P99_RATIO * bare["p99_ms"]:
            notes.append(
                f"**{name}: trigger p99 {trigger['p99_ms'] / bare['p99_ms']:.1f}× the bare endpoint's "
                f"(target {TRIGGER_P99_RATIO}×), "
                f"{trigger['p99_ms'] - TRIGGER_P99_RATIO * bare['p99_ms']:.0f} ms over.** " + trigger_costs(db, r)
            )
        for broker, limit in (("orm", 1.0), ("redis", 0.2)):
            found = _queue(r, broker)
            if found and found["p95"] >= limit:
                notes.append(
                    f"**{name}: queue latency p95 with the {broker} broker {found['p95']:.2f} s (target < {limit} s), "
                    f"{found['p95'] - limit:.2f} s over.** The worker polls for work every {r['poll_seconds']} s "
                    f"and then claims the run in the database."
                )
        start = r.get("command_start")
        if start and start["median_s"] >= COMMAND_START_LIMIT_S:
            notes.append(
                f"**{name}: `manage.py {start['command']}` took {start['median_s']:.2f} s to answer "
                f"(target < {COMMAND_START_LIMIT_S:g} s; runs: {', '.join(f'{s:.2f}' for s in start['runs_s'])}).** "
                f"Django's set-up imports every app's admin, and through it the services and their libraries."
            )
    return notes + scale_report.notes(results)


def machine() -> dict:
    """What the benchmark ran on."""
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    memory = (
        next(
            (
                int(line.split()[1]) // 1024
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            ),
            None,
        )
        if Path("/proc/meminfo").exists()
        else None
    )
    release = Path("/etc/os-release")
    os_name = (
        next(
            (
                line.split("=", 1)[1].strip('"')
                for line in release.read_text().splitlines()
                if line.startswith("PRETTY_NAME")
            ),
            "",
        )
        if release.exists()
        else platform.platform()
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mb": memory,
        "os": os_name,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite_library": sqlite3.sqlite_version,
    }


def markdown(results: dict) -> str:
    """BENCHMARKS.md: how it was measured, on what, the results and why any target was missed."""
    m, scale = results["machine"], results["scale"]
    dbs = results["databases"]
    loads = [load for r in dbs.values() for load in r["load_average"].values()]
    versions = ", ".join(f"{DATABASES[db]} {r['database_version']}" for db, r in dbs.items())
    notes = explanations(results)
    seeded = ", ".join(
        f"{DATABASES[db]}: {r['seed']['bars']} bars, seeded in {r['seed']['seconds']:.0f} s" for db, r in dbs.items()
    )
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{results['command']}` on {results['finished_at']} (UTC); regenerate with the same command.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory_mb']} MB; {m['os']} (kernel {m['kernel']}).",
        f"- Python {m['python']}, Django {results['django']}; {versions}"
        + (f"; Redis {results['redis_version']}" if results.get("redis_version") else "")
        + ".",
        (
            f"- The 1-minute load average, sampled before each section, ranged {min(loads):.1f}–{max(loads):.1f} on "
            f"{m['cores']} cores; where it passed the cores, wall times include waiting for the CPU."
        ),
        "",
        "## What was measured",
        "",
        (
            f"- Data: `seed_demo --users {scale['users']} --assets {scale['assets']} --years {scale['years']}` "
            f"({seeded}), "
            "mock provider without latency."
        ),
        "- Full refresh: `all` in `full` mode in a fresh process. Peak memory is that process's maximum RSS, "
        "Python and Django included. Beside it a `qcluster` of "
        + ", ".join(f"{r['chunk_workers']['default']} worker(s) on {DATABASES[db]}" for db, r in dbs.items())
        + " takes the portfolio chunk tasks the run queues, as a deployment's second worker would "
        "(its peak RSS is shown apart); the refresh is run once more with no worker beside it, its own "
        "process calculating every chunk, to show what spreading the chunks pays. It fetches the whole history "
        "window again; the mock returns the bars already seeded, and a bar that comes back unchanged is not "
        "rewritten. It is run again with "
        f"{scale['short_years']} year(s) of history, to see whether memory grows with history length, and "
        'once more "cold", with every bar gone as on a new deployment (on PostgreSQL a TRUNCATE, as the COPY floor '
        "empties its tables; a DELETE would leave the run inserting among dead rows that autovacuum cleans meanwhile), "
        "when all of them are inserted.",
        (
            "- Floor, in the same run: every row that refresh wrote (bars, quotes, signals, allocations, proposals, "
            "metrics, comparisons), written again with one plain `executemany` per table through the driver "
            "(sqlite3 / psycopg, no Django), plus the same figures computed by the same numpy functions on matrices "
            "already in memory. On PostgreSQL also the COPY floor: the same rows loaded with one text `COPY` per "
            "table through psycopg into the real table, first emptied of them (untimed, in the same transaction), so "
            "the load pays the same indexes, foreign keys and WAL but no upsert; PostgreSQL's refresh, which writes "
            "through COPY, is held to it, SQLite's to the executemany floor. Naive baseline: a sample of the same "
            "rows saved one by one with the ORM's "
            "`update_or_create` (a transaction each), extrapolated to all rows."
        ),
        _refresh_repeats(scale["refresh_repeats"]),
        (
            "- Incremental: `all` and then `prices` in `incremental` mode, each after the mock's prices moved "
            "(it moves them once a minute), so every quote changed and `all` recalculated every portfolio "
            "holding one; smart: `all` in `smart` mode right after, when nothing is stale."
        ),
        (
            f"- Provider concurrency: an incremental `prices` refresh with the mock answering each call after "
            f"{scale['provider_latency']:g} s, with one batch at a time and with {scale['provider_concurrency']} "
            "in flight, each in a fresh process."
        ),
        f"- Trigger under load: gunicorn ({dbs[next(iter(dbs))]['trigger']['workers']} workers as "
        "gunicorn.conf.py sets them up, threaded) on "
        f"127.0.0.1; {scale['clients']} concurrent clients for {scale['load_seconds']:g} s against a bare DRF "
        "endpoint (token authentication and a parsed JSON body, nothing else), then against "
        "`POST /api/v1/manual/refresh/portfolio/{own id}`, each request from a different user so every one "
        "creates and queues a real run (plain users are added, twice the warm-up's pace, when the seeded ones "
        "would run out: a repeated request would join its queued run instead). After a warm-up of each, the two "
        "take turns in two phases each "
        "(bare, trigger, bare, trigger), so a burst of load from elsewhere hits both. During each phase the "
        "CPU time of the gunicorn processes, of the database and Redis servers and of the load generator is "
        "read from /proc, to say what one request costs and who spends it." + _repeats(dbs),
        (
            f"- Queue latency: `created_at` to `started_at` of {scale['queue_runs']} small refreshes requested one "
            "after another while a real `qcluster` (2 workers) serves the queue, with the ORM broker and with Redis."
        ),
        "",
        "## Results",
        "",
        table_text(results),
        "",
        "## Full refresh, step by step",
        "",
    ]
    for db, r in dbs.items():
        for run, label in (("full_refresh", ""), ("full_refresh_cold", ", cold")):  # their median runs
            lines.append(
                f"- {DATABASES[db]}{label}: " + ", ".join(_step_lines(r, run)) + f"; items {r[run]['items_updated']}."
            )
    lines += ["", *scale_report.section(results), "## What a trigger request costs", ""]
    lines += [f"- {DATABASES[db]}: {trigger_costs(db, r)}" for db, r in dbs.items()]
    lines += ["", "## Targets missed, by how much and why", ""]
    lines += [f"- {note}" for note in notes] or ["None in this run."]
    lines.append("")
    return "\n".join(lines)
