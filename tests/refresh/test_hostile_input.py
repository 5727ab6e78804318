"""Hostile input to the API: never a 5xx; bad input is a JSON 4xx that writes and spends nothing.

Each input is sent anonymously and with an admin's token: anonymous callers are refused
before their body is read, but the request log reads it for everyone.
"""

import json
import re
from http import HTTPStatus

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from refresh.models import RefreshRun
from tests import api_errors

BASE = "/api/v1/manual/refresh"
DEEP_ARRAY = "[" * 100_000
SMALL_DEEP_ARRAY = "[" * 4000  # small enough for the request log to parse it too
DEEP_OBJECT = '{"a": ' * 3000 + "1" + "}" * 3000


@pytest.fixture
def superuser(django_user_model):
    """An admin and nothing else: most of these requests never get as far as the data."""
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw")


class TokenClient(Client):
    """A client sending the user's API key, or anonymous without a user."""

    def __init__(self, user=None):
        headers = {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"} if user else {}
        # A bug must show as the 500 a client would get, not as an exception in the test.
        super().__init__(raise_request_exception=False, headers=headers)
        self.anonymous = user is None


@pytest.fixture(params=["anonymous", "admin"])
def caller(request, superuser) -> TokenClient:
    return TokenClient(superuser if request.param == "admin" else None)


def assert_json_error(response, http_status: int, code: str) -> dict:
    body = api_errors.assert_json_error(response, http_status, code)
    api_errors.assert_plain_message(body)
    return body


def assert_refused(client: TokenClient, response, http_status: int, code: str) -> None:
    """Anonymous: 401 before anything is read. Authenticated: the given error."""
    if client.anonymous:
        assert_json_error(response, HTTPStatus.UNAUTHORIZED, "not_authenticated")
    else:
        assert_json_error(response, http_status, code)
    assert not RefreshRun.objects.exists()


def post_json(client: Client, path: str, body, **extra):
    return client.post(
        f"{BASE}/{path}",
        body if isinstance(body, str | bytes) else json.dumps(body),
        content_type="application/json",
        **extra,
    )


# --- bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [DEEP_ARRAY, SMALL_DEEP_ARRAY, DEEP_OBJECT], ids=["array", "small", "object"])
def test_deeply_nested_json_is_a_400(caller, body):
    response = post_json(caller, "prices", body)

    assert_refused(caller, response, HTTPStatus.BAD_REQUEST, "malformed_json")


@pytest.mark.parametrize("path", ["/api/v1/nope/", f"{BASE}/runs/", f"{BASE}/webhooks/feed/", "/api/v1/portfolios/"])
def test_deeply_nested_json_on_other_addresses_is_never_a_500(caller, path):
    response = caller.post(path, SMALL_DEEP_ARRAY, content_type="application/json")

    assert HTTPStatus.BAD_REQUEST <= response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR
    assert response["Content-Type"] == "application/json"
    assert response.json()["status"] == "error"


def test_deeply_nested_json_outside_the_api_is_never_a_500(caller):
    response = caller.post("/admin/login/", SMALL_DEEP_ARRAY, content_type="application/json")

    assert response.status_code < HTTPStatus.INTERNAL_SERVER_ERROR


@pytest.mark.parametrize("body", [b'{"mode": "\xff\xfe"}', b"\xef\xbb\xbf{}\xc3"], ids=["latin", "truncated"])
def test_a_body_that_is_not_utf8_is_a_400(caller, body):
    response = post_json(caller, "prices", body)

    assert_refused(caller, response, HTTPStatus.BAD_REQUEST, "malformed_json")


@pytest.mark.parametrize(
    "body",
    ['{"wait": NaN}', '{"wait": Infinity}', '{"wait": 1' + "0" * 5000 + "}", '{"wait": 0', '{"mode": "\x00"}'],
    ids=["nan", "infinity", "5000-digits", "unterminated", "control-character"],
)
def test_a_body_that_is_not_json_is_a_400(caller, body):
    response = post_json(caller, "prices", body)

    assert_refused(caller, response, HTTPStatus.BAD_REQUEST, "malformed_json")


@pytest.mark.parametrize("wait", ["1e400", "-1e400", "99999999999999999999999", "1.5", '"\\u0000"'])
def test_a_huge_or_odd_number_is_an_invalid_request(caller, wait):
    response = post_json(caller, "prices", f'{{"wait": {wait}}}')

    assert_refused(caller, response, HTTPStatus.BAD_REQUEST, "invalid_request")
    if not caller.anonymous:
        assert set(response.json()["error"]["fields"]) == {"wait"}


def test_a_nul_byte_in_a_body_field_is_an_invalid_request(caller):
    response = post_json(caller, "prices", {"symbols": ["AA\x00PL"]})

    assert_refused(caller, response, HTTPStatus.BAD_REQUEST, "invalid_request")


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", json.dumps({"symbols": ["A" * 10] * 200})),
        ("application/x-www-form-urlencoded", "&".join(["symbols=AAAAAAAAAA"] * 200)),
    ],
    ids=["json", "form"],
)
def test_a_body_over_the_upload_limit_is_a_413(caller, settings, content_type, body):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = caller.post(f"{BASE}/prices", body, content_type=content_type)

    assert_refused(caller, response, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request_too_large")


# --- headers ----------------------------------------------------------------------------


@pytest.mark.parametrize("length", ["abc", "-1", "1e3", "12 34", "\xff"])
def test_a_content_length_that_is_not_a_number_is_a_400(caller, length):
    response = post_json(caller, "prices", {"mode": "full"}, CONTENT_LENGTH=length)

    # Refused before authentication: the length is checked before anything reads the body.
    assert_json_error(response, HTTPStatus.BAD_REQUEST, "bad_request")
    assert not RefreshRun.objects.exists()


def test_a_content_length_that_is_not_a_number_outside_the_api_is_django_s_400_page(caller):
    response = caller.post("/admin/login/", {"username": "x"}, CONTENT_LENGTH="abc")

    assert response.status_code == HTTPStatus.BAD_REQUEST
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("header", ["Token abc\x00def", "Token \xff\xfe", "Token " + "a" * 500, "Token a b"])
def test_a_malformed_token_is_a_401(db, header):
    response = Client(raise_request_exception=False).get(f"{BASE}/runs/", headers={"Authorization": header})

    assert_json_error(response, HTTPStatus.UNAUTHORIZED, "not_authenticated")


@pytest.mark.parametrize("cookie", ["abcdefgh\x00ijkl", "\xff" * 32, "x" * 5000])
def test_a_malformed_session_cookie_is_no_session(db, cookie):
    client = Client(raise_request_exception=False, HTTP_COOKIE=f"sessionid={cookie}")

    assert_json_error(client.get(f"{BASE}/runs/"), HTTPStatus.UNAUTHORIZED, "not_authenticated")
    assert client.get("/admin/login/").status_code == HTTPStatus.OK


def test_a_malformed_request_id_is_replaced(caller):
    response = caller.get(f"{BASE}/runs/", headers={"X-Request-ID": "abc\n"})

    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


# --- query strings and paths ------------------------------------------------------------


@pytest.mark.parametrize("query", ["status=a%00b", "kind=%00", "mode=%FF%FE", "source=apiX", "status=QUEUED"])
def test_a_run_filter_that_is_none_of_its_choices_is_a_400(caller, query):
    response = caller.get(f"{BASE}/runs/?{query}")

    assert_refused(caller, response, HTTPStatus.BAD_REQUEST, "invalid_filter")


def test_run_filters_still_filter(superuser):
    client = TokenClient(superuser)
    post_json(client, "benchmark", {})

    def count(query):
        return client.get(f"{BASE}/runs/?{query}").json()["count"]

    assert count("status=queued&kind=benchmark&mode=incremental&source=api") == 1
    assert count("status=success") == 0
    assert count("status=") == 1  # empty: no filter


def test_a_trigger_list_takes_no_filters_so_nul_bytes_in_them_are_harmless(caller):
    response = caller.get(f"{BASE}/prices?status=a%00b&kind=%00&mode=%FF")

    if caller.anonymous:
        assert_json_error(response, HTTPStatus.UNAUTHORIZED, "not_authenticated")
    else:
        assert (response.status_code, response.json()["count"]) == (HTTPStatus.OK, 0)


@pytest.mark.parametrize("query", ["page=a%00b", "page=%FF", "page=99999999999999999999999", "page=-1"])
def test_a_malformed_page_of_a_trigger_list_is_a_404(caller, query):
    response = caller.get(f"{BASE}/prices?{query}")

    assert_refused(caller, response, HTTPStatus.NOT_FOUND, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        f"{BASE}/runs/%FF%FE/",
        f"{BASE}/runs/ref_%00/",
        f"{BASE}/runs/ref_%FF/cancel/",
        f"{BASE}/portfolio/99999999999999999999999",
        f"{BASE}/portfolio/-1",
        f"{BASE}/portfolio/%00",
        f"{BASE}/webhooks/%FF/",
        f"{BASE}/prices/%00",
        "/api/v1/portfolios/99999999999999999999999/",
        "/api/v1/portfolios/%00/",
        "/api/v1/assets/%00/prices",
        "/api/v1/assets/%FF%FE/prices",
    ],
)
def test_an_address_no_route_matches_is_a_json_404(caller, path):
    response = caller.post(path, {}, content_type="application/json")

    assert_json_error(response, HTTPStatus.NOT_FOUND, "not_found")
    assert not RefreshRun.objects.exists()


def test_a_user_id_past_any_user_is_a_404(caller):
    response = post_json(caller, "portfolio/999999999999999999", {})

    assert_refused(caller, response, HTTPStatus.NOT_FOUND, "not_found")


# --- nothing spent ----------------------------------------------------------------------


def test_hostile_requests_spend_no_rate_limit(caller, superuser, settings):
    settings.REFRESH_BURST_RATE = "1/10s"
    for body in (DEEP_ARRAY, '{"wait": 1e400}', b"\xff", '{"wait": NaN}'):
        post_json(caller, "prices", body)
    post_json(caller, "prices", {}, CONTENT_LENGTH="abc")

    response = post_json(TokenClient(superuser), "prices", {})
    assert response.status_code == HTTPStatus.ACCEPTED
    assert RefreshRun.objects.count() == 1


# --- the read API -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query", ["end=0001-01-01", "start=0001-01-01&end=0001-01-02", "end=9999-12-31", "start=9999-12-31"]
)
def test_dates_at_the_ends_of_the_calendar_are_answered(demo, caller, query):
    response = caller.get(f"/api/v1/assets/AAPL/prices?{query}")

    if caller.anonymous:
        assert_json_error(response, HTTPStatus.UNAUTHORIZED, "not_authenticated")
    else:
        assert response.status_code == HTTPStatus.OK
        assert response.json()["prices"] == []


@pytest.mark.parametrize(
    ("path", "http_status", "code"),
    [
        ("/api/v1/portfolios/999999999999999999/", HTTPStatus.NOT_FOUND, "not_found"),
        ("/api/v1/portfolios/?page=99999999999999999999999", HTTPStatus.BAD_REQUEST, "invalid_request"),
        ("/api/v1/assets/?page=%00", HTTPStatus.BAD_REQUEST, "invalid_request"),
        ("/api/v1/assets/AAPL/prices?start=%00", HTTPStatus.BAD_REQUEST, "invalid_request"),
        ("/api/v1/assets/AAPL/prices?end=99999-01-01", HTTPStatus.BAD_REQUEST, "invalid_request"),
        (f"{BASE}/metrics/?window=1%00h", HTTPStatus.BAD_REQUEST, "invalid_window"),
        (f"{BASE}/metrics/?window=99999999999999999999999h", HTTPStatus.BAD_REQUEST, "invalid_window"),
    ],
)
def test_hostile_reads_are_json_4xx(caller, path, http_status, code):
    assert_refused(caller, caller.get(path), http_status, code)
