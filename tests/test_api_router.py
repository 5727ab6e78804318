"""The API's one router: /api/v1/ links every endpoint, /api/v1/manual/refresh/ the refresh ones."""

from http import HTTPStatus
from urllib.parse import urlsplit

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.api_errors import assert_json_error

ROOT = "/api/v1/"
REFRESH_ROOT = "/api/v1/manual/refresh/"
SERVER = "http://testserver"


@pytest.fixture
def links(admin_api) -> dict[str, str]:
    response = admin_api.get(ROOT)
    assert response.status_code == HTTPStatus.OK
    return response.json()


def test_the_root_links_every_endpoint_of_the_schema(links, admin_api):
    schema = admin_api.get("/api/schema/", {"format": "json"}).json()
    linked = [urlsplit(url).path for url in links.values()]
    for path in schema["paths"]:
        fixed = path.split("{")[0]  # a link with any parameter filled in, or the template itself
        assert any(link.startswith(fixed) for link in linked), f"{path} is not linked from {ROOT}"
    assert set(links) >= {
        "manual/refresh",
        "manual/refresh/all",
        "manual/refresh/portfolio",
        "manual/refresh/runs",
        "manual/refresh/metrics",
        "manual/refresh/metrics/prometheus",
        "manual/refresh/webhooks",
        "portfolios",
        "assets",
    }


def test_every_link_of_the_root_answers(links, admin_api, admin):
    assert links["manual/refresh/portfolio"] == f"{SERVER}/api/v1/manual/refresh/portfolio/{admin.pk}/"
    assert links["manual/refresh/webhooks"] == f"{SERVER}/api/v1/manual/refresh/webhooks/{{source}}/"
    statuses = {key: admin_api.get(url.replace("{source}", "market-feed")).status_code for key, url in links.items()}
    # The webhook takes a POST only; everything else answers an admin's GET.
    assert statuses == {
        key: HTTPStatus.METHOD_NOT_ALLOWED if key == "manual/refresh/webhooks" else HTTPStatus.OK for key in links
    }


def test_the_refresh_root_links_the_refresh_endpoints_by_their_paths_under_it(links, admin_api):
    response = admin_api.get(REFRESH_ROOT.rstrip("/"))  # a trailing slash is optional here too

    assert response.status_code == HTTPStatus.OK
    assert response.json() == {
        key.removeprefix("manual/refresh/"): url for key, url in links.items() if key.startswith("manual/refresh/")
    }
    assert links["manual/refresh"] == SERVER + REFRESH_ROOT


def test_a_users_root_links_their_own_portfolios_refresh(alice_api, alice):
    links = alice_api.get(ROOT).json()

    assert links["manual/refresh/portfolio"] == f"{SERVER}/api/v1/manual/refresh/portfolio/{alice.pk}/"
    assert alice_api.get(links["manual/refresh/portfolio"]).status_code == HTTPStatus.OK


@pytest.mark.parametrize("path", [ROOT, REFRESH_ROOT])
def test_the_roots_need_authentication_like_the_rest_of_the_api(db, path):
    assert_json_error(APIClient().get(path), HTTPStatus.UNAUTHORIZED, "not_authenticated")


def test_a_browser_gets_the_root_as_a_page_of_links(admin):
    client = Client()
    client.force_login(admin)

    response = client.get(ROOT, HTTP_ACCEPT="text/html")

    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    for path in ("/api/v1/portfolios/", "/api/v1/assets/", "/api/v1/manual/refresh/runs/"):
        assert f'href="{SERVER}{path}"' in html


@pytest.mark.parametrize("method", ["get", "post"])
def test_api_redirects_to_the_current_version(db, method):
    response = getattr(Client(), method)("/api/")

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == ROOT


def test_the_schema_leaves_the_roots_out(admin_api):
    paths = admin_api.get("/api/schema/", {"format": "json"}).json()["paths"]

    assert ROOT not in paths
    assert REFRESH_ROOT not in paths
