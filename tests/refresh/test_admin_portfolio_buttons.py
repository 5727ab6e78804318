"""'Refresh portfolio now' on portfolio and user pages, and 'Refresh selected portfolios'."""

from http import HTTPStatus

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from portfolios.models import Portfolio
from refresh.models import RefreshKind, RefreshRun, RunSource


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def admin_web(admin):
    return _client(admin)


@pytest.fixture
def viewer(demo):
    """Staff who may view portfolios and users but hold no refresh capability."""
    user = get_user_model().objects.create_user(username="viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_portfolio", "view_user", "view_refreshrun"])
    )
    return user


def test_portfolio_page_has_the_button_and_it_refreshes_the_owners_portfolio(admin_web, admin, alice):
    portfolio = Portfolio.objects.filter(owner=alice).first()
    page = reverse("admin:portfolios_portfolio_change", args=[portfolio.pk])
    button = reverse("admin:portfolios_portfolio_refresh_portfolio", args=[portfolio.pk])

    html = admin_web.get(page).content.decode()
    assert f'action="{button}"' in html
    assert "Refresh portfolio now" in html

    response = admin_web.post(button, {"mode": "smart"})

    assert response.status_code == HTTPStatus.FOUND
    assert response["Location"] == page
    run = RefreshRun.objects.get()
    assert (run.kind, run.target_user, run.mode, run.source, run.requested_by) == (
        RefreshKind.PORTFOLIO,
        alice,
        "smart",
        RunSource.ADMIN,
        admin,
    )
    [message] = _messages(response)
    assert reverse("admin:refresh_refreshrun_change", args=[run.pk]) in message


def test_user_page_has_the_button_and_it_refreshes_that_users_portfolio(admin_web, bob):
    page = reverse("admin:auth_user_change", args=[bob.pk])
    button = reverse("admin:auth_user_refresh_portfolio", args=[bob.pk])

    assert f'action="{button}"' in admin_web.get(page).content.decode()

    response = admin_web.post(button)

    run = RefreshRun.objects.get()
    assert (run.kind, run.target_user, run.mode) == (RefreshKind.PORTFOLIO, bob, "incremental")
    assert run.refresh_id in _messages(response)[0]


def test_user_admin_keeps_djangos_behaviour(admin_web):
    response = admin_web.get(reverse("admin:auth_user_changelist"), {"q": "alice"})

    assert response.status_code == HTTPStatus.OK
    assert [u.username for u in response.context["cl"].result_list] == ["alice"]


def test_without_the_capability_there_is_no_button_and_a_forged_post_is_403(viewer, alice):
    client = _client(viewer)
    portfolio = Portfolio.objects.filter(owner=alice).first()

    for page, button in [
        (
            reverse("admin:portfolios_portfolio_change", args=[portfolio.pk]),
            reverse("admin:portfolios_portfolio_refresh_portfolio", args=[portfolio.pk]),
        ),
        (
            reverse("admin:auth_user_change", args=[alice.pk]),
            reverse("admin:auth_user_refresh_portfolio", args=[alice.pk]),
        ),
    ]:
        response = client.get(page)
        assert response.status_code == HTTPStatus.OK
        assert "Refresh portfolio now" not in response.content.decode()
        assert client.post(button).status_code == HTTPStatus.FORBIDDEN
    assert not RefreshRun.objects.exists()


def test_a_staff_user_may_refresh_their_own_portfolio(viewer):
    Portfolio.objects.create(owner=viewer, name="Mine")
    client = _client(viewer)

    html = client.get(reverse("admin:auth_user_change", args=[viewer.pk])).content.decode()
    assert "Refresh portfolio now" in html
    client.post(reverse("admin:auth_user_refresh_portfolio", args=[viewer.pk]))

    assert RefreshRun.objects.get().target_user == viewer


def test_refresh_selected_portfolios_starts_one_run_per_owner(admin_web, alice, bob):
    Portfolio.objects.create(owner=alice, name="Second")
    selected = Portfolio.objects.filter(owner__in=[alice, bob])
    assert selected.count() >= 3

    response = admin_web.post(
        reverse("admin:portfolios_portfolio_changelist"),
        {
            "action": "refresh_selected_portfolios",
            "_selected_action": [p.pk for p in selected],
        },
    )

    assert response.status_code == HTTPStatus.FOUND
    runs = RefreshRun.objects.filter(kind=RefreshKind.PORTFOLIO)
    assert sorted(run.target_user.username for run in runs) == ["alice", "bob"]
    messages = _messages(response)
    assert all(run.refresh_id in " ".join(messages) for run in runs)
    assert messages[-1] == "2 of 2 owners' portfolio refreshes requested."


def test_the_action_is_not_offered_without_the_capability(viewer):
    response = _client(viewer).get(reverse("admin:portfolios_portfolio_changelist"))

    assert response.status_code == HTTPStatus.OK
    assert "refresh_selected_portfolios" not in response.content.decode()
