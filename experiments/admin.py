"""Experiments in the admin: arms inline (shares checked), results with intervals and a verdict, bandit state."""

from __future__ import annotations

import math
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from config.admin import ReadOnlyAdmin
from experiments.models import Arm, BanditState, Experiment, ExperimentResult, Metric
from experiments.selectors import latest_results
from experiments.services import (
    ArmSpec,
    experiment_arms_validate,
    experiment_metrics_request,
    experiment_status_set,
    experiments_cache,
)


class ArmInlineFormSet(BaseInlineFormSet):
    """The arms as a whole: shares sum to 1, one baseline; a running experiment needs a baseline and two arms."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return  # each form shows its own errors first
        kept = [form.cleaned_data for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        arms = [
            ArmSpec(name=data["name"], traffic_share=data["traffic_share"], is_baseline=data.get("is_baseline", False))
            for data in kept
        ]
        experiment_arms_validate(arms=arms, running=self.instance.status == Experiment.Status.RUNNING)


class ArmInline(admin.TabularInline):
    model = Arm
    formset = ArmInlineFormSet
    extra = 0
    min_num = 0
    fields = (
        "name",
        "is_baseline",
        "traffic_share",
        "ranker_version",
        "mmr_lambda",
        "bandit_enabled",
        "popularity_only",
    )

    # Once started, the arms are fixed: changing shares or order would move profiles between arms mid-test.
    def has_add_permission(self, request: HttpRequest, obj: Experiment | None = None) -> bool:
        return _is_draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Experiment | None = None) -> bool:
        return _is_draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Experiment | None = None) -> bool:
        return _is_draft(obj) and super().has_delete_permission(request, obj)


def _is_draft(experiment: Experiment | None) -> bool:
    return experiment is None or experiment.status == Experiment.Status.DRAFT


class ExperimentForm(forms.ModelForm):
    class Meta:
        model = Experiment
        fields = "__all__"

    def clean_status(self) -> str:
        status = self.cleaned_data["status"]
        was = self.instance.status if self.instance.pk else Experiment.Status.DRAFT
        if status == Experiment.Status.DRAFT and was != Experiment.Status.DRAFT:
            raise ValidationError("An experiment that has run cannot go back to draft: its events refer to it.")
        return status


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    form = ExperimentForm
    inlines = [ArmInline]
    list_display = ("name", "status", "starts_at", "ends_at", "arm_summary", "created_by")
    list_filter = ("status",)
    search_fields = ("name", "description")
    list_select_related = ("created_by",)
    date_hierarchy = "starts_at"
    actions = ["start", "stop", "compute_metrics"]
    fieldsets = (
        (None, {"fields": ("name", "description", "status")}),
        ("When", {"fields": ("starts_at", "ends_at")}),
        ("Assignment", {"fields": ("salt",), "classes": ("collapse",)}),
        ("Results", {"fields": ("results_table",)}),
        ("Record", {"fields": ("created_by", "created_at", "updated_at"), "classes": ("collapse",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Experiment]:
        return super().get_queryset(request).prefetch_related("arms")

    def get_readonly_fields(self, request: HttpRequest, obj: Experiment | None = None) -> tuple[str, ...]:
        fixed = () if _is_draft(obj) else ("name", "salt")
        return (*fixed, "results_table", "created_by", "created_at", "updated_at")

    def save_model(self, request: HttpRequest, obj: Experiment, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)  # the arm formset has checked the shares
        transaction.on_commit(experiments_cache.expire)

    @admin.display(description="arms")
    def arm_summary(self, experiment: Experiment) -> str:
        return (
            ", ".join(
                f"{arm.name} {float(arm.traffic_share):.0%}{' (baseline)' if arm.is_baseline else ''}"
                for arm in experiment.arms.all()
            )
            or "—"
        )

    @admin.display(description="results")
    def results_table(self, experiment: Experiment) -> str:
        results = list(latest_results(experiment.results.all())) if experiment.pk else []
        if not results:
            return "No results yet: they are computed hourly while the experiment runs (or use the action)."
        labels = dict(Metric.choices)
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    labels.get(r.metric, r.metric),
                    r.arm.name,
                    _number(r.value, r.metric),
                    _interval(r),
                    f"{r.n:,}",
                    _p_value(r.p_value_vs_baseline),
                    r.verdict,
                )
                for r in results
            ),
        )
        return format_html(
            "<p>Computed {}. 95 % intervals; p-values against the baseline arm (two-proportion z-test for rates, "
            "Welch z-test for means).</p><table><tr><th>metric</th><th>arm</th><th>value</th><th>95 % interval</th>"
            "<th>n</th><th>p vs baseline</th><th>verdict</th></tr>{}</table>",
            f"{results[0].computed_at:%Y-%m-%d %H:%M} UTC",
            rows,
        )

    @admin.action(description="Start the selected experiments", permissions=["change"])
    def start(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self._set_status(request, queryset, Experiment.Status.RUNNING)

    @admin.action(description="Stop the selected experiments", permissions=["change"])
    def stop(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        self._set_status(request, queryset, Experiment.Status.STOPPED)

    @admin.action(description="Compute the metrics of the selected experiments now", permissions=["view"])
    def compute_metrics(self, request: HttpRequest, queryset: QuerySet[Experiment]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        experiment_metrics_request(experiment_ids=ids)
        self.message_user(request, f"Computing the metrics of {len(ids)} experiment(s).", messages.SUCCESS)

    def _set_status(self, request: HttpRequest, queryset: QuerySet[Experiment], status: str) -> None:
        for experiment in queryset:
            try:
                experiment_status_set(experiment_id=experiment.pk, status=status)
            except ValidationError as error:
                self.message_user(request, f"{experiment}: {' '.join(error.messages)}", messages.ERROR)
            else:
                self.message_user(request, f"{experiment} is now {status}.", messages.SUCCESS)


def _number(value: float | None, metric: str) -> str:
    if value is None or math.isnan(value):
        return "—"
    if metric == Metric.SESSION_MINUTES:
        return f"{value:.1f} min"
    if metric == Metric.ENGAGEMENT:
        return f"{value:.4f}"
    return f"{value:+.1%}" if metric == Metric.LIFT else f"{value:.2%}"


def _interval(result: ExperimentResult) -> str:
    if result.ci_low is None or result.ci_high is None:
        return "—"
    return f"{_number(result.ci_low, result.metric)} … {_number(result.ci_high, result.metric)}"


def _p_value(p_value: float | None) -> str:
    if p_value is None:
        return "—"
    return "< 0.001" if p_value < 0.001 else f"{p_value:.3f}"


@admin.register(ExperimentResult)
class ExperimentResultAdmin(ReadOnlyAdmin):
    """Read-only: the metrics job adds a set of results at every run."""

    list_display = (
        "experiment",
        "arm_name",
        "metric_short",
        "value_shown",
        "interval",
        "n_shown",
        "p_value",
        "verdict",
        "computed_at",
    )
    list_filter = ("metric", "experiment")
    list_select_related = ("experiment", "arm")

    @admin.display(description="arm", ordering="arm__name")
    def arm_name(self, result: ExperimentResult) -> str:
        return result.arm.name  # its __str__ repeats the experiment's name, the column before

    @admin.display(description="metric", ordering="metric")
    def metric_short(self, result: ExperimentResult) -> str:
        return result.get_metric_display().split(" (")[0]  # the definition is in the filter beside the list

    @admin.display(description="value", ordering="value")
    def value_shown(self, result: ExperimentResult) -> str:
        return _number(result.value, result.metric)

    @admin.display(description="95 % interval")
    def interval(self, result: ExperimentResult) -> str:
        return _interval(result)

    @admin.display(description="n", ordering="n")
    def n_shown(self, result: ExperimentResult) -> str:
        return f"{result.n:,}"

    @admin.display(description="p vs baseline", ordering="p_value_vs_baseline")
    def p_value(self, result: ExperimentResult) -> str:
        return _p_value(result.p_value_vs_baseline)


@admin.register(BanditState)
class BanditStateAdmin(admin.ModelAdmin):
    """Read-only: the update job writes it."""

    list_display = ("name", "policy_kind", "version", "impressions_seen", "mean_reward", "last_event_id", "updated_at")
    fields = (
        "name",
        "policy_kind",
        "version",
        "impressions_seen",
        "reward_sum",
        "mean_reward",
        "last_event_id",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[BanditState]:
        return super().get_queryset(request).defer("arrays")

    @admin.display(description="mean reward")
    def mean_reward(self, state: BanditState) -> str:
        return f"{state.reward_sum / state.impressions_seen:.4f}" if state.impressions_seen else "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
