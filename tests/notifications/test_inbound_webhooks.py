"""Inbound webhooks: signed, fresh, once per delivery id, mapped to a refresh started as the system."""

import json
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from rest_framework.test import APIClient

from notifications.models import WebhookDelivery, WebhookEventMapping, WebhookSource
from notifications.signing import signature
from refresh.models import RefreshRun, RunPriority, RunStatus
from refresh.services.demo import seed_demo

from .conftest import SECRET, signed_post


def event(delivery_id="evt-1", event_type="market.event", **extra):
    return {"id": delivery_id, "type": event_type, **extra}


def assert_refused(response, status, code):
    assert response.status_code == status, response.content
    assert response.json()["status"] == "error"
    assert response.json()["error"]["code"] == code
    assert not RefreshRun.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_valid_webhook_starts_the_mapped_refresh_as_the_system(source, sender):
    response = sender("market-feed", event(data={"reason": "earnings"}))

    assert response.status_code == HTTPStatus.ACCEPTED
    body = response.json()
    run = RefreshRun.objects.get()
    assert body["refresh_id"] == run.refresh_id
    assert (run.kind, run.mode, run.priority) == ("prices", "smart", RunPriority.HIGH)
    assert (run.source, run.requested_role, run.requested_by) == ("webhook", "system", None)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.source, delivery.delivery_id, delivery.run) == (source, "evt-1", run)
    assert delivery.payload == {"reason": "earnings"}


def test_valid_webhook_runs_to_success_in_the_background(source, sender, run_tasks):
    response = run_tasks(sender, "market-feed", event(event_type="benchmark.update"))

    assert response.status_code == HTTPStatus.ACCEPTED
    run = RefreshRun.objects.get()
    assert (run.kind, run.status) == ("benchmark", RunStatus.SUCCESS)


def test_forged_signature_is_401_and_starts_nothing(source, sender):
    assert_refused(
        sender("market-feed", event(), secret="not-the-secret-at-all"), HTTPStatus.UNAUTHORIZED, "invalid_signature"
    )


def test_body_changed_after_signing_is_401(source, sender):
    signed = json.dumps(event()).encode()
    ts = str(int(time.time()))
    good = signature(secret=SECRET, timestamp=ts, body=signed)
    tampered = json.dumps(event(event_type="alert.critical")).encode()
    assert_refused(
        sender("market-feed", tampered, timestamp=ts, signature_value=good),
        HTTPStatus.UNAUTHORIZED,
        "invalid_signature",
    )


@pytest.mark.parametrize(
    "headers", [{}, {"HTTP_X_REFRESH_TIMESTAMP": "1700000000"}, {"HTTP_X_REFRESH_SIGNATURE": "sha256=00"}]
)
def test_missing_signature_or_timestamp_is_401(source, client, headers):
    response = client.post(
        "/api/v1/manual/refresh/webhooks/market-feed/",
        data=json.dumps(event()),
        content_type="application/json",
        **headers,
    )
    assert_refused(response, HTTPStatus.UNAUTHORIZED, "invalid_signature")


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_stale_or_future_timestamp_is_401_even_when_correctly_signed(source, sender, age):
    response = sender("market-feed", event(), timestamp=int(time.time()) - age)
    assert_refused(response, HTTPStatus.UNAUTHORIZED, "stale_timestamp")


def test_timestamp_just_under_five_minutes_old_is_accepted(source, sender):
    assert sender("market-feed", event(), timestamp=int(time.time()) - 290).status_code == HTTPStatus.ACCEPTED


def test_replayed_delivery_id_answers_the_original_run_and_starts_no_other(source, sender, run_tasks):
    first = run_tasks(sender, "market-feed", event("evt-42"))
    again = sender("market-feed", event("evt-42"))  # signed afresh: a sender's retry

    assert again.status_code == HTTPStatus.OK
    assert again.json()["refresh_id"] == first.json()["refresh_id"]
    assert again.json()["status"] == RunStatus.SUCCESS  # the original run, finished meanwhile
    assert RefreshRun.objects.count() == 1
    assert WebhookDelivery.objects.count() == 1


def test_same_delivery_id_from_another_source_is_a_new_delivery(source, sender):
    WebhookSource.objects.create(name="alerts", secret="alerts-secret-0123456789")
    sender("market-feed", event("evt-7"))
    response = sender("alerts", event("evt-7", event_type="benchmark.update"), secret="alerts-secret-0123456789")
    assert response.status_code == HTTPStatus.ACCEPTED
    assert RefreshRun.objects.count() == 2


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"type": "market.event"}).encode(), "id"),
        (json.dumps({"id": "evt-1"}).encode(), "type"),
        (json.dumps({"id": "bad id with spaces", "type": "market.event"}).encode(), "id"),
        (json.dumps({"id": "evt-1", "type": "market.event", "priority": "urgent"}).encode(), "priority"),
        (json.dumps({"id": "evt-1", "type": "market.event", "symbols": "AAPL"}).encode(), "symbols"),
    ],
)
def test_malformed_body_is_400_and_starts_nothing(source, sender, raw, message):
    response = sender("market-feed", raw)
    assert_refused(response, HTTPStatus.BAD_REQUEST, "malformed_body")
    assert message in response.json()["error"]["message"]


def test_unknown_event_type_is_400(source, sender):
    assert_refused(
        sender("market-feed", event(event_type="weather.rain")), HTTPStatus.BAD_REQUEST, "unknown_event_type"
    )


def test_unknown_symbols_are_400_and_leave_no_delivery(source, sender):
    response = sender("market-feed", event(event_type="alert.condition", symbols=["NOPE"]))
    assert_refused(response, HTTPStatus.BAD_REQUEST, "unknown_symbols")


def test_symbols_reach_the_prices_refresh(source, sender, demo):
    sender("market-feed", event(event_type="alert.condition", symbols=["spy"]))
    assert RefreshRun.objects.get().params["symbols"] == ["SPY"]


@pytest.mark.parametrize("name", ["nobody", "retired"])
def test_unknown_or_inactive_source_looks_exactly_like_a_bad_signature(source, sender, name):
    WebhookSource.objects.create(name="retired", secret=SECRET, is_active=False)
    unknown = sender(name, event())
    forged = sender("market-feed", event(), secret="not-the-secret-at-all")
    assert_refused(unknown, HTTPStatus.UNAUTHORIZED, "invalid_signature")
    assert (unknown.status_code, unknown.json()) == (forged.status_code, forged.json())


@pytest.mark.parametrize(
    "header",
    [
        "sha256=é",
        "sha256=ü" * 64,
        "☃",
        "sha256=" + "f" * 10_000,
        "sha256=\x00",
        "sha1=abc",
        "=",
        " ",
    ],
)
def test_any_malformed_signature_header_is_401(source, sender, header):
    assert_refused(sender("market-feed", event(), signature_value=header), HTTPStatus.UNAUTHORIZED, "invalid_signature")


def test_a_deeply_nested_signed_body_is_400_not_500(source, sender):
    nested = b"[" * 100_000 + b"]" * 100_000
    assert_refused(sender("market-feed", nested), HTTPStatus.BAD_REQUEST, "malformed_body")


def test_source_mapping_overrides_the_built_in_one(source, sender):
    WebhookEventMapping.objects.create(
        source=source, event_type="market.event", kind="benchmark", mode="full", priority=RunPriority.LOW
    )
    WebhookEventMapping.objects.create(source=source, event_type="fx.move", kind="prices", mode="incremental")
    sender("market-feed", event("a"))
    sender("market-feed", event("b", event_type="fx.move"))
    runs = {(r.kind, r.mode, r.priority) for r in RefreshRun.objects.all()}
    assert runs == {("benchmark", "full", RunPriority.LOW), ("prices", "incremental", RunPriority.LOW)}


@pytest.mark.parametrize("body", [event(event_type="alert.critical"), event(priority="emergency")])
def test_emergency_is_403_for_a_source_not_allowed_it(source, sender, body):
    assert_refused(sender("market-feed", body), HTTPStatus.FORBIDDEN, "emergency_not_allowed")


def test_emergency_from_an_allowed_source_runs_at_emergency(source, sender):
    source.allow_emergency = True
    source.save()
    # The source's allowance is the grant: the system group itself may not request emergency.
    assert not Group.objects.get(name="system").permissions.filter(codename="request_emergency").exists()

    response = sender("market-feed", event(event_type="alert.critical"))

    assert response.status_code == HTTPStatus.ACCEPTED, response.content
    assert response.json()["priority"] == "emergency"
    assert RefreshRun.objects.get().priority == RunPriority.EMERGENCY


def test_get_is_not_allowed(source, client):
    response = client.get("/api/v1/manual/refresh/webhooks/market-feed/")
    assert response.status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert response.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.django_db(transaction=True)
def test_concurrent_replays_of_one_delivery_start_one_run(monkeypatch):
    seed_demo(users=1, assets=3, years=1)
    WebhookSource.objects.create(name="market-feed", secret=SECRET)
    monkeypatch.setattr("refresh.services.dispatch.enqueue_pickup", lambda **kwargs: None)  # queue only

    def deliver(_):
        try:
            return signed_post(APIClient(), "market-feed", event("evt-race"))
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(deliver, range(5)))

    assert sorted(r.status_code for r in responses) == [200, 200, 200, 200, 202]
    assert len({r.json()["refresh_id"] for r in responses}) == 1
    assert RefreshRun.objects.count() == 1
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.parametrize("timestamp", ["9" * 5000, "-1", "1e9", "\uff11\uff12\uff13"])  # fullwidth digits
def test_a_correctly_signed_absurd_timestamp_is_401_stale(source, sender, timestamp):
    assert_refused(sender("market-feed", event(), timestamp=timestamp), HTTPStatus.UNAUTHORIZED, "stale_timestamp")
