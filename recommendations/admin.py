"""Model versions in the admin: metrics at a glance, activation and rollback (after a confirmation page) through
the services."""

import secrets

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from recommendations.models import API_KEY_PREFIX_LENGTH, ApiClient, ApiScope, ModelVersion, api_key_digest
from recommendations.services import ModelActivationError, model_version_activate, model_version_rollback
from staff import selectors as staff_selectors


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ("kind", "version", "status", "ndcg_at_10", "created_at", "activated_at", "activated_by")
    list_filter = ("kind", "status")
    search_fields = ("version",)
    readonly_fields = [f.name for f in ModelVersion._meta.fields if f.name != "notes"]
    list_select_related = ("activated_by",)
    actions = ["activate", "roll_back"]

    def has_add_permission(self, request) -> bool:
        return False  # versions come from training jobs

    @admin.display(description="NDCG@10")
    def ndcg_at_10(self, obj: ModelVersion) -> str:
        value = obj.metrics.get("ndcg_at_10")
        return f"{value:.3f}" if isinstance(value, int | float) else "—"

    @admin.action(description="Activate the selected version")
    def activate(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> TemplateResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return None
        chosen = queryset.get()
        if request.POST.get("confirmed") != "yes":  # first the intermediate page, as Django's delete asks
            change = staff_selectors.model_change_for_activation(version=chosen)
            return self._confirmation(
                request,
                queryset,
                action="activate",
                verb="activate",
                changes=[change],
                question=f"Activate {chosen.kind} {chosen.version}?",
            )
        try:
            version = model_version_activate(version_id=chosen.pk, by_user=request.user)
        except ModelActivationError as error:
            self.message_user(request, str(error), messages.ERROR)
            return None
        self.message_user(request, f"{version} is active; web processes switch within seconds.")
        return None

    @admin.action(description="Roll back to the previously active version of this kind")
    def roll_back(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> TemplateResponse | None:
        kinds = sorted(set(queryset.values_list("kind", flat=True)))
        if request.POST.get("confirmed") != "yes":
            changes = [staff_selectors.model_change_for_rollback(kind=kind) for kind in kinds]
            return self._confirmation(
                request,
                queryset,
                action="roll_back",
                verb="roll back",
                changes=changes,
                question=f"Roll back {', '.join(kinds)} to the previously active version?",
            )
        for kind in kinds:
            try:
                version = model_version_rollback(kind=kind, by_user=request.user)
            except ModelActivationError as error:
                self.message_user(request, str(error), messages.ERROR)
                continue
            self.message_user(request, f"{version} is active again.")
        return None

    def _confirmation(
        self,
        request: HttpRequest,
        queryset: QuerySet[ModelVersion],
        *,
        action: str,
        verb: str,
        changes: list,
        question: str,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Are you sure?",
            "queryset": queryset,
            "action": action,
            "verb": verb,
            "changes": changes,
            "question": question,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/recommendations/modelversion/confirm_action.html", context)


class ApiClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="What the key may do; a call outside them gets 403.",
    )

    class Meta:
        model = ApiClient
        fields = ["name", "rate", "scopes", "is_active"]


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    """Client apps: a new client's key is shown once, on the page after saving; only its hash is stored."""

    form = ApiClientForm
    list_display = ("name", "key_prefix", "rate", "scopes", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("name", "key_prefix")
    readonly_fields = ("key_prefix", "created_at")

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key = secrets.token_urlsafe(32)
        obj.key_prefix, obj.key_digest = key[:API_KEY_PREFIX_LENGTH], api_key_digest(key)
        super().save_model(request, obj, form, change)
        messages.warning(request, f"API key for {obj.name} (shown once, copy it now): {key}")
