"""Retries of Twelve Data calls: which failures are retried, with what waits, and where they stop."""

import time
from http import HTTPStatus

import pytest
import requests
import responses

from market_data.providers import ProviderAuthError, ProviderError, ProviderRateLimited, TwelveDataClient
from market_data.retries import call_with_retries
from tests.market_data.test_twelvedata import DAY_MESSAGE, KEY, MINUTE_MESSAGE, QUOTE_URL, error_body, quote_body

BASE = QUOTE_URL.rsplit("/", 1)[0]


@pytest.fixture
def client():
    return TwelveDataClient(api_key=KEY, base_url=BASE, batch_size=5)


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


@pytest.fixture
def slept(settings):
    """The waits between attempts, recorded instead of slept."""
    settings.MARKET_DATA_RETRY_ATTEMPTS = 4
    settings.MARKET_DATA_RETRY_MAX_SECONDS = 60.0
    return []


def fetch(client, slept):
    return call_with_retries(lambda: client.fetch_quotes(["AAPL", "MSFT"]), sleep=slept.append)


def keyed_quotes():
    return {"AAPL": quote_body("AAPL"), "MSFT": quote_body("MSFT")}


def test_two_server_errors_then_success_is_retried(client, mocked, slept):
    mocked.get(QUOTE_URL, status=HTTPStatus.BAD_GATEWAY, body="<html>bad gateway</html>")
    mocked.get(QUOTE_URL, json=error_body(500, "internal error"))
    mocked.get(QUOTE_URL, json=keyed_quotes())

    result = fetch(client, slept)

    assert set(result.items) == {"AAPL", "MSFT"}
    assert len(mocked.calls) == 3
    assert len(slept) == 2


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectTimeout("connect timed out"),
        requests.ReadTimeout("read timed out"),
        requests.ConnectionError("connection reset"),
    ],
)
def test_timeouts_and_connection_errors_are_retried(client, mocked, slept, failure):
    mocked.get(QUOTE_URL, body=failure)
    mocked.get(QUOTE_URL, json=keyed_quotes())

    assert set(fetch(client, slept).items) == {"AAPL", "MSFT"}
    assert len(mocked.calls) == 2


@pytest.mark.parametrize(
    "status",
    [
        HTTPStatus.BAD_REQUEST,
        HTTPStatus.UNAUTHORIZED,
        HTTPStatus.FORBIDDEN,
        HTTPStatus.NOT_FOUND,
        HTTPStatus.REQUEST_URI_TOO_LONG,
    ],
)
@pytest.mark.parametrize("in_body", [False, True])
def test_client_errors_are_not_retried(client, mocked, slept, status, in_body):
    mocked.get(
        QUOTE_URL,
        status=HTTPStatus.OK if in_body else status,
        json=error_body(int(status), "**interval** is not supported"),
    )

    with pytest.raises(ProviderError) as caught:
        fetch(client, slept)

    assert caught.value.code == status
    assert len(mocked.calls) == 1
    assert slept == []


def test_a_rejected_key_is_not_retried_and_keeps_the_key_out_of_the_message(client, mocked, slept):
    mocked.get(
        QUOTE_URL, status=HTTPStatus.UNAUTHORIZED, json=error_body(401, f"**apikey** parameter is incorrect: {KEY}")
    )

    with pytest.raises(ProviderAuthError) as caught:
        fetch(client, slept)

    assert len(mocked.calls) == 1
    assert KEY not in str(caught.value)


@pytest.mark.parametrize(("message", "scope"), [(MINUTE_MESSAGE, "minute"), (DAY_MESSAGE, "day")])
def test_rate_limits_are_left_to_the_credit_budget(client, mocked, slept, message, scope):
    mocked.get(QUOTE_URL, status=HTTPStatus.TOO_MANY_REQUESTS, json=error_body(429, message))

    with pytest.raises(ProviderRateLimited) as caught:
        fetch(client, slept)

    assert caught.value.scope == scope
    assert len(mocked.calls) == 1


def test_attempts_are_bounded(client, mocked, slept, settings):
    settings.MARKET_DATA_RETRY_ATTEMPTS = 3
    mocked.get(QUOTE_URL, status=HTTPStatus.SERVICE_UNAVAILABLE, body="down")

    with pytest.raises(ProviderError) as caught:
        fetch(client, slept)

    assert caught.value.code == HTTPStatus.SERVICE_UNAVAILABLE
    assert len(mocked.calls) == 3


def test_waits_grow_exponentially_with_full_jitter_within_the_cap(client, mocked, slept, settings):
    settings.MARKET_DATA_RETRY_ATTEMPTS = 6
    settings.MARKET_DATA_RETRY_BACKOFF_SECONDS = 2.0
    settings.MARKET_DATA_RETRY_BACKOFF_CAP_SECONDS = 5.0
    settings.MARKET_DATA_RETRY_MAX_SECONDS = 1000.0
    mocked.get(QUOTE_URL, status=HTTPStatus.INTERNAL_SERVER_ERROR, body="oops")

    with pytest.raises(ProviderError):
        fetch(client, slept)

    # Full jitter: each wait is anywhere between 0 and min(cap, base x 2^(attempt-1)).
    ceilings = [2.0, 4.0, 5.0, 5.0, 5.0]
    assert len(slept) == len(ceilings)
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(slept, ceilings, strict=True))
    assert len(set(slept)) > 1


def test_total_time_is_bounded(client, mocked, settings):
    settings.MARKET_DATA_RETRY_ATTEMPTS = 50
    settings.MARKET_DATA_RETRY_BACKOFF_SECONDS = 0.1
    settings.MARKET_DATA_RETRY_BACKOFF_CAP_SECONDS = 0.1
    settings.MARKET_DATA_RETRY_MAX_SECONDS = 0.3
    mocked.get(QUOTE_URL, status=HTTPStatus.INTERNAL_SERVER_ERROR, body="oops")
    began = time.monotonic()

    with pytest.raises(ProviderError):
        call_with_retries(lambda: client.fetch_quotes(["AAPL", "MSFT"]))  # really sleeps

    # No wait starts that would end past the limit, so it stops long before 50 attempts (5 s of
    # waits); the margin is for a busy machine's scheduling, not for another wait.
    assert time.monotonic() - began < 0.3 + 1.0
    assert 1 < len(mocked.calls) < 50
