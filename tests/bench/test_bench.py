"""The benchmark suite still runs end to end, at a toy scale; timings are never asserted."""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def _bench_database() -> tuple[str, str]:
    """The database this test pass runs on, as `python -m bench` names it, and a PostgreSQL URL
    for a benchmark database of this test run's own."""
    db = settings.DATABASES["default"]
    if connection.vendor == "sqlite":
        return "sqlite", ""
    login = quote(db["USER"]) + (f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else "")
    name = f"refresh_bench{os.environ.get('TEST_DB_SUFFIX', '')}"
    return "postgresql", f"postgres://{login}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"


def test_the_benchmark_suite_measures_everything_and_writes_its_report(tmp_path):
    database, postgres_url = _bench_database()
    redis_url = os.environ.get("REDIS_URL", "")
    report = tmp_path / "BENCHMARKS.md"
    command = [
        sys.executable,
        "-m",
        "bench",
        "--scale",
        "tiny",
        "--databases",
        database,
        "--output",
        str(report),
        "--work-dir",
        str(tmp_path / "work"),
        "--redis-url",
        redis_url,
    ]
    if postgres_url:
        command += ["--postgres-url", postgres_url]

    done = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=900)

    assert done.returncode == 0, done.stderr[-4000:]
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    measured = results["databases"][database]
    for run in ("full_refresh", "full_refresh_cold", "full_refresh_short", "full_refresh_other_chunk_workers"):
        assert measured[run]["status"] == "success", measured[run]["errors"]
        assert measured[run]["peak_rss_mb"] > 0
    assert measured["full_refresh_cold"]["items_updated"]["bars"] == measured["seed"]["bars"] > 0
    assert measured["write_floor"]["tables"]["market_data_pricebar"]["rows"] == measured["seed"]["bars"]
    assert measured["write_floor"]["tables"]["portfolios_portfoliometrics"]["rows"] == measured["seed"]["users"]
    assert measured["naive"]["rows_sampled"] > 0
    assert measured["incremental_prices"]["provider_calls"] == measured["expected_incremental_calls"] == 1
    assert measured["smart"]["provider_calls"] == 0
    # By default a worker beside the run takes its chunk tasks; once the run is alone.
    assert measured["chunk_workers"] == {"default": 1, "other": 0}
    alone = measured["full_refresh_other_chunk_workers"]
    assert (measured["full_refresh"]["chunk_tasks"], alone["chunk_tasks"]) == (1, 0)
    assert measured["full_refresh"]["chunk_workers_peak_rss_mb"] > 0
    assert {n: run["concurrency"] for n, run in measured["provider_concurrency"].items()} == {"1": 1, "2": 2}
    assert all(
        run["status"] == "success" and run["latency_s"] == 0.05 for run in measured["provider_concurrency"].values()
    )
    _check_serving(measured)
    assert measured["command_start"]["command"] == "refresh --help"
    assert len(measured["command_start"]["runs_s"]) == 5
    assert ("redis" in measured["queue"]) == bool(redis_url)

    _check_scale_runs(results["scale_runs"][database], scale_out=bool(postgres_url and redis_url))
    assert (tmp_path / "benchmarks-scale.png").read_bytes().startswith(b"\x89PNG")

    text = report.read_text()
    assert "## Machine" in text
    assert "## Targets missed, by how much and why" in text
    assert "- Measured once each (`--refresh-repeats 1`)" in text
    [trigger_row] = [line for line in text.splitlines() if line.startswith("| Trigger p99 ÷ bare p99")]
    assert trigger_row.startswith("| Trigger p99 ÷ bare p99 (the median run) | ≤ 2× on PostgreSQL |")
    # The target holds for PostgreSQL only: SQLite's figure carries no verdict.
    assert ("**met**" in trigger_row or "**MISSED**" in trigger_row) == (database == "postgresql"), trigger_row
    _check_floors(database, measured, text)
    assert "| Queue latency, ORM broker" in text
    assert "by workers beside the run taking its chunk tasks" in text
    assert "by MARKET_DATA_CONCURRENCY" in text
    _check_scale_report(text, database)


def _check_serving(measured: dict) -> None:
    """The trigger under load against the bare endpoint, what one request costs, the queue."""
    bare, trigger = measured["trigger"]["bare"]["statuses"], measured["trigger"]["trigger"]["statuses"]
    assert set(bare) == {"200"}, bare
    # The toy data set has 6 users, so the load test reuses them: deduplicated (200) or cooled
    # down (429) requests are expected, failures (0) and server errors are not.
    assert sum(trigger.values()) > 0, trigger
    assert set(trigger) <= {"200", "202", "429"}, trigger
    assert len(measured["trigger"]["p99_ratios"]) == measured["trigger"]["repeats"]
    for endpoint in ("bare", "trigger"):
        spent = measured["trigger"][endpoint]["cpu_ms_per_request"]
        assert set(spent) == {"gunicorn", "database", "redis", "load generator"}, spent
        assert spent["gunicorn"] > 0, spent
        assert all(ms >= 0 for ms in spent.values()), spent  # a process that ended subtracts nothing
    costs = measured["request_costs"]
    assert (costs["bare"]["status"], costs["trigger"]["status"]) == (200, 202)
    assert "refresh.RefreshRun" in costs["trigger"]["written_tables"]  # tables named by their model
    assert any("request_refresh" in where for where in costs["trigger"]["profile_ms"])
    assert measured["queue"]["orm"]["runs"] == 2


def _check_scale_report(text: str, database: str) -> None:
    """The scale section links the chart, and the scale targets are rows of the results table."""
    assert "## Scale" in text
    assert "![Time per portfolio and peak memory against portfolios](benchmarks-scale.png)" in text
    scale_rows = [line for line in text.splitlines() if line.startswith(("| Scale: ", "| Scale-out: "))]
    assert len(scale_rows) == 3, scale_rows  # time per portfolio (tiny: one asset count), peak memory, scale-out
    # Like the trigger's, the scale targets hold for PostgreSQL only.
    assert all(("**met**" in row or "**MISSED**" in row) == (database == "postgresql") for row in scale_rows)


def _check_scale_runs(measured: dict, *, scale_out: bool) -> None:
    """Every size of the tiny grid was seeded and refreshed, with its steps, peak memory and rows;
    the scale-out ran at the most portfolios and fewest assets with one and with two processes."""
    sizes = measured["sizes"]
    assert [(size["portfolios"], size["assets"]) for size in sizes] == [(20, 10), (40, 10)]
    for size in sizes:
        assert size["seed"]["users"] == size["portfolios"]
        [run] = size["runs"]
        assert run["status"] == "success", run["errors"]
        assert {"Fetching data", "Updating database", "Recalculating metrics"} <= set(run["steps"])
        assert run["peak_rss_mb"] > 0
        assert run["chunk_workers_peak_rss_mb"] > 0
        assert run["items_updated"]["bars"] == size["seed"]["bars"] > 0
        assert run["items_updated"]["portfolios"] == size["portfolios"]
    with_scale_out = [size for size in sizes if "scale_out" in size]
    if not scale_out:
        assert with_scale_out == []
        return
    [size] = with_scale_out
    assert (size["portfolios"], size["assets"]) == (40, 10)
    [one], [two] = size["scale_out"]["one"], size["scale_out"]["two"]
    assert one["status"] == two["status"] == "success", (one["errors"], two["errors"])
    assert (one["chunk_tasks"], len(one["peak_rss_mb"]), one["chunks_by_tasks"]) == (0, 1, 0)
    # Whether the other process takes a chunk before the run's worker has done them all is timing.
    assert two["chunk_tasks"] > 0
    assert len(two["peak_rss_mb"]) == 2
    assert all(peak > 0 for peak in two["peak_rss_mb"])
    assert two["items_updated"] == one["items_updated"]


def _check_floors(database: str, measured: dict, text: str) -> None:
    """PostgreSQL also loads the same rows with COPY, the floor its refresh is held to; SQLite
    is held to the executemany floor."""
    assert ("copy_write_floor" in measured) == (database == "postgresql")
    if database == "postgresql":
        copied = measured["copy_write_floor"]["tables"]
        assert {t: v["rows"] for t, v in copied.items()} == {
            t: v["rows"] for t, v in measured["write_floor"]["tables"].items()
        }
        assert copied["market_data_pricebar"]["rows"] == measured["seed"]["bars"]
    assert len(measured["refresh_runs"]) == 1  # tiny: one run, and it is the median run
    assert measured["refresh_runs"][0]["full_refresh"] == measured["full_refresh"]
    assert measured["refresh_runs"][0]["full_refresh_cold"] == measured["full_refresh_cold"]
    rows = {line.split(" | ")[0]: line for line in text.splitlines()}
    for label, target, held in (
        ("| Full refresh ÷ executemany floor (the median run)", "≤ 3× on SQLite", "sqlite"),
        ("| Full refresh ÷ COPY floor (the median run)", "≤ 1.5× on PostgreSQL", "postgresql"),
    ):
        assert rows[label].startswith(f"{label} | {target} |"), rows[label]
        assert ("**met**" in rows[label] or "**MISSED**" in rows[label]) == (database == held), rows[label]
    copy_floor = rows["| Floor: COPY of the same rows + numpy on the same figures"]
    assert copy_floor.endswith("| n/a |") == (database == "sqlite"), copy_floor


def test_the_median_run_is_the_one_with_the_median_ratio():
    from bench.rows import median_of

    def run(name, trigger, bare):
        return {"name": name, "trigger": {"p99_ms": trigger}, "bare": {"p99_ms": bare}}

    def ratio(run):
        return run["trigger"]["p99_ms"] / run["bare"]["p99_ms"]

    runs = [run("high", 90, 40), run("low", 70, 40), run("middle", 80, 40)]
    assert median_of(runs, ratio)["name"] == "middle"
    assert median_of(runs[:2], ratio)["name"] == "high"  # the upper one of an even count
    assert median_of(runs[:1], ratio)["name"] == "high"


def _refresh_run(*, warm, cold, copy_floor, peak, short_peak=280.0):
    """One run of the repeated full refresh measurements on PostgreSQL (the compute floor: 1 s)."""

    def refresh(seconds, peak_mb):
        steps = {"Updating database": seconds * 400, "Recalculating metrics": seconds * 600}
        return {"seconds": seconds, "peak_rss_mb": peak_mb, "steps": steps, "items_updated": {"bars": 10}}

    def floor(seconds):
        return {"seconds": seconds, "tables": {"market_data_pricebar": {"rows": 10, "seconds": seconds}}}

    return {
        "full_refresh": refresh(warm, peak),
        "full_refresh_short": refresh(warm / 2, short_peak),
        "write_floor": floor(2 * copy_floor),
        "copy_write_floor": floor(copy_floor),
        "compute_floor": {"seconds": 1.0},
        "naive": {"estimated_seconds": 440.0, "rows_sampled": 30, "tables": {}},
        "full_refresh_cold": refresh(cold, peak + 10),
    }


def _results(runs: list[dict]) -> dict:
    """Everything the report reads for PostgreSQL, around these full refresh runs."""
    from bench.report import median_refresh_runs

    quick = {"seconds": 0.1, "provider_calls": 1, "items_updated": {}}
    endpoint = {"p50_ms": 10.0, "p99_ms": 20.0, "throughput": 100.0}
    measured = {
        "refresh_runs": runs,
        **median_refresh_runs(runs, "postgresql"),
        "chunk_workers": {"default": 1, "other": 0},
        "full_refresh_other_chunk_workers": {"seconds": 40.0, "steps": {}},
        "provider_concurrency": {"1": quick},
        "incremental_prices": quick,
        "incremental_all": quick,
        "smart": {**quick, "provider_calls": 0},
        "symbols": 8,
        "expected_incremental_calls": 1,
        "trigger": {"bare": endpoint, "trigger": endpoint, "p99_ratios": [1.0]},
    }
    scale = {"years": 5, "short_years": 1, "provider_latency": 0.3}
    return {"databases": {"postgresql": measured}, "scale": scale, "machine": {"cores": 2}}


def test_the_report_holds_each_full_refresh_ratio_by_its_median_run():
    from bench import report

    runs = [
        # warm ÷ COPY floor 1.4×, 2.2× (a noisy run), 1.5×; cold 1.6×, 1.3×, 1.7×.
        _refresh_run(warm=14, cold=16, copy_floor=9, peak=300),
        _refresh_run(warm=22, cold=13, copy_floor=9, peak=350),
        _refresh_run(warm=30, cold=34, copy_floor=19, peak=320),
    ]
    results = _results(runs)
    measured = results["databases"]["postgresql"]
    # The median runs' figures stand for all: the warm ones of the third run, the cold one of the first.
    assert measured["full_refresh"] is runs[2]["full_refresh"]
    assert measured["copy_write_floor"] is runs[2]["copy_write_floor"]
    assert measured["full_refresh_cold"] is runs[0]["full_refresh_cold"]

    rows = {row.label: row for row in report.rows(results)}
    assert rows["Full refresh: wall time (the median run)"].values == {"postgresql": "30.00 s"}
    warm = rows["Full refresh ÷ COPY floor (the median run)"]
    assert warm.values == {"postgresql": "1.5× (runs: 1.4×, 2.2×, 1.5×)"}
    assert warm.met == {"postgresql": True}  # one noisy run does not break it
    cold = rows["Cold full refresh (empty price table, every bar inserted): wall time, ÷ COPY floor (the median run)"]
    assert cold.values == {"postgresql": "16.00 s, 1.6× (runs: 1.6×, 1.3×, 1.7×)"}
    assert cold.met == {"postgresql": False}  # nor does one quiet run make it
    # PostgreSQL is not held to the executemany floor: its ratios are shown without a verdict.
    assert rows["Full refresh ÷ executemany floor (the median run)"].met == {"postgresql": None}
    naive = rows["Naive ÷ full refresh (the median run)"]
    assert naive.values == {"postgresql": "20.0× (runs: 31.4×, 20.0×, 14.7×)"}
    assert naive.met == {"postgresql": True}
    # Peak memory: the highest run, warm and cold apart; its growth: the median run's ratio.
    memory = rows["Full refresh: peak memory (5 years of history; the highest run)"]
    assert memory.values == {"postgresql": "350 MB (cold: 360 MB)"}
    growth = rows["Peak memory with 5 years ÷ with 1 year(s) of history (the median run)"]
    assert growth.values == {"postgresql": "1.1× (runs: 1.1×, 1.2×, 1.1×); 320 / 280 MB"}
    assert growth.met == {"postgresql": True}

    # The missed target is explained from the cold refresh's median run: 16 s against 1.5 × 10 s.
    [note] = report.explanations(results)
    assert note.startswith("**PostgreSQL: full refresh up to 1.6× the COPY floor (target 1.5×), 1.0 s over.**")


def test_the_scale_report_compares_median_runs_against_the_targets():
    from bench import scale_report

    def size(portfolios, seconds, peak, scale_out=None):
        runs = [{"seconds": s, "peak_rss_mb": peak, "steps": {}, "items_updated": {}} for s in seconds]
        return {"portfolios": portfolios, "assets": 500, "years": 5, "runs": runs, "scale_out": scale_out}

    def recalculation(ms):
        return {"steps": {"Recalculating metrics": ms}, "seconds": ms / 1000}

    # Time per portfolio: 10k at a median of 10 s is 1 ms; 100k at a median of 130 s is 1.3 ms.
    scale_out = {"one": [recalculation(100)] * 3, "two": [recalculation(70), recalculation(60), recalculation(50)]}
    sizes = [size(10000, [9, 10, 30], 400), size(100000, [120, 130, 140], 900, scale_out)]
    results = {
        "databases": {"postgresql": {}},
        "scale": {"scale_assets": (500,)},
        "scale_runs": {"postgresql": {"sizes": sizes}},
    }
    growth, memory, spread = scale_report.rows(results)
    assert growth.values["postgresql"].startswith("1.30×"), growth.values
    assert growth.met == {"postgresql": False}
    assert memory.met == {"postgresql": True}
    assert spread.values["postgresql"].startswith("0.60× (runs: 0.70×, 0.60×, 0.50×"), spread.values
    assert spread.met == {"postgresql": True}
