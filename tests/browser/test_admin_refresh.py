"""In a real browser: log in, press "Refresh now", watch runs finish, open a run and the dashboard."""

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import expect

from refresh.models import RefreshRun, RunSource, RunStatus
from refresh.services.demo import DEMO_ADMIN, seed_demo
from tests.browser.conftest import log_in, screenshot

pytestmark = pytest.mark.django_db(transaction=True)  # the live server sees committed rows only
RUNS = "/admin/refresh/refreshrun/"


@pytest.fixture
def demo_site():
    return seed_demo(users=3, assets=10, years=1)


def _refresh_now(page, kind: str, *, mode: str = "incremental") -> RefreshRun:
    """Press one "Refresh now" button and wait for its run to finish in the list."""
    before = set(RefreshRun.objects.values_list("pk", flat=True))
    page.select_option("#refresh-now-mode", mode)
    page.click(f"#refresh-now-{kind}")
    if mode == "full":  # a full refresh shows its dry run's plan first; the second click starts it
        expect(page.locator("#refresh-plan-symbols")).to_contain_text("SPY")
        assert not RefreshRun.objects.exclude(pk__in=before).exists()
        screenshot(page, f"00-confirm-full-{kind}")
        page.click("#refresh-confirm")
    expect(page.locator("ul.messagelist li").first).to_contain_text(f"({mode}) requested")
    run = RefreshRun.objects.exclude(pk__in=before).get()
    row = page.locator("#result_list tbody tr", has_text=run.refresh_id)
    expect(row.locator(".refresh-badge")).not_to_have_text("Queued", timeout=60_000)
    expect(row.locator(".refresh-badge")).not_to_have_text("In progress", timeout=60_000)
    run.refresh_from_db()
    return run


def test_refresh_now_runs_to_success_and_shows_on_the_dashboard(browser_page, demo_site, settings):
    page = browser_page
    log_in(page, username=DEMO_ADMIN[0], password=DEMO_ADMIN[1], next_url=RUNS)
    expect(page.locator("#refresh-now")).to_be_visible()
    for kind, label in [("all", "All"), ("prices", "Prices"), ("strategy", "Strategy"), ("benchmark", "Benchmark")]:
        expect(page.locator(f"#refresh-now-{kind}")).to_have_text(label)
    screenshot(page, "01-runs-list-with-buttons")

    run = _refresh_now(page, "all", mode="full")

    assert (run.kind, run.mode, run.source, run.status) == ("all", "full", RunSource.ADMIN, RunStatus.SUCCESS)
    row = page.locator("#result_list tbody tr", has_text=run.refresh_id)
    expect(row.locator(".refresh-badge")).to_have_text("Success")
    expect(row.locator(".refresh-progress__label")).to_have_text("100%")
    screenshot(page, "02-finished-run-in-list")

    page.locator("ul.messagelist a", has_text=run.refresh_id).click()
    timeline = page.locator("#refresh-timeline")
    expect(timeline).to_contain_text("Fetching data")
    expect(timeline).to_contain_text("Recalculating metrics")
    expect(timeline.locator("tbody tr")).to_have_count(run.steps.count())
    screenshot(page, "03-run-page-timeline")

    # One symbol the provider fails: the run saves the rest and says which symbol failed and why.
    settings.MOCK_PROVIDER_FAIL_SYMBOLS = ["AAPL"]
    page.goto(RUNS)
    partial = _refresh_now(page, "prices")
    assert partial.status == RunStatus.PARTIAL
    assert "AAPL" in partial.failed_symbols
    page.locator("ul.messagelist a", has_text=partial.refresh_id).click()
    expect(page.locator("#refresh-failed-symbols")).to_contain_text("AAPL")
    expect(page.locator(".field-status_badge .refresh-badge")).to_have_text("Partial")
    screenshot(page, "04-partial-run-failed-symbols")

    settings.MOCK_PROVIDER_FAIL_SYMBOLS = []
    page.goto(RUNS)
    assert _refresh_now(page, "strategy").status == RunStatus.SUCCESS
    assert _refresh_now(page, "benchmark").status == RunStatus.SUCCESS

    page.click("text=Dashboard")
    page.wait_for_function("window.refreshDashboardCharts && Object.keys(window.refreshDashboardCharts).length === 5")
    expect(page.locator("#tile-success-rate .refresh-tile__value")).to_have_text("75%")
    expect(page.locator("#table-durations tbody tr")).to_have_count(4)
    kinds = page.evaluate("window.refreshDashboardCharts['chart-durations'].data.labels")
    assert kinds == ["all", "prices", "strategy", "benchmark"]
    statuses = page.evaluate("window.refreshDashboardCharts['chart-runs-per-day'].data.datasets.map((d) => d.label)")
    assert statuses == ["success", "partial"]
    assert page.evaluate("window.refreshDashboardCharts['chart-credits'].data.datasets[0].data.at(-1)") > 0
    screenshot(page, "05-dashboard")


def test_refresh_portfolio_now_from_a_users_page(browser_page, demo_site):
    alice = get_user_model().objects.get(username="alice")
    page = browser_page
    log_in(page, username=DEMO_ADMIN[0], password=DEMO_ADMIN[1], next_url=f"/admin/auth/user/{alice.pk}/change/")

    page.click("#refresh-portfolio-now")

    message = page.locator("ul.messagelist li").first
    expect(message).to_contain_text("Portfolio refresh (incremental) requested")
    run = RefreshRun.objects.get()
    assert (run.kind, run.target_user_id, run.status) == ("portfolio", alice.pk, RunStatus.SUCCESS)
    expect(message).to_contain_text("success")
    screenshot(page, "06-user-page-portfolio-refresh")
