"""Admin forms for the catalog."""

from __future__ import annotations

from typing import Any

from django import forms

from catalog.models import SubscriptionTier, Title


class TierMaskField(forms.TypedMultipleChoiceField):
    """A SubscriptionTier bit mask (catalog.Title, ranking.TierRule) edited as one checkbox per tier."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            choices=SubscriptionTier.choices,
            coerce=int,
            widget=forms.CheckboxSelectMultiple,
            error_messages={"required": "Pick at least one tier."},
            **kwargs,
        )

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, int):  # the stored mask → the ticked tiers
            return [tier for tier in SubscriptionTier.values if value & SubscriptionTier.bit(tier)]
        return value

    def has_changed(self, initial: Any, data: Any) -> bool:
        return super().has_changed(self.prepare_value(initial) if initial is not None else [], data)

    def clean(self, value: Any) -> int:
        return sum(SubscriptionTier.bit(tier) for tier in set(super().clean(value)))


class TitleAdminForm(forms.ModelForm):
    """Edits the `available_tiers` bit mask as one checkbox per subscription tier."""

    available_tiers = TierMaskField(label="Available tiers", help_text="Subscription tiers that may watch this title.")

    class Meta:
        model = Title
        fields = "__all__"
