"""The Twelve Data client against replayed responses in the shapes Twelve Data sends."""

from datetime import UTC, date, datetime
from decimal import Decimal
from http import HTTPStatus

import numpy as np
import pytest
import requests
import responses
from responses import matchers

from market_data.providers import ProviderAuthError, ProviderError, ProviderRateLimited, TwelveDataClient

KEY = "sekrit-key-123"
BASE = "https://td.test"
QUOTE_URL = f"{BASE}/quote"
SERIES_URL = f"{BASE}/time_series"


def quote_body(symbol, close="148.85001", previous_close="149.09000", change="-0.23999", **extra):
    return {
        "symbol": symbol,
        "name": f"{symbol} Inc",
        "exchange": "NASDAQ",
        "mic_code": "XNAS",
        "currency": "USD",
        "datetime": "2021-09-16",
        "timestamp": 1631772000,
        "open": "148.44000",
        "high": "148.96840",
        "low": "147.22099",
        "close": close,
        "volume": "67903927",
        "previous_close": previous_close,
        "change": change,
        "percent_change": "-0.16097",
        "is_market_open": False,
        **extra,
    }


def series_body(symbol, values):
    return {
        "meta": {"symbol": symbol, "interval": "1day", "currency": "USD", "exchange": "NASDAQ"},
        "values": values,
        "status": "ok",
    }


def bar(day, close, volume="1000"):
    return {"datetime": day, "open": "10.00000", "high": "12.50000", "low": "9.50000", "close": close, "volume": volume}


def error_body(code, message):
    return {"code": code, "message": message, "status": "error"}


MINUTE_MESSAGE = (
    "You have run out of API credits for the current minute. 9 API credits were used, with the "
    "current limit being 8. Wait for the next minute or consider switching to a higher tier plan."
)
DAY_MESSAGE = (
    "You have run out of API credits for the day. 801 API credits were used, with the current limit "
    "being 800. Wait for tomorrow or consider switching to a higher tier plan."
)
NOT_FOUND = "**symbol** not found: NIKK. Please specify it correctly according to API Documentation."


@pytest.fixture
def client():
    return TwelveDataClient(api_key=KEY, base_url=BASE + "/", batch_size=3)


@pytest.fixture
def mocked():
    with responses.RequestsMock() as rsps:
        yield rsps


def assert_key_hidden(rsps, *errors):
    for call in rsps.calls:
        assert call.request.headers["Authorization"] == f"apikey {KEY}"
        assert KEY not in call.request.url
        assert "apikey" not in call.request.url
    for error in errors:
        assert KEY not in str(error)
        assert KEY not in repr(error)


def test_one_symbol_quote_comes_back_flat(client, mocked):
    mocked.get(
        QUOTE_URL,
        json=quote_body("AAPL"),
        match=[matchers.query_param_matcher({"symbol": "AAPL", "interval": "1day", "timezone": "UTC"})],
    )

    result = client.fetch_quotes(["AAPL"])

    quote = result.items["AAPL"]
    assert quote.price == Decimal("148.85001")
    assert quote.previous_close == Decimal("149.09000")
    assert quote.change == Decimal("-0.23999")
    assert quote.as_of == datetime.fromtimestamp(1631772000, tz=UTC)
    assert (quote.name, quote.exchange, quote.currency) == ("AAPL Inc", "NASDAQ", "USD")
    assert result.errors == {}
    assert (result.calls, result.credits) == (1, 1)
    assert_key_hidden(mocked)


def test_quote_as_of_falls_back_to_datetime(client, mocked):
    body = quote_body("AAPL", datetime="2021-09-16 15:59:00")
    del body["timestamp"]
    mocked.get(QUOTE_URL, json=body)

    quote = client.fetch_quotes(["AAPL"]).items["AAPL"]

    assert quote.as_of == datetime(2021, 9, 16, 15, 59, tzinfo=UTC)


def test_batch_of_three_comes_back_keyed(client, mocked):
    body = {s: quote_body(s, close=c) for s, c in [("AAPL", "1.5"), ("MSFT", "2.25"), ("SPY", "433.53")]}
    mocked.get(
        QUOTE_URL,
        json=body,
        match=[matchers.query_param_matcher({"symbol": "AAPL,MSFT,SPY", "interval": "1day", "timezone": "UTC"})],
    )

    result = client.fetch_quotes(["AAPL", "MSFT", "SPY"])

    assert {s: q.price for s, q in result.items.items()} == {
        "AAPL": Decimal("1.5"),
        "MSFT": Decimal("2.25"),
        "SPY": Decimal("433.53"),
    }
    assert (result.calls, result.credits) == (1, 3)


def test_one_bad_symbol_does_not_fail_the_batch(client, mocked):
    mocked.get(
        QUOTE_URL, json={"SPY": quote_body("SPY"), "NIKK": error_body(400, NOT_FOUND), "AAPL": quote_body("AAPL")}
    )

    result = client.fetch_quotes(["SPY", "NIKK", "AAPL"])

    assert set(result.items) == {"SPY", "AAPL"}
    assert "not found" in result.errors["NIKK"]


def test_symbol_missing_from_batch_or_malformed_is_a_per_symbol_error(client, mocked):
    mocked.get(QUOTE_URL, json={"SPY": quote_body("SPY"), "AAPL": quote_body("AAPL", close="n/a")})

    result = client.fetch_quotes(["SPY", "AAPL", "MSFT"])

    assert set(result.items) == {"SPY"}
    assert result.errors["AAPL"].startswith("malformed quote")
    assert result.errors["MSFT"] == "no quote returned"


def test_unknown_single_symbol_is_a_per_symbol_error(client, mocked):
    mocked.get(QUOTE_URL, json=error_body(404, "**symbol** NIKK is available starting with Grow"))

    result = client.fetch_quotes(["NIKK"])

    assert result.items == {}
    assert "Grow" in result.errors["NIKK"]


@pytest.mark.parametrize("status", [HTTPStatus.UNAUTHORIZED, HTTPStatus.OK])
def test_invalid_key_raises_auth_error_as_status_or_body(client, mocked, status):
    mocked.get(
        QUOTE_URL, status=status, json=error_body(401, f"**apikey** parameter is incorrect or not specified: {KEY}")
    )

    with pytest.raises(ProviderAuthError) as caught:
        client.fetch_quotes(["AAPL", "MSFT"])

    assert caught.value.code == HTTPStatus.UNAUTHORIZED
    assert caught.value.transient is False
    assert_key_hidden(mocked, caught.value)


def test_plan_without_access_raises_auth_error(client, mocked):
    mocked.get(QUOTE_URL, status=HTTPStatus.FORBIDDEN, json=error_body(403, "plan lacks access"))

    with pytest.raises(ProviderAuthError) as caught:
        client.fetch_quotes(["AAPL", "MSFT"])

    assert caught.value.code == HTTPStatus.FORBIDDEN


@pytest.mark.parametrize(
    ("message", "scope", "transient"), [(MINUTE_MESSAGE, "minute", True), (DAY_MESSAGE, "day", False)]
)
@pytest.mark.parametrize("status", [HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.OK])
def test_rate_limit_says_which_quota_ran_out(client, mocked, status, message, scope, transient):
    mocked.get(QUOTE_URL, status=status, json=error_body(429, message))

    with pytest.raises(ProviderRateLimited) as caught:
        client.fetch_quotes(["AAPL"])

    assert caught.value.scope == scope
    assert caught.value.code == HTTPStatus.TOO_MANY_REQUESTS
    assert caught.value.transient is transient


@pytest.mark.parametrize("status", [HTTPStatus.INTERNAL_SERVER_ERROR, HTTPStatus.BAD_GATEWAY])
def test_server_error_is_transient(client, mocked, status):
    mocked.get(QUOTE_URL, status=status, body="<html>upstream trouble</html>")

    with pytest.raises(ProviderError) as caught:
        client.fetch_quotes(["AAPL", "MSFT"])

    assert caught.value.code == status
    assert caught.value.transient is True


def test_server_error_in_a_200_body_is_transient(client, mocked):
    mocked.get(QUOTE_URL, json=error_body(500, "internal error"))

    with pytest.raises(ProviderError) as caught:
        client.fetch_quotes(["AAPL", "MSFT"])

    assert (caught.value.code, caught.value.transient) == (500, True)


@pytest.mark.parametrize("status", [HTTPStatus.BAD_REQUEST, HTTPStatus.NOT_FOUND, HTTPStatus.REQUEST_URI_TOO_LONG])
@pytest.mark.parametrize("in_body", [False, True])
def test_client_errors_are_not_transient(client, mocked, status, in_body):
    body = error_body(int(status), "**interval** is not supported")
    mocked.get(QUOTE_URL, status=HTTPStatus.OK if in_body else status, json=body)

    with pytest.raises(ProviderError) as caught:
        client.fetch_quotes(["AAPL", "MSFT"])

    assert type(caught.value) is ProviderError
    assert caught.value.code == status
    assert caught.value.transient is False


def test_body_that_is_not_json_is_transient(client, mocked):
    mocked.get(QUOTE_URL, body="not json")

    with pytest.raises(ProviderError) as caught:
        client.fetch_quotes(["AAPL"])

    assert caught.value.transient is True


@pytest.mark.parametrize(
    "exc", [requests.ConnectionError(f"failed for {BASE}/quote?apikey={KEY}"), requests.ReadTimeout("read timed out")]
)
def test_connection_failures_are_transient_and_scrubbed(client, mocked, exc):
    mocked.get(QUOTE_URL, body=exc)

    with pytest.raises(ProviderError) as caught:
        client.fetch_quotes(["AAPL"])

    assert caught.value.transient is True
    assert caught.value.code is None
    assert caught.value.__cause__ is None
    assert_key_hidden(mocked, caught.value)


def test_credit_headers_are_recorded(client, mocked):
    mocked.get(
        QUOTE_URL,
        json={"AAPL": quote_body("AAPL"), "MSFT": quote_body("MSFT")},
        headers={"api-credits-used": "5", "api-credits-left": "3"},
    )

    result = client.fetch_quotes(["AAPL", "MSFT"])

    assert result.credits == 5
    assert (client.credits_used_header, client.credits_left_header) == (5, 3)


def test_without_credit_headers_credits_are_one_per_symbol(client, mocked):
    mocked.get(QUOTE_URL, json={"AAPL": quote_body("AAPL"), "MSFT": quote_body("MSFT")})

    result = client.fetch_quotes(["AAPL", "MSFT"])

    assert result.credits == 2
    assert client.credits_used_header is None
    assert client.credits_left_header is None


def test_more_symbols_than_the_batch_size_is_refused_without_a_request(client, mocked):
    with pytest.raises(ValueError, match="batch size"):
        client.fetch_quotes(["A", "B", "C", "D"])
    with pytest.raises(ValueError, match="batch size"):
        client.fetch_history(["A", "B", "C", "D"], start=date(2024, 1, 1), end=date(2024, 2, 1))

    assert len(mocked.calls) == 0


def test_empty_batch_costs_nothing(client, mocked):
    result = client.fetch_quotes([])

    assert (result.items, result.calls, result.credits) == ({}, 0, 0)
    assert len(mocked.calls) == 0


def test_one_symbol_history_is_flat_and_parsed_to_arrays(client, mocked):
    mocked.get(
        SERIES_URL,
        json=series_body("AAPL", [bar("2024-01-02", "11.25", "67903927"), bar("2024-01-03", "11.75")]),
        match=[
            matchers.query_param_matcher(
                {
                    "symbol": "AAPL",
                    "interval": "1day",
                    "start_date": "2024-01-01",
                    "end_date": "2024-01-31",
                    "order": "asc",
                    "outputsize": "5000",
                    "adjust": "all",
                }
            )
        ],
    )

    result = client.fetch_history(["AAPL"], start=date(2024, 1, 1), end=date(2024, 1, 31), adjust="all")

    history = result.items["AAPL"]
    assert history.dates.dtype == np.dtype("datetime64[D]")
    assert history.dates.tolist() == [date(2024, 1, 2), date(2024, 1, 3)]
    assert history.close.dtype == np.float64
    assert history.close.tolist() == [11.25, 11.75]
    assert history.open.tolist() == [10.0, 10.0]
    assert history.high.tolist() == [12.5, 12.5]
    assert history.low.tolist() == [9.5, 9.5]
    assert history.volume.dtype == np.int64
    assert history.volume.tolist() == [67903927, 1000]
    assert_key_hidden(mocked)


def test_keyed_history_is_sorted_ascending_and_deduplicated(client, mocked):
    mocked.get(
        SERIES_URL,
        json={
            "AAPL": series_body(
                "AAPL", [bar("2024-01-04", "3"), bar("2024-01-02", "1"), bar("2024-01-03", "2"), bar("2024-01-03", "2")]
            ),
            "EURUSD": series_body("EURUSD", [{k: v for k, v in bar("2024-01-02", "1.1").items() if k != "volume"}]),
            "NIKK": error_body(400, NOT_FOUND),
        },
    )

    result = client.fetch_history(["AAPL", "EURUSD", "NIKK"], start=date(2024, 1, 1), end=date(2024, 1, 31))

    aapl = result.items["AAPL"]
    assert aapl.dates.tolist() == [date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4)]
    assert aapl.close.tolist() == [1.0, 2.0, 3.0]
    assert result.items["EURUSD"].volume.tolist() == [0]
    assert "not found" in result.errors["NIKK"]
    assert result.credits == 3


@pytest.mark.parametrize("symbols", [["AAPL"], ["AAPL", "MSFT"]])
def test_history_with_no_data_in_range_is_empty_not_an_error(client, mocked, symbols):
    no_data = error_body(400, "No data is available on the specified dates. Try setting different start/end dates.")
    body = no_data if len(symbols) == 1 else {"AAPL": no_data, "MSFT": series_body("MSFT", [bar("2024-01-05", "1")])}
    mocked.get(SERIES_URL, json=body)

    result = client.fetch_history(symbols, start=date(2024, 1, 5), end=date(2024, 1, 5))

    assert result.errors == {}
    assert len(result.items["AAPL"]) == 0


def test_unknown_adjustment_is_refused_without_a_request(client, mocked):
    with pytest.raises(ValueError, match="adjust"):
        client.fetch_history(["AAPL"], start=date(2024, 1, 1), end=date(2024, 1, 2), adjust="bogus")
    assert len(mocked.calls) == 0


def test_client_repr_hides_the_key(client):
    assert KEY not in repr(client)


def test_a_quote_missing_its_price_or_time_is_parsed_for_the_anomaly_screen(client, mocked):
    no_close = quote_body("AAPL")
    del no_close["close"]
    no_time = quote_body("MSFT")
    del no_time["timestamp"], no_time["datetime"]
    mocked.get(QUOTE_URL, json={"AAPL": no_close, "MSFT": no_time})

    result = client.fetch_quotes(["AAPL", "MSFT"])

    assert result.errors == {}
    assert result.items["AAPL"].price is None
    assert result.items["MSFT"].as_of is None
    assert result.items["MSFT"].price == Decimal("148.85001")


def test_a_bar_missing_a_price_is_kept_as_nan_for_the_anomaly_screen(client, mocked):
    gap = {k: v for k, v in bar("2024-01-03", "2").items() if k != "close"}
    mocked.get(SERIES_URL, json=series_body("AAPL", [bar("2024-01-02", "1"), gap]))

    history = client.fetch_history(["AAPL"], start=date(2024, 1, 1), end=date(2024, 1, 31)).items["AAPL"]

    assert history.close[0] == 1.0
    assert np.isnan(history.close[1])


def test_credits_left_are_reported_with_the_result(client, mocked):
    mocked.get(QUOTE_URL, json=quote_body("AAPL"), headers={"api-credits-used": "1", "api-credits-left": "0"})
    mocked.get(QUOTE_URL, json=quote_body("AAPL"))

    assert client.fetch_quotes(["AAPL"]).credits_left == 0
    assert client.fetch_quotes(["AAPL"]).credits_left is None
