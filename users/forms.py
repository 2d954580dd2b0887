"""Admin forms for accounts and profiles."""

from __future__ import annotations

from django import forms

from users.models import MAX_PROFILES_PER_ACCOUNT, Profile


class ProfileAdminForm(forms.ModelForm):
    """Offers the slot as a choice of 1..5 instead of a free number the database would reject."""

    slot = forms.TypedChoiceField(
        choices=[(slot, slot) for slot in range(1, MAX_PROFILES_PER_ACCOUNT + 1)],
        coerce=int,
        help_text="Position 1–5 within the account.",
    )

    class Meta:
        model = Profile
        fields = "__all__"
