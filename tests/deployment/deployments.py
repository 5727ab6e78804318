"""The deployments under test, built as scripts/run.sh and the README's "Running in production" build them.

Four stacks, each with databases of its own: run.sh itself (SQLite, ORM broker, runserver and a
qcluster); the production commands (PostgreSQL, Redis, gunicorn -w 4 and a qcluster); the same
commands on the embedded defaults (SQLite, no Redis) with gunicorn -w 4; and production settings
with gunicorn -w 2 and no worker, where runs never finish. Only the stacks that the selected
tests need are built, all at once, in the background.
"""

import secrets
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

from tests.deployment.stacks import GUNICORN, PYTHON, READY_TIMEOUT, ROOT, Stack, StackFailed, base_env

ADMIN_LOGIN = ("admin", "admin-demo")  # seed_demo's demo admin, as run.sh prints it

# The README's "Running in production" environment, apart from the database, Redis and secret key.
PRODUCTION_SETTINGS = {
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_HTTPS": "true",
    "DJANGO_BEHIND_TLS_PROXY": "true",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://127.0.0.1",
}
PRODUCTION_COMMANDS = [
    ["migrate", "--no-input"],
    ["collectstatic", "--no-input"],
    ["install_schedules"],
    ["seed_demo"],
]
# Limits small enough to reach in a few requests. The burst window is an hour rather than 10 s so
# that a handful of requests sent at once never straddles two fixed windows; each check uses a
# fresh requester, so nothing is carried from one check to the next.
LIMIT_SETTINGS = {
    "REFRESH_RATE_LIMIT_USER": "4/h",
    "REFRESH_RATE_LIMIT_SUPPORT": "4/h",
    "REFRESH_BURST_RATE": "5/h",
    "REFRESH_COOLDOWN_SECONDS": "6",
}
# The production stack names its own schedule times, so a test sees they are read; run.sh keeps the defaults.
DEFAULT_SCHEDULE_TIMES = {
    "REFRESH_SCHEDULE_TZ": "America/New_York",
    "REFRESH_NIGHTLY_AT": "02:00",
    "REFRESH_BENCHMARK_AT": "18:00",
}
PRODUCTION_SCHEDULE_TIMES = {
    "REFRESH_SCHEDULE_TZ": "Europe/Paris",
    "REFRESH_NIGHTLY_AT": "03:30",
    "REFRESH_BENCHMARK_AT": "17:45",
}

NIGHTLY = "refresh: nightly full"
BENCHMARK = "refresh: daily benchmark"
FAILING_SCHEDULE = "deliberately failing"
FAILURE_SUBSCRIPTION = "deployment: failed schedules"
FAILURE_RECIPIENT = "ops-deployment@example.com"

READ_SCHEDULES = """
from django.utils import timezone
from django_q.models import Schedule
out = {"now": timezone.now().isoformat(), "schedules": [
    {"name": s.name, "func": s.func, "args": s.args, "kwargs": s.kwargs, "schedule_type": s.schedule_type,
     "next_run": s.next_run.isoformat() if s.next_run else None} for s in Schedule.objects.order_by("name")]}
"""
# django-q2's scheduler looks for due schedules only every 30 s, so they are made due as soon as a
# stack's database is ready: by the time the schedule tests run, the first look has usually happened.
_ARM_SCHEDULES = f"""
from django.utils import timezone
from django_q.models import Schedule
from notifications.models import Channel, Subscription
Subscription.objects.create(name={FAILURE_SUBSCRIPTION!r}, channel=Channel.EMAIL, emails={FAILURE_RECIPIENT!r},
                            event_types=["schedule.failed"])
Schedule.objects.filter(name={NIGHTLY!r}).update(next_run=timezone.now())
Schedule.objects.create(name={FAILING_SCHEDULE!r}, func="math.sqrt", args="-1", schedule_type=Schedule.ONCE,
                        next_run=timezone.now())
"""


def arm_schedules(stack: Stack) -> None:
    """Keeps the schedules as installed, then makes the nightly one due and adds one that fails."""
    stack.installed_schedules = stack.orm(READ_SCHEDULES)
    stack.orm(_ARM_SCHEDULES)
    stack.armed_at = time.monotonic()


class Services:
    """PostgreSQL and Redis as the test run found them (DATABASE_URL, REDIS_URL); stacks get their own."""

    def __init__(self, database_url: str, redis_url: str):
        self.database_url = database_url
        self.redis_url = redis_url
        self.databases: list[str] = []

    def _admin_connection(self):
        url = with_path(self.database_url, "/postgres").replace("postgres://", "postgresql://", 1)
        return psycopg.connect(url, autocommit=True, connect_timeout=3)

    def check(self) -> None:
        self._admin_connection().close()
        redis.Redis.from_url(self.redis_url, socket_connect_timeout=3).ping()

    def create_database(self) -> str:
        name = f"deploy_{secrets.token_hex(4)}"
        for attempt in range(5):
            try:
                with self._admin_connection() as connection:
                    connection.execute(f'CREATE DATABASE "{name}"')
                break
            except psycopg.errors.ObjectInUse:  # another client copying template1 right now
                if attempt == 4:
                    raise
                time.sleep(1)
        self.databases.append(name)
        return with_path(self.database_url, f"/{name}").replace("postgresql://", "postgres://", 1)

    def drop_databases(self) -> None:
        with self._admin_connection() as connection:
            for name in self.databases:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def redis_database(self, index: int) -> str:
        url = with_path(self.redis_url, f"/{index}")
        redis.Redis.from_url(url).flushdb()
        return url


class StackPool:
    """Builds the stacks the selected tests need, all at once in the background, and stops them at the end."""

    REDIS_PRODUCTION, REDIS_WAITING = 9, 10

    def __init__(self, services: Services, tmp_root: Path):
        self.services = services
        self.tmp_root = tmp_root
        self.stacks: dict[str, Stack] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._errors: dict[str, BaseException] = {}
        self._lock = threading.Lock()

    def start(self, *names: str) -> None:
        for name in names:
            with self._lock:
                if name in self._threads:
                    continue
                thread = threading.Thread(target=self._build, args=(name,), name=f"stack-{name}", daemon=True)
                self._threads[name] = thread
            thread.start()

    def ready(self, name: str) -> Stack:
        self.start(name)
        self._threads[name].join(timeout=READY_TIMEOUT + 120)
        if name in self._errors:
            raise StackFailed(f"stack {name!r} did not start") from self._errors[name]
        if self._threads[name].is_alive():
            raise StackFailed(f"stack {name!r} still starting after {READY_TIMEOUT + 120} s")
        return self.stacks[name]

    def stop_all(self) -> None:
        for thread in self._threads.values():
            thread.join(timeout=READY_TIMEOUT + 120)
        for stack in self.stacks.values():
            stack.stop()
        if self.services.databases:
            self.services.drop_databases()
        for index in (self.REDIS_PRODUCTION, self.REDIS_WAITING):
            self.services.redis_database(index)

    def _build(self, name: str) -> None:
        try:
            getattr(self, f"_build_{name}")()
        except BaseException as exc:  # noqa: BLE001 - any failure, reported by ready() in the test that needs the stack
            self._errors[name] = exc

    def _new_stack(self, name: str, env: dict, *, https: bool) -> Stack:
        workdir = self.tmp_root / name
        stack = Stack(name, workdir=workdir, env={**base_env(), **env}, https=https)
        self.stacks[name] = stack
        return stack

    def _production_env(self, workdir: Path) -> dict:
        return {
            **PRODUCTION_SETTINGS,
            "DJANGO_SECRET_KEY": new_secret_key(),
            # Its own static root: several stacks collect at once, and so may other test runs.
            "DJANGO_STATIC_ROOT": str(workdir / "static"),
            "DATA_CACHE_DIR": str(workdir / "cache"),
        }

    def _build_runsh(self) -> None:
        """scripts/run.sh itself, on the embedded defaults."""
        workdir = self.tmp_root / "runsh"
        stack = self._new_stack(
            "runsh",
            {"HOST": "127.0.0.1", "SQLITE_PATH": str(workdir / "db.sqlite3"), "DATA_CACHE_DIR": str(workdir / "cache")},
            https=False,
        )
        stack.env["PORT"] = str(stack.port)
        stack.start("run.sh", ["bash", "scripts/run.sh"])
        stack.wait_until_ready()
        # The environment run.sh gives its processes: the secret key it generated (or kept).
        key_file = ROOT / "var" / "secret_key"
        if key_file.exists():
            stack.env["DJANGO_SECRET_KEY"] = key_file.read_text().strip()
        arm_schedules(stack)

    def _build_production(self) -> None:
        """The README's production commands: PostgreSQL, Redis, gunicorn -w 4 and a qcluster."""
        workdir = self.tmp_root / "production"
        env = {
            **self._production_env(workdir),
            **LIMIT_SETTINGS,
            **PRODUCTION_SCHEDULE_TIMES,
            "DATABASE_URL": self.services.create_database(),
            "REDIS_URL": self.services.redis_database(self.REDIS_PRODUCTION),
            "Q_BROKER": "redis",
        }
        stack = self._new_stack("production", env, https=True)
        for command in PRODUCTION_COMMANDS:
            stack.manage(*command)
        arm_schedules(stack)
        stack.start("gunicorn", [GUNICORN, "refresh_project.wsgi", "-w", "4", "-b", f"127.0.0.1:{stack.port}"])
        stack.start("qcluster", [PYTHON, "manage.py", "qcluster"])
        stack.wait_until_ready()

    def _build_embedded(self) -> None:
        """The same commands on the embedded defaults (SQLite, ORM broker, no Redis), gunicorn -w 4, no worker."""
        workdir = self.tmp_root / "embedded"
        env = {**self._production_env(workdir), **LIMIT_SETTINGS, "SQLITE_PATH": str(workdir / "db.sqlite3")}
        stack = self._new_stack("embedded", env, https=True)
        for command in PRODUCTION_COMMANDS:
            stack.manage(*command)
        stack.start("gunicorn", [GUNICORN, "refresh_project.wsgi", "-w", "4", "-b", f"127.0.0.1:{stack.port}"])
        stack.wait_until_ready()

    def _build_waiting(self) -> None:
        """Production settings with gunicorn -w 2 and no worker, so that no run ever finishes."""
        workdir = self.tmp_root / "waiting"
        env = {
            **self._production_env(workdir),
            "DATABASE_URL": self.services.create_database(),
            "REDIS_URL": self.services.redis_database(self.REDIS_WAITING),
            "Q_BROKER": "redis",
        }
        stack = self._new_stack("waiting", env, https=True)
        for command in PRODUCTION_COMMANDS:
            stack.manage(*command)
        stack.start("gunicorn", [GUNICORN, "refresh_project.wsgi", "-w", "2", "-b", f"127.0.0.1:{stack.port}"])
        stack.wait_until_ready()


def new_secret_key() -> str:
    return secrets.token_urlsafe(50)[:50]


def with_path(url: str, path: str) -> str:
    """The same server address with another path (a database name, a Redis database index)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))
