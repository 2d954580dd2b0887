"""Only active staff reach the staff pages and the admin; the public liveness probe stays open."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories.recommendations import ModelVersionFactory

PAGES = [
    "staff:index",
    "staff:preview",
    "staff:models",
    "staff:jobs",
    "staff:experiments",
    "staff:health",
    "staff:health-json",
]


@pytest.mark.parametrize("page", PAGES)
def test_anonymous_visitors_are_sent_to_the_admin_login(client, db, page):
    url = reverse(page)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next={url}"


@pytest.mark.parametrize("page", PAGES)
def test_signed_in_users_outside_staff_are_refused(outsider_client, page):
    response = outsider_client.get(reverse(page))
    assert response.status_code == 403
    assert b"staff-refused" in response.content


def test_users_outside_staff_get_no_admin_either(outsider_client):
    response = outsider_client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_an_inactive_staff_member_is_treated_as_signed_out(client, db):
    from tests.factories.auth import UserFactory

    client.force_login(UserFactory(is_staff=True, is_active=False))
    assert client.get(reverse("staff:models")).status_code == 302


@pytest.mark.parametrize("page", PAGES)
def test_editors_open_every_page(editor_client, page):
    assert editor_client.get(reverse(page)).status_code == 200


def test_model_actions_refuse_outsiders_anonymous_and_staff_without_the_permission(client, outsider_client, editor):
    version = ModelVersionFactory()
    urls = [reverse("staff:model-activate", args=[version.pk]), reverse("staff:model-rollback", args=["popularity"])]
    for url in urls:
        assert outsider_client.post(url).status_code == 403
    client.logout()
    for url in urls:
        assert client.post(url).status_code == 302
    client.force_login(editor)  # staff, but the Editors group may not change model versions
    for url in urls:
        assert client.post(url).status_code == 403
    version.refresh_from_db()
    assert version.status == version.Status.CANDIDATE


def test_actions_take_post_only(superuser_client):
    version = ModelVersionFactory()
    assert superuser_client.get(reverse("staff:model-activate", args=[version.pk])).status_code == 405


def test_healthz_stays_public_and_minimal(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_admin_index_links_every_staff_page(editor_client):
    content = editor_client.get(reverse("admin:index")).content.decode()
    assert 'id="staff-pages"' in content
    for page in ["staff:preview", "staff:models", "staff:jobs", "staff:experiments", "staff:health"]:
        assert f'href="{reverse(page)}"' in content
