"""Assertions on the API's JSON error envelope, shared by the error-page and hostile-input tests."""

import re


def assert_json_error(response, http_status: int, code: str) -> dict:
    """The response is the envelope with this status and code and a message; returns the body."""
    assert (response.status_code, response["Content-Type"]) == (http_status, "application/json"), response.content
    body = response.json()
    assert body["status"] == "error"
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


def assert_plain_message(body: dict) -> None:
    """The message shows no Python: no quoted reprs, class names, tracebacks or escapes."""
    message = body["error"]["message"]
    assert not re.search(r"'.*'|<class|Traceback|\\x", message), message
