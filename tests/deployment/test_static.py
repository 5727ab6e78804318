"""Static files are served with DEBUG off: the admin's, the dashboard's charts and Swagger UI's."""

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from tests.deployment.deployments import ADMIN_LOGIN

NAMED_FILES = {
    "/static/admin/css/base.css": "text/css",
    "/static/core/vendor/chartjs/chart.umd.min.js": "javascript",
    "/static/refresh/admin/dashboard.js": "javascript",
}


class LinkedAssets(HTMLParser):
    """The scripts and stylesheets a page loads."""

    def __init__(self):
        super().__init__()
        self.paths: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.paths.append(attrs["src"])
        elif tag == "link" and "stylesheet" in (attrs.get("rel") or "") and attrs.get("href"):
            self.paths.append(attrs["href"])


def linked_assets(page_path: str, html: str) -> list[str]:
    parser = LinkedAssets()
    parser.feed(html)
    return [urlsplit(urljoin(page_path, path)).path for path in parser.paths]


@pytest.mark.parametrize("path", NAMED_FILES)
def test_named_static_files_are_served(served, path):
    answer = served.get(path)
    assert answer.status_code == 200, (path, answer.status_code)
    assert NAMED_FILES[path] in answer.headers["Content-Type"]
    assert len(answer.content) > 100


@pytest.mark.parametrize("page", ["/api/docs/", "/admin/refresh/refreshrun/dashboard/", "/admin/"])
def test_every_script_and_stylesheet_a_page_links_is_served(served, page):
    browser = served.browser(*ADMIN_LOGIN)
    answer = browser.get(page)
    assert answer.status_code == 200, (page, answer.status_code)
    assets = linked_assets(page, answer.text)
    assert any(path.endswith(".js") for path in assets), assets
    assert any(path.endswith(".css") for path in assets), assets
    missing = {path: status for path in assets if (status := browser.get(path).status_code) != 200}
    assert missing == {}, f"{page} links files the server does not serve"
