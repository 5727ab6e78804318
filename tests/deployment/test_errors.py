"""Errors as deployed: never a debug page, JSON for every 4xx under /api/, and settings that refuse to be unsafe."""

DEBUG_PAGE_MARKERS = ("Traceback", "DEBUG = True", "URLconf", "SECRET_KEY", "INSTALLED_APPS")


def refusal(answer) -> tuple[int, str]:
    """The status and the error code of a JSON error answer."""
    assert answer.headers["Content-Type"].startswith("application/json"), (answer.status_code, answer.text[:500])
    body = answer.json()
    assert body["status"] == "error", body
    assert body["error"]["message"], body
    return answer.status_code, body["error"]["code"]


def test_an_unknown_page_is_a_plain_404(served):
    answer = served.get("/no-such-page/")
    assert answer.status_code == 404
    assert [marker for marker in DEBUG_PAGE_MARKERS if marker in answer.text] == []


def test_every_4xx_under_api_is_json(served):
    (user,) = served.fresh_users("user")
    token = user["token"]
    trigger = f"/api/v1/manual/refresh/portfolio/{user['id']}/"

    assert refusal(served.get("/api/v1/nope/", token=token)) == (404, "not_found")
    assert refusal(served.get("/api/v1/nope/")) == (404, "not_found")
    assert refusal(served.get("/api/v1/manual/refresh/runs/ref_doesnotexist/", token=token)) == (404, "not_found")
    assert refusal(served.request("PUT", trigger, token=token, json={})) == (405, "method_not_allowed")
    assert refusal(
        served.post(trigger, token=token, data="{not json", headers={"Content-Type": "application/json"})
    ) == (400, "malformed_json")
    assert refusal(served.post(trigger, token=token, json={"mode": "sometimes"})) == (400, "invalid_request")
    assert refusal(served.get("/api/v1/manual/refresh/runs/")) == (401, "not_authenticated")
    assert refusal(served.get("/api/v1/manual/refresh/runs/", token="0" * 40)) == (401, "not_authenticated")


def test_the_documented_production_settings_pass_the_deployment_checks(production):
    result = production.manage("check", "--deploy", "--fail-level", "WARNING", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_a_secret_key_and_debug_off_the_service_refuses_to_start(production):
    env = {k: v for k, v in production.env.items() if k != "DJANGO_SECRET_KEY"}
    result = production.manage("check", env=env, check=False)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr.strip().splitlines()[-1], result.stderr[-2000:]


def test_run_sh_prints_the_demo_logins_and_they_work(runsh):
    printed = runsh.output("run.sh")
    assert "admin / admin-demo" in printed, printed[-3000:]
    assert "alice, bob, carol / demo-pass" in printed, printed[-3000:]
    assert runsh.browser("admin", "admin-demo").get("/admin/").status_code == 200
