"""Business rules in the admin: every save and delete is audited and goes live in serving within seconds."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import FieldDoesNotExist
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.timezone import localtime

from catalog.forms import TierMaskField
from config.admin import LargeTableAdmin, ReadOnlyAdmin
from ranking.models import Boost, DiversityPolicy, KidsPolicy, RuleChange, Suppression, TierRule
from ranking.services import RULE_MODELS, rule_change_record, rule_state_stored, rules_delete


class TierRuleAdminForm(forms.ModelForm):
    """Edits the `allowed_tiers` bit mask as one checkbox per subscription tier."""

    allowed_tiers = TierMaskField(
        label="Allowed tiers",
        help_text="Only these tiers are shown the matching titles (on top of each title's own tiers).",
    )

    class Meta:
        model = TierRule
        fields = "__all__"


class AuditedRuleAdmin(admin.ModelAdmin):
    """Saves and deletes record a RuleChange (ranking.services), which publishes the new rules version."""

    def save_model(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool) -> None:
        # Read the stored state before the save overwrites it; save_related audits once the countries are saved.
        form.rule_before = rule_state_stored(model=type(obj), rule_id=obj.pk) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        action = RuleChange.Action.UPDATE if change else RuleChange.Action.CREATE
        rule_change_record(rule=form.instance, action=action, before=form.rule_before, by_user=request.user)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        rules_delete(queryset=type(obj).objects.filter(pk=obj.pk), by_user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        rules_delete(queryset=queryset, by_user=request.user)

    @admin.display(description="window")
    def window(self, rule: Any) -> str:
        if rule.starts_at is None and rule.ends_at is None:
            return "always"
        starts = f"{rule.starts_at:%Y-%m-%d %H:%M}" if rule.starts_at else "now"
        ends = f"{rule.ends_at:%Y-%m-%d %H:%M}" if rule.ends_at else "no end"
        return f"{starts} → {ends}"

    @admin.display(description="countries")
    def country_codes(self, rule: Any) -> str:
        return ", ".join(country.code for country in rule.countries.all()) or "everywhere"


@admin.register(Boost)
class BoostAdmin(AuditedRuleAdmin):
    list_display = ("name", "target", "multiplier", "priority", "window", "country_codes", "is_active")
    list_filter = ("is_active", "target_kind", "countries")
    search_fields = ("name", "title__name", "genre__name")
    autocomplete_fields = ("genre", "title", "countries")
    list_select_related = ("genre", "title")
    fieldsets = (
        (None, {"fields": ("name", "is_active")}),
        ("What is boosted", {"fields": ("target_kind", "genre", "title")}),
        ("How much", {"fields": ("multiplier", "priority")}),
        ("Where and when", {"fields": ("countries", "starts_at", "ends_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Boost]:
        return super().get_queryset(request).prefetch_related("countries")

    @admin.display(description="applies to")
    def target(self, boost: Boost) -> str:
        return boost.target_label


@admin.register(TierRule)
class TierRuleAdmin(AuditedRuleAdmin):
    form = TierRuleAdminForm
    list_display = ("target", "tier_names", "note", "is_active")
    list_filter = ("is_active", "target_kind")
    search_fields = ("title__name", "genre__name", "note")
    autocomplete_fields = ("genre", "title")
    list_select_related = ("genre", "title")
    fields = ("target_kind", "genre", "title", "allowed_tiers", "note", "is_active")

    @admin.display(description="applies to")
    def target(self, rule: TierRule) -> str:
        return rule.target_label

    @admin.display(description="allowed tiers")
    def tier_names(self, rule: TierRule) -> str:
        return ", ".join(tier.label for tier in rule.tiers)


@admin.register(Suppression)
class SuppressionAdmin(AuditedRuleAdmin):
    list_display = ("title", "reason", "country_codes", "window", "is_active")
    list_filter = ("is_active", "countries")
    search_fields = ("title__name", "reason")
    autocomplete_fields = ("title", "countries")
    list_select_related = ("title",)
    fields = ("title", "reason", "countries", "starts_at", "ends_at", "is_active")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Suppression]:
        return super().get_queryset(request).prefetch_related("countries")


@admin.register(KidsPolicy)
class KidsPolicyAdmin(AuditedRuleAdmin):
    list_display = ("__str__", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not KidsPolicy.objects.exists()  # one row

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(DiversityPolicy)
class DiversityPolicyAdmin(AuditedRuleAdmin):
    list_display = ("__str__", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not DiversityPolicy.objects.exists()  # one row

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(RuleChange)
class RuleChangeAdmin(ReadOnlyAdmin, LargeTableAdmin):
    """The audit trail: read-only for everyone; it only grows."""

    list_display = ("created_at", "username", "action", "rule_model", "object_repr", "object_id")
    list_filter = ("action", "rule_model")
    search_fields = ("object_repr", "username")
    date_hierarchy = "created_at"
    fields = ("created_at", "username", "action", "rule_model", "object_id", "object_repr", "change_table")
    readonly_fields = fields

    @admin.display(description="changes")
    def change_table(self, change: RuleChange) -> str:
        label = _field_labels(change.rule_model)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (label(name), _shown(values.get("before")), _shown(values.get("after")))
                for name, values in change.changes.items()
            ),
        )
        return format_html("<table><tr><th>field</th><th>before</th><th>after</th></tr>{}</table>", rows)


ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _field_labels(rule_model: str) -> Callable[[str], str]:
    """A recorded field name as the rule's form labels it ("starts_at" → "Starts at"); a field since removed
    keeps its name."""
    model = next((model for model, code in RULE_MODELS.items() if code == rule_model), None)

    def label(name: str) -> str:
        try:
            return capfirst(model._meta.get_field(name).verbose_name) if model else name
        except FieldDoesNotExist:
            return name

    return label


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and ISO_MOMENT.match(value):  # a window's bound, stored as ISO text
        moment = dt.datetime.fromisoformat(value)
        return date_format(localtime(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)), "Y-m-d H:i T")
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or "(none)"
    return str(value)
