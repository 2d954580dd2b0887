"""Model versions in the admin: metrics at a glance, activation and rollback through the services."""
import secrets

from django import forms
from django.contrib import admin, messages

from recommendations.models import API_KEY_PREFIX_LENGTH, ApiClient, ApiScope, ModelVersion, api_key_digest
from recommendations.services import ModelActivationError, model_version_activate, model_version_rollback


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
    def activate(self, request, queryset) -> None:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return
        try:
            version = model_version_activate(version_id=queryset.get().pk, by_user=request.user)
        except ModelActivationError as error:
            self.message_user(request, str(error), messages.ERROR)
            return
        self.message_user(request, f"{version} is active; web processes switch within seconds.")

    @admin.action(description="Roll back to the previously active version of this kind")
    def roll_back(self, request, queryset) -> None:
        for kind in sorted(set(queryset.values_list("kind", flat=True))):
            try:
                version = model_version_rollback(kind=kind, by_user=request.user)
            except ModelActivationError as error:
                self.message_user(request, str(error), messages.ERROR)
                continue
            self.message_user(request, f"{version} is active again.")


class ApiClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple, required=False,
                                       help_text="What the key may do; a call outside them gets 403.")  # fmt: skip

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

    def save_model(self, request, obj, form, change) -> None:  # noqa: ANN001
        if change:
            super().save_model(request, obj, form, change)
            return
        key = secrets.token_urlsafe(32)
        obj.key_prefix, obj.key_digest = key[:API_KEY_PREFIX_LENGTH], api_key_digest(key)
        super().save_model(request, obj, form, change)
        messages.warning(request, f"API key for {obj.name} (shown once, copy it now): {key}")
