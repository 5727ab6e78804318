"""The API against its own OpenAPI schema: schemathesis fuzzes every operation over real HTTP.

The schema is the one the live server serves. Each operation gets schemathesis' edge cases
(boundaries, wrong types, NUL bytes, odd encodings) and a few seeded random requests, as an
admin and as a plain user. A 5xx, an undocumented status code or content type, a body that
does not match its schema, or an invalid query parameter that is accepted, fails the test.
A fuzzed trigger that passes validation starts a real run (tasks run in-process) or meets the
rate limits' 429.
"""

import io

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from market_data.models import Asset
from portfolios.models import Portfolio
from refresh.selectors import runs_visible_to
from refresh.services.demo import seed_demo

_TRIGGERS = [
    f"POST /api/v1/manual/refresh/{kind}/"
    for kind in ("all", "prices", "portfolio/{target_user_id}", "strategy", "benchmark")
]
FUZZ_CONFIG = {
    "seed": 15,
    "generation": {"max-examples": 8, "deterministic": True, "database": "none", "with-security-parameters": False},
    # Two methods an operation lacks, not all seven: tests/test_error_pages.py covers the 405s.
    "phases": {"coverage": {"unexpected-methods": ["PUT", "DELETE"]}},
    "checks": {
        "enabled": False,
        **{
            check: {"enabled": True}
            for check in (
                "not_a_server_error",
                "status_code_conformance",
                "content_type_conformance",
                "response_schema_conformance",
                "negative_data_rejection",
            )
        },
    },
    "operations": [
        # DRF coerces "0" to false and "5" to 5, and forms send nothing but strings, so a
        # trigger body of the "wrong" type is often a valid one.
        {"include-name": _TRIGGERS, "checks": {"negative_data_rejection": {"enabled": False}}},
        # The triggers share one body: two get the coverage phase's hundreds of edge cases per
        # media type, the others only the random requests, to keep the run within a minute.
        {"include-name": [_TRIGGERS[0], _TRIGGERS[3], _TRIGGERS[4]], "phases": {"coverage": {"enabled": False}}},
    ],
}


@pytest.fixture(params=["admin", "alice"])
def fuzz_token(request, live_server) -> str:
    """A small demo refreshed by the command: quotes, metrics, and runs with no requester."""
    seed_demo(users=2, assets=4, years=1)
    alice = get_user_model().objects.get(username="alice")
    for kind in (["--all"], ["--portfolio", str(alice.pk)]):  # the second is a run alice may see
        call_command("refresh", *kind, "--json", stdout=io.StringIO())
    return Token.objects.create(user=get_user_model().objects.get(username=request.param)).key


@pytest.fixture
def api_schema(live_server, fuzz_token):
    schema = schemathesis.openapi.from_url(
        f"{live_server.url}/api/schema/?format=json", config=schemathesis.Config.from_dict(FUZZ_CONFIG)
    )
    schema.config.update(base_url=live_server.url, headers={"Authorization": f"Token {fuzz_token}"})
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_api_answers_every_request_as_its_schema_says(case):
    case.call_and_validate()


def test_stored_resources_are_answered_as_the_schema_says(api_schema, fuzz_token):
    """Fuzzed ids seldom name a stored row: ask for rows the demo has, as this user may see them."""
    run = runs_visible_to(user=Token.objects.get(key=fuzz_token).user).first()
    requests = [
        ("GET", "/api/v1/portfolios/{id}/", {"id": Portfolio.objects.filter(owner__username="alice").first().pk}),
        ("GET", "/api/v1/assets/{symbol}/prices/", {"symbol": Asset.objects.first().symbol}),
        ("GET", "/api/v1/manual/refresh/runs/{refresh_id}/", {"refresh_id": run.refresh_id}),
    ]

    statuses = [
        api_schema[path][method]
        .Case(path_parameters=parameters)
        .call_and_validate(headers={"Authorization": f"Token {fuzz_token}"})
        .status_code
        for method, path, parameters in requests
    ]

    assert statuses == [200, 200, 200]
