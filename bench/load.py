"""The trigger endpoint under load, against a bare DRF endpoint served by the same gunicorn.

Concurrent clients (asyncio, one connection per request as gunicorn's sync workers close
them) post for a fixed time, first to the bare endpoint, then to the trigger. Each trigger
request comes from a different user refreshing their own portfolio, so every one is a
real new run (validated, permission-checked, rate-limited, recorded and queued) rather than
a deduplicated or refused one. The server listens on 127.0.0.1 only and every phase is
bounded in time.
"""
import asyncio
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from bench.processes import stop
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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(*, workers: int, log_path: Path):
    """gunicorn serving the bench settings on a free local port; yields the port, always stops it."""
    port = _free_port()
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "refresh_project.wsgi", "--bind", f"{HOST}:{port}", "--workers",
         str(workers), "--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning"],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings"}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
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
        log.close()


async def _request(port: int, path: str, token: str | None, body: bytes) -> int:
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        auth = f"Authorization: Token {token}\r\n" if token else ""
        writer.write((f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n{auth}"
                      f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
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


def _stats(results: list[tuple[int, float]]) -> dict:
    *results, (_, elapsed) = results
    latencies = np.array([latency for _, latency in results]) * 1000
    statuses = {}
    for status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    percentile = (lambda q: float(np.percentile(latencies, q))) if len(latencies) else (lambda q: None)
    return {"requests": len(results), "seconds": elapsed, "throughput": len(results) / elapsed if elapsed else 0,
            "p50_ms": percentile(50), "p95_ms": percentile(95), "p99_ms": percentile(99),
            "max_ms": float(latencies.max()) if len(latencies) else None, "statuses": statuses}


def measure_trigger_load(*, clients: int, seconds: float, warmup: float, workers: int, log_path: Path) -> dict:
    """p50/p99 latency and throughput of the bare endpoint, then of the trigger, on one server."""
    tokens = _user_tokens()
    unused = iter(tokens)  # each trigger request from a user who has not asked yet
    any_user = itertools.cycle(tokens)

    def bare():
        while True:
            yield BARE_PATH, next(any_user)[1]

    def trigger():
        for user_id, key in itertools.chain(unused, any_user):  # wraps around only when users run out
            yield TRIGGER_PATH.format(user_id=user_id), key

    results = {"clients": clients, "seconds": seconds, "workers": workers, "users": len(tokens)}
    with gunicorn(workers=workers, log_path=log_path) as port:
        for name, requests in (("bare", bare()), ("trigger", trigger())):
            asyncio.run(_load(port, requests, clients=clients, seconds=warmup))
            results[name] = _stats(asyncio.run(_load(port, requests, clients=clients, seconds=seconds)))
    return results


def queries_per_request() -> dict:
    """SQL statements (and writes among them) of one bare request and one trigger request."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    user_id, key = _user_tokens()[-1]
    client = Client(HTTP_AUTHORIZATION=f"Token {key}")
    counts = {}
    for name, path in (("bare", BARE_PATH), ("trigger", TRIGGER_PATH.format(user_id=user_id))):
        with CaptureQueriesContext(connection) as queries:
            response = client.post(path, data={"mode": "incremental"}, content_type="application/json")
        written = [m.group(1) for q in queries if (m := _WRITE.match(q["sql"]))]
        counts[name] = {"statements": len(queries), "writes": len(written), "written_tables": written,
                        "status": response.status_code}
    return counts
