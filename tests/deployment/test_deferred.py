"""A deferred run starts in the deployed workers at its time: not before it, and within seconds.

django-q2's scheduler looks for due schedules every 30 s; the run's one-off schedule is due 35 s
before its time, so one of those looks fires it early and the task waits out the rest.
"""

import time
from datetime import UTC, datetime, timedelta

AHEAD = 45  # seconds: the schedule is due 10 s from now, and a scheduler look comes within 30 s of that


def test_a_deferred_run_starts_at_its_time_in_the_deployed_workers(production):
    (admin,) = production.fresh_users("admin")
    run_at = (datetime.now(UTC) + timedelta(seconds=AHEAD)).replace(microsecond=0)

    answer = production.post(
        "/api/v1/manual/refresh/benchmark/",
        token=admin["token"],
        json={"mode": "smart", "run_at": run_at.isoformat()},
    )

    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "scheduled"
    location = f"/api/v1/manual/refresh/runs/{answer.json()['refresh_id']}/"
    deadline = time.monotonic() + AHEAD + 30
    while not (run := production.get(location, token=admin["token"]).json())["started_at"]:
        assert run["status"] == "scheduled", run
        production.check_alive()
        assert time.monotonic() < deadline, production.output_tail()
        time.sleep(0.5)
    started = datetime.fromisoformat(run["started_at"].replace("Z", "+00:00"))  # whole seconds, as the API prints
    assert run_at <= started <= run_at + timedelta(seconds=5), (run_at, run["started_at"], production.output_tail())
    assert "Entered the queue" in [step["name"] for step in run["steps"]]
