"""The trigger endpoint under load, against a bare DRF endpoint served by the same gunicorn.

Concurrent clients (asyncio, one connection per request) post for a fixed time to the bare
endpoint and to the trigger, taking turns. Each trigger request comes from a different user
refreshing their own portfolio, so every one is a real new run (validated, permission-checked,
rate-limited, recorded and queued) rather than a deduplicated or refused one. The server
listens on 127.0.0.1 only and every phase is bounded in time.
"""

import asyncio
import cProfile
import gc
import itertools
import json
import os
import pstats
import re
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from rest_framework.authtoken.models import Token

from bench.processes import ROOT, stop
from bench.rows import median_of
from bench.urls import BARE_PATH

HOST = "127.0.0.1"
TRIGGER_PATH = "/api/v1/manual/refresh/portfolio/{user_id}"
REQUEST_TIMEOUT = 30.0
_WRITE = re.compile(r'\s*(?:INSERT INTO|UPDATE|DELETE FROM)\s+"?(\w+)"?', re.IGNORECASE)


def _user_tokens() -> list[tuple[int, str]]:
    """(user id, token key) of every non-staff user, creating tokens where missing."""
    users = get_user_model().objects.filter(is_staff=False, is_superuser=False, portfolios__isnull=False).distinct()
    missing = users.filter(auth_token__isnull=True)
    Token.objects.bulk_create([Token(user=user, key=Token.generate_key()) for user in missing], batch_size=5000)
    return list(Token.objects.filter(user__in=users).order_by("user_id").values_list("user_id", "key"))


def _new_user_tokens(count: int) -> list[tuple[int, str]]:
    """(user id, token key) of `count` new plain users (no password, no portfolio) made for the load test.

    The trigger must never run out of users who have not asked yet: a repeated request joins
    the run already queued, a different and cheaper path than the one measured.
    """
    if count <= 0:
        return []
    model, tag = get_user_model(), uuid.uuid4().hex[:8]
    names = [f"load-{tag}-{i}" for i in range(count)]
    model.objects.bulk_create([model(username=name, password=make_password(None)) for name in names], batch_size=5000)
    users = model.objects.filter(username__startswith=f"load-{tag}-")
    Token.objects.bulk_create(
        [Token(user_id=pk, key=Token.generate_key()) for pk in users.values_list("pk", flat=True)], batch_size=5000
    )
    return list(Token.objects.filter(user__in=users).order_by("user_id").values_list("user_id", "key"))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(*, workers: int, log_path: Path):
    """gunicorn serving the bench settings on a free local port; yields the port, always stops it."""
    port = _free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "refresh_project.wsgi",
                "--bind",
                f"{HOST}:{port}",
                "--workers",
                str(workers),
                "--timeout",
                "60",
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
            ],
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=ROOT,  # gunicorn reads the production gunicorn.conf.py there
        )
        try:
            deadline = time.monotonic() + 60
            while asyncio.run(_probe(port)) is None:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn did not start; see {log_path}")
                time.sleep(0.2)
            yield port
        finally:
            stop(process)


async def _request(port: int, path: str, token: str | None, body: bytes) -> int:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        auth = f"Authorization: Token {token}\r\n" if token else ""
        writer.write(
            (
                f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n{auth}"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            + body
        )
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
    return int(response.split(b" ", 2)[1])


async def _probe(port: int) -> int | None:
    try:
        return await asyncio.wait_for(_request(port, BARE_PATH, None, b"{}"), timeout=2)
    except (OSError, TimeoutError, IndexError, ValueError):
        return None


async def _load(port: int, requests, *, clients: int, seconds: float) -> list[tuple[int, float]]:
    """Keep `clients` requests in flight for `seconds`; (status, latency) of each (status 0: failed)."""
    results = []
    deadline = time.perf_counter() + seconds
    body = json.dumps({"mode": "incremental"}).encode()

    async def client():
        while time.perf_counter() < deadline:
            path, token = next(requests)
            began = time.perf_counter()
            try:
                status = await asyncio.wait_for(_request(port, path, token, body), timeout=REQUEST_TIMEOUT)
            except (OSError, TimeoutError, IndexError, ValueError):
                status = 0
            results.append((status, time.perf_counter() - began))

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    results.append((-1, time.perf_counter() - began))  # the phase's whole duration, last
    return results


def _cpu_seconds(port: int) -> dict[int, tuple[str, float]]:
    """CPU seconds each process has used so far, with who it is: the gunicorn serving `port`, the
    database and Redis servers (every process of theirs on this machine) or this load generator.
    Linux only."""
    tick, me = os.sysconf("SC_CLK_TCK"), os.getpid()
    used: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # the process ended meanwhile
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        who = (
            "load generator"
            if int(entry.name) == me
            else "gunicorn"
            if f"{HOST}:{port}" in command
            else "database"
            if name.startswith("postgres")
            else "redis"
            if name.startswith("redis")
            else None
        )
        if who:
            used[int(entry.name)] = (who, (int(fields[11]) + int(fields[12])) / tick)  # utime + stime
    return used


def _cpu_per_request(port: int, phase) -> tuple[list, dict[str, float]]:
    """Run one load phase; its results and the CPU milliseconds each request cost, by who spent them.

    Counted per process alive at the end: one that ended during the phase (a database backend
    closing) takes its CPU with it, and must not subtract what it had used before.
    """
    before = _cpu_seconds(port)
    results = phase()
    after, requests = _cpu_seconds(port), max(len(results) - 1, 1)
    spent = dict.fromkeys(("gunicorn", "database", "redis", "load generator"), 0.0)
    for pid, (who, seconds) in after.items():
        earlier = before.get(pid)
        spent[who] += seconds - (earlier[1] if earlier and earlier[0] == who else 0.0)
    return results, {who: seconds * 1000 / requests for who, seconds in spent.items()}


def _stats(phases: list[list[tuple[int, float]]]) -> dict:
    """Latency percentiles, throughput and status counts over every phase of one endpoint."""
    results = [result for phase in phases for result in phase[:-1]]
    elapsed = sum(phase[-1][1] for phase in phases)
    latencies = np.array([latency for _, latency in results]) * 1000
    statuses: dict[str, int] = {}
    for status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    percentile = (lambda q: float(np.percentile(latencies, q))) if len(latencies) else (lambda q: None)
    return {
        "requests": len(results),
        "seconds": elapsed,
        "throughput": len(results) / elapsed if elapsed else 0,
        "p50_ms": percentile(50),
        "p95_ms": percentile(95),
        "p99_ms": percentile(99),
        "max_ms": float(latencies.max()) if len(latencies) else None,
        "statuses": statuses,
    }


def measure_trigger_load(
    *, clients: int, seconds: float, warmup: float, workers: int, log_path: Path, rounds: int = 2, repeats: int = 1
) -> dict:
    """p50/p99 latency and throughput of the bare endpoint and of the trigger on one server.

    The endpoints take turns (`rounds` phases each, `seconds` in all per endpoint), so a burst
    of load from elsewhere on the machine falls on both rather than on one. The whole
    measurement is made `repeats` times on the same server: one 20-second p99 moves by a
    tenth or more from run to run, so the figures reported are those of the run with the
    median p99 ratio, and every run's ratio is kept beside them.
    """
    tokens = _user_tokens()
    fresh = list(tokens)  # each trigger request from a user who has not asked yet; topped up below
    asked = 0
    any_user = itertools.cycle(tokens)

    def bare():
        while True:
            yield BARE_PATH, next(any_user)[1]

    def trigger():
        nonlocal asked
        while True:
            user_id, key = fresh[asked] if asked < len(fresh) else next(any_user)  # never, once topped up
            asked += 1
            yield TRIGGER_PATH.format(user_id=user_id), key

    requests = {"bare": bare(), "trigger": trigger()}
    runs = []
    with gunicorn(workers=workers, log_path=log_path) as port:
        asyncio.run(_load(port, requests["bare"], clients=clients, seconds=warmup))
        warm = asyncio.run(_load(port, requests["trigger"], clients=clients, seconds=warmup))
        # Enough new users for twice the warm-up's pace over the measured phases.
        rate = (len(warm) - 1) / max(warm[-1][1], 1e-3)
        fresh += _new_user_tokens(int(2 * rate * seconds * repeats) - (len(fresh) - asked))
        for _ in range(repeats):
            phases: dict[str, list[list[tuple[int, float]]]] = {name: [] for name in requests}
            cpu: dict[str, list[dict[str, float]]] = {name: [] for name in requests}
            for _ in range(rounds):
                for name, source in requests.items():
                    results, spent = _cpu_per_request(
                        port,
                        lambda source=source: asyncio.run(
                            _load(port, source, clients=clients, seconds=seconds / rounds)
                        ),
                    )
                    phases[name].append(results)
                    cpu[name].append(spent)
            runs.append(
                {
                    name: {
                        **_stats(found),
                        "cpu_ms_per_request": {
                            who: sum(spent[who] for spent in cpu[name]) / len(cpu[name]) for who in cpu[name][0]
                        },
                    }
                    for name, found in phases.items()
                }
            )
    return {
        "clients": clients,
        "seconds": seconds,
        "rounds": rounds,
        "repeats": repeats,
        "workers": workers,
        "users": len(fresh),
        "p99_ratios": [_p99_ratio(run) for run in runs],
        **median_of(runs, _p99_ratio),
    }


def _p99_ratio(run: dict) -> float:
    return run["trigger"]["p99_ms"] / run["bare"]["p99_ms"]


def request_costs(*, samples: int) -> dict:
    """What one bare and one trigger request cost in a single process: SQL statements (and the
    models whose tables they write), CPU time per request over `samples` requests, and where the trigger's time
    goes (cProfile's cumulative time of this project's functions, profiler overhead included).

    The trigger requests come from users made for it, whom the load test never reaches.
    """
    from django.apps import apps
    from django.db import connection
    from django.test import Client

    models = {model._meta.db_table: model._meta.label for model in apps.get_models()}  # tables by model
    users = _new_user_tokens(2 * samples + 2)
    # Cooldowns: one use each. The first request warms up; the statements counted are those of
    # the next, as most requests run them.
    warm, once, timed, profiled = users[:1], users[1:2], users[2 : samples + 2], users[samples + 2 :]
    paths = {"bare": lambda user_id: BARE_PATH, "trigger": lambda user_id: TRIGGER_PATH.format(user_id=user_id)}

    def post(name, user_id, key):
        return Client(HTTP_AUTHORIZATION=f"Token {key}").post(
            paths[name](user_id), data={"mode": "incremental"}, content_type="application/json"
        )

    # This process has run full refreshes; like a web process (refresh_project/wsgi.py), keep what
    # it holds out of the collector's passes, so requests pay for their own garbage only.
    gc.collect()
    gc.freeze()
    costs = {}
    for name in paths:
        statements: list[str] = []

        def record(execute, sql, params, many, context, *, seen=statements):
            seen.append(sql)
            return execute(sql, params, many, context)

        post(name, *warm[0])
        with connection.execute_wrapper(record):
            status = post(name, *once[0]).status_code
        written = [models.get(m.group(1), m.group(1)) for sql in statements if (m := _WRITE.match(sql))]
        began = time.process_time()
        for user_id, key in timed:
            post(name, user_id, key)
        costs[name] = {
            "statements": len(statements),
            "writes": len(written),
            "written_tables": written,
            "status": status,
            "cpu_ms": (time.process_time() - began) / max(len(timed), 1) * 1000,
        }
    profiler = cProfile.Profile()
    for user_id, key in profiled:
        profiler.runcall(post, "trigger", user_id, key)
    ours = [
        (ct, f"{Path(file).relative_to(ROOT)}:{func}")
        for (file, _, func), (_, _, _, ct, _) in pstats.Stats(profiler).stats.items()  # type: ignore[attr-defined]  # typeshed omits Stats.stats, pstats' own table
        if file.startswith(str(ROOT)) and "/.venv/" not in file and "/bench/" not in file
    ]
    per_request = 1000 / max(len(profiled), 1)
    costs["trigger"]["profile_ms"] = {where: ct * per_request for ct, where in sorted(ours)[-8:][::-1]}
    return costs
