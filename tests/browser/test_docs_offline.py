"""Without internet (every request to another host refused), the landing page and the interactive API docs load
from the project itself and list every operation of the schema (issue #18)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from drf_spectacular.generators import SchemaGenerator

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture
def offline_page(page, live_server):
    """The page with the network off: only the live server's own address answers; what else was asked for is
    recorded in `page.refused`."""
    local = urlsplit(live_server.url).netloc
    refused: list[str] = []

    def only_local(route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == local or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort("internetdisconnected")

    page.context.route("**/*", only_local)
    page.refused = refused
    return page


def _schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path) for path, item in schema["paths"].items() for method in item if method in HTTP_METHODS
    }


def test_the_api_docs_list_every_operation_with_the_network_off(offline_page, screenshot):
    expected = _schema_operations()
    assert ("GET", "/api/recs") in expected and ("POST", "/api/events") in expected

    response = offline_page.goto("/api/docs/")
    assert response.status == 200
    offline_page.wait_for_selector(".opblock-summary", timeout=20_000)
    shown = set()
    for block in offline_page.locator(".opblock").all():
        method = block.locator(".opblock-summary-method").inner_text().strip().upper()
        path = block.locator(".opblock-summary-path").get_attribute("data-path")
        shown.add((method, path))
    screenshot(offline_page, "api-docs-offline")
    assert shown == expected
    assert "Reco API" in offline_page.inner_text(".information-container")
    assert offline_page.refused == []  # nothing asked of a CDN (Swagger UI, its CSS, the favicon, a validator)


def test_the_landing_page_links_the_docs_the_admin_and_the_staff_pages(offline_page, screenshot):
    response = offline_page.goto("/")
    assert response.status == 200
    links = {a.get_attribute("href") for a in offline_page.locator("#landing a").all()}
    assert {"/api/docs/", "/api/schema/", "/admin/", "/staff/", "/staff/health/"} <= links
    screenshot(offline_page, "landing")
    offline_page.click("#landing >> text=API documentation")
    offline_page.wait_for_selector(".opblock-summary")
    assert offline_page.refused == []
