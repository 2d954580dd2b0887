"""The staff preview of a kids profile shows what the kids profile gets: nothing above its cap, even to an operator
who may see its history, and even when that history holds 18+ titles (issue #14)."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from catalog.models import MaturityRating, Title
from recommendations.content_safety import NameIndex, response_leaks
from recommendations.serving.catalog_cache import catalog_cache
from recommendations.serving.engine import RankedItem, Recommendations, Row
from tests.factories.auth import UserFactory
from tests.factories.users import ViewingEventFactory
from users.models import Profile, ViewingEvent


def _as_response(page) -> Recommendations:
    """A preview page as the engine's response type, for the checker."""
    rows = [
        Row(
            row.key,
            row.title,
            tuple(RankedItem(t.rank, t.content_id, t.title, t.score, t.reason, t.sources) for t in row.tiles),
        )
        for row in page.rows
    ]
    return Recommendations("preview", 0, [], rows, {}, "")


def test_an_operator_previewing_a_kids_profile_with_18_plus_plays_sees_nothing_above_its_cap(serving_world):
    kids = Profile.objects.filter(is_kids=True, viewing_events__isnull=False).order_by("id").first()
    now = timezone.now()
    for hours, title in enumerate(Title.objects.filter(maturity_rating=MaturityRating.AGE_18).order_by("id")[:6], 1):
        ViewingEventFactory(profile=kids, title=title, watch_percentage=1.0, started_at=now - dt.timedelta(hours=hours))
    operator = UserFactory(is_staff=True)
    operator.groups.add(Group.objects.get(name="Operators"))
    client = Client()
    client.force_login(operator)

    response = client.get(reverse("staff:preview"), {"profile": kids.pk, "compare": "no_rules"})

    preview = response.context["preview"]
    names = NameIndex(catalog_cache.current())
    watched = list(ViewingEvent.objects.filter(profile=kids).values_list("title_id", flat=True))
    for page in (preview.page, preview.compare):
        assert page.rows
        assert (
            response_leaks(_as_response(page), maturity_cap=MaturityRating.AGE_7, names=names, watched_ids=watched)
            == []
        )
    assert not any(
        "kids maturity cap" in note for info in response.context["preview"].why.values() for note in info["rules"]
    )
