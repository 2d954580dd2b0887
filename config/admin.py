"""Admin building blocks shared by the apps."""
from __future__ import annotations

from django.contrib import admin

from config.paginators import CappedCountPaginator


class LargeTableAdmin(admin.ModelAdmin):
    """For tables of 100K+ rows: capped counts, no full-result count, no filter facets, short pages."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
