"""Child processes of the benchmark: run one to completion for its JSON, start a qcluster beside
it, read a process's peak memory, or stop one for good."""

import contextlib
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run_json(module: str, *args: str, env: dict[str, str] | None = None, timeout: float) -> dict[str, Any]:
    """Run ``python -m module args`` and return the JSON object it prints last; raise on failure."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,  # a failure raises below, with the end of its output
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def stop(process: subprocess.Popen[Any]) -> None:
    """Stop a process started here with start_new_session=True: SIGTERM lets it stop its own
    workers; whatever of its group is left after 15 s is killed."""
    if process.poll() is None:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=15)


def start_qcluster(log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A qcluster with this process's environment (and env), in a session of its own for stop()."""
    with log.open("w") as output:
        return subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def descendants(pid: int) -> list[int]:
    """The process's children, their children and so on (Linux; none elsewhere)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = [int(child) for child in task.read_text().split()]
        except OSError:  # it ended meanwhile
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def peak_rss_mb(pid: int | str = "self") -> float:
    """A process's peak resident memory so far. Linux's VmHWM, unlike ru_maxrss, does not carry
    over the parent's size from before exec, which would hide a smaller peak."""
    status = Path(f"/proc/{pid}/status")
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # it ended, or this is not Linux
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if pid == "self" else 0.0  # KiB on Linux


def command_start_seconds(*args: str, repeats: int = 5) -> dict[str, Any]:
    """Wall time of ``manage.py <args>`` in fresh processes (a cold interpreter and Django's set-up
    each time): the median of `repeats` runs, and each run."""
    runs = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, timeout=60, check=True)
        runs.append(time.perf_counter() - began)
    return {"command": " ".join(args), "median_s": statistics.median(runs), "runs_s": runs}
