"""Rate limits hold across gunicorn's four web workers, on the embedded defaults and in production.

Each check uses a fresh requester and sends its requests at once, each on a connection of its
own, so that they spread over the workers: counted per process, more would be accepted. The
stacks run with small limits (deployments.LIMIT_SETTINGS): burst 5 an hour, cooldown 6 s, 4 an hour
for users and support.
"""

import time

TRIGGER = "/api/v1/manual/refresh/{}/"


def portfolio(user: dict) -> str:
    return TRIGGER.format(f"portfolio/{user['id']}")


def refused_with(answer) -> tuple[str, int]:
    """The 429's error code and Retry-After, which must agree with the body."""
    assert answer.status_code == 429, (answer.status_code, answer.text[:500])
    error = answer.json()["error"]
    retry_after = int(answer.headers["Retry-After"])
    assert error["retry_after"] == retry_after > 0, (error, retry_after)
    return error["code"], retry_after


def test_the_burst_limit_counts_every_workers_requests(limited):
    admin, *owners = limited.fresh_users("admin", "user", "user", "user")
    requests_: list[tuple[str, dict[str, object]]] = [
        (TRIGGER.format(kind), {"mode": "smart"}) for kind in ("all", "strategy", "benchmark")
    ]
    requests_ += [(TRIGGER.format("prices"), {"mode": "smart", "symbols": ["MSFT"]})]
    requests_ += [(portfolio(user), {"mode": "smart"}) for user in (admin, *owners)]  # eight, all different

    answers = limited.concurrently(
        [lambda path=path, body=body: limited.post(path, token=admin["token"], json=body) for path, body in requests_]
    )

    assert sorted(answer.status_code for answer in answers) == [202] * 5 + [429] * 3, [a.text for a in answers]
    assert {refused_with(answer)[0] for answer in answers if answer.status_code == 429} == {"burst"}


def test_the_cooldown_counts_from_the_last_accepted_request_in_every_worker(limited):
    (user,) = limited.fresh_users("user")
    first = limited.post(portfolio(user), token=user["token"], json={"mode": "incremental"})
    assert first.status_code == 202, first.text
    accepted_at = time.monotonic()

    time.sleep(2)
    # Another mode, so that no request joins the run still queued: the cooldown is per kind and target.
    again = limited.concurrently(
        [lambda: limited.post(portfolio(user), token=user["token"], json={"mode": "smart"}) for _ in range(3)]
    )
    for answer in again:
        code, retry_after = refused_with(answer)
        assert code == "cooldown", (code, retry_after)
        assert retry_after <= 5, (code, retry_after)

    # Six seconds after the accepted request, not after the refusals (those would make it eight).
    time.sleep(max(0.0, accepted_at + 6.5 - time.monotonic()))
    later = limited.post(portfolio(user), token=user["token"], json={"mode": "smart"})
    assert later.status_code == 202, later.text


def test_the_hourly_quota_counts_every_workers_requests(limited):
    support, *owners = limited.fresh_users("support", "user", "user", "user", "user")
    requests_ = [(TRIGGER.format("prices"), {"mode": "incremental", "symbols": ["AAPL"]})]
    requests_ += [(portfolio(user), {"mode": "incremental"}) for user in owners]  # five, all different

    answers = limited.concurrently(
        [lambda path=path, body=body: limited.post(path, token=support["token"], json=body) for path, body in requests_]
    )

    assert sorted(answer.status_code for answer in answers) == [202] * 4 + [429], [a.text for a in answers]
    code, retry_after = refused_with(next(answer for answer in answers if answer.status_code == 429))
    assert code == "rate_limited"
    assert retry_after <= 3600
