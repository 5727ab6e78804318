"""The refresh admin: "Refresh now" and "Cancel" buttons, the runs list and the run page."""

from datetime import timedelta
from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from refresh.models import RefreshRun, RefreshStep, RunPriority, RunSource, RunStatus, StepStatus

CHANGELIST = "admin:refresh_refreshrun_changelist"
REFRESH_NOW = "admin:refresh_refreshrun_refresh_now"


def _staff(username: str, *perms: str, groups: tuple[str, ...] = ()):
    user = get_user_model().objects.create_user(username=username, password="pw", is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    for name in groups:
        user.groups.add(Group.objects.get(name=name))
    return user


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _run(*, status=RunStatus.QUEUED, requested_by=None, **fields) -> RefreshRun:
    defaults = {
        "kind": "prices",
        "mode": "incremental",
        "requested_role": "admin",
        "source": RunSource.API,
        "scope": "prices",
        "dedup_key": f"test:{RefreshRun.objects.count()}",
    }
    return RefreshRun.objects.create(status=status, requested_by=requested_by, **{**defaults, **fields})


@pytest.fixture
def admin_web(admin):
    return _client(admin)


@pytest.fixture
def viewer(demo):
    """Staff who may look at runs, portfolios and users, and hold no refresh capability."""
    return _staff("viewer", "refresh.view_refreshrun", "portfolios.view_portfolio", "auth.view_user")


@pytest.fixture
def support(demo):
    return _staff("support1", "refresh.view_refreshrun", groups=("support",))


# --- "Refresh now" on the runs list -----------------------------------------------------------
def test_runs_list_offers_every_kind_and_mode_to_an_admin(admin_web):
    response = admin_web.get(reverse(CHANGELIST))

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert f'action="{reverse(REFRESH_NOW)}"' in html
    for kind in ("all", "prices", "strategy", "benchmark"):
        assert f'id="refresh-now-{kind}"' in html
    assert [value for value, _ in response.context["refresh_modes"]] == ["incremental", "smart", "full"]


def test_refresh_now_starts_an_admin_run_and_links_to_it(admin_web, admin, run_tasks):
    response = run_tasks(admin_web.post, reverse(REFRESH_NOW), {"kind": "prices", "mode": "smart"})

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == reverse(CHANGELIST)
    run = RefreshRun.objects.get()
    assert (run.kind, run.mode, run.source, run.requested_by) == ("prices", "smart", RunSource.ADMIN, admin)
    assert run.priority == RunPriority.HIGH  # the admin role's default
    assert run.status == RunStatus.SUCCESS
    [message] = _messages(response)
    assert reverse("admin:refresh_refreshrun_change", args=[run.pk]) in message
    assert run.refresh_id in message

    listing = admin_web.get(reverse(CHANGELIST)).content.decode()
    assert run.refresh_id in listing
    assert 'refresh-badge--success">Success</span>' in listing
    assert 'aria-valuenow="100"' in listing


def test_a_staff_user_without_the_capability_sees_no_button_and_a_forged_post_is_403(viewer):
    client = _client(viewer)

    listing = client.get(reverse(CHANGELIST))
    assert listing.status_code == HTTPStatus.OK
    assert 'id="refresh-now"' not in listing.content.decode()

    response = client.post(reverse(REFRESH_NOW), {"kind": "all"})
    assert response.status_code == HTTPStatus.FORBIDDEN
    assert not RefreshRun.objects.exists()


def test_support_sees_only_its_kinds_and_modes_and_is_refused_the_others(support):
    client = _client(support)

    response = client.get(reverse(CHANGELIST))
    assert [kind for kind, _ in response.context["refresh_buttons"]] == ["prices", "benchmark"]
    assert "full" not in [value for value, _ in response.context["refresh_modes"]]
    assert client.post(reverse(REFRESH_NOW), {"kind": "all"}).status_code == HTTPStatus.FORBIDDEN
    assert client.post(reverse(REFRESH_NOW), {"kind": "prices", "mode": "full"}).status_code == HTTPStatus.FORBIDDEN
    assert not RefreshRun.objects.exists()


def test_refresh_now_needs_a_post_with_a_csrf_token(admin):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)

    assert client.get(reverse(REFRESH_NOW)).status_code == HTTPStatus.METHOD_NOT_ALLOWED
    assert client.post(reverse(REFRESH_NOW), {"kind": "all"}).status_code == HTTPStatus.FORBIDDEN
    assert not RefreshRun.objects.exists()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"kind": "portfolio"}, "Choose one of"),
        ({"kind": "everything"}, "Choose one of"),
        ({"kind": "prices", "mode": "sometimes"}, "invalid_mode"),
    ],
)
def test_bad_input_is_an_error_message_and_changes_nothing(admin_web, data, expected):
    response = admin_web.post(reverse(REFRESH_NOW), data)

    assert response.status_code == HTTPStatus.FOUND
    [message] = _messages(response)
    assert expected in message
    assert not RefreshRun.objects.exists()


def test_a_second_click_within_the_cooldown_is_refused_with_the_rate_limit_message(admin_web, run_tasks):
    run_tasks(admin_web.post, reverse(REFRESH_NOW), {"kind": "benchmark"})  # runs to the end
    assert RefreshRun.objects.get().is_finished
    response = admin_web.post(reverse(REFRESH_NOW), {"kind": "benchmark"})

    message = _messages(response)[-1]  # the first click's message has not been shown yet
    assert message.startswith("Refresh refused (cooldown)")
    assert "Try again in" in message
    assert RefreshRun.objects.count() == 1


def test_an_identical_active_run_is_reported_instead_of_a_second_one(admin_web, demo):
    other = get_user_model().objects.create_superuser("admin2", password="pw")
    admin_web.post(reverse(REFRESH_NOW), {"kind": "strategy"})  # not executed: no on_commit capture

    response = _client(other).post(reverse(REFRESH_NOW), {"kind": "strategy"})

    run = RefreshRun.objects.get()
    [message] = _messages(response)
    assert message.startswith("An identical Strategy refresh (incremental) is already queued")
    assert run.refresh_id in message


# --- the runs list -----------------------------------------------------------------------------
def test_runs_list_searches_by_id_and_user_and_filters_by_status(admin_web, admin, alice):
    mine = _run(requested_by=admin, status=RunStatus.FAILED)
    hers = _run(requested_by=alice, status=RunStatus.SUCCESS, dedup_key="x", kind="all", scope="all")
    url = reverse(CHANGELIST)

    def listed(**params):
        return list(admin_web.get(url, params).context["cl"].result_list)

    assert listed(q=mine.refresh_id) == [mine]
    assert listed(q="alice") == [hers]
    assert listed(status__exact="failed") == [mine]
    assert listed(kind="all") == [hers]
    assert "All (everything)" in admin_web.get(url).content.decode()


def test_runs_list_shows_progress_duration_priority_and_requester(admin_web, admin):
    started = timezone.now() - timedelta(seconds=30)
    _run(
        requested_by=admin,
        status=RunStatus.IN_PROGRESS,
        progress=0.42,
        started_at=started,
        priority=RunPriority.EMERGENCY,
    )
    _run(
        status=RunStatus.SUCCESS,
        progress=1.0,
        duration_ms=4200,
        dedup_key="y",
        requested_role="system",
        source=RunSource.SCHEDULE,
    )

    response = admin_web.get(reverse(CHANGELIST))
    html = response.content.decode()

    assert 'aria-valuenow="42"' in html
    assert "s so far" in html
    assert "4.2 s" in html
    assert "emergency" in html
    assert "(system)" in html
    assert response.context["autoreload_seconds"] == 3  # an active run keeps the list fresh


def test_runs_list_does_not_reload_itself_when_nothing_is_active(admin_web):
    _run(status=RunStatus.SUCCESS)

    response = admin_web.get(reverse(CHANGELIST))

    assert response.context["autoreload_seconds"] is None
    assert "data-refresh-autoreload" not in response.content.decode()


def test_a_user_without_view_all_runs_sees_only_their_own_runs(viewer, admin):
    own = _run(requested_by=viewer)
    _run(requested_by=admin, dedup_key="other")

    response = _client(viewer).get(reverse(CHANGELIST))

    assert list(response.context["cl"].result_list) == [own]


# --- the run page ------------------------------------------------------------------------------
def test_run_page_shows_the_timeline_errors_and_failed_symbols(admin_web):
    now = timezone.now()
    run = _run(
        status=RunStatus.PARTIAL,
        started_at=now,
        finished_at=now,
        duration_ms=1500,
        errors=["provider said no"],
        failed_symbols={"AAPL": "no data", "MSFT": "bad price"},
    )
    RefreshStep.objects.create(
        run=run,
        position=1,
        name="Fetching data",
        status=StepStatus.DONE,
        started_at=now,
        finished_at=now,
        duration_ms=1200,
        counts={"batches": 2, "symbols": 9},
    )
    RefreshStep.objects.create(
        run=run,
        position=2,
        name="Recalculating metrics",
        status=StepStatus.SKIPPED,
        started_at=now,
        finished_at=now,
        duration_ms=0,
        message="prices only",
    )

    response = admin_web.get(reverse("admin:refresh_refreshrun_change", args=[run.pk]))

    assert response.status_code == HTTPStatus.OK
    html = response.content.decode()
    assert [row["step"].name for row in response.context["timeline"]] == ["Fetching data", "Recalculating metrics"]
    assert "1.2 s" in html
    assert "batches: 2, symbols: 9" in html
    assert "prices only" in html
    assert "provider said no" in html
    assert "<td>AAPL</td><td>no data</td>" in html
    assert "<td>MSFT</td><td>bad price</td>" in html
    assert 'id="refresh-cancel"' not in html  # finished
    assert "data-refresh-autoreload" not in html
    assert 'name="_save"' not in html  # a record, not a form


def test_an_active_run_page_reloads_itself_and_offers_cancel(admin_web, admin):
    run = _run(requested_by=admin, status=RunStatus.IN_PROGRESS, started_at=timezone.now())

    html = admin_web.get(reverse("admin:refresh_refreshrun_change", args=[run.pk])).content.decode()

    assert 'data-refresh-autoreload="3"' in html
    assert f'action="{reverse("admin:refresh_refreshrun_cancel", args=[run.pk])}"' in html


def test_cancel_cancels_a_queued_run_and_says_so(admin_web, admin):
    run = _run(requested_by=admin)

    response = admin_web.post(reverse("admin:refresh_refreshrun_cancel", args=[run.pk]))

    assert response.status_code == HTTPStatus.FOUND
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert _messages(response) == [f"Run {run.refresh_id} cancelled."]


def test_cancel_asks_a_running_run_to_stop(admin_web, admin):
    run = _run(requested_by=admin, status=RunStatus.IN_PROGRESS, started_at=timezone.now())

    response = admin_web.post(reverse("admin:refresh_refreshrun_cancel", args=[run.pk]))

    run.refresh_from_db()
    assert run.cancelling
    assert run.status == RunStatus.IN_PROGRESS
    assert _messages(response) == [f"Run {run.refresh_id} asked to stop at its next batch."]


def test_cancelling_a_finished_run_is_a_warning_and_changes_nothing(admin_web):
    run = _run(status=RunStatus.SUCCESS)

    response = admin_web.post(reverse("admin:refresh_refreshrun_cancel", args=[run.pk]))

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCESS
    assert "already finished" in _messages(response)[0]


def test_support_cannot_cancel_someone_elses_run(support, admin):
    run = _run(requested_by=admin)
    client = _client(support)

    page = client.get(reverse("admin:refresh_refreshrun_change", args=[run.pk])).content.decode()
    assert 'id="refresh-cancel"' not in page
    assert client.post(reverse("admin:refresh_refreshrun_cancel", args=[run.pk])).status_code == HTTPStatus.FORBIDDEN
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED


def test_cancel_selected_runs_cancels_what_it_may_and_reports_the_rest(support, admin):
    own_queued = _run(requested_by=support, dedup_key="a")
    own_running = _run(requested_by=support, status=RunStatus.IN_PROGRESS, started_at=timezone.now(), dedup_key="b")
    admins = _run(requested_by=admin, dedup_key="c")
    finished = _run(requested_by=support, status=RunStatus.SUCCESS, dedup_key="d")

    response = _client(support).post(
        reverse(CHANGELIST),
        {
            "action": "cancel_selected_runs",
            "_selected_action": [own_queued.pk, own_running.pk, admins.pk, finished.pk],
        },
    )

    assert response.status_code == HTTPStatus.FOUND
    assert _messages(response) == ["1 cancelled, 1 asked to stop, 1 not yours to cancel, 1 already finished."]
    statuses = dict(RefreshRun.objects.values_list("pk", "status"))
    assert statuses == {
        own_queued.pk: RunStatus.CANCELLED,
        own_running.pk: RunStatus.IN_PROGRESS,
        admins.pk: RunStatus.QUEUED,
        finished.pk: RunStatus.SUCCESS,
    }
    assert RefreshRun.objects.get(pk=own_running.pk).cancelling


def test_runs_cannot_be_added_or_edited_in_the_admin(admin_web, admin):
    run = _run(requested_by=admin)

    assert admin_web.get(reverse("admin:refresh_refreshrun_add")).status_code == HTTPStatus.FORBIDDEN
    admin_web.post(reverse("admin:refresh_refreshrun_change", args=[run.pk]), {"status": "success"})
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED


# --- reprioritise and retry ----------------------------------------------------------------------


def test_a_queued_run_is_reprioritised_from_its_page(admin_web, admin):
    run = _run(requested_by=admin, priority=RunPriority.LOW)
    page = admin_web.get(reverse("admin:refresh_refreshrun_change", args=[run.pk])).content.decode()
    assert 'id="refresh-reprioritise"' in page
    assert '<option value="emergency">' in page

    response = admin_web.post(reverse("admin:refresh_refreshrun_reprioritise", args=[run.pk]), {"priority": "high"})

    run.refresh_from_db()
    assert run.priority == RunPriority.HIGH
    assert _messages(response) == [f"Run {run.refresh_id} is now at high priority."]
    assert run.steps.get(name="Reprioritised").message == "Set to high by admin. Was low."


def test_a_running_run_offers_no_reprioritise_and_refuses_one(admin_web, admin):
    run = _run(requested_by=admin, status=RunStatus.IN_PROGRESS, started_at=timezone.now())
    page = admin_web.get(reverse("admin:refresh_refreshrun_change", args=[run.pk])).content.decode()
    assert 'id="refresh-reprioritise"' not in page

    response = admin_web.post(reverse("admin:refresh_refreshrun_reprioritise", args=[run.pk]), {"priority": "high"})

    assert "only a queued run can be reprioritised" in _messages(response)[0]
    assert RefreshRun.objects.get(pk=run.pk).priority == RunPriority.MEDIUM


def test_support_reprioritises_only_its_own_runs_and_not_to_emergency(client, support, admin):
    client.force_login(support)
    theirs = _run(requested_by=admin)
    own = _run(requested_by=support, requested_role="support")
    assert (
        'id="refresh-reprioritise"'
        not in client.get(reverse("admin:refresh_refreshrun_change", args=[theirs.pk])).content.decode()
    )
    page = client.get(reverse("admin:refresh_refreshrun_change", args=[own.pk])).content.decode()
    assert '<option value="high">' in page
    assert '<option value="emergency">' not in page

    refused = client.post(reverse("admin:refresh_refreshrun_reprioritise", args=[own.pk]), {"priority": "emergency"})
    forbidden = client.post(reverse("admin:refresh_refreshrun_reprioritise", args=[theirs.pk]), {"priority": "low"})

    assert refused.status_code == forbidden.status_code == HTTPStatus.FORBIDDEN
    assert (
        RefreshRun.objects.get(pk=own.pk).priority
        == RefreshRun.objects.get(pk=theirs.pk).priority
        == RunPriority.MEDIUM
    )


def test_a_failed_prices_run_is_retried_from_its_page(admin_web, admin, settings, django_capture_on_commit_callbacks):
    settings.REFRESH_COOLDOWN_SECONDS = 0
    failed = _run(requested_by=admin, status=RunStatus.PARTIAL, failed_symbols={"AAPL": "provider error"})
    page = admin_web.get(reverse("admin:refresh_refreshrun_change", args=[failed.pk])).content.decode()
    assert "Retry failed symbols" in page
    assert 'id="refresh-retry-all"' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_web.post(reverse("admin:refresh_refreshrun_retry", args=[failed.pk]))

    retry = RefreshRun.objects.get(retry_of=failed)
    assert retry.source == RunSource.ADMIN
    assert retry.params["symbols"] == ["AAPL"]
    assert response["Location"] == reverse("admin:refresh_refreshrun_change", args=[retry.pk])
    assert _messages(response) == [f"Retry of {failed.refresh_id} started: run {retry.refresh_id}."]
    assert admin_web.get(reverse("admin:refresh_refreshrun_change", args=[retry.pk])).status_code == HTTPStatus.OK


def test_a_successful_run_offers_no_retry_and_refuses_one(admin_web, admin):
    done = _run(requested_by=admin, status=RunStatus.SUCCESS)
    assert (
        'id="refresh-retry"'
        not in admin_web.get(reverse("admin:refresh_refreshrun_change", args=[done.pk])).content.decode()
    )

    response = admin_web.post(reverse("admin:refresh_refreshrun_retry", args=[done.pk]))

    assert "only a failed, partial, timed-out or cancelled run can be retried" in _messages(response)[0]
    assert not RefreshRun.objects.filter(retry_of=done).exists()
