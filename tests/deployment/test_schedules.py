"""Schedules fire in a deployed qcluster, and a failing one is logged, announced and shown on the dashboard.

The stacks made the nightly schedule due and added a failing one as soon as their databases were
ready (deployments.arm_schedules); django-q2's scheduler looks every 30 s, so these tests poll.
"""

import ast
import json
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from notifications.models import DeliveryStatus
from tests.deployment.deployments import (
    ADMIN_LOGIN,
    BENCHMARK,
    DEFAULT_SCHEDULE_TIMES,
    FAILING_SCHEDULE,
    FAILURE_RECIPIENT,
    FAILURE_SUBSCRIPTION,
    NIGHTLY,
    PRODUCTION_SCHEDULE_TIMES,
    READ_SCHEDULES,
)

SCHEDULER_WAIT = 100  # seconds from arming: two of the scheduler's 30 s looks, and the task's own time


def until(predicate, *, stack, since: float, timeout: float = SCHEDULER_WAIT, what: str):
    """Polls ``predicate`` until it returns something true, ``timeout`` seconds from ``since`` at most."""
    while True:
        value = predicate()
        if value:
            return value
        stack.check_alive()
        if time.monotonic() > since + timeout:
            raise AssertionError(f"[{stack.name}] no {what} within {timeout} s:\n{stack.output_tail()}")
        time.sleep(1)


def stored_kwargs(text: str) -> dict:
    """A schedule's kwargs as django-q2 reads them back (a dict literal, or ``a=1, b="x"``); else fails."""
    try:
        kwargs = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        try:
            call = ast.parse(f"f({text})", mode="eval").body
            assert isinstance(call, ast.Call)
            kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords}
            assert not call.args
        except (AssertionError, SyntaxError, ValueError):
            raise AssertionError(f"django-q2 cannot read these kwargs back, and would call with none: {text}") from None
    assert isinstance(kwargs, dict), text
    return kwargs


def schedule_times(stack) -> dict:
    return PRODUCTION_SCHEDULE_TIMES if stack.name == "production" else DEFAULT_SCHEDULE_TIMES


def local_time(next_run: str, zone: str) -> str:
    return datetime.fromisoformat(next_run).astimezone(ZoneInfo(zone)).strftime("%H:%M")


def test_installed_schedules_keep_plain_values_and_local_times(served):
    times = schedule_times(served)
    installed = {schedule["name"]: schedule for schedule in served.installed_schedules["schedules"]}
    installed_at = datetime.fromisoformat(served.installed_schedules["now"])

    for schedule in installed.values():
        if schedule["kwargs"]:
            kwargs = stored_kwargs(schedule["kwargs"])  # raises on anything but literals
            assert json.loads(json.dumps(kwargs)) == kwargs, schedule
    assert stored_kwargs(installed[NIGHTLY]["kwargs"])["kind"] == "all"
    assert stored_kwargs(installed[NIGHTLY]["kwargs"])["mode"] == "full"

    for name, at in ((NIGHTLY, times["REFRESH_NIGHTLY_AT"]), (BENCHMARK, times["REFRESH_BENCHMARK_AT"])):
        next_run = installed[name]["next_run"]
        assert local_time(next_run, times["REFRESH_SCHEDULE_TZ"]) == at, (name, next_run)
        assert timedelta(0) < datetime.fromisoformat(next_run) - installed_at <= timedelta(hours=25), (name, next_run)


def test_a_due_schedule_starts_a_scheduled_run(served):
    token = served.admin_token()

    def scheduled_runs():
        answer = served.get("/api/v1/manual/refresh/runs/?source=schedule", token=token)
        assert answer.status_code == 200, answer.text
        return [run for run in answer.json()["results"] if run["kind"] == "all" and run["mode"] == "full"]

    runs = until(scheduled_runs, stack=served, since=served.armed_at, what="run of the nightly schedule")
    assert {run["source"] for run in runs} == {"schedule"}
    failures = served.orm(f"""
from django_q.models import Failure
out = [[f.group, f.func, str(f.result)[:500]] for f in Failure.objects.exclude(group={FAILING_SCHEDULE!r})]
""")
    assert failures == [], "django-q2 recorded failed tasks"

    # django-q2 moved the schedule on by 24 hours; the task put it back on its local time.
    times = schedule_times(served)
    (nightly,) = [s for s in served.orm(READ_SCHEDULES)["schedules"] if s["name"] == NIGHTLY]
    assert local_time(nightly["next_run"], times["REFRESH_SCHEDULE_TZ"]) == times["REFRESH_NIGHTLY_AT"], nightly


def test_a_failing_schedule_is_logged_notified_and_on_the_dashboard(served):
    def error_record():
        return [
            record
            for record in served.log_records()
            if record.get("level") == "ERROR"
            and "schedule.failed" in (record.get("event_type"), record.get("event"))
            and FAILING_SCHEDULE in json.dumps(record)
        ]

    until(error_record, stack=served, since=served.armed_at, what="ERROR record of event schedule.failed")

    def delivered():
        deliveries = served.orm(f"""
from notifications.models import NotificationDelivery
out = list(NotificationDelivery.objects.filter(subscription__name={FAILURE_SUBSCRIPTION!r})
           .values("event_type", "status", "attempts", "last_error"))
""")
        # Done once delivered, given up, or an attempt failed (a retry would come 30 s later).
        return (
            deliveries
            if any(
                d["status"] in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED) or d["last_error"] for d in deliveries
            )
            else None
        )

    deliveries = until(delivered, stack=served, since=served.armed_at, what="notification of the failure")
    assert [(d["event_type"], d["status"]) for d in deliveries] == [("schedule.failed", DeliveryStatus.DELIVERED)], (
        deliveries
    )
    mail = served.output()  # the console email backend writes the mail to the worker's stdout
    assert "Subject: [refresh] schedule.failed" in mail
    assert f"To: {FAILURE_RECIPIENT}" in mail
    assert FAILING_SCHEDULE in mail.split(f"To: {FAILURE_RECIPIENT}", 1)[1]

    dashboard = served.browser(*ADMIN_LOGIN).get("/admin/refresh/refreshrun/dashboard/")
    assert dashboard.status_code == 200
    assert FAILING_SCHEDULE in dashboard.text
