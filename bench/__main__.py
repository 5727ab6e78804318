"""``python -m bench``: every benchmark on SQLite and PostgreSQL; prints the table, writes BENCHMARKS.md.

Each database gets a fresh benchmark database (never the service's own) and a suite process
of its own; ``--scale tiny`` runs the same steps on a toy data set in seconds (CI's smoke test).
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
        "warmup_seconds": 3.0,
        "gunicorn_workers": 4,
        "queue_runs": 20,
        "naive_sample": 300,
        "naive_bar_sample": 2000,
        "provider_latency": 0.3,
        "provider_concurrency": 4,
    },
    "tiny": {
        "users": 6,
        "assets": 8,
        "years": 1,
        "short_years": 1,
        "clients": 2,
        "load_seconds": 1.0,
        "load_repeats": 1,
        "warmup_seconds": 0.2,
        "gunicorn_workers": 1,
        "queue_runs": 2,
        "naive_sample": 10,
        "naive_bar_sample": 20,
        "provider_latency": 0.05,
        "provider_concurrency": 2,
    },
}
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


def _environment(*, database: str, postgres_url: str, redis_url: str, work: Path, years: int) -> dict[str, str]:
    """The environment of every process benchmarking one database: mock data, no key, no limits."""
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
        DATA_CACHE_DIR=str(work / f"cache-{database}"),
        PYTHONPATH=str(ROOT),
    )
    env.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))  # DEBUG is off: a key is required
    if database == "sqlite":
        env["SQLITE_PATH"] = str(work / "bench.sqlite3")
        env["Q_BROKER"] = "orm"
    else:
        env["DATABASE_URL"] = postgres_url
        if redis_url:
            env.update(REDIS_URL=redis_url, Q_BROKER="redis")
    return env


def _reset_sqlite(work: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (work / f"bench.sqlite3{suffix}").unlink(missing_ok=True)


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
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=None)
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
        _reset_sqlite(work) if database == "sqlite" else _reset_postgres(args.postgres_url)
        env = _environment(
            database=database, postgres_url=args.postgres_url, redis_url=args.redis_url, work=work, years=scale["years"]
        )
        out = work / f"results-{database}.json"
        suite_args = [f"--{name.replace('_', '-')}={value}" for name, value in scale.items()]
        suite_args += ["--json", str(out), "--logs", str(work), "--redis-url", args.redis_url]
        if args.scale == "full":
            suite_args.append("--wait-for-new-prices")
        _run_suite(suite_args, env=env, database=database, out=out)
        results["databases"][database] = json.loads(out.read_text())
    results["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))
    args.output.write_text(markdown(results))
    print(table_text(results))
    print(f"\nWrote {args.output}", file=sys.stderr)


def _run_suite(suite_args: list[str], *, env: dict[str, str], database: str, out: Path) -> None:
    """Run one database's suite in its own process; it writes its results to `out`."""
    done = subprocess.run(  # its exit status is checked below, with a message that says where to look
        [sys.executable, "-m", "bench.suite", *suite_args], cwd=ROOT, env=env, timeout=4 * 3600, check=False
    )
    if done.returncode != 0 or not out.exists():
        raise SystemExit(f"the {database} suite failed ({done.returncode}); see its output above and {out.parent}")


if __name__ == "__main__":
    main()
