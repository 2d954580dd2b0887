"""The rules admin: editors create, change and delete rules; every change is audited; bad input is a form error."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache

from catalog.models import SubscriptionTier
from ranking.models import Boost, KidsPolicy, RuleChange, Suppression, TargetKind, TierRule
from ranking.rules_cache import RULES_VERSION_KEY
from tests.admin_helpers import admin_url, changelist_queries
from tests.factories.catalog import CountryFactory, GenreFactory, TitleFactory
from tests.factories.ranking import BoostFactory, RuleChangeFactory, SuppressionFactory, TierRuleFactory

pytestmark = pytest.mark.django_db


def boost_form(**overrides: Any) -> dict[str, Any]:
    """A complete POST for the boost add/change page: a ×1.5 boost of all originals, always, everywhere."""
    data = {
        "name": "Originals push",
        "is_active": "on",
        "target_kind": TargetKind.ORIGINALS,
        "genre": "",
        "title": "",
        "multiplier": "1.5",
        "priority": "0",
        "countries": [],
        "starts_at_0": "",
        "starts_at_1": "",
        "ends_at_0": "",
        "ends_at_1": "",
    }
    data.update(overrides)
    return data


def test_editor_creates_a_boost_and_the_change_is_recorded(editor_client, editor, django_capture_on_commit_callbacks):
    us, gb = CountryFactory(code="US"), CountryFactory(code="GB")
    drama = GenreFactory(name="Drama")

    with django_capture_on_commit_callbacks(execute=True):
        response = editor_client.post(
            admin_url(Boost, "add"),
            boost_form(
                name="Drama week",
                target_kind=TargetKind.GENRE,
                genre=drama.pk,
                multiplier="2",
                countries=[us.pk, gb.pk],
            ),
        )

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    boost = Boost.objects.get()
    assert (boost.genre, boost.multiplier, {c.code for c in boost.countries.all()}) == (drama, 2, {"US", "GB"})
    change = RuleChange.objects.get()
    assert (change.user, change.username, change.action) == (editor, editor.username, RuleChange.Action.CREATE)
    assert (change.rule_model, change.object_id) == (RuleChange.RuleModel.BOOST, boost.pk)
    assert change.changes["multiplier"] == {"before": None, "after": "2.00"}
    assert change.changes["countries"] == {"before": None, "after": ["GB", "US"]}
    assert change.changes["genre"]["after"] == f"Drama (id {drama.pk})"
    assert cache.get(RULES_VERSION_KEY) == str(change.pk)


def test_staff_outside_the_editors_group_cannot_create_a_boost(staff_client):
    assert staff_client.get(admin_url(Boost, "add")).status_code == 403
    assert staff_client.post(admin_url(Boost, "add"), boost_form()).status_code == 403

    assert not Boost.objects.exists()
    assert not RuleChange.objects.exists()


def test_editor_change_records_only_what_changed(editor_client, django_capture_on_commit_callbacks):
    us, br = CountryFactory(code="US"), CountryFactory(code="BR")
    boost = BoostFactory(name="Originals", multiplier=Decimal("1.50"), countries=[us])

    with django_capture_on_commit_callbacks(execute=True):
        response = editor_client.post(
            admin_url(Boost, "change", boost.pk), boost_form(name="Originals", multiplier="3", countries=[us.pk, br.pk])
        )

    assert response.status_code == 302
    change = RuleChange.objects.get()
    assert change.action == RuleChange.Action.UPDATE
    assert change.changes == {
        "multiplier": {"before": "1.50", "after": "3.00"},
        "countries": {"before": ["US"], "after": ["BR", "US"]},
    }
    assert cache.get(RULES_VERSION_KEY) == str(change.pk)


def test_saving_without_changes_records_nothing(editor_client):
    boost = BoostFactory(name="Originals", multiplier=Decimal("1.50"))

    editor_client.post(admin_url(Boost, "change", boost.pk), boost_form(name="Originals", multiplier="1.50"))

    assert not RuleChange.objects.exists()


def test_editor_deletes_a_boost_and_the_deletion_is_recorded(editor_client, editor, django_capture_on_commit_callbacks):
    boost = BoostFactory(name="Old push")

    with django_capture_on_commit_callbacks(execute=True):
        response = editor_client.post(admin_url(Boost, "delete", boost.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Boost.objects.exists()
    change = RuleChange.objects.get()
    assert (change.action, change.object_id, change.user) == (RuleChange.Action.DELETE, boost.pk, editor)
    assert change.changes["name"] == {"before": "Old push", "after": None}
    assert cache.get(RULES_VERSION_KEY) == str(change.pk)


def test_bulk_delete_records_each_rule(editor_client):
    suppressions = SuppressionFactory.create_batch(3)

    response = editor_client.post(
        admin_url(Suppression, "changelist"),
        {"action": "delete_selected", "_selected_action": [s.pk for s in suppressions], "post": "yes"},
    )

    assert response.status_code == 302
    assert not Suppression.objects.exists()
    assert sorted(RuleChange.objects.values_list("object_id", flat=True)) == sorted(s.pk for s in suppressions)
    assert set(RuleChange.objects.values_list("action", flat=True)) == {RuleChange.Action.DELETE}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"multiplier": "0"}, "multiplier"),
        ({"multiplier": "-1.5"}, "multiplier"),
        ({"multiplier": "abc"}, "multiplier"),
        (
            {"starts_at_0": "2026-06-01", "starts_at_1": "00:00", "ends_at_0": "2026-05-01", "ends_at_1": "00:00"},
            "ends_at",
        ),
        (
            {"starts_at_0": "2026-06-01", "starts_at_1": "00:00", "ends_at_0": "2026-06-01", "ends_at_1": "00:00"},
            "ends_at",
        ),
        ({"target_kind": TargetKind.GENRE}, "genre"),
        ({"target_kind": TargetKind.TITLE}, "title"),
    ],
    ids=["zero", "negative", "not-a-number", "end-before-start", "empty-window", "genre-missing", "title-missing"],
)
def test_invalid_boost_is_a_form_error_not_a_crash(editor_client, overrides, field):
    response = editor_client.post(admin_url(Boost, "add"), boost_form(**overrides))

    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not Boost.objects.exists()
    assert not RuleChange.objects.exists()


def test_target_of_another_kind_must_stay_empty(editor_client):
    genre = GenreFactory()

    response = editor_client.post(admin_url(Boost, "add"), boost_form(target_kind=TargetKind.ORIGINALS, genre=genre.pk))

    assert response.status_code == 200
    assert "genre" in response.context["adminform"].form.errors


def test_suppression_with_end_before_start_is_a_form_error(editor_client):
    title = TitleFactory()
    response = editor_client.post(
        admin_url(Suppression, "add"),
        {
            "title": title.pk,
            "reason": "Rights",
            "countries": [],
            "is_active": "on",
            "starts_at_0": "2026-06-01",
            "starts_at_1": "00:00",
            "ends_at_0": "2026-01-01",
            "ends_at_1": "00:00",
        },
    )

    assert response.status_code == 200
    assert "ends_at" in response.context["adminform"].form.errors


def test_editor_creates_a_premium_only_genre_rule_with_tier_checkboxes(editor_client):
    horror = GenreFactory(name="Horror")

    response = editor_client.post(
        admin_url(TierRule, "add"),
        {
            "target_kind": TargetKind.GENRE,
            "genre": horror.pk,
            "title": "",
            "allowed_tiers": [SubscriptionTier.PREMIUM],
            "note": "Licence",
            "is_active": "on",
        },
    )

    assert response.status_code == 302
    rule = TierRule.objects.get()
    assert rule.allowed_tiers == SubscriptionTier.bit(SubscriptionTier.PREMIUM)
    assert RuleChange.objects.get().changes["allowed_tiers"] == {"before": None, "after": ["Premium"]}


def test_tier_rule_needs_a_tier(editor_client):
    response = editor_client.post(
        admin_url(TierRule, "add"), {"target_kind": TargetKind.ORIGINALS, "genre": "", "title": "", "note": ""}
    )

    assert response.status_code == 200
    assert "allowed_tiers" in response.context["adminform"].form.errors


def test_editor_changes_the_kids_policy_but_cannot_add_or_delete_it(editor_client):
    policy = KidsPolicy.objects.get()  # created by migration 0002

    response = editor_client.post(admin_url(KidsPolicy, "change", policy.pk), {"maturity_cap": 0})

    assert response.status_code == 302
    assert KidsPolicy.objects.get().maturity_cap == 0
    assert RuleChange.objects.get().changes == {"maturity_cap": {"before": 7, "after": 0}}
    assert editor_client.get(admin_url(KidsPolicy, "add")).status_code == 403
    assert editor_client.get(admin_url(KidsPolicy, "delete", policy.pk)).status_code == 403


def test_rule_changes_are_read_only_for_editors(editor_client):
    change = RuleChangeFactory(
        changes={
            "multiplier": {"before": "1.50", "after": "3.00"},
            "starts_at": {"before": None, "after": "2026-12-01T00:00:00+00:00"},
            "is_active": {"before": True, "after": False},
        }
    )

    assert editor_client.get(admin_url(RuleChange, "changelist")).status_code == 200
    page = editor_client.get(admin_url(RuleChange, "change", change.pk))
    assert page.status_code == 200
    assert b"<td>Multiplier</td><td>1.50</td><td>3.00</td>" in page.content  # the form's labels, not field names
    assert b"<td>Starts at</td><td>\xe2\x80\x94</td><td>2026-12-01 00:00 UTC</td>" in page.content
    assert b"starts_at" not in page.content
    assert b"<td>Active</td><td>yes</td><td>no</td>" in page.content
    assert editor_client.post(admin_url(RuleChange, "change", change.pk), {}).status_code == 403
    assert editor_client.get(admin_url(RuleChange, "add")).status_code == 403
    assert editor_client.get(admin_url(RuleChange, "delete", change.pk)).status_code == 403


@pytest.mark.parametrize(
    "factory", [BoostFactory, TierRuleFactory, SuppressionFactory, RuleChangeFactory], ids=lambda f: f.__name__
)
def test_editor_can_open_every_rules_page(editor_client, factory):
    obj = factory()
    model = type(obj)
    assert editor_client.get(admin_url(model, "changelist")).status_code == 200
    assert editor_client.get(admin_url(model, "change", obj.pk)).status_code == 200
    if model is not RuleChange:
        assert editor_client.get(admin_url(model, "add")).status_code == 200


def test_autocomplete_finds_titles_for_a_boost(editor_client):
    title = TitleFactory(name="Casablanca")
    TitleFactory(name="Notorious")

    response = editor_client.get(
        "/admin/autocomplete/", {"term": "casa", "app_label": "ranking", "model_name": "boost", "field_name": "title"}
    )

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(title.pk)]


def test_editors_group_has_the_rule_permissions():
    codenames = set(
        Group.objects.get(name="Editors")
        .permissions.filter(content_type__app_label="ranking")
        .values_list("codename", flat=True)
    )

    for model in ("boost", "tierrule", "suppression"):
        assert {f"{action}_{model}" for action in ("add", "change", "delete", "view")} <= codenames
    assert {"view_rulechange", "view_kidspolicy", "change_kidspolicy"} <= codenames
    assert not codenames & {"add_rulechange", "change_rulechange", "delete_rulechange", "delete_kidspolicy"}


@pytest.mark.parametrize("model", [Boost, Suppression, TierRule])
def test_rules_changelist_queries_do_not_grow_with_rows(admin_client, model):
    us, gb = CountryFactory(code="US"), CountryFactory(code="GB")

    def add_rules(count: int) -> None:
        for _ in range(count):
            if model is Boost:
                BoostFactory(title=TitleFactory(), countries=[us, gb])
            elif model is Suppression:
                SuppressionFactory(countries=[us])
            else:
                TierRuleFactory()

    add_rules(2)
    few = changelist_queries(admin_client, model)
    add_rules(8)

    assert changelist_queries(admin_client, model) == few


def test_editor_changes_the_diversity_weight_and_serving_sees_it(editor_client, django_capture_on_commit_callbacks):
    from ranking.models import DiversityPolicy
    from ranking.rules_cache import RulesCache

    policy = DiversityPolicy.objects.get()  # created by the migration
    assert RulesCache(check_seconds=0).current().mmr_lambda == pytest.approx(0.7)
    with django_capture_on_commit_callbacks(execute=True):
        response = editor_client.post(admin_url(DiversityPolicy, "change", policy.pk), {"mmr_lambda": "0.4"})
    assert response.status_code == 302
    change = RuleChange.objects.get()
    assert change.rule_model == RuleChange.RuleModel.DIVERSITY_POLICY and change.changes["mmr_lambda"]["after"] == 0.4
    assert RulesCache(check_seconds=0).current().mmr_lambda == pytest.approx(0.4)


def test_a_diversity_weight_outside_0_to_1_is_a_form_error(editor_client):
    from ranking.models import DiversityPolicy

    policy = DiversityPolicy.objects.get()
    response = editor_client.post(admin_url(DiversityPolicy, "change", policy.pk), {"mmr_lambda": "1.5"})
    assert response.status_code == 200 and "mmr_lambda" in response.context["adminform"].form.errors
    assert DiversityPolicy.objects.get().mmr_lambda == pytest.approx(0.7)
