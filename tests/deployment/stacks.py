"""A running deployment of the service, as tests see it: its processes, their output, and HTTP.

A ``Stack`` holds the environment the service was started with, the processes it runs (each in
a process group of its own, stdout and stderr captured to files that tests read), ``manage.py``
in that same environment, and an HTTP client that talks to it the way its users would.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
READY_TIMEOUT = 150  # run.sh runs setup.sh first, which may install a changed requirement

# What a stack inherits from the machine; every setting of the service comes from the stack itself.
_INHERITED = {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL"}
_INHERITED_PREFIXES = ("PIP_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def base_env() -> dict:
    """The machine's environment without anything that configures the service or this test run."""
    return {k: v for k, v in os.environ.items() if k in _INHERITED or k.startswith(_INHERITED_PREFIXES)} | {
        "PYTHONUNBUFFERED": "1",  # output reaches the captured files as it is written
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StackFailed(AssertionError):
    pass


class Stack:
    """One running deployment: environment, processes with captured output, and an HTTP client."""

    def __init__(self, name: str, *, workdir: Path, env: dict, https: bool):
        self.name = name
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.env = env
        self.https = https
        self.processes: dict[str, subprocess.Popen] = {}
        self.tokens: list[str] = []  # every API key issued on this stack, for the leak check
        self.installed_schedules: dict = {}  # READ_SCHEDULES' answer right after install_schedules
        self.armed_at: float | None = None  # time.monotonic() when the schedules were made due
        self._admin_token: str | None = None

    # --- processes -----------------------------------------------------------------------
    def manage(self, *args, env: dict | None = None, check: bool = True, timeout: float = 180):
        """``python manage.py ...`` in the stack's environment (or ``env``), from the repository root."""
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            check=False,  # a failure is raised below, with the command's output in the message
            cwd=ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise StackFailed(
                f"[{self.name}] manage.py {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
            )
        return result

    def orm(self, code: str):
        """Runs ``code`` in ``manage.py shell`` (public models only) and returns what it left in ``out``."""
        marker = "@@deployment-result@@"
        script = f"out = None\n{code}\nimport json\nprint({marker!r} + json.dumps(out, default=str))\n"
        stdout = self.manage("shell", "--no-imports", "-c", script).stdout
        line = next((line for line in stdout.splitlines() if line.startswith(marker)), None)
        if line is None:
            raise StackFailed(f"[{self.name}] the shell printed no result:\n{stdout[-3000:]}")
        return json.loads(line[len(marker) :])

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        """Starts a process in a new process group, its stdout and stderr going to files of its own."""
        with (self.logs / f"{name}.out").open("wb") as out, (self.logs / f"{name}.err").open("wb") as err:
            process = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=out, stderr=err, start_new_session=True)
        self.processes[name] = process
        return process

    def output(self, name: str | None = None) -> str:
        """Everything the stack's processes (or the named one) wrote so far, stdout and stderr."""
        files = sorted(self.logs.glob(f"{name}.*" if name else "*.*"))
        return "\n".join(path.read_text(errors="replace") for path in files)

    def output_tail(self, size: int = 4000) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-size:]}" for path in sorted(self.logs.glob("*.*"))
        )

    def log_records(self, name: str | None = None) -> list[dict]:
        """The JSON log records among the output lines."""
        records = []
        for line in self.output(name).splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
        return records

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise StackFailed(f"[{self.name}] {name} exited with {process.returncode}:\n{self.output_tail()}")

    def wait_until_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Polls the admin login page until it answers 200, failing early if a process died."""
        deadline = time.monotonic() + timeout
        last: requests.Response | requests.RequestException | None = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                last = requests.get(
                    self.url("/admin/login/"), headers=self.proxy_headers, timeout=5, allow_redirects=False
                )
                if last.status_code == 200:
                    return
            except requests.RequestException as exc:
                last = exc
            time.sleep(0.3)
        raise StackFailed(f"[{self.name}] not ready after {timeout} s (last answer: {last!r}):\n{self.output_tail()}")

    def stop(self) -> None:
        """SIGTERM to every process group, then SIGKILL to what is left."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):  # the group's other members (workers, children) too
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    # --- HTTP ----------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def proxy_headers(self) -> dict:
        """What the TLS proxy in front of an HTTPS deployment adds to every request."""
        return {"X-Forwarded-Proto": "https"} if self.https else {}

    @property
    def origin(self) -> str:
        """The site's address as a browser sees it (https://127.0.0.1 is trusted behind the proxy)."""
        return "https://127.0.0.1" if self.https else f"http://127.0.0.1:{self.port}"

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: dict | None = None,
        timeout: float = 30,
        **kwargs,
    ) -> requests.Response:
        """One request on a connection of its own (so requests spread over the web workers); never a 5xx."""
        headers = {**self.proxy_headers, "Connection": "close", **(headers or {})}
        if token:
            headers["Authorization"] = f"Token {token}"
        response = requests.request(
            method, self.url(path), headers=headers, timeout=timeout, allow_redirects=False, **kwargs
        )
        assert response.status_code < 500, (
            f"[{self.name}] {method} {path} answered {response.status_code}:\n"
            f"{response.text[:3000]}\n{self.output_tail()}"
        )
        return response

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def concurrently(self, calls: list) -> list:
        """Runs the callables at once, each in its own thread, and returns their results in order."""
        start = threading.Barrier(len(calls))

        def run(call):
            start.wait()
            return call()

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return list(pool.map(run, calls))

    def browser(self, username: str, password: str) -> "AdminBrowser":
        return AdminBrowser(self, username, password)

    # --- users and tokens ----------------------------------------------------------------
    def admin_token(self) -> str:
        """The demo admin's API key, from DRF's own command as the README says."""
        if self._admin_token is None:
            stdout = self.manage("drf_create_token", "admin").stdout
            token = re.search(r"Generated token (\w+) for user", stdout).group(1)
            self._admin_token = token
            self.tokens.append(token)
        return self._admin_token

    def fresh_users(self, *roles: str) -> list[dict]:
        """New users, one per role ("user", "support", "admin"...), each with an API key."""
        users = self.orm(f"""
import secrets
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
out = []
for role in {list(roles)!r}:
    user = User.objects.create_user(username=f"deploy-{{role}}-{{secrets.token_hex(5)}}")
    if role != "user":
        user.groups.add(Group.objects.get(name=role))
    out.append({{"id": user.pk, "username": user.username, "role": role,
                "token": Token.objects.create(user=user).key}})
""")
        self.tokens.extend(user["token"] for user in users)
        return users


class AdminBrowser:
    """A session logged in through the admin's login form, as a browser behind the TLS proxy keeps it."""

    def __init__(self, stack: Stack, username: str, password: str):
        self.stack = stack
        self.session = requests.Session()
        self.session.headers.update(stack.proxy_headers)
        login = self.get("/admin/login/?next=/admin/")
        assert login.status_code == 200, login.text[:2000]
        answer = self.post(
            "/admin/login/?next=/admin/",
            data={
                "csrfmiddlewaretoken": self.session.cookies["csrftoken"],
                "username": username,
                "password": password,
                "next": "/admin/",
            },
        )
        failed = f"admin login failed: {answer.status_code} {answer.text[:2000]}"
        assert answer.status_code == 302, failed
        assert answer.headers["Location"] == "/admin/", failed

    def _unsecure_cookies(self):
        # The TLS proxy sits between; on the plain hop the client still sends its Secure cookies.
        for cookie in self.session.cookies:
            cookie.secure = False

    def get(self, path: str, **kwargs) -> requests.Response:
        response = self.session.get(self.stack.url(path), timeout=30, allow_redirects=False, **kwargs)
        self._unsecure_cookies()
        assert response.status_code < 500, f"GET {path}: {response.status_code} {response.text[:3000]}"
        return response

    def post(self, path: str, **kwargs) -> requests.Response:
        headers = {"Origin": self.stack.origin, "Referer": self.stack.origin + path}
        response = self.session.post(self.stack.url(path), headers=headers, timeout=30, allow_redirects=False, **kwargs)
        self._unsecure_cookies()
        assert response.status_code < 500, f"POST {path}: {response.status_code} {response.text[:3000]}"
        return response
