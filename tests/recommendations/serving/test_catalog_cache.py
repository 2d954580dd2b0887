"""The in-process catalog: rebuilt after an editor's save at the next check, after a bulk import (no
signals) at the next title count."""

from __future__ import annotations

import pytest

from catalog.models import Title
from recommendations.serving.catalog_cache import CatalogCache
from tests.factories.catalog import TitleFactory

pytestmark = pytest.mark.django_db


def _bulk_import(count: int) -> None:
    """Rows written the way the loaders write them: no save(), so no signal."""
    Title.objects.bulk_create([TitleFactory.build() for _ in range(count)])


def test_an_editors_save_is_seen_at_the_next_check():
    TitleFactory()
    catalog = CatalogCache(check_seconds=0, table_check_seconds=3600)
    before = len(catalog.current())
    TitleFactory()  # post_save bumps the shared version
    assert len(catalog.current()) == before + 1


def test_a_bulk_import_waits_for_the_title_count():
    TitleFactory()
    rare = CatalogCache(check_seconds=0, table_check_seconds=3600)
    every_time = CatalogCache(check_seconds=0, table_check_seconds=0)
    before = len(rare.current())
    assert len(every_time.current()) == before
    _bulk_import(3)
    assert len(rare.current()) == before  # the count is not due yet: no ~8 ms query on this request
    assert len(every_time.current()) == before + 3
    rare.clear()  # what the next due count does
    assert len(rare.current()) == before + 3
