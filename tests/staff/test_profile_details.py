"""Editors preview homepages without seeing viewing history or account details; operators and admins see them
(users.view_profile_details, users migration 0003; issue #14)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.models import MaturityRating, Title
from staff.preview import HIDDEN_ROW_TITLE
from tests.factories.auth import UserFactory
from tests.factories.users import AccountFactory, ProfileFactory, ViewingEventFactory
from users.models import Profile, ViewingEvent

PREVIEW = reverse("staff:preview")
IN_PROGRESS = 4  # titles the profile stopped half-way through: its Continue Watching row
# Screens and hours the previews ask for: none tilted (the web at 03:00), a TV's evening (4K and films ranked up)
# and a phone's morning (series up). Whatever the tilt does to the ranking, every title in progress stays on the page.
CONTEXTS = pytest.mark.parametrize(
    "context", [{"hour": 3, "device": 4}, {"hour": 21, "device": 1}, {"hour": 8, "device": 2}]
)


@pytest.fixture
def operator_client(db):
    """Staff in the Operators group that users migration 0003 creates (a client of its own)."""
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Operators"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def watcher(serving_world) -> Profile:
    """A profile with a long within-cap history, some of it in progress (it shows on its homepage)."""
    profile = ProfileFactory(account=AccountFactory(country="FR"), slot=1, name="Watcher")
    now = timezone.now()
    titles = Title.objects.filter(maturity_rating__lte=MaturityRating.AGE_13).order_by("id")[:30]
    for hours, title in enumerate(titles, start=1):
        ViewingEventFactory(
            profile=profile,
            title=title,
            watch_percentage=0.5 if hours <= IN_PROGRESS else 1.0,
            started_at=now - dt.timedelta(hours=hours),
        )
    return profile


def _history(profile: Profile) -> tuple[set[int], set[str]]:
    ids = set(ViewingEvent.objects.filter(profile=profile).values_list("title_id", flat=True))
    return ids, set(Title.objects.filter(pk__in=ids).values_list("name", flat=True))


def _why(response) -> dict:
    content = response.content.decode()
    marker = '<script id="why-data" type="application/json">'
    start = content.index(marker) + len(marker)
    return json.loads(content[start : content.index("</script>", start)])


def _shown_ids(response) -> set[int]:
    preview = response.context["preview"]
    pages = [preview.page] + ([preview.compare] if preview.compare else [])
    return {tile.content_id for page in pages for row in page.rows for tile in row.tiles}


@CONTEXTS
def test_an_editor_sees_no_viewing_history_and_no_account_details(editor_client, watcher, context):
    history_ids, history_names = _history(watcher)

    response = editor_client.get(PREVIEW, {"profile": watcher.pk, "compare": "no_rules", **context})

    assert response.status_code == 200
    preview = response.context["preview"]
    shown = _shown_ids(response)
    assert shown and not shown & history_ids  # 0 history items, on either page
    assert not {int(i) for i in _why(response)} & history_ids
    rows = preview.page.rows
    assert any(row.hidden for row in rows)  # the Continue Watching row is there, its titles are not
    if context["device"] == 4:  # untilted: a "Because You Watched" row too, unnamed (a tilt may rank its titles out)
        assert any(row.title == HIDDEN_ROW_TITLE for row in rows)
    texts = [row.title for row in rows] + [tile.reason for row in rows for tile in row.tiles]
    assert not [text for text in texts for name in history_names if name in text]
    assert all(":" not in row.key or row.key.split(":")[1] in "123" for row in rows if row.key.startswith("because"))
    assert set(preview.profile) == {"id", "name", "is_kids", "maturity_cap"}
    html = response.content.decode()
    assert f"account {watcher.account_id}" not in html and "home country" not in html
    assert preview.context["country"] is None and "Seen from <strong>the account's country</strong>" in html
    assert "Titles from the viewing history are hidden here." in html


@CONTEXTS
def test_an_operator_and_an_admin_see_the_history_and_the_account(operator_client, watcher, context):
    history_ids, history_names = _history(watcher)
    admin = Client()
    admin.force_login(UserFactory(is_staff=True, is_superuser=True))
    for viewer in (operator_client, admin):
        response = viewer.get(PREVIEW, {"profile": watcher.pk, **context})
        preview = response.context["preview"]
        [resume] = [row for row in preview.page.rows if row.key == "continue_watching"]
        assert len(resume.tiles) == IN_PROGRESS and {tile.content_id for tile in resume.tiles} <= history_ids
        assert not any(row.hidden for row in preview.page.rows)
        named = [row.title for row in preview.page.rows if row.key.startswith("because_you_watched:")]
        assert named or context["device"] != 4  # untilted, a "Because You Watched" row is there
        assert all(title.removeprefix("Because You Watched ") in history_names for title in named)
        assert preview.profile["account_id"] == watcher.account_id and preview.profile["country"] == "FR"
        assert f"account {watcher.account_id}" in response.content.decode()


def test_profile_search_shows_account_details_only_with_the_permission(editor_client, operator_client, db):
    profile = ProfileFactory(name="Noor", account=AccountFactory(country="JP"))
    editor = editor_client.get(PREVIEW, {"q": "noor"})
    [hit] = editor.context["search"].hits
    assert (hit.id, hit.account_id, hit.country, hit.tier) == (profile.pk, None, None, None)
    assert "<th>Account</th>" not in editor.content.decode()

    operator = operator_client.get(PREVIEW, {"q": "noor"})
    [hit] = operator.context["search"].hits
    assert (hit.account_id, hit.country) == (profile.account_id, "JP")
    assert "<th>Account</th>" in operator.content.decode()


def test_editors_lack_the_permission_operators_hold(editor, db):
    operator = UserFactory(is_staff=True)
    operator.groups.add(Group.objects.get(name="Operators"))
    assert not editor.has_perm("users.view_profile_details")
    assert operator.has_perm("users.view_profile_details")
    assert UserFactory(is_staff=True, is_superuser=True).has_perm("users.view_profile_details")
