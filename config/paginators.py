"""Paginators shared by the admin of the large tables."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedCountPaginator(Paginator):
    """Counts at most `count_cap` rows, so a page never waits on an exact COUNT(*) over millions of rows.

    Past the cap the admin shows `count_cap` results and the pages up to it; search or filter to go further.
    """

    count_cap = 10_000

    @cached_property
    def count(self) -> int:
        # A sliced queryset counts in a LIMIT subquery, which stops reading at the cap.
        return self.object_list[: self.count_cap].count()
