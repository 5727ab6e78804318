"""Rate limits on interactive refresh requests: burst, true cooldown, hourly quota per role, 429 format.

These run on whichever "ratelimit" cache the configuration has (the database or Redis); racing
requests and separate processes are in test_rate_limits_shared.py.
"""

import time
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from rest_framework.test import APIClient

from core.models import SharedCounter
from refresh.models import RefreshRun, RunSource, RunStatus
from refresh.services.events import RATELIMIT_WARNING, refresh_event
from refresh.services.rate_limits import RateLimitExceeded, counter_cache, parse_rate
from refresh.services.requests import request_refresh

BASE = "/api/v1/manual/refresh"


@pytest.fixture
def users(db):
    def make(username, *groups, **fields):
        user = get_user_model().objects.create_user(username=username, **fields)
        user.groups.add(*Group.objects.filter(name__in=groups))
        return user

    return {
        "admin": make("root", is_superuser=True),
        "support": make("helpdesk", "support"),
        "system": make("robot", "system"),
        "user": make("alice"),
        "bob": make("bob"),
    }


def post(user, path, body=None):
    """Post, then let any accepted run finish at once: these tests are about starting runs.

    (An identical request while its run is still active joins that run and spends nothing;
    see test_an_identical_request_for_an_active_run_joins_it_and_spends_nothing.)
    """
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(f"{BASE}/{path}", body or {}, format="json")
    RefreshRun.objects.filter(status=RunStatus.QUEUED).update(status=RunStatus.SUCCESS)
    return response


def assert_refused(response, code):
    """A 429 in the documented shape, with Retry-After equal to the body's retry_after; returns it."""
    assert response.status_code == HTTPStatus.TOO_MANY_REQUESTS, response.json()
    error = response.json()["error"]
    assert response.json()["status"] == "error"
    assert error["code"] == code
    assert error["message"]
    assert isinstance(error["retry_after"], int)
    assert error["retry_after"] >= 1
    assert response["Retry-After"] == str(error["retry_after"])
    return error["retry_after"]


def accepted(response):
    return response.status_code in (HTTPStatus.OK, HTTPStatus.ACCEPTED)


# --- cooldown ---------------------------------------------------------------------------------------------------


def test_an_identical_request_for_an_active_run_joins_it_and_spends_nothing(users, clock, settings):
    settings.REFRESH_RATE_LIMITS = {**settings.REFRESH_RATE_LIMITS, "user": "1/h"}
    alice = users["user"]
    client = APIClient()
    client.force_authenticate(alice)
    first = client.post(f"{BASE}/portfolio/{alice.pk}", {}, format="json")
    assert first.status_code == HTTPStatus.ACCEPTED
    for _ in range(6):  # more than the burst, within the cooldown, past the hourly quota
        again = client.post(f"{BASE}/portfolio/{alice.pk}", {}, format="json")
        assert again.status_code == HTTPStatus.OK
        assert again.json()["refresh_id"] == first.json()["refresh_id"]
    assert RefreshRun.objects.count() == 1


def test_cooldown_is_a_true_60_seconds_from_the_last_accepted_request(users, clock):
    alice = users["user"]
    own = f"portfolio/{alice.pk}"
    first = post(alice, own)
    assert first.status_code == HTTPStatus.ACCEPTED  # and it finished: a new request would start a new run

    assert assert_refused(post(alice, own), "cooldown") == 60
    clock.shift(30)
    assert assert_refused(post(alice, own, {"mode": "smart"}), "cooldown") == 30  # any mode: same kind and target
    clock.shift(29)
    assert assert_refused(post(alice, own), "cooldown") == 1
    assert RefreshRun.objects.count() == 1

    clock.shift(1)  # 60 s after the accepted request; the refusals did not restart the cooldown
    again = post(alice, own)
    assert again.status_code == HTTPStatus.ACCEPTED
    assert again.json()["refresh_id"] != first.json()["refresh_id"]
    assert assert_refused(post(alice, own), "cooldown") == 60


def test_cooldown_is_per_kind_and_target(users, clock):
    admin = users["admin"]
    for path in ("prices", "benchmark", f"portfolio/{users['user'].pk}", f"portfolio/{users['bob'].pk}"):
        assert post(admin, path).status_code == HTTPStatus.ACCEPTED
    assert_refused(post(admin, "prices", {"mode": "full"}), "cooldown")
    clock.shift(10)  # out of the burst window: refused attempts count towards the burst too
    assert assert_refused(post(admin, f"portfolio/{users['bob'].pk}"), "cooldown") == 50
    assert post(users["support"], "prices", {"mode": "smart"}).status_code == HTTPStatus.ACCEPTED  # another requester
    assert RefreshRun.objects.count() == 5


# --- burst ------------------------------------------------------------------------------------------------------


def test_burst_allows_five_requests_per_ten_seconds_across_endpoints(users, clock):
    admin, alice, bob = users["admin"], users["user"], users["bob"]
    for path in ("all", "prices", "strategy", "benchmark", f"portfolio/{alice.pk}"):
        assert post(admin, path).status_code == HTTPStatus.ACCEPTED
    retry_after = assert_refused(post(admin, f"portfolio/{bob.pk}"), "burst")
    assert retry_after <= 10
    assert not RefreshRun.objects.filter(target_user=bob).exists()
    assert post(alice, f"portfolio/{alice.pk}", {"mode": "smart"}).status_code == HTTPStatus.ACCEPTED  # per requester

    if retry_after > 1:
        clock.shift(retry_after - 1)
        assert_refused(post(admin, f"portfolio/{bob.pk}"), "burst")
    clock.shift(1)
    assert post(admin, f"portfolio/{bob.pk}").status_code == HTTPStatus.ACCEPTED


def test_a_refused_attempt_still_counts_towards_the_burst(users, clock, settings):
    settings.REFRESH_BURST_RATE = "3/10s"
    admin = users["admin"]
    assert post(admin, "prices").status_code == HTTPStatus.ACCEPTED
    assert_refused(post(admin, "prices"), "cooldown")  # refused, yet the 2nd attempt of 3
    assert post(admin, "benchmark").status_code == HTTPStatus.ACCEPTED
    assert_refused(post(admin, "strategy"), "burst")
    assert RefreshRun.objects.count() == 2


def test_a_burst_refusal_does_not_claim_the_cooldown(users, clock, settings):
    settings.REFRESH_BURST_RATE = "1/10s"
    admin = users["admin"]
    assert post(admin, "prices").status_code == HTTPStatus.ACCEPTED
    retry_after = assert_refused(post(admin, "benchmark"), "burst")
    clock.shift(retry_after)
    assert post(admin, "benchmark").status_code == HTTPStatus.ACCEPTED


# --- hourly quota -----------------------------------------------------------------------------------------------


@pytest.fixture
def hourly_only(settings):
    """Only the hourly quota: the same request may be repeated at once."""
    settings.REFRESH_COOLDOWN_SECONDS = 0
    settings.REFRESH_BURST_RATE = None
    return settings


def test_the_11th_request_of_a_user_in_an_hour_is_429_with_a_correct_retry_after(users, clock, hourly_only):
    alice = users["user"]
    own = f"portfolio/{alice.pk}"
    assert all(accepted(post(alice, own)) for _ in range(10))
    runs_before = RefreshRun.objects.count()

    retry_after = assert_refused(post(alice, own), "rate_limited")
    assert retry_after <= 3600
    assert "10" in post(alice, own).json()["error"]["message"]
    assert RefreshRun.objects.count() == runs_before
    if retry_after > 1:
        clock.shift(retry_after - 1)
        assert_refused(post(alice, own), "rate_limited")
    clock.shift(1)
    assert accepted(post(alice, own))


def test_refusals_beyond_the_hourly_quota_change_nothing_a_later_request_is_decided_by(users, clock, hourly_only):
    hourly_only.REFRESH_RATE_LIMITS = {**hourly_only.REFRESH_RATE_LIMITS, "user": "2/h"}
    alice = users["user"]
    own = f"portfolio/{alice.pk}"
    assert accepted(post(alice, own))
    assert accepted(post(alice, own))
    waits = [assert_refused(post(alice, own), "rate_limited") for _ in range(3)]
    assert waits[0] == waits[-1]  # each refusal points at the same window end
    window = f"refresh:hourly:{alice.pk}:3600:{int(time.time() // 3600)}"
    assert counter_cache().get(window) == 5  # refusals counted beyond the quota, in the same window

    clock.shift(waits[-1])
    assert accepted(post(alice, own))
    assert accepted(post(alice, own))
    assert_refused(post(alice, own), "rate_limited")


def test_hourly_limits_come_from_settings_per_role(users, clock, hourly_only):
    hourly_only.REFRESH_RATE_LIMITS = {"admin": "4/h", "user": "1/h", "support": "2/h", "system": "3/h"}
    paths = {"admin": "prices", "support": "prices", "system": "benchmark", "user": f"portfolio/{users['user'].pk}"}
    for role, limit in {"admin": 4, "user": 1, "support": 2, "system": 3}.items():
        assert all(accepted(post(users[role], paths[role])) for _ in range(limit)), role
        assert_refused(post(users[role], paths[role]), "rate_limited")


def test_default_hourly_limits_are_the_documented_ones(settings):
    assert settings.REFRESH_RATE_LIMITS == {"admin": "100/h", "user": "10/h", "support": "30/h", "system": "1000/h"}
    assert (settings.REFRESH_BURST_RATE, settings.REFRESH_COOLDOWN_SECONDS) == ("5/10s", 60)


def test_support_gets_30_an_hour(users, clock, hourly_only):
    support = users["support"]
    assert all(accepted(post(support, "benchmark", {"mode": "smart"})) for _ in range(30))
    assert_refused(post(support, "benchmark", {"mode": "smart"}), "rate_limited")


def test_an_hourly_refusal_releases_the_cooldown_it_claimed(users, clock, settings):
    settings.REFRESH_RATE_LIMITS = {**settings.REFRESH_RATE_LIMITS, "support": "1/h"}
    settings.REFRESH_COOLDOWN_SECONDS = 7200  # longer than any hourly window
    support = users["support"]
    assert post(support, "prices").status_code == HTTPStatus.ACCEPTED
    retry_after = assert_refused(post(support, "benchmark"), "rate_limited")
    clock.shift(retry_after)
    assert post(support, "benchmark").status_code == HTTPStatus.ACCEPTED


def test_passing_80_percent_of_the_hourly_limit_emits_one_warning(users, clock, hourly_only):
    alice = users["user"]
    own = f"portfolio/{alice.pk}"
    warnings = []

    def receiver(sender, event_type, payload, **kwargs):
        if event_type == RATELIMIT_WARNING:
            warnings.append(payload)

    refresh_event.connect(receiver, weak=False)
    try:
        for _ in range(8):
            post(alice, own)
        assert warnings == []
        post(alice, own)  # the 9th of 10 passes 80%
        assert len(warnings) == 1
        assert {k: warnings[0][k] for k in ("user_id", "role", "used", "limit")} == {
            "user_id": alice.pk,
            "role": "user",
            "used": 9,
            "limit": 10,
        }
        assert 1 <= warnings[0]["resets_in"] <= 3600
        post(alice, own)
        assert_refused(post(alice, own), "rate_limited")
        assert len(warnings) == 1
    finally:
        refresh_event.disconnect(receiver)


# --- which requests are limited ---------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [RunSource.COMMAND, RunSource.SCHEDULE, RunSource.WEBHOOK])
def test_system_sources_are_not_rate_limited(users, clock, settings, source):
    settings.REFRESH_RATE_LIMITS = dict.fromkeys(settings.REFRESH_RATE_LIMITS, "1/h")
    settings.REFRESH_BURST_RATE = "1/10s"
    for requester in (None, users["admin"]):
        for _ in range(3):
            request_refresh(kind="prices", requested_by=requester, source=source, enqueue=False)
            RefreshRun.objects.update(status=RunStatus.SUCCESS)
    assert RefreshRun.objects.count() == 6


def test_admin_buttons_are_rate_limited_like_the_api(users, clock):
    admin = users["admin"]
    _run, created = request_refresh(kind="strategy", requested_by=admin, source=RunSource.ADMIN, enqueue=False)
    assert created
    RefreshRun.objects.update(status=RunStatus.SUCCESS)
    with pytest.raises(RateLimitExceeded) as refused:
        request_refresh(kind="strategy", requested_by=admin, source=RunSource.ADMIN, mode="smart", enqueue=False)
    assert (refused.value.code, refused.value.status_code, refused.value.retry_after) == ("cooldown", 429, 60)
    assert RefreshRun.objects.count() == 1
    # The API and the admin share the requester's counters.
    assert_refused(post(admin, "strategy"), "cooldown")


def test_refused_for_permission_or_bad_input_counts_nothing(users, clock, settings):
    settings.REFRESH_RATE_LIMITS = {**settings.REFRESH_RATE_LIMITS, "user": "1/h"}
    alice = users["user"]
    assert post(alice, "all").status_code == HTTPStatus.FORBIDDEN
    assert post(alice, f"portfolio/{alice.pk}", {"mode": "sometimes"}).status_code == HTTPStatus.BAD_REQUEST
    assert post(alice, f"portfolio/{alice.pk}").status_code == HTTPStatus.ACCEPTED


def test_rate_limits_can_be_switched_off(users, clock, settings):
    settings.RATELIMIT_ENABLE = False
    alice = users["user"]
    assert all(accepted(post(alice, f"portfolio/{alice.pk}")) for _ in range(12))


def test_the_limits_count_in_the_database_counter_cache(users, clock, settings):
    """The store without Redis: counters are rows, every call one atomic statement (core/counter_cache.py)."""
    settings.CACHES = {**settings.CACHES, "counters": {"BACKEND": "core.counter_cache.CounterCache"}}
    settings.RATELIMIT_USE_CACHE = "counters"
    settings.REFRESH_RATE_LIMITS = {**settings.REFRESH_RATE_LIMITS, "admin": "2/h"}
    admin = users["admin"]
    assert post(admin, "prices").status_code == HTTPStatus.ACCEPTED
    assert post(admin, "benchmark").status_code == HTTPStatus.ACCEPTED
    assert_refused(post(admin, "strategy"), "rate_limited")
    window = f"refresh:hourly:{admin.pk}:3600:{int(time.time() // 3600)}"
    assert caches["counters"].get(window) == 3
    assert SharedCounter.objects.filter(key__endswith=window).exists()


@pytest.mark.parametrize(
    ("text", "limit", "period"), [("5/10s", 5, 10), ("10/h", 10, 3600), ("3/2m", 3, 120), ("1/d", 1, 86400)]
)
def test_rates_read_like_the_settings_write_them(text, limit, period):
    rate = parse_rate(text)
    assert (rate.limit, rate.period) == (limit, period)


@pytest.mark.parametrize("text", ["5", "5/", "x/h", "5/10", "5/1w", "-1/h"])
def test_a_malformed_rate_is_refused_with_its_text(text):
    with pytest.raises(ValueError, match="is not like"):
        parse_rate(text)


def test_a_malformed_rate_setting_fails_the_system_checks(settings):
    settings.REFRESH_RATE_LIMITS = {**settings.REFRESH_RATE_LIMITS, "user": "ten an hour"}
    with pytest.raises(SystemCheckError, match=r"REFRESH_RATE_LIMITS\['user'\] is not a rate: ten an hour"):
        call_command("check")


def test_a_zero_rate_refuses_every_request(users, clock, settings):
    settings.REFRESH_BURST_RATE = "0/10s"
    assert_refused(post(users["admin"], "prices"), "burst")
    assert not RefreshRun.objects.exists()
