"""Requests that wait for their run cannot take the server: a few wait, the rest answer at once.

The stack (gunicorn -w 2, no qcluster) never finishes a run, so every wait lasts its full length.
"""

import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from tests.deployment.stacks import GUNICORN, ROOT

WORKERS = 2
MAX_WAITING = 2  # REFRESH_MAX_CONCURRENT_WAITS' default, per requester
WAIT = 20  # REFRESH_MAX_WAIT_SECONDS' default


def request_slots(stack) -> int:
    """Requests gunicorn serves at once: workers × threads, as gunicorn.conf.py resolves them."""
    printed = subprocess.run(
        [GUNICORN, "--print-config", "refresh_project.wsgi", "-w", str(WORKERS)],
        cwd=ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return WORKERS * int(re.search(r"^threads\s*=\s*(\d+)", printed, re.MULTILINE).group(1))


def timed(call):
    began = time.monotonic()
    answer = call()
    return time.monotonic() - began, answer


def test_waiting_requests_leave_the_server_to_others(waiting):
    patient, other = waiting.fresh_users("user", "user")
    own = f"/api/v1/manual/refresh/portfolio/{patient['id']}/"
    first = waiting.post(own, token=patient["token"], json={})
    assert first.status_code == 202, first.text
    for _ in range(2 * WORKERS):  # the other user's first requests pay for imports and connections
        waiting.get("/api/v1/manual/refresh/runs/", token=other["token"])

    many = request_slots(waiting) + 4  # more than the server could serve if each one held a thread
    with ThreadPoolExecutor(max_workers=many) as pool:
        waits = [
            pool.submit(
                timed, lambda: waiting.post(own, token=patient["token"], json={"wait": WAIT}, timeout=WAIT + 15)
            )
            for _ in range(many)
        ]
        time.sleep(3)  # all of them sent and either waiting or answered

        probes = [timed(lambda: waiting.get("/api/v1/manual/refresh/runs/", token=other["token"])) for _ in range(3)]
        probes.append(
            timed(
                lambda: waiting.post(f"/api/v1/manual/refresh/portfolio/{other['id']}/", token=other["token"], json={})
            )
        )
        assert [answer.status_code for _, answer in probes] == [200, 200, 200, 202]
        assert max(elapsed for elapsed, _ in probes) < 1.0, [round(elapsed, 2) for elapsed, _ in probes]

        too_long = waiting.post(own, token=patient["token"], json={"wait": WAIT + 1})
        assert too_long.status_code == 400, too_long.text
        assert too_long.json()["error"]["code"] == "invalid_request", too_long.text

        answered = [future.result() for future in waits]

    waited = sorted(elapsed for elapsed, _ in answered if elapsed >= WAIT - 5)
    at_once = sorted(elapsed for elapsed, _ in answered if elapsed < WAIT - 5)
    assert 1 <= len(waited) <= MAX_WAITING, (waited, at_once)
    assert max(at_once) < 5, at_once
    assert {(answer.json()["refresh_id"], answer.json()["status"]) for _, answer in answered} == {
        (first.json()["refresh_id"], "queued")
    }
