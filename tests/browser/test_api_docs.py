"""In a real browser: Swagger UI and ReDoc render the schema with no request leaving the server."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def test_swagger_ui_renders_every_operation_offline(browser_page):
    page = browser_page
    page.goto("/api/docs/")

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Manual refresh API")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/manual/refresh/all/").first).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/cancel/")).to_have_count(1)
    screenshot(page, "07-swagger-ui")


def test_redoc_renders_offline(browser_page):
    page = browser_page
    page.goto("/api/redoc/")

    expect(page.locator("h1", has_text="Manual refresh API")).to_be_visible()
    expect(page.locator("h2", has_text="Start a refresh of this kind").first).to_be_visible()
    screenshot(page, "08-redoc")
