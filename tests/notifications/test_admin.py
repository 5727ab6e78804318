"""The admin: webhook sources with their mappings, and the delivery log with a retry action."""

from http import HTTPStatus

import pytest
import responses

from notifications.models import DeliveryStatus, NotificationDelivery, Subscription, WebhookSource

HOOK = "https://hooks.example.test/refresh"


@pytest.fixture
def failed_delivery(demo):
    subscription = Subscription.objects.create(name="ops", url=HOOK, event_types=["refresh.failed"])
    return NotificationDelivery.objects.create(
        subscription=subscription,
        event_type="refresh.failed",
        payload={"refresh_id": "ref_x"},
        status=DeliveryStatus.FAILED,
        attempts=6,
        last_status_code=502,
        last_error="DeliveryFailed: HTTP 502",
    )


def test_delivery_log_lists_attempts_status_code_and_last_error(admin_client, failed_delivery):
    response = admin_client.get("/admin/notifications/notificationdelivery/")
    assert response.status_code == HTTPStatus.OK
    page = response.content.decode()
    assert "DeliveryFailed: HTTP 502" in page
    assert "502" in page
    assert "refresh.failed" in page


def test_retry_action_sends_a_failed_delivery_again(admin_client, failed_delivery, django_capture_on_commit_callbacks):
    with responses.RequestsMock() as endpoint:
        endpoint.post(HOOK, status=200)
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(
                "/admin/notifications/notificationdelivery/",
                {"action": "retry_now", "_selected_action": [failed_delivery.pk]},
            )
    assert response.status_code == HTTPStatus.FOUND
    failed_delivery.refresh_from_db()
    assert (failed_delivery.status, failed_delivery.attempts, failed_delivery.last_status_code) == ("delivered", 1, 200)


def test_sources_are_managed_in_the_admin(admin_client, demo):
    response = admin_client.post(
        "/admin/notifications/webhooksource/add/",
        {
            "name": "exchange-alerts",
            "description": "",
            "is_active": "on",
            "secret": "s3cret-value-0123456789",
            "mappings-TOTAL_FORMS": "1",
            "mappings-INITIAL_FORMS": "0",
            "mappings-MIN_NUM_FORMS": "0",
            "mappings-MAX_NUM_FORMS": "1000",
            "mappings-0-event_type": "halt.lifted",
            "mappings-0-kind": "prices",
            "mappings-0-mode": "smart",
            "mappings-0-priority": "30",
        },
    )
    assert response.status_code == HTTPStatus.FOUND, response.content.decode()[:2000]
    source = WebhookSource.objects.get(name="exchange-alerts")
    assert list(source.mappings.values_list("event_type", "kind", "mode", "priority")) == [
        ("halt.lifted", "prices", "smart", 30)
    ]


def test_an_emergency_mapping_needs_a_source_allowed_emergency(admin_client, demo):
    response = admin_client.post(
        "/admin/notifications/webhooksource/add/",
        {
            "name": "feed",
            "description": "",
            "is_active": "on",
            "secret": "s3cret-value-0123456789",
            "mappings-TOTAL_FORMS": "1",
            "mappings-INITIAL_FORMS": "0",
            "mappings-MIN_NUM_FORMS": "0",
            "mappings-MAX_NUM_FORMS": "1000",
            "mappings-0-event_type": "crash",
            "mappings-0-kind": "all",
            "mappings-0-mode": "full",
            "mappings-0-priority": "40",
        },
    )
    assert response.status_code == HTTPStatus.OK  # the form again, with the error
    assert "not allowed emergency priority" in response.content.decode()
    assert not WebhookSource.objects.exists()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"channel": "webhook", "url": "", "event_types": '["refresh.failed"]'}, "needs a URL"),
        ({"channel": "email", "emails": "", "event_types": '["refresh.failed"]'}, "at least one recipient"),
        ({"channel": "webhook", "url": HOOK, "event_types": '["refresh.exploded"]'}, "A non-empty list of"),
    ],
)
def test_subscriptions_are_validated(admin_client, demo, data, error):
    response = admin_client.post(
        "/admin/notifications/subscription/add/",
        {"name": "x", "secret": "s3cret-value-0123456789", "is_active": "on", "url": "", "emails": "", **data},
    )
    assert response.status_code == HTTPStatus.OK
    assert error in response.content.decode()
    assert not Subscription.objects.exists()
