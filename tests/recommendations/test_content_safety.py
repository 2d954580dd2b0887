"""No part of a capped profile's response names a title above its cap (issue #14, "Roles and content safety").

A history can hold titles above the cap (a rating raised after the viewing, a play reported through /api/events):
they must seed neither "similar to watched" nor a "Because you watched X" reason or row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import MaturityRating, Title
from features.services import content_features_refresh
from features.store import FeatureStore
from recommendations.content_safety import Leak, NameIndex, response_leaks
from recommendations.serving.catalog_cache import catalog_cache, catalog_version_bump
from recommendations.serving.context import UserContext
from recommendations.serving.engine import RankedItem, RecommendationEngine, Recommendations, Row
from tests.conftest import SERVING_NOW
from tests.factories.users import AccountFactory, ProfileFactory, ViewingEventFactory
from users.models import Profile, ViewingEvent

ABOVE_CAP_PLAYS = 6  # newest, fully watched: the strongest seeds the history has


@pytest.fixture
def engine(serving_world):
    store = FeatureStore(namespace=f"fs-test-{uuid.uuid4().hex[:12]}")
    content_features_refresh(as_of=SERVING_NOW, store=store)
    return RecommendationEngine(store=store)


def _watch_above_cap(profile: Profile, cap: int, count: int = ABOVE_CAP_PLAYS) -> list[int]:
    """Recent full plays of titles above the cap, as /api/events would store them; their ids."""
    titles = list(Title.objects.filter(maturity_rating__gt=cap).order_by("?")[:count])
    now = timezone.now()
    for hours, title in enumerate(titles, start=1):
        ViewingEventFactory(
            profile=profile, title=title, watch_percentage=1.0, started_at=now - dt.timedelta(hours=hours)
        )
    return [t.pk for t in titles]


def _watched(profile_id: int) -> list[int]:
    return list(ViewingEvent.objects.filter(profile_id=profile_id).values_list("title_id", flat=True))


def test_kids_profiles_with_18_plus_titles_in_their_history_are_never_told_about_them(engine):
    kids = list(Profile.objects.filter(is_kids=True, viewing_events__isnull=False).distinct().order_by("id")[:5])
    assert len(kids) == 5
    for profile in kids:
        _watch_above_cap(profile, MaturityRating.AGE_7)
    names = NameIndex(catalog_cache.current())

    because_rows = 0
    for profile in kids:
        result = engine.recommend(context=UserContext(profile_id=profile.pk), n=20)
        assert result.items and result.rows
        because_rows += sum(row.key.startswith("because_you_watched:") for row in result.rows)
        assert (
            response_leaks(result, maturity_cap=MaturityRating.AGE_7, names=names, watched_ids=_watched(profile.pk))
            == []
        )
    assert because_rows > 0  # the within-cap history still explains recommendations


def test_a_capped_adult_profile_is_filtered_like_a_kids_one(engine):
    account = AccountFactory()
    teen = ProfileFactory(account=account, slot=2, maturity_cap=MaturityRating.AGE_13)
    for title in Title.objects.filter(maturity_rating__lte=MaturityRating.AGE_13).order_by("id")[:15]:
        ViewingEventFactory(profile=teen, title=title, watch_percentage=1.0)
    _watch_above_cap(teen, MaturityRating.AGE_13)

    result = engine.recommend(context=UserContext(profile_id=teen.pk), n=30)
    assert (
        response_leaks(
            result,
            maturity_cap=MaturityRating.AGE_13,
            names=NameIndex(catalog_cache.current()),
            watched_ids=_watched(teen.pk),
        )
        == []
    )


def test_a_rating_raised_after_the_viewing_stops_naming_the_title(engine, settings):
    """The response cache must not keep serving a reason that names it."""
    settings.RECO_RESPONSE_CACHE_SECONDS = 600
    kids = Profile.objects.filter(is_kids=True, viewing_events__isnull=False).order_by("id").first()
    first = engine.recommend(context=UserContext(profile_id=kids.pk), n=20)
    named = [row for row in first.rows if row.key.startswith("because_you_watched:")]
    assert named, "the kids profile needs a 'Because You Watched' row for this test"
    anchor = catalog_cache.current().content_ids[int(named[0].key.split(":")[1])]
    Title.objects.filter(pk=anchor).update(maturity_rating=MaturityRating.AGE_18)
    catalog_version_bump()  # what a title's save does

    again = engine.recommend(context=UserContext(profile_id=kids.pk), n=20)
    assert not again.cached
    leaks = response_leaks(
        again,
        maturity_cap=MaturityRating.AGE_7,
        names=NameIndex(catalog_cache.current()),
        watched_ids=_watched(kids.pk),
    )
    assert leaks == []
    assert all(row.key != named[0].key for row in again.rows)


# --- the checker itself: it must see every kind of leak ---------------------------------------------------
def _response(items=(), rows=()) -> Recommendations:
    return Recommendations("r", 1, list(items), list(rows), {}, "")


def test_the_checker_finds_titles_above_the_cap_in_items_rows_keys_reasons_and_row_titles(serving_world):
    catalog = catalog_cache.current()
    names = NameIndex(catalog)
    unique_names = {
        n for n, count in zip(*np.unique(catalog.names.astype(str), return_counts=True), strict=True) if count == 1
    }
    adult = next(
        r for r in np.flatnonzero(catalog.maturity == MaturityRating.AGE_18) if catalog.names[r] in unique_names
    )
    child = int(np.flatnonzero(catalog.maturity <= MaturityRating.AGE_7)[0])
    adult_id, adult_name = int(catalog.content_ids[adult]), str(catalog.names[adult])
    child_id, child_name = int(catalog.content_ids[child]), str(catalog.names[child])
    safe = RankedItem(1, child_id, child_name, 1.0, "Trending now", ("trending",))
    assert (
        response_leaks(_response([safe], [Row("top_picks", "Top Picks for You", (safe,))]), maturity_cap=7, names=names)
        == []
    )

    shown = RankedItem(1, adult_id, adult_name, 1.0, "Top pick for you", ("collaborative",))
    reason = RankedItem(2, child_id, child_name, 1.0, f"Because you watched {adult_name}", ("similar_to_watched",))
    free_text = RankedItem(3, child_id, child_name, 1.0, f"Fans of {adult_name} loved it", ("collaborative",))
    row = Row(f"because_you_watched:{adult}", f"Because You Watched {adult_name}", (reason, shown))
    leaks = response_leaks(_response([shown, reason, free_text], [row]), maturity_cap=7, names=names)
    assert {leak.where for leak in leaks} == {"item", "reason", "row_item", "row_key", "row_title"}
    assert all(isinstance(leak, Leak) and leak.content_id == adult_id for leak in leaks if leak.where != "reason")
    reasons = [leak.text for leak in leaks if leak.where == "reason"]
    assert reasons.count(reason.reason) == 2 and free_text.reason in reasons  # the item's, the row item's, free text


def test_a_name_shared_with_a_watched_title_within_the_cap_is_not_a_leak(serving_world):
    catalog = catalog_cache.current()
    adult = int(np.flatnonzero(catalog.maturity == MaturityRating.AGE_18)[0])
    child = int(np.flatnonzero(catalog.maturity <= MaturityRating.AGE_7)[0])
    shared = str(catalog.names[adult])
    renamed = catalog.names.copy()
    renamed[child] = shared  # a second title of that name, within the cap
    names = NameIndex(dataclasses.replace(catalog, names=renamed))
    item = RankedItem(1, int(catalog.content_ids[child]), shared, 1.0, f"Because you watched {shared}", ())
    response = _response([item])

    assert response_leaks(response, maturity_cap=7, names=names, watched_ids=[int(catalog.content_ids[child])]) == []
    assert len(response_leaks(response, maturity_cap=7, names=names, watched_ids=[])) == 1  # it can only be the 18+
    assert response_leaks(response, maturity_cap=7, names=names) == []  # history unknown: given the benefit


def test_postprocess_never_shows_an_anchor_the_engine_did_not_name():
    """Plain Python: an anchor missing from because_names gives neither a reason nor a row (ranking.ml)."""
    from ranking.ml import postprocess

    n = 8
    similar = np.ones(n, bool)
    page = postprocess.PageInput(
        ordered=np.arange(n),
        in_progress=np.zeros(n, bool),
        new_release=np.zeros(n, bool),
        trending=np.zeros(n, bool),
        similar=similar,
        because_rows=np.array([100] * 4 + [200] * 4),
        because_names={200: "Safe Title"},
        genre_slot=np.full(n, -1),
        genre_names=(),
    )
    rows = postprocess.build_rows(page, top_picks=0)
    assert [row.title for row in rows] == ["Because You Watched Safe Title"]
    assert rows[0].positions == (4, 5, 6, 7)
    reasons = postprocess.reasons(page, np.arange(n))
    assert reasons[:4] == [postprocess.REASON_TOP_PICK] * 4 and reasons[4:] == ["Because you watched Safe Title"] * 4
