"""The catalog admin: pages open, search and filters return the right titles, editors can curate."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from catalog.models import ALL_TIERS_MASK, Credit, MaturityRating, SubscriptionTier, Title
from tests.admin_helpers import admin_url, changelist_queries, listed
from tests.factories.catalog import (
    CountryFactory,
    CreditFactory,
    GenreFactory,
    PersonFactory,
    TitleFactory,
)

pytestmark = pytest.mark.django_db

BASIC, STANDARD, PREMIUM = (SubscriptionTier.bit(tier) for tier in SubscriptionTier.values)
editors_migration = importlib.import_module("catalog.migrations.0002_editors_group")
ranking_editors_migration = importlib.import_module("ranking.migrations.0002_editors_permissions_and_kids_policy")
diversity_migration = importlib.import_module("ranking.migrations.0003_diversity_policy")


def title_form_data(title: Title, **overrides: Any) -> dict[str, Any]:
    """A complete POST for the title change page, with an empty credits inline."""
    data = {
        "name": title.name,
        "kind": title.kind,
        "synopsis": title.synopsis,
        "genres": [genre.pk for genre in title.genres.all()],
        "release_date": title.release_date.isoformat(),
        "date_added": title.date_added.isoformat(),
        "duration_minutes": title.duration_minutes,
        "episode_count": title.episode_count,
        "available_tiers": title.tiers,
        "available_countries": [country.pk for country in title.available_countries.all()],
        "maturity_rating": title.maturity_rating,
        "credits-TOTAL_FORMS": 0,
        "credits-INITIAL_FORMS": 0,
        "credits-MIN_NUM_FORMS": 0,
        "credits-MAX_NUM_FORMS": 1000,
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    "factory", [CountryFactory, GenreFactory, PersonFactory, TitleFactory, CreditFactory], ids=lambda f: f.__name__
)
def test_superuser_can_open_every_catalog_page(admin_client, factory):
    obj = factory()
    model = type(obj)
    for url in (admin_url(model, "changelist"), admin_url(model, "add"), admin_url(model, "change", obj.pk)):
        assert admin_client.get(url).status_code == 200, url


def test_title_search_matches_name_and_exact_external_id(admin_client):
    heat = TitleFactory(name="Heat", external_id="ml100k:1")
    other = TitleFactory(name="Alien", external_id="ml100k:12")

    assert listed(admin_client, Title, q="hea") == {heat.pk}
    assert listed(admin_client, Title, q="ml100k:12") == {other.pk}
    assert listed(admin_client, Title, q="ml100k") == set()


def test_person_search_matches_name(admin_client):
    person = PersonFactory(name="Ingrid Bergman")
    PersonFactory(name="Humphrey Bogart")

    assert listed(admin_client, type(person), q="bergman") == {person.pk}


def test_credit_search_matches_title_name(admin_client):
    credit = CreditFactory(title=TitleFactory(name="Casablanca"))
    CreditFactory(title=TitleFactory(name="Notorious"))

    assert listed(admin_client, Credit, q="casa") == {credit.pk}


def test_tier_filter_returns_only_titles_whose_mask_includes_the_tier(admin_client):
    masks = [BASIC, STANDARD, PREMIUM, BASIC | PREMIUM, ALL_TIERS_MASK]
    titles = {mask: TitleFactory(available_tiers=mask).pk for mask in masks}

    assert listed(admin_client, Title, tier=SubscriptionTier.BASIC) == {
        titles[BASIC],
        titles[BASIC | PREMIUM],
        titles[ALL_TIERS_MASK],
    }
    assert listed(admin_client, Title, tier=SubscriptionTier.STANDARD) == {titles[STANDARD], titles[ALL_TIERS_MASK]}
    assert listed(admin_client, Title, tier=SubscriptionTier.PREMIUM) == {
        titles[PREMIUM],
        titles[BASIC | PREMIUM],
        titles[ALL_TIERS_MASK],
    }


def test_unknown_tier_filter_value_is_reported_not_crashing(admin_client):
    response = admin_client.get(admin_url(Title, "changelist"), {"tier": "gold"})

    assert response.status_code == 302
    assert response.url.endswith("?e=1")


def test_country_filter_includes_worldwide_titles(admin_client):
    us, gb = CountryFactory(code="US"), CountryFactory(code="GB")
    us_only, gb_only, both, worldwide = TitleFactory(), TitleFactory(), TitleFactory(), TitleFactory()
    us_only.available_countries.set([us])
    gb_only.available_countries.set([gb])
    both.available_countries.set([us, gb])

    assert listed(admin_client, Title, country="US") == {us_only.pk, both.pk, worldwide.pk}
    assert listed(admin_client, Title, country="GB") == {gb_only.pk, both.pk, worldwide.pk}


def test_genre_filter_returns_titles_of_that_genre_once(admin_client):
    drama, comedy = GenreFactory(name="Drama"), GenreFactory(name="Comedy")
    dramedy = TitleFactory(genres=[drama, comedy])
    pure_drama = TitleFactory(genres=[drama])
    TitleFactory(genres=[comedy])

    response = admin_client.get(admin_url(Title, "changelist"), {"genres__id__exact": drama.pk})

    assert sorted(row.pk for row in response.context["cl"].result_list) == sorted([dramedy.pk, pure_drama.pk])


def test_original_kind_and_maturity_filters_return_matching_titles(admin_client):
    original = TitleFactory(is_original=True)
    series = TitleFactory(kind=Title.Kind.SERIES, episode_count=8)
    adult = TitleFactory(maturity_rating=MaturityRating.AGE_18)

    assert listed(admin_client, Title, is_original__exact=1) == {original.pk}
    assert listed(admin_client, Title, kind__exact=Title.Kind.SERIES) == {series.pk}
    assert listed(admin_client, Title, maturity_rating__exact=MaturityRating.AGE_18) == {adult.pk}


@pytest.mark.parametrize("model", [Title, Credit])
def test_changelist_queries_do_not_grow_with_rows(admin_client, model):
    CreditFactory.create_batch(2)
    few = changelist_queries(admin_client, model)
    CreditFactory.create_batch(10)

    assert changelist_queries(admin_client, model) == few


def test_title_change_form_checks_the_current_tiers(admin_client):
    title = TitleFactory(available_tiers=BASIC | PREMIUM)

    response = admin_client.get(admin_url(Title, "change", title.pk))

    assert response.context["adminform"].form["available_tiers"].value() == [
        SubscriptionTier.BASIC,
        SubscriptionTier.PREMIUM,
    ]


def test_editor_can_change_title_tiers_and_credits_through_the_admin(editor_client, genre):
    title = TitleFactory(genres=[genre], available_tiers=ALL_TIERS_MASK)
    person = PersonFactory()
    data = title_form_data(
        title,
        name="Renamed",
        external_id="edited-by-hand",
        available_tiers=[SubscriptionTier.BASIC, SubscriptionTier.PREMIUM],
        **{
            "credits-TOTAL_FORMS": 1,
            "credits-0-person": person.pk,
            "credits-0-role": Credit.Role.DIRECTOR,
            "credits-0-billing_order": 0,
        },
    )

    response = editor_client.post(admin_url(Title, "change", title.pk), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    title.refresh_from_db()
    assert title.name == "Renamed"
    assert title.external_id != "edited-by-hand"
    assert title.available_tiers == BASIC | PREMIUM
    assert list(title.credits.values_list("person", "role")) == [(person.pk, Credit.Role.DIRECTOR)]


def test_title_form_requires_at_least_one_tier(editor_client):
    title = TitleFactory(available_tiers=STANDARD)

    response = editor_client.post(admin_url(Title, "change", title.pk), title_form_data(title, available_tiers=[]))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["available_tiers"] == ["Pick at least one tier."]
    title.refresh_from_db()
    assert title.available_tiers == STANDARD


def test_editor_cannot_delete_titles(editor_client, title):
    assert editor_client.get(admin_url(Title, "delete", title.pk)).status_code == 403


def test_editors_group_grants_exactly_the_listed_permissions():
    group = Group.objects.get(name=editors_migration.EDITORS_GROUP)

    rows = group.permissions.values_list("content_type__app_label", "codename")
    granted = {f"{app_label}.{codename}" for app_label, codename in rows}

    assert granted == (
        set(editors_migration.EDITOR_PERMISSIONS)
        | set(ranking_editors_migration.EDITOR_PERMISSIONS)
        | set(diversity_migration.EDITOR_PERMISSIONS)
    )
    catalog_grants = {name for name in granted if not name.startswith("ranking.")}  # editors delete rules, not titles
    assert not any(name.startswith("users.") or name.split(".")[1].startswith("delete_") for name in catalog_grants)


def test_editors_group_migration_is_idempotent_and_reversible():
    state_apps = MigrationExecutor(connection).loader.project_state(("catalog", "0002_editors_group")).apps
    schema_editor = SimpleNamespace(connection=connection)

    editors_migration.grant_editor_permissions(state_apps, schema_editor)
    editors_migration.grant_editor_permissions(state_apps, schema_editor)
    group = Group.objects.get(name=editors_migration.EDITORS_GROUP)
    assert group.permissions.exclude(content_type__app_label="ranking").count() == len(
        editors_migration.EDITOR_PERMISSIONS
    )

    editors_migration.delete_editors_group(state_apps, schema_editor)
    assert not Group.objects.filter(name=editors_migration.EDITORS_GROUP).exists()


def test_non_staff_user_is_redirected_to_login(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("viewer", password="x"))
    url = admin_url(Title, "changelist")

    response = client.get(url)

    assert response.status_code == 302
    assert response.url == f"{reverse('admin:login')}?next={url}"
