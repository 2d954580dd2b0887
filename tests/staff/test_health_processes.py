"""The health page and its JSON list what each web process serves, from the statuses they publish (#14)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from recommendations.services import model_version_activate
from recommendations.serving.process_status import process_status_publish, process_status_withdraw
from tests.factories.recommendations import ModelVersionFactory

CHECKSUM = "ab" * 32


@pytest.fixture
def published(db):
    version = ModelVersionFactory()
    model_version_activate(version_id=version.pk)
    healthy = {
        "host": "web-a",
        "pid": 101,
        "ppid": 100,
        "role": "worker",
        "started_at": "2026-06-01T00:00:00Z",
        "models": [{"kind": "popularity", "version": version.version, "checksum": CHECKSUM, "mapped": True}],
        "failures": [],
        "problems": [],
        "last_errors": [],
    }
    failing = {
        **healthy,
        "pid": 102,
        "models": [{"kind": "popularity", "version": "older", "checksum": "cd" * 32, "mapped": True}],
        "failures": [
            {
                "kind": "popularity",
                "version": version.version,
                "error": "ArtifactCorrupt: truncated",
                "attempts": 3,
                "next_retry_at": "2026-06-01T00:01:00Z",
            }
        ],
        "last_errors": [
            {
                "at": "2026-06-01T00:00:30Z",
                "kind": "popularity",
                "version": version.version,
                "message": "ArtifactCorrupt: truncated",
            }
        ],
    }
    for status in (healthy, failing):
        process_status_publish(status=status)
    yield version
    for pid in (101, 102):
        process_status_withdraw(host="web-a", pid=pid)


def test_health_json_lists_each_process_with_its_versions_checksums_and_errors(editor_client, published):
    body = editor_client.get(reverse("staff:health-json")).json()

    mine = {p["pid"]: p for p in body["processes"]["list"] if p["host"] == "web-a"}
    assert set(mine) == {101, 102}
    assert mine[101]["status"] == "ok" and mine[101]["models"][0]["checksum"] == CHECKSUM
    assert mine[101]["behind"] == []
    assert mine[102]["status"] == "degraded" and mine[102]["behind"] == ["popularity"]
    assert mine[102]["failures"][0]["attempts"] == 3
    assert body["processes"]["status"] == "degraded" and body["status"] == "degraded"


def test_the_health_page_draws_the_serving_processes(editor_client, published):
    html = editor_client.get(reverse("staff:health")).content.decode()

    assert 'id="serving-processes"' in html and 'data-pid="101"' in html and 'data-pid="102"' in html
    assert CHECKSUM[:12] in html and published.version in html
    assert "did not load (3 tries): ArtifactCorrupt: truncated" in html
