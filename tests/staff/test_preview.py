"""The homepage preview: profile search, the rows and reasons an app would draw, the why panel's data, and the
side-by-side page without rules or diversification."""

from __future__ import annotations

import json

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from catalog.models import SubscriptionTier, Title
from ranking.models import RuleChange
from ranking.rules_cache import rules_version_publish
from ranking.services import rule_change_record
from recommendations.serving.context import profile_head_load
from staff.preview import TitleInfo, rules_matching
from tests.factories.catalog import CountryFactory, GenreFactory, TitleFactory
from tests.factories.ranking import BoostFactory, SuppressionFactory, TierRuleFactory
from tests.factories.users import AccountFactory, ProfileFactory
from users.models import ViewingEvent

PREVIEW = reverse("staff:preview")


def _why(response) -> dict:
    content = response.content.decode()
    start = content.index('<script id="why-data" type="application/json">') + len(
        '<script id="why-data" type="application/json">'
    )
    return json.loads(content[start : content.index("</script>", start)])


def _active_profile_id() -> int:
    return ViewingEvent.objects.order_by("-profile_id").values_list("profile_id", flat=True)[0]


def test_search_finds_a_profile_by_id_or_by_name_in_any_case(editor_client):
    maya = [ProfileFactory(name="Maya", account=AccountFactory(), slot=1) for _ in range(3)]
    ProfileFactory(name="Ben")

    by_name = editor_client.get(PREVIEW, {"q": "mAyA"})
    by_id = editor_client.get(PREVIEW, {"q": str(maya[1].pk)})

    assert [h.id for h in by_name.context["search"].hits] == [p.pk for p in maya]
    assert [h.id for h in by_id.context["search"].hits] == [maya[1].pk]
    assert f"?profile={maya[0].pk}&amp;" in by_name.content.decode()


def test_search_pages_by_id_and_says_when_nothing_matches(editor_client, settings):
    from staff import selectors

    profiles = [ProfileFactory(name="Sami", account=AccountFactory()) for _ in range(5)]
    first = selectors.profiles_search(query="sami", limit=2)
    second = selectors.profiles_search(query="sami", after=first.next_after, limit=2)
    last = selectors.profiles_search(query="sami", after=second.next_after, limit=2)
    assert [h.id for h in first.hits + second.hits + last.hits] == [p.pk for p in profiles]
    assert last.next_after is None

    response = editor_client.get(PREVIEW, {"q": "nobody"})
    assert "No profile with id or name “nobody”" in response.content.decode()


def test_search_takes_the_same_queries_for_few_or_many_profiles(editor_client):
    ProfileFactory(name="Liam")
    with CaptureQueriesContext(connection) as few:
        editor_client.get(PREVIEW, {"q": "liam"})
    for _ in range(30):
        ProfileFactory(name="Liam", account=AccountFactory())
    with CaptureQueriesContext(connection) as many:
        editor_client.get(PREVIEW, {"q": "liam"})
    assert len(many) == len(few)


def test_an_unknown_profile_is_a_404_page_not_an_error(editor_client):
    response = editor_client.get(PREVIEW, {"profile": 10**12})
    assert response.status_code == 404
    assert "Profile 1000000000000 does not exist." in response.content.decode()


def test_the_preview_draws_rows_of_tiles_with_reasons_and_explains_every_tile(editor_client, serving_world):
    profile_id = _active_profile_id()

    with CaptureQueriesContext(connection) as queries:
        response = editor_client.get(PREVIEW, {"profile": profile_id, "device": 1, "hour": 21})

    assert response.status_code == 200
    preview = response.context["preview"]
    assert preview.compare is None
    rows = preview.page.rows
    assert [r.key for r in rows][:1] and any(r.key == "top_picks" for r in rows)
    tiles = [t for r in rows for t in r.tiles]
    assert tiles and all(t.reason and t.title for t in tiles)
    html = response.content.decode()
    for row in rows:
        assert f'data-row="{row.key}"' in html
    originals = set(
        Title.objects.filter(pk__in=[t.content_id for t in tiles], is_original=True).values_list("pk", flat=True)
    )
    assert {t.content_id for t in tiles if t.is_original} == originals
    assert html.count('class="badge-original"') == len([t for t in tiles if t.is_original])
    why = _why(response)
    assert set(why) == {str(t.content_id) for t in tiles}
    explained = why[str(tiles[0].content_id)]
    assert explained["explained"] and explained["sources"] and explained["ranker_score"] is not None
    assert explained["genres"] == list(
        Title.objects.get(pk=tiles[0].content_id).genres.order_by("id").values_list("name", flat=True)
    )
    assert len(queries) < 40  # the engine's reads plus a handful: nothing per tile


def test_an_originals_boost_shows_on_tiles_why_and_side_by_side_without_rules(editor_client, serving_world):
    profile_id = _active_profile_id()
    before = editor_client.get(PREVIEW, {"profile": profile_id}).context["preview"]
    assert not any(t.boosted for r in before.page.rows for t in r.tiles)

    boost = BoostFactory(name="Originals push", multiplier="50.00")
    rule_change_record(rule=boost, action=RuleChange.Action.CREATE, before=None, by_user=None)
    rules_version_publish()  # what the commit hook does (tests roll back instead of committing)
    response = editor_client.get(PREVIEW, {"profile": profile_id, "compare": "no_rules"})

    preview = response.context["preview"]
    served = [t for r in preview.page.rows for t in r.tiles]
    boosted = [t for t in served if t.boosted]
    assert boosted and all(t.is_original for t in boosted)
    assert preview.page.summary["top_originals"] > before.page.summary["top_originals"]
    why = _why(response)
    assert why[str(boosted[0].content_id)]["boosted"] is True
    assert any("Originals push" in rule and "applies" in rule for rule in why[str(boosted[0].content_id)]["rules"])
    # Side by side: the same profile without rules ranks the originals as the model does.
    assert preview.compare is not None and preview.compare.label == "Served without business rules"
    assert preview.compare.summary["top_originals"] < preview.page.summary["top_originals"]
    assert preview.page.summary["differs"] > 0
    html = response.content.decode()
    assert 'class="pages side-by-side"' in html and "only-here" in html


def test_rules_matching_names_boosts_tier_rules_suppressions_and_the_kids_cap(db):
    drama, comedy = GenreFactory(name="Drama"), GenreFactory(name="Comedy")
    title = TitleFactory(genres=[drama], is_original=True)
    account = AccountFactory(subscription_tier=SubscriptionTier.BASIC, country="FR")
    kids = ProfileFactory(account=account, is_kids=True, maturity_cap=7)
    info = TitleInfo(
        content_id=title.pk,
        name=title.name,
        is_original=True,
        maturity_rating=16,
        maturity_label="16+",
        genres=("Drama",),
        genre_ids=frozenset({drama.pk}),
    )
    BoostFactory(name="low", priority=0)
    BoostFactory(name="high", genre=drama, priority=5)
    BoostFactory(name="elsewhere", genre=drama, priority=9, countries=[CountryFactory(code="DE")])
    BoostFactory(name="comedy", genre=comedy)
    TierRuleFactory(genre=drama)
    SuppressionFactory(title=title, reason="Rights end in France", countries=[CountryFactory(code="FR")])
    SuppressionFactory(title=title, reason="Not in Germany", countries=[CountryFactory(code="DE")])

    head = profile_head_load(profile_id=kids.pk)
    notes = rules_matching(titles={title.pk: info}, head=head, country="FR", now=timezone.now())[title.pk]

    assert any("“high”" in n and "applies" in n for n in notes)
    assert any("“low”" in n and "outranked" in n for n in notes)
    assert not any("comedy" in n or "elsewhere" in n for n in notes)
    assert any(n.startswith("Tier rule on genre Drama") and "hidden from Basic" in n for n in notes)
    assert "Suppressed: Rights end in France" in notes and "Suppressed: Not in Germany" not in notes
    assert any("kids maturity cap" in n for n in notes)


def test_side_by_side_without_diversification_ranks_by_relevance_alone(editor_client, serving_world):
    response = editor_client.get(PREVIEW, {"profile": _active_profile_id(), "compare": "no_diversify"})
    assert response.status_code == 200
    content = response.content.decode()
    assert content.count('class="page"') == 2
    assert 'aria-pressed="true" data-compare="no_diversify"' in content
    assert response.context["preview"].compare.label == "Served without diversification"
