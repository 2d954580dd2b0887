"""Rule changes: the audit record of every edit, and publishing the new rules version once it commits."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import models, transaction
from django.db.models import QuerySet

from catalog.models import SubscriptionTier
from ranking.models import Boost, DiversityPolicy, KidsPolicy, RuleChange, Suppression, TierRule
from ranking.rules_cache import rules_version_publish

RULE_MODELS: dict[type[models.Model], str] = {
    Boost: RuleChange.RuleModel.BOOST,
    TierRule: RuleChange.RuleModel.TIER_RULE,
    Suppression: RuleChange.RuleModel.SUPPRESSION,
    KidsPolicy: RuleChange.RuleModel.KIDS_POLICY,
    DiversityPolicy: RuleChange.RuleModel.DIVERSITY_POLICY,
}
UNAUDITED_FIELDS = {"id", "created_at", "updated_at"}
TIER_MASK_FIELDS = {"allowed_tiers"}


def _json_value(rule: models.Model, field: models.Field) -> Any:
    if field.many_to_many:
        return sorted(country.code for country in getattr(rule, field.name).all())
    if field.is_relation:
        related = getattr(rule, field.name)
        return None if related is None else f"{related} (id {related.pk})"
    value = getattr(rule, field.attname)
    if field.name in TIER_MASK_FIELDS:
        return [tier.label for tier in SubscriptionTier if value & SubscriptionTier.bit(tier)]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def rule_state(rule: models.Model) -> dict[str, Any]:
    """The audited field values of a rule as JSON: relations as 'label (id N)', countries as sorted codes."""
    fields = [*rule._meta.concrete_fields, *rule._meta.many_to_many]
    return {field.name: _json_value(rule, field) for field in fields if field.name not in UNAUDITED_FIELDS}


def _rules_with_relations(queryset: QuerySet) -> QuerySet:
    model = queryset.model
    related = [f.name for f in model._meta.concrete_fields if f.is_relation]
    return queryset.select_related(*related).prefetch_related(*(f.name for f in model._meta.many_to_many))


def rule_state_stored(*, model: type[models.Model], rule_id: int) -> dict[str, Any]:
    """The state of a rule as stored now (read before an edit to audit it, and after)."""
    return rule_state(_rules_with_relations(model.objects.filter(pk=rule_id)).get())


def _diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    names = [*(before or {}), *(name for name in after or {} if name not in (before or {}))]
    changes = {}
    for name in names:
        old, new = (before or {}).get(name), (after or {}).get(name)
        if before is None or after is None or old != new:
            changes[name] = {"before": old, "after": new}
    return changes


def _publish_after_commit() -> None:
    transaction.on_commit(rules_version_publish)


def rule_change_record(*, rule: models.Model, action: str, before: dict[str, Any] | None, by_user) -> RuleChange | None:
    """Audit a saved rule (M2M included) against its state `before` the edit; None when nothing changed."""
    after = rule_state_stored(model=type(rule), rule_id=rule.pk)  # fresh: the instance may hold stale prefetches
    changes = _diff(before if action == RuleChange.Action.UPDATE else None, after)
    if not changes:
        return None
    change = RuleChange.objects.create(
        user=by_user,
        username=getattr(by_user, "username", "") or "",
        action=action,
        rule_model=RULE_MODELS[type(rule)],
        object_id=rule.pk,
        object_repr=str(rule)[:300],
        changes=changes,
    )
    _publish_after_commit()
    return change


@transaction.atomic
def rules_delete(*, queryset: QuerySet, by_user) -> int:
    """Delete rules and audit each deletion; returns how many were deleted."""
    rules = list(_rules_with_relations(queryset))
    if not rules:
        return 0
    rule_model = RULE_MODELS[queryset.model]
    RuleChange.objects.bulk_create(
        RuleChange(
            user=by_user,
            username=getattr(by_user, "username", "") or "",
            action=RuleChange.Action.DELETE,
            rule_model=rule_model,
            object_id=rule.pk,
            object_repr=str(rule)[:300],
            changes=_diff(rule_state(rule), None),
        )
        for rule in rules
    )
    queryset.model.objects.filter(pk__in=[rule.pk for rule in rules]).delete()
    _publish_after_commit()
    return len(rules)
