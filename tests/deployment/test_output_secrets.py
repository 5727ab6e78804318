"""No API key or secret key appears in anything a deployed process writes (runserver, gunicorn, qcluster, run.sh)."""

import secrets
import time


def test_no_process_writes_an_api_key_or_secret_key(all_stacks):
    request_ids = {}
    for stack in all_stacks:
        (user,) = stack.fresh_users("user")
        key, own = user["token"], f"/api/v1/manual/refresh/portfolio/{user['id']}/"
        request_ids[stack.name] = f"leak-check-{secrets.token_hex(6)}"
        headers = {"X-Request-ID": request_ids[stack.name]}
        answers = [
            stack.get("/api/v1/manual/refresh/runs/", token=key, headers=headers),
            stack.get(f"/api/v1/manual/refresh/runs/?token={key}", headers=headers),
            stack.post(f"{own}?token={key}", token=key, json={"mode": "incremental"}, headers=headers),
            stack.post(
                f"{own}?token={key}",
                token=key,
                data="{not json",
                headers={**headers, "Content-Type": "application/json"},
            ),
            stack.get(f"/api/v1/nope/?token={key}", token=key, headers=headers),
            stack.get(f"/no-such-page/?token={key}&api_key={key}", headers=headers),
            stack.get(f"/admin/?token={key}", headers=headers),
        ]
        assert [answer.status_code for answer in answers] == [200, 401, 202, 400, 404, 404, 302]
    time.sleep(1)  # what the workers write about those requests

    keys = {key for stack in all_stacks for key in stack.tokens}
    keys |= {stack.env["DJANGO_SECRET_KEY"] for stack in all_stacks if "DJANGO_SECRET_KEY" in stack.env}
    for stack in all_stacks:
        assert request_ids[stack.name] in stack.output(), f"[{stack.name}] the request log was not captured"
    leaks = {
        f"{stack.name}/{path.name}": [key[:6] + "…" for key in keys if key in path.read_text(errors="replace")]
        for stack in all_stacks
        for path in sorted(stack.logs.iterdir())
    }
    assert {where: found for where, found in leaks.items() if found} == {}, "keys in the processes' output"
