"""Rules in serving: the snapshot mirrors the tables, and an edit is live within the check interval, no restart."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import numpy as np
import pytest
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import SubscriptionTier
from ranking.ml.rules import NO_END, NO_START, TARGET_GENRE, TARGET_ORIGINALS, TARGET_TITLE, apply_rules
from ranking.models import Boost, RuleChange, Suppression, TargetKind, TierRule
from ranking.rules_cache import (
    RULES_VERSION_KEY,
    RulesCache,
    rules_snapshot_load,
    rules_version,
    rules_version_from_db,
)
from ranking.services import rule_change_record, rules_delete
from tests.admin_helpers import admin_url
from tests.factories.catalog import CountryFactory, GenreFactory, TitleFactory
from tests.factories.ranking import BoostFactory, KidsPolicyFactory, SuppressionFactory, TierRuleFactory
from tests.ranking.ml.handmade import make_catalog

pytestmark = pytest.mark.django_db


def suppress_via_admin(client, title, countries=()) -> None:
    response = client.post(
        admin_url(Suppression, "add"),
        {
            "title": title.pk,
            "reason": "Rights",
            "countries": [c.pk for c in countries],
            "is_active": "on",
            "starts_at_0": "",
            "starts_at_1": "",
            "ends_at_0": "",
            "ends_at_1": "",
        },
    )
    assert response.status_code == 302


def test_snapshot_holds_every_active_rule_as_arrays():
    us, gb = CountryFactory(code="US"), CountryFactory(code="GB")
    drama, title = GenreFactory(), TitleFactory()
    starts = timezone.now() - dt.timedelta(days=1)
    BoostFactory(genre=drama, multiplier=Decimal("2.50"), priority=3, countries=[us, gb], starts_at=starts)
    BoostFactory(title=title)
    BoostFactory()  # all originals
    BoostFactory(is_active=False)
    BoostFactory(ends_at=timezone.now() - dt.timedelta(hours=1))  # over: never active again
    TierRuleFactory(genre=drama)
    SuppressionFactory(title=title, countries=[gb])
    KidsPolicyFactory(maturity_cap=0)

    snapshot = rules_snapshot_load()

    assert snapshot.boost_target_kind.tolist() == [TARGET_GENRE, TARGET_TITLE, TARGET_ORIGINALS]
    assert snapshot.boost_target_id.tolist() == [drama.pk, title.pk, 0]
    assert snapshot.boost_multiplier.tolist() == [2.5, 2.0, 2.0]
    assert snapshot.boost_priority.tolist() == [3, 0, 0]
    assert snapshot.boost_countries == (frozenset({"US", "GB"}), frozenset(), frozenset())
    assert snapshot.boost_starts[0] == pytest.approx(starts.timestamp())
    assert snapshot.boost_starts[1] == NO_START and snapshot.boost_ends.tolist() == [NO_END] * 3
    assert snapshot.tier_rule_target_id.tolist() == [drama.pk]
    assert snapshot.tier_rule_tiers.tolist() == [SubscriptionTier.bit(SubscriptionTier.PREMIUM)]
    assert snapshot.suppression_title_id.tolist() == [title.pk]
    assert snapshot.suppression_countries == (frozenset({"GB"}),)
    assert snapshot.kids_maturity_cap == 0


def test_version_bumps_with_every_change_and_survives_a_cleared_cache(editor, django_capture_on_commit_callbacks):
    assert rules_version() == "0"
    boost = BoostFactory()

    with django_capture_on_commit_callbacks(execute=True):
        first = rule_change_record(rule=boost, action=RuleChange.Action.CREATE, before=None, by_user=editor)
    assert rules_version() == str(first.pk)

    with django_capture_on_commit_callbacks(execute=True):
        rules_delete(queryset=Boost.objects.all(), by_user=editor)
    latest = RuleChange.objects.latest("id")
    assert latest.pk > first.pk
    assert rules_version() == str(latest.pk)

    cache.clear()
    assert rules_version() == rules_version_from_db() == str(latest.pk)
    assert cache.get(RULES_VERSION_KEY) == str(latest.pk)  # cached again


def test_rules_cache_without_interval_sees_an_admin_edit_at_once(editor_client, django_capture_on_commit_callbacks):
    rules = RulesCache(check_seconds=0)
    title = TitleFactory()
    before = rules.current()
    assert len(before.suppression_title_id) == 0

    with django_capture_on_commit_callbacks(execute=True):
        suppress_via_admin(editor_client, title)

    after = rules.current()
    assert after.suppression_title_id.tolist() == [title.pk]
    assert after.version != before.version


def test_rules_cache_picks_a_change_up_after_its_check_interval(editor_client, django_capture_on_commit_callbacks):
    rules = RulesCache(check_seconds=0.5)
    title = TitleFactory()
    served = rules.current()

    with django_capture_on_commit_callbacks(execute=True):
        suppress_via_admin(editor_client, title)

    assert rules.current() is served  # not checked again yet
    time.sleep(0.6)
    assert rules.current().suppression_title_id.tolist() == [title.pk]


def test_unchanged_version_keeps_the_same_snapshot():
    rules = RulesCache(check_seconds=0)

    assert rules.current() is rules.current()


def test_lost_publish_is_caught_by_the_database_check_and_repaired(editor):
    rules = RulesCache(check_seconds=0, db_check_seconds=0)
    rules.current()
    boost = BoostFactory()
    rule_change_record(rule=boost, action=RuleChange.Action.CREATE, before=None, by_user=editor)  # no on_commit here
    cache.set(RULES_VERSION_KEY, "0", timeout=None)  # what a lost publish leaves behind

    assert len(rules.current().boost_multiplier) == 1
    assert cache.get(RULES_VERSION_KEY) == rules_version_from_db()


def test_cache_ahead_of_the_database_is_corrected():
    cache.set(RULES_VERSION_KEY, "999999", timeout=None)  # e.g. the database was restored from a backup

    RulesCache(check_seconds=0).current()

    assert cache.get(RULES_VERSION_KEY) == rules_version_from_db()


def test_stale_cache_alone_does_not_hide_a_change_past_the_database_interval(editor):
    rules = RulesCache(check_seconds=0, db_check_seconds=3600)
    rules.current()
    rule_change_record(rule=BoostFactory(), action=RuleChange.Action.CREATE, before=None, by_user=editor)
    cache.set(RULES_VERSION_KEY, "0", timeout=None)

    assert len(rules.current().boost_multiplier) == 0  # the cache says nothing changed: until the database check
    rules.db_check_seconds = 0
    assert len(rules.current().boost_multiplier) == 1


def test_admin_suppression_reaches_apply_rules(editor_client, django_capture_on_commit_callbacks):
    us = CountryFactory(code="US")
    kept, suppressed = TitleFactory(), TitleFactory()
    catalog = make_catalog(sorted([kept.pk, suppressed.pk]))
    rows = np.arange(2)
    rules = RulesCache(check_seconds=0)

    with django_capture_on_commit_callbacks(execute=True):
        suppress_via_admin(editor_client, suppressed, countries=[us])

    def keep_in(country: str) -> dict[int, bool]:
        result = apply_rules(
            rules.current(),
            catalog,
            rows,
            np.zeros(2),
            country=country,
            tier=1,
            is_kids=False,
            maturity_cap=18,
            now_epoch=time.time(),
        )
        return dict(zip(catalog.content_ids.tolist(), result.keep.tolist(), strict=True))

    assert keep_in("US") == {kept.pk: True, suppressed.pk: False}
    assert keep_in("GB") == {kept.pk: True, suppressed.pk: True}


@pytest.mark.parametrize(
    ("model", "fields"),
    [
        (Boost, {"name": "x", "target_kind": TargetKind.ORIGINALS, "multiplier": Decimal(0)}),
        (
            Boost,
            {
                "name": "x",
                "target_kind": TargetKind.ORIGINALS,
                "starts_at": timezone.now(),
                "ends_at": timezone.now() - dt.timedelta(days=1),
            },
        ),
        (Boost, {"name": "x", "target_kind": TargetKind.GENRE}),
        (TierRule, {"target_kind": TargetKind.ORIGINALS, "allowed_tiers": 0}),
    ],
    ids=["multiplier-zero", "end-before-start", "genre-missing", "no-tier"],
)
def test_database_refuses_invalid_rules(model, fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        model.objects.create(**fields)


def test_rules_load_from_the_database_when_redis_is_unreachable(settings, editor):
    BoostFactory()
    settings.CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    rules = RulesCache(check_seconds=0, db_check_seconds=3600)

    assert len(rules.current().boost_multiplier) == 1
    rule_change_record(rule=BoostFactory(), action=RuleChange.Action.CREATE, before=None, by_user=editor)
    assert len(rules.current().boost_multiplier) == 2  # every check falls back to the database's version
