"""Child processes of the benchmark: run one to completion for its JSON, or stop one for good."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_json(module: str, *args: str, env: dict | None = None, timeout: float) -> dict:
    """Run ``python -m module args`` and return the JSON object it prints last; raise on failure."""
    done = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{module} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def stop(process: subprocess.Popen) -> None:
    """Stop a process started here with start_new_session=True: SIGTERM lets it stop its own
    workers; whatever of its group is left after 15 s is killed."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=15)
