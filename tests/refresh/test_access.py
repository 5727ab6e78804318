"""Roles and permissions: who may start which refresh, in which mode and priority, and see or cancel which run."""

from http import HTTPStatus
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from rest_framework.request import Request
from rest_framework.test import APIClient, APIRequestFactory
from rest_framework.views import APIView

from refresh.api.permissions import IsAdminRole, IsSupportRole, IsSystemRole
from refresh.models import RefreshRun, RunSource
from refresh.services.requests import request_refresh

BASE = "/api/v1/manual/refresh"
ROLES = ("superuser", "admin", "support", "system", "user")
ENDPOINTS = ("all", "prices", "strategy", "benchmark", "own portfolio", "other portfolio")
MODES = ("full", "incremental", "smart")
PRIORITIES = (None, "low", "medium", "high", "emergency")

# The access levels, written out independently of the code under test.
MAY_START = {
    "superuser": set(ENDPOINTS),
    "admin": set(ENDPOINTS),
    "support": {"prices", "benchmark", "own portfolio", "other portfolio"},
    "system": set(ENDPOINTS),
    "user": {"own portfolio"},
}
MAY_USE_FULL_MODE = {"superuser", "admin", "system"}
MAY_REQUEST_PRIORITY = {
    "superuser": {"low", "medium", "high", "emergency"},
    "admin": {"low", "medium", "high", "emergency"},
    "support": {"low", "medium", "high"},
    "system": {"low", "medium", "high"},
    "user": {"low", "medium"},
}
DEFAULT_PRIORITY = {"superuser": "high", "admin": "high", "support": "medium", "system": "low", "user": "medium"}
RECORDED_ROLE = {"superuser": "admin", "admin": "admin", "support": "support", "system": "system", "user": "user"}


def make_user(username, *groups, **fields):
    user = get_user_model().objects.create_user(username=username, **fields)
    user.groups.add(*Group.objects.filter(name__in=groups))
    return user


@pytest.fixture
def people(db):
    """One requester per role, plus a bystander whose portfolio is "another user's"."""
    return {
        "superuser": make_user("root", is_superuser=True, is_staff=True),
        "admin": make_user("ops", "admin"),
        "support": make_user("helpdesk", "support"),
        "system": make_user("robot", "system"),
        "user": make_user("alice"),
        "bystander": make_user("bob"),
    }


def client_for(user):
    """A client for a fresh copy of the user, as each real request loads it (permissions are cached on it)."""
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(pk=user.pk))
    return client


def trigger_url(endpoint, requester, bystander):
    if endpoint == "own portfolio":
        return f"{BASE}/portfolio/{requester.pk}"
    if endpoint == "other portfolio":
        return f"{BASE}/portfolio/{bystander.pk}"
    return f"{BASE}/{endpoint}"


@pytest.mark.parametrize("priority", PRIORITIES, ids=lambda p: f"priority={p or 'default'}")
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(people, role, endpoint, mode, priority):
    requester = people[role]
    body = {"mode": mode} | ({"priority": priority} if priority else {})
    allowed = (
        endpoint in MAY_START[role]
        and (mode != "full" or role in MAY_USE_FULL_MODE)
        and (priority is None or priority in MAY_REQUEST_PRIORITY[role])
    )

    response = client_for(requester).post(trigger_url(endpoint, requester, people["bystander"]), body, format="json")

    if not allowed:
        assert response.status_code == HTTPStatus.FORBIDDEN, response.json()
        assert response.json()["status"] == "error"
        assert response.json()["error"]["code"] == "forbidden"
        assert not RefreshRun.objects.exists()
        return
    assert response.status_code == HTTPStatus.ACCEPTED, response.json()
    run = RefreshRun.objects.get()
    assert response.json()["refresh_id"] == run.refresh_id
    assert (run.requested_by, run.requested_role, run.mode) == (requester, RECORDED_ROLE[role], mode)
    assert run.priority_name == (priority or DEFAULT_PRIORITY[role])


@pytest.mark.parametrize(
    ("role", "endpoint", "expected"),
    [
        ("superuser", "strategy", HTTPStatus.ACCEPTED),
        ("admin", "all", HTTPStatus.ACCEPTED),
        ("system", "strategy", HTTPStatus.ACCEPTED),
        ("support", "strategy", HTTPStatus.FORBIDDEN),
        ("user", "strategy", HTTPStatus.FORBIDDEN),
    ],
)
def test_applying_rebalancing_needs_its_permission(people, role, endpoint, expected):
    response = client_for(people[role]).post(f"{BASE}/{endpoint}", {"apply_rebalancing": True}, format="json")
    assert response.status_code == expected
    assert RefreshRun.objects.filter(params__apply_rebalancing=True).count() == (expected == HTTPStatus.ACCEPTED)


def test_another_users_portfolio_is_403_even_when_that_user_does_not_exist(people):
    alice = client_for(people["user"])
    for target in (people["bystander"].pk, people["admin"].pk, 999999):
        response = alice.post(f"{BASE}/portfolio/{target}", {}, format="json")
        assert response.status_code == HTTPStatus.FORBIDDEN  # no 404: user ids cannot be probed
        assert response.json()["error"]["code"] == "forbidden"
    assert not RefreshRun.objects.exists()


def test_staff_flag_alone_is_the_user_role(people):
    staff = make_user("clerk", is_staff=True)
    assert client_for(staff).post(f"{BASE}/all", {}, format="json").status_code == HTTPStatus.FORBIDDEN
    assert client_for(staff).post(f"{BASE}/portfolio/{staff.pk}", {}, format="json").status_code == HTTPStatus.ACCEPTED
    assert RefreshRun.objects.get().requested_role == "user"


def test_the_strongest_group_decides_the_role(people):
    both = make_user("lead", "support", "admin")
    response = client_for(both).post(f"{BASE}/strategy", {}, format="json")
    assert response.status_code == HTTPStatus.ACCEPTED
    assert RefreshRun.objects.get().requested_role == "admin"


# --- runs: who sees and cancels which --------------------------------------------------------------------------


@pytest.fixture
def runs(people):
    """A queued run requested by each of admin, support and user, and one the admin started for the user."""

    def start(who, kind, **kwargs):
        run, _ = request_refresh(kind=kind, requested_by=people[who], source=RunSource.COMMAND, enqueue=False, **kwargs)
        return run

    return {
        "admin": start("admin", "strategy"),
        "support": start("support", "prices"),
        "user": start("user", "portfolio", target_user_id=people["user"].pk),
        "for user": start("admin", "portfolio", target_user_id=people["user"].pk, mode="smart"),
    }


def test_user_sees_only_their_own_runs_and_others_are_404(people, runs):
    alice = client_for(people["user"])
    listed = {r["refresh_id"] for r in alice.get(f"{BASE}/runs/").json()["results"]}
    assert listed == {runs["user"].refresh_id, runs["for user"].refresh_id}
    assert alice.get(f"{BASE}/prices").json()["count"] == 0
    for other in (runs["admin"], runs["support"]):
        detail = alice.get(f"{BASE}/runs/{other.refresh_id}/")
        assert detail.status_code == HTTPStatus.NOT_FOUND
        assert detail.json()["error"]["code"] == "not_found"
        assert alice.post(f"{BASE}/runs/{other.refresh_id}/cancel/").status_code == HTTPStatus.NOT_FOUND
    assert alice.get(f"{BASE}/runs/ref_doesnotexist/").status_code == HTTPStatus.NOT_FOUND
    assert RefreshRun.objects.filter(status="cancelled").count() == 0


@pytest.mark.parametrize("role", ["superuser", "admin", "support", "system"])
def test_roles_with_view_all_runs_see_every_run(people, runs, role):
    client = client_for(people[role])
    assert client.get(f"{BASE}/runs/").json()["count"] == len(runs)
    assert client.get(f"{BASE}/runs/{runs['user'].refresh_id}/").status_code == HTTPStatus.OK


def test_support_cancels_only_its_own_runs(people, runs):
    support = client_for(people["support"])
    refused = support.post(f"{BASE}/runs/{runs['admin'].refresh_id}/cancel/")
    assert refused.status_code == HTTPStatus.FORBIDDEN
    assert refused.json()["error"]["code"] == "forbidden"
    assert RefreshRun.objects.get(pk=runs["admin"].pk).status == "queued"
    assert support.post(f"{BASE}/runs/{runs['support'].refresh_id}/cancel/").json()["status"] == "cancelled"


@pytest.mark.parametrize("role", ["superuser", "admin", "system"])
def test_admins_and_system_cancel_any_run(people, runs, role):
    response = client_for(people[role]).post(f"{BASE}/runs/{runs['user'].refresh_id}/cancel/")
    assert response.status_code == HTTPStatus.OK
    assert RefreshRun.objects.get(pk=runs["user"].pk).status == "cancelled"


def test_user_cancels_their_own_run_but_not_one_an_admin_started_for_them(people, runs):
    alice = client_for(people["user"])
    assert alice.post(f"{BASE}/runs/{runs['user'].refresh_id}/cancel/").status_code == HTTPStatus.OK
    assert alice.post(f"{BASE}/runs/{runs['for user'].refresh_id}/cancel/").status_code == HTTPStatus.FORBIDDEN
    assert RefreshRun.objects.get(pk=runs["for user"].pk).status == "queued"


# --- the groups are the configuration ------------------------------------------------------------------------


def test_migration_creates_the_three_role_groups_with_their_permissions(db):
    def codenames(group):
        return set(Group.objects.get(name=group).permissions.values_list("codename", flat=True))

    assert codenames("admin") == {
        "refresh_all",
        "refresh_prices",
        "refresh_any_portfolio",
        "refresh_strategy",
        "refresh_benchmark",
        "use_full_mode",
        "request_high_priority",
        "request_emergency",
        "apply_rebalancing",
        "cancel_any_run",
        "defer_runs",
        "view_all_runs",
    }
    assert codenames("support") == {
        "refresh_prices",
        "refresh_benchmark",
        "refresh_any_portfolio",
        "request_high_priority",
        "view_all_runs",
    }
    assert codenames("system") == codenames("admin") - {"request_emergency"}


def grant(group, codename, *, revoke=False):
    permission = Permission.objects.get(content_type__app_label="refresh", codename=codename)
    group = Group.objects.get(name=group)
    (group.permissions.remove if revoke else group.permissions.add)(permission)


def test_an_operator_changes_a_role_by_editing_its_group(people):
    def post(role, kind, body):
        return client_for(people[role]).post(f"{BASE}/{kind}", body, format="json").status_code

    assert post("support", "prices", {"mode": "smart"}) == HTTPStatus.ACCEPTED
    grant("support", "refresh_prices", revoke=True)
    assert post("support", "prices", {}) == HTTPStatus.FORBIDDEN
    assert post("system", "benchmark", {"priority": "emergency"}) == HTTPStatus.FORBIDDEN
    grant("system", "request_emergency")
    assert post("system", "benchmark", {"priority": "emergency"}) == HTTPStatus.ACCEPTED
    assert RefreshRun.objects.get(kind="benchmark").priority_name == "emergency"


def test_a_permission_granted_to_one_user_extends_only_that_user(people):
    carol = make_user("carol")
    carol.user_permissions.add(Permission.objects.get(codename="refresh_prices"))
    assert client_for(carol).post(f"{BASE}/prices", {}, format="json").status_code == HTTPStatus.ACCEPTED
    assert client_for(people["user"]).post(f"{BASE}/prices", {}, format="json").status_code == HTTPStatus.FORBIDDEN


# --- the same checks from the admin buttons' and the command's side --------------------------------------------


@pytest.mark.parametrize(
    ("role", "kind", "allowed"),
    [
        ("admin", "all", True),
        ("support", "prices", True),
        ("support", "strategy", False),
        ("user", "benchmark", False),
    ],
)
def test_admin_button_requests_are_checked_like_api_requests(people, role, kind, allowed):
    def press():
        return request_refresh(kind=kind, requested_by=people[role], source=RunSource.ADMIN, enqueue=False)

    if allowed:
        run, created = press()
        assert created
        assert run.source == "admin"
    else:
        with pytest.raises(PermissionDenied):
            press()
        assert not RefreshRun.objects.exists()


def test_command_acts_as_system_which_may_not_request_emergency_unless_granted(people):
    with pytest.raises(CommandError, match="emergency"):
        call_command("refresh", "--benchmark", "--priority", "emergency", "--queue", "--detach", stdout=StringIO())
    assert not RefreshRun.objects.exists()
    grant("system", "request_emergency")
    call_command("refresh", "--benchmark", "--priority", "emergency", "--queue", "--detach", stdout=StringIO())
    run = RefreshRun.objects.get()
    assert (run.requested_by, run.requested_role, run.priority_name) == (None, "system", "emergency")


def test_command_as_a_user_has_that_users_permissions(people):
    with pytest.raises(CommandError, match="may not"):
        call_command("refresh", "--all", "--as-user", "alice", "--queue", "--detach", stdout=StringIO())
    with pytest.raises(CommandError, match="own portfolio"):
        call_command(
            "refresh",
            "--portfolio",
            str(people["bystander"].pk),
            "--as-user",
            "alice",
            "--queue",
            "--detach",
            stdout=StringIO(),
        )
    assert not RefreshRun.objects.exists()


def test_schedules_keep_every_kind_and_mode_of_the_system_role(db):
    for kind in ("all", "prices", "strategy", "benchmark"):
        run, created = request_refresh(
            kind=kind, requested_by=None, source=RunSource.SCHEDULE, mode="full", enqueue=False
        )
        assert created
        assert (run.requested_role, run.priority_name) == ("system", "low")


# --- the DRF permission classes compose ------------------------------------------------------------------------


def request_by(user) -> Request:
    request = Request(APIRequestFactory().get("/"))
    request.user = user
    return request


def test_role_permission_classes_compose(people):
    admin_or_support = (IsAdminRole | IsSupportRole)()
    view = APIView()
    verdicts = {role: admin_or_support.has_permission(request_by(people[role]), view) for role in ROLES}
    assert verdicts == {"superuser": True, "admin": True, "support": True, "system": False, "user": False}
    assert IsSystemRole().has_permission(request_by(people["system"]), view)
    assert not (IsAdminRole | IsSystemRole)().has_permission(request_by(people["user"]), view)
