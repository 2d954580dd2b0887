"""Models: every kind's versions with their offline metrics and a plot, activation and rollback."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from recommendations.models import ModelVersion
from recommendations.services import model_version_activate
from tests.factories.recommendations import ModelVersionFactory

MODELS = reverse("staff:models")


def test_versions_show_their_metrics_a_plot_and_which_one_is_active(editor_client):
    old = ModelVersionFactory(metrics={"ndcg_at_10": 0.21, "recall_at_10": 0.11})
    new = ModelVersionFactory(metrics={"ndcg_at_10": 0.25, "recall_at_10": 0.13})
    model_version_activate(version_id=new.pk)

    response = editor_client.get(MODELS)

    html = response.content.decode()
    assert response.status_code == 200
    assert f"Active: <strong>{new.version}</strong>" in html
    for version in (old, new):
        assert f'data-version-id="{version.pk}"' in html
    assert "0.2100" in html and "0.2500" in html and "0.1300" in html
    assert html.count('<svg class="chart"') == 1 and "NDCG@10" in html and "recall@10" in html
    assert 'class="highlight"' in html  # the active version is ringed on the plot
    assert 'data-action="activate"' not in html  # editors may look, not activate


def test_a_superuser_activates_a_version_and_rolls_back_each_after_a_confirmation(superuser_client):
    first = ModelVersionFactory()
    second = ModelVersionFactory(heavy_item=30)
    model_version_activate(version_id=first.pk)
    activate = reverse("staff:model-activate", args=[second.pk])

    asked = superuser_client.post(activate)  # the page's button: nothing changes yet
    html = asked.content.decode()
    assert asked.status_code == 200 and 'id="confirm-model-change"' in html
    assert first.version in html and second.version in html  # serving now, and after
    second.refresh_from_db()
    assert second.status == ModelVersion.Status.CANDIDATE

    response = superuser_client.post(activate, {"confirmed": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == MODELS
    assert "is active; web processes switch" in response.content.decode()
    second.refresh_from_db()
    assert second.status == ModelVersion.Status.ACTIVE and second.activated_by is not None
    assert 'data-action="rollback"' in response.content.decode()

    rollback = reverse("staff:model-rollback", args=["popularity"])
    asked = superuser_client.post(rollback)
    assert 'id="confirm-model-change"' in asked.content.decode() and first.version in asked.content.decode()
    second.refresh_from_db()
    assert second.status == ModelVersion.Status.ACTIVE
    response = superuser_client.post(rollback, {"confirmed": "yes"}, follow=True)
    first.refresh_from_db()
    assert first.status == ModelVersion.Status.ACTIVE
    assert "Rolled back" in response.content.decode()


def test_a_failed_activation_is_reported_not_raised(superuser_client, settings, tmp_path):
    version = ModelVersionFactory()
    settings.RECO_ARTIFACT_DIR = tmp_path / "elsewhere"  # the artifact is gone
    response = superuser_client.post(
        reverse("staff:model-activate", args=[version.pk]), {"confirmed": "yes"}, follow=True
    )
    assert "cannot be activated" in response.content.decode()
    version.refresh_from_db()
    assert version.status == ModelVersion.Status.CANDIDATE
    response = superuser_client.post(reverse("staff:model-rollback", args=["nonsense"]), follow=True)
    assert "Unknown model kind" in response.content.decode()
    response = superuser_client.post(reverse("staff:model-activate", args=[10**9]), follow=True)
    assert "does not exist" in response.content.decode()


def test_the_page_takes_the_same_queries_for_3_or_30_versions(superuser_client):
    versions = [ModelVersionFactory() for _ in range(3)]
    model_version_activate(version_id=versions[0].pk)
    with CaptureQueriesContext(connection) as few:
        superuser_client.get(MODELS)
    ModelVersion.objects.bulk_create(
        [
            ModelVersion(
                kind="mf",
                version=f"v{i:03d}",
                artifact_path=f"mf/v{i}",
                checksum="0" * 64,
                metrics={"ndcg_at_10": i / 100},
            )
            for i in range(30)
        ]
    )
    with CaptureQueriesContext(connection) as many:
        response = superuser_client.get(MODELS)
    assert len(many) == len(few)
    assert response.content.decode().count('data-kind="') == 2  # popularity and mf
    assert response.content.decode().count("data-version-id=") == 3 + 20  # 20 newest per kind
