"""The landing page at /: public, links the API docs, the admin and the staff pages, and shows no secret."""

from __future__ import annotations

from django.urls import reverse


def test_the_landing_page_links_the_docs_the_admin_and_the_staff_pages(client, db):
    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    for name in ("api-docs", "schema", "admin:index", "staff:index", "staff:preview", "staff:jobs", "staff:health"):
        assert f'href="{reverse(name)}"' in html, name
    assert "Api-Key" not in html and "reco-demo" not in html  # no key or password on a public page


def test_the_api_docs_page_loads_swagger_ui_from_the_project(client, db):
    html = client.get(reverse("api-docs")).content.decode()

    assert "swagger-ui-bundle.js" in html and "cdn." not in html and "//unpkg" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html


def test_an_unknown_page_is_a_plain_404_not_a_debug_page(client, db):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "URLconf" not in response.content.decode()  # Django's debug 404 lists the URL patterns
