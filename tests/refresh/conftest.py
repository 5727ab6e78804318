"""Real django-q2 worker processes for tests that need them."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def worker_env(**overrides) -> dict:
    """Environment that points a separate process at this test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWELVEDATA")}
    env.update(
        DJANGO_SETTINGS_MODULE="refresh_project.settings",
        MARKET_DATA_PROVIDER="mock",
        Q_WORKERS="1",
        REFRESH_HISTORY_YEARS="2",
    )
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        env["SQLITE_PATH"] = str(db["NAME"])
    else:
        env["DATABASE_URL"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class Workers:
    """Starts qcluster processes and stops them all at the end of the test."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []

    def start(self, **env) -> subprocess.Popen:
        # The process writes to its own copy of the file descriptor; ours can close at once.
        with (self.log_dir / f"qcluster-{len(self.processes)}.log").open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=ROOT,
                env=worker_env(**env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def kill(self, process) -> None:
        """SIGKILL the whole cluster at once, as a machine loss would."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in sorted(self.log_dir.glob("qcluster-*.log")))

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)  # the cluster stops its own workers
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def workers(transactional_db, monkeypatch, settings, tmp_path):
    """Queued tasks go to the broker (not run inline) and real workers execute them."""
    monkeypatch.setattr("django_q.conf.Conf.SYNC", False)
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()
    connection.close()


def wait_until(predicate, *, timeout: float = 60, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")


RATE_LIMIT_START = datetime(2030, 1, 7, 15, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock(time_machine):
    """Time stands still (a Monday, 15:00 UTC) until a test moves it."""
    time_machine.move_to(RATE_LIMIT_START, tick=False)
    return time_machine
