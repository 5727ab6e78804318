"""Error responses: JSON in the API's one error shape under /api/, Django's own pages elsewhere."""

from http import HTTPStatus

import pytest
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig
from django.test import Client
from django.urls import path
from rest_framework.authtoken.models import Token

from refresh.models import RefreshRun
from refresh_project.urls import handler400, handler403, handler404, handler500  # noqa: F401  (this URLconf's)
from refresh_project.urls import urlpatterns as project_urlpatterns
from tests.api_errors import assert_json_error

BASE = "/api/v1/manual/refresh"


def _raising(exc):
    def view(request):
        raise exc

    return view


# Errors Django itself answers (outside any DRF view), under /api/ and elsewhere.
_ERRORS = {
    "too-large": RequestDataTooBig("body too large"),
    "bad": BadRequest("no"),
    "forbidden": PermissionDenied("no"),
    "bug": RuntimeError("password=hunter2 in a traceback"),
}
urlpatterns = [
    *project_urlpatterns,
    *(path(f"api/v1/errors/{name}/", _raising(exc)) for name, exc in _ERRORS.items()),
    *(path(f"pages/{name}/", _raising(exc)) for name, exc in _ERRORS.items()),
]


@pytest.fixture
def anonymous() -> Client:
    return Client(raise_request_exception=False)


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", password="pw")


@pytest.fixture
def user_client(carol) -> Client:
    return Client(
        raise_request_exception=False, headers={"Authorization": f"Token {Token.objects.create(user=carol).key}"}
    )


@pytest.fixture
def own_portfolio(carol) -> str:
    """The one trigger a plain user may POST to."""
    return f"{BASE}/portfolio/{carol.pk}"


@pytest.mark.parametrize("method", ["get", "post", "put", "delete"])
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/nope",
        "/api/v2/manual/refresh/all/",
        "/api/v1/portfolios/1/holdings/",
        f"{BASE}/runs/ref_abc/steps/",
        "/api/v1/assets/AAPL/quotes/",
    ],
)
def test_an_unknown_api_address_is_a_json_404(db, anonymous, method, url):
    response = getattr(anonymous, method)(url)

    body = assert_json_error(response, HTTPStatus.NOT_FOUND, "not_found")
    assert body["error"]["message"] == "No such endpoint."


def test_an_unknown_address_outside_the_api_is_django_s_404_page(db, anonymous):
    response = anonymous.get("/nope/")

    assert response.status_code == HTTPStatus.NOT_FOUND
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_method_an_endpoint_does_not_take_is_a_json_405(user_client, own_portfolio, method):
    response = getattr(user_client, method)(own_portfolio, {}, content_type="application/json")

    assert_json_error(response, HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed")
    assert set(response["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert not RefreshRun.objects.exists()


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/json-patch+json"])
def test_a_body_in_another_format_is_a_json_415(user_client, own_portfolio, content_type):
    response = user_client.post(own_portfolio, "mode=full", content_type=content_type)

    assert_json_error(response, HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    assert not RefreshRun.objects.exists()


def test_an_answer_in_a_format_the_api_does_not_speak_is_a_json_406(user_client):
    response = user_client.get(f"{BASE}/runs/", headers={"Accept": "application/xml"})

    assert_json_error(response, HTTPStatus.NOT_ACCEPTABLE, "not_acceptable")


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("name", "http_status", "code"),
    [
        ("too-large", HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request_too_large"),
        ("bad", HTTPStatus.BAD_REQUEST, "bad_request"),
        ("forbidden", HTTPStatus.FORBIDDEN, "forbidden"),
        ("bug", HTTPStatus.INTERNAL_SERVER_ERROR, "server_error"),
    ],
)
def test_errors_django_answers_under_the_api_are_json(db, anonymous, name, http_status, code):
    response = anonymous.get(f"/api/v1/errors/{name}/")

    body = assert_json_error(response, http_status, code)
    assert "hunter2" not in response.content.decode()
    assert "fields" not in body["error"]


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("name", "http_status"),
    [
        ("too-large", HTTPStatus.BAD_REQUEST),
        ("bad", HTTPStatus.BAD_REQUEST),
        ("forbidden", HTTPStatus.FORBIDDEN),
        ("bug", HTTPStatus.INTERNAL_SERVER_ERROR),
    ],
)
def test_errors_outside_the_api_are_django_s_pages(db, anonymous, name, http_status):
    response = anonymous.get(f"/pages/{name}/")

    assert response.status_code == http_status
    assert response["Content-Type"].startswith("text/html")
    assert "hunter2" not in response.content.decode()


def test_a_bug_in_an_api_view_is_a_json_500_that_tells_nothing(user_client, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("SELECT secret FROM refresh_refreshrun")

    monkeypatch.setattr("refresh.api.views.runs_visible_to", broken)

    response = user_client.get(f"{BASE}/runs/")

    body = assert_json_error(response, HTTPStatus.INTERNAL_SERVER_ERROR, "server_error")
    assert body == {
        "status": "error",
        "error": {"code": "server_error", "message": "Something went wrong on our side."},
    }
