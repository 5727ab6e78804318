"""``python -m bench``: every benchmark on SQLite and PostgreSQL; prints the table, writes BENCHMARKS.md.

Each database gets a fresh benchmark database (never the service's own) and a suite process
of its own; then the scale runs (bench.scale) seed every size of the scale grid into a database
of their own and time full refreshes of it, and the scale chart is drawn beside the report.
``--scale tiny`` runs the same steps on a toy data set in seconds (CI's smoke test).
"""

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.chart import write_chart
from bench.processes import ROOT
from bench.report import machine, markdown, table_text

SCALES = {
    "full": {
        "users": 10000,
        "assets": 500,
        "years": 5,
        "short_years": 1,
        "clients": 32,
        "load_seconds": 20.0,
        "load_repeats": 3,
        "refresh_repeats": 3,
        "warmup_seconds": 3.0,
        "gunicorn_workers": 4,
        "queue_runs": 20,
        "naive_sample": 300,
        "naive_bar_sample": 2000,
        "provider_latency": 0.3,
        "provider_concurrency": 4,
        # The scale runs (bench.scale): every portfolios × assets size, on SQLite only up to its maximum.
        "scale_portfolios": (1000, 10000, 100000),
        "scale_assets": (500, 2000),
        "scale_years": 5,
        "scale_repeats": 3,
        "scale_sqlite_max_portfolios": 10000,
        "scale_chunk_portfolios": 2000,
    },
    "tiny": {
        "users": 6,
        "assets": 8,
        "years": 1,
        "short_years": 1,
        "clients": 2,
        "load_seconds": 1.0,
        "load_repeats": 1,
        "refresh_repeats": 1,  # CI runs tiny on both databases: one run each keeps it fast
        "warmup_seconds": 0.2,
        "gunicorn_workers": 1,
        "queue_runs": 2,
        "naive_sample": 10,
        "naive_bar_sample": 20,
        "provider_latency": 0.05,
        "provider_concurrency": 2,
        "scale_portfolios": (20, 40),
        "scale_assets": (10,),  # one asset count: CI runs this on both configurations, within its time budget
        "scale_years": 1,
        "scale_repeats": 1,
        "scale_sqlite_max_portfolios": 40,
        "scale_chunk_portfolios": 10,  # several chunks even at this size, so chunk tasks are queued and taken
    },
}
# Settings of the scale runs (bench.scale), not of the suite.
SCALE_RUN_SETTINGS = tuple(name for name in SCALES["full"] if name.startswith("scale_"))
SCALE_CHART = "benchmarks-scale.png"
DEFAULT_POSTGRES = "postgres://postgres@127.0.0.1:5432/refresh_bench"
# The service's settings read these; a benchmark process sets every one of them itself.
SERVICE_VARIABLES = (
    "DATABASE_URL",
    "SQLITE_PATH",
    "REDIS_URL",
    "Q_BROKER",
    "DATA_CACHE_DIR",
    "DJANGO_SETTINGS_MODULE",
    "TEST_DB_SUFFIX",
)


def _environment(
    *, database: str, postgres_url: str, redis_url: str, work: Path, years: int, label: str = "bench"
) -> dict[str, str]:
    """The environment of every process benchmarking one database: mock data, no key, no limits.
    `label` names the SQLite file and the cache folder (the scale runs have their own)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in SERVICE_VARIABLES and not k.startswith(("TWELVEDATA", "MOCK_PROVIDER", "MARKET_DATA"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="bench.settings",
        DJANGO_DEBUG="false",
        LOG_LEVEL="WARNING",
        MARKET_DATA_PROVIDER="mock",
        MOCK_PROVIDER_LATENCY="0",
        MARKET_DATA_CREDITS_PER_MINUTE="0",
        MARKET_DATA_CREDITS_PER_DAY="0",
        Q_WORKERS="2",
        REFRESH_HISTORY_YEARS=str(years),
        REFRESH_TIME_LIMIT_SECONDS="all=3600;prices=3600",
        DATA_CACHE_DIR=str(work / f"cache-{label}-{database}"),
        PYTHONPATH=str(ROOT),
    )
    env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))  # DEBUG is off: a key is required
    if database == "sqlite":
        env["SQLITE_PATH"] = str(work / f"{label}.sqlite3")
        env["Q_BROKER"] = "orm"
    else:
        env["DATABASE_URL"] = postgres_url
        if redis_url:
            env.update(REDIS_URL=redis_url, Q_BROKER="redis")
    return env


def _reset_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _reset_postgres(url: str) -> None:
    """Drop and create the benchmark database (connecting to the server's maintenance database)."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or name in ("postgres", "template0", "template1"):
        raise SystemExit(f"refusing to use {name!r} as the benchmark database")
    admin = parts._replace(scheme="postgresql", path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def _scale_database_url(url: str) -> str:
    """The scale runs' PostgreSQL database: the suite's name with `_scale` after it."""
    parts = urlsplit(url)
    return parts._replace(path=f"{parts.path.rstrip('/')}_scale").geturl()


def _redis_version(url: str) -> str | None:
    try:
        import redis

        return redis.Redis.from_url(url, socket_connect_timeout=3).info("server")["redis_version"]
    except Exception:  # noqa: BLE001 - only describes the machine
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=SCALES, default="full")
    parser.add_argument("--databases", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_POSTGRES),
        help="a database the benchmark may drop and create",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", os.environ.get("REDIS_URL", "")),
        help="Redis for the PostgreSQL runs and the Redis queue broker (empty: skip those)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "var" / "bench")
    for name, value in SCALES["full"].items():
        kind = _numbers if isinstance(value, tuple) else type(value)
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None)
    args = parser.parse_args(argv)
    scale: dict[str, Any] = {
        name: getattr(args, name) if getattr(args, name) is not None else value
        for name, value in SCALES[args.scale].items()
    }
    work = args.work_dir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    import django

    results: dict[str, Any] = {
        "command": "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "scale": scale,
        "machine": machine(),
        "django": django.get_version(),
        "databases": {},
        "redis_version": _redis_version(args.redis_url) if args.redis_url else None,
    }
    for database in [d.strip() for d in args.databases.split(",") if d.strip()]:
        print(
            f"== {database}: seeding {scale['users']} users, {scale['assets']} assets, {scale['years']} years",
            file=sys.stderr,
            flush=True,
        )
        _reset_sqlite(work / "bench.sqlite3") if database == "sqlite" else _reset_postgres(args.postgres_url)
        env = _environment(
            database=database, postgres_url=args.postgres_url, redis_url=args.redis_url, work=work, years=scale["years"]
        )
        out = work / f"results-{database}.json"
        suite_args = [
            f"--{name.replace('_', '-')}={value}" for name, value in scale.items() if name not in SCALE_RUN_SETTINGS
        ]
        suite_args += ["--json", str(out), "--logs", str(work), "--redis-url", args.redis_url]
        if args.scale == "full":
            suite_args.append("--wait-for-new-prices")
        _run_bench_process("bench.suite", suite_args, env=env, what=f"the {database} suite", out=out)
        results["databases"][database] = json.loads(out.read_text())
    if scale["scale_repeats"]:
        results["scale_runs"] = {database: _scale_runs(args, scale, database) for database in results["databases"]}
        chart = args.output.parent / SCALE_CHART
        write_chart(results, chart)
        results["scale_chart"] = chart.name
    results["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    args.output.write_text(markdown(results))
    print(table_text(results))
    print(f"\nWrote {args.output}", file=sys.stderr)


def _numbers(text: str) -> tuple[int, ...]:
    """A comma-separated list of sizes: `1000,10000`."""
    return tuple(int(part) for part in text.split(",") if part.strip())


def _scale_runs(args: argparse.Namespace, scale: dict[str, Any], database: str) -> dict[str, Any]:
    """Every size of one database's scale runs, each in a freshly reset database of their own (never
    the suite's) and a process of its own; the scale-out at the most portfolios and fewest assets,
    on PostgreSQL with the Redis broker."""
    work: Path = args.work_dir
    postgres_url = _scale_database_url(args.postgres_url)
    env = _environment(
        database=database,
        postgres_url=postgres_url,
        redis_url=args.redis_url,
        work=work,
        years=scale["scale_years"],
        label="scale",
    )
    env["REFRESH_METRICS_CHUNK"] = str(scale["scale_chunk_portfolios"])
    portfolios = [
        n for n in scale["scale_portfolios"] if database == "postgresql" or n <= scale["scale_sqlite_max_portfolios"]
    ]
    scale_out = (max(portfolios), min(scale["scale_assets"])) if database == "postgresql" and args.redis_url else None
    sizes = []
    for users in portfolios:
        for assets in scale["scale_assets"]:
            print(
                f"== {database} scale: {users} portfolios, {assets} assets, {scale['scale_years']} years",
                file=sys.stderr,
                flush=True,
            )
            _reset_sqlite(work / "scale.sqlite3") if database == "sqlite" else _reset_postgres(postgres_url)
            out = work / f"scale-{database}-{users}x{assets}.json"
            size_args = [f"--portfolios={users}", f"--assets={assets}", f"--years={scale['scale_years']}"]
            size_args += [f"--repeats={scale['scale_repeats']}", "--json", str(out), "--logs", str(out.with_suffix(""))]
            if (users, assets) == scale_out:
                size_args.append("--scale-out")
            _run_bench_process("bench.scale", size_args, env=env, what=f"the {database} scale run", out=out)
            sizes.append(json.loads(out.read_text()))
    return {"sizes": sizes}


def _run_bench_process(module: str, module_args: list[str], *, env: dict[str, str], what: str, out: Path) -> None:
    """Run one benchmark process (a database's suite, a scale size) on its own; it writes its results to `out`."""
    done = subprocess.run(  # its exit status is checked below, with a message that says where to look
        [sys.executable, "-m", module, *module_args], cwd=ROOT, env=env, timeout=4 * 3600, check=False
    )
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"{what} failed ({done.returncode}); see its output above and {out.parent}")


if __name__ == "__main__":
    main()
