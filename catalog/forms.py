"""Admin forms for the catalog."""
from __future__ import annotations

from typing import Any

from django import forms

from catalog.models import SubscriptionTier, Title


class TitleAdminForm(forms.ModelForm):
    """Edits the `available_tiers` bit mask as one checkbox per subscription tier."""

    available_tiers = forms.TypedMultipleChoiceField(
        choices=SubscriptionTier.choices,
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        label="Available tiers",
        help_text="Subscription tiers that may watch this title.",
        error_messages={"required": "Pick at least one tier."},
    )

    class Meta:
        model = Title
        fields = "__all__"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["available_tiers"] = self.instance.tiers

    def clean_available_tiers(self) -> int:
        return sum(SubscriptionTier.bit(tier) for tier in set(self.cleaned_data["available_tiers"]))
