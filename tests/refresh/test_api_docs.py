"""API documentation: the OpenAPI schema, Swagger UI and ReDoc served offline, the browsable API."""

import re
from http import HTTPStatus

import pytest
import yaml
from django.core.management import call_command
from django.test import Client

from refresh.models import RefreshRun, RunSource

BASE = "/api/v1/manual/refresh"
TRIGGERS = ["all", "prices", "portfolio/{target_user_id}", "strategy", "benchmark"]


@pytest.fixture
def schema(db):
    response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == HTTPStatus.OK
    return response.json()


def test_schema_generation_has_no_warnings_or_errors(tmp_path, db):
    out = tmp_path / "schema.yaml"

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))

    assert yaml.safe_load(out.read_text())["openapi"].startswith("3.")


def test_every_endpoint_is_documented_with_its_responses(schema):
    paths = schema["paths"]
    for kind in TRIGGERS:
        post = paths[f"{BASE}/{kind}/"]["post"]
        assert set(post["responses"]) >= {"200", "202", "400", "401", "403", "429"}
        assert post["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunStatus")
        assert post["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
        assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RefreshRequestRequest")
        listed = paths[f"{BASE}/{kind}/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert listed["$ref"].endswith("/PaginatedRefreshRunListList")
    detail = paths[f"{BASE}/runs/{{refresh_id}}/"]["get"]["responses"]
    assert detail["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RefreshRun")
    assert "404" in detail
    cancel = paths[f"{BASE}/runs/{{refresh_id}}/cancel/"]["post"]
    assert "requestBody" not in cancel
    assert set(cancel["responses"]) >= {"200", "403", "404", "409"}
    run_filters = {p["name"] for p in paths[f"{BASE}/runs/"]["get"]["parameters"]}
    assert run_filters >= {"kind", "status", "mode", "source", "page", "priority", "requested_by", "target_user_id"}
    assert run_filters >= {"created_after", "created_before", "retry_of"}
    reprioritise = paths[f"{BASE}/runs/{{refresh_id}}/"]["patch"]
    assert set(reprioritise["responses"]) >= {"200", "400", "403", "404", "409"}
    retry = paths[f"{BASE}/runs/{{refresh_id}}/retry/"]["post"]
    assert set(retry["responses"]) >= {"200", "202", "403", "404", "409", "429"}
    trigger = paths[f"{BASE}/prices/"]["post"]
    assert "Idempotency-Key" in {p["name"] for p in trigger["parameters"] if p["in"] == "header"}
    assert "422" in trigger["responses"]


def test_schema_describes_the_request_body_and_error_shape(schema):
    components = schema["components"]["schemas"]
    body = components["RefreshRequestRequest"]["properties"]
    assert set(body) == {"mode", "priority", "wait", "symbols", "apply_rebalancing", "run_at", "dry_run"}
    assert components["RefreshModeEnum"]["enum"] == ["full", "incremental", "smart"]
    error = components["ErrorResponse"]
    assert error["required"] == ["error", "status"]
    assert set(components["ErrorDetail"]["properties"]) >= {"code", "message", "fields", "retry_after"}
    assert {"tokenAuth", "cookieAuth"} <= set(schema["components"]["securitySchemes"])


@pytest.mark.parametrize(
    ("url", "marker"),
    [
        ("/api/docs/", "swagger-ui-bundle.js"),
        ("/api/redoc/", "redoc.standalone.js"),
    ],
)
def test_swagger_ui_and_redoc_load_only_local_files(db, url, marker):
    response = Client().get(url)

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/" in html
    assert marker in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the page must not load outside files"
    assert "/api/schema/" in html


def _browsable(client, url, method="get"):
    return getattr(client, method)(url, HTTP_ACCEPT="text/html")


@pytest.mark.parametrize("path", ["all", "prices", "strategy", "benchmark", "portfolio/{alice}"])
def test_browsable_api_has_a_form_for_each_trigger_body(admin, alice, path):
    client = Client()
    client.force_login(admin)

    response = _browsable(client, f"{BASE}/{path.format(alice=alice.pk)}")

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert 'method="POST"' in html
    for field in ('name="mode"', 'name="priority"', 'name="wait"', 'name="apply_rebalancing"'):
        assert field in html
    assert 'id="id__content"' in html  # the raw JSON form, for lists such as symbols


def test_browsable_api_shows_runs_and_a_bare_cancel_button(admin):
    run = RefreshRun.objects.create(
        kind="prices",
        mode="incremental",
        requested_by=admin,
        requested_role="admin",
        source=RunSource.API,
        scope="prices",
        dedup_key="d",
    )
    client = Client()
    client.force_login(admin)

    assert run.refresh_id in _browsable(client, f"{BASE}/runs/").content.decode()
    assert run.refresh_id in _browsable(client, f"{BASE}/runs/{run.refresh_id}/").content.decode()
    cancel = _browsable(client, f"{BASE}/runs/{run.refresh_id}/cancel/")
    assert cancel.status_code == HTTPStatus.METHOD_NOT_ALLOWED  # GET; the page still offers the POST
    html = cancel.content.decode()
    assert 'method="POST"' in html
    assert 'name="status"' not in html  # no run fields to fill in: cancelling takes no body
