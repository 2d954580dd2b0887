"""Helpers shared by the admin tests: URLs, listed rows, and query counts of a changelist."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext
from django.urls import reverse


def admin_url(model: type[Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def listed(client, model: type[Model], **params: Any) -> set[int]:
    """Primary keys on the first changelist page for these query parameters."""
    response = client.get(admin_url(model, "changelist"), params)
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


def changelist_queries(client, model: type[Model]) -> int:
    """How many SQL queries one changelist page takes."""
    with CaptureQueriesContext(connection) as captured:
        assert client.get(admin_url(model, "changelist")).status_code == 200
    return len(captured)
