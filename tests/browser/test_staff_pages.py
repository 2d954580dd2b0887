"""End to end in headless Chromium: an editor previews a homepage, reads why a title is there, boosts the
originals in the admin and sees the preview change; the other staff pages render; a user outside staff is
refused everywhere. Screenshots of every page land in var/test-artifacts/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from experiments.models import Metric
from tasks.models import JobRun
from tests.factories.auth import UserFactory
from tests.factories.experiments import ArmFactory, ExperimentFactory, ExperimentResultFactory
from tests.factories.tasks import JobRunFactory
from users.models import Profile, ViewingEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-test-password"


def _editor():
    """A staff user in the Editors group with the boost permissions (a flush by an earlier transactional test
    empties the group that the ranking migration fills, so the grants are made again here)."""
    group, _ = Group.objects.get_or_create(name="Editors")
    group.permissions.add(*Permission.objects.filter(content_type__app_label="ranking", codename__endswith="_boost"))
    user = UserFactory(username="eddie-editor", is_staff=True, password=PASSWORD)
    user.groups.add(group)
    return user


def _log_in(page, username: str, next_url: str = "/staff/") -> None:
    page.goto(f"/admin/login/?next={next_url}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def _operator_data() -> None:
    """What the jobs and experiments pages show: schedules, runs (one failed), an experiment with results."""
    call_command("sync_schedules", verbosity=0)
    now = timezone.now()
    JobRunFactory(
        job="tasks.features.refresh_content_features",
        started_at=now - dt.timedelta(minutes=5),
        duration_seconds=12.4,
        rows_written=600,
    )
    JobRunFactory(
        job="tasks.training.train_model",
        status=JobRun.Status.FAILED,
        started_at=now - dt.timedelta(hours=2),
        duration_seconds=3.2,
        error="Traceback (most recent call last):\nValueError: no viewing history",
    )
    experiment = ExperimentFactory(name="ranker-v2-vs-v1", description="Does the new ranker lift engagement?")
    control = ArmFactory(experiment=experiment, name="control", is_baseline=True, traffic_share=Decimal("0.5"))
    treatment = ArmFactory(experiment=experiment, name="new-ranker", traffic_share=Decimal("0.5"))
    for metric, base, lift in ((Metric.CTR, 0.05, 0.004), (Metric.ENGAGEMENT, 0.10, 0.02)):
        ExperimentResultFactory(
            arm=control, metric=metric, value=base, ci_low=base * 0.9, ci_high=base * 1.1, computed_at=now
        )
        ExperimentResultFactory(
            arm=treatment,
            metric=metric,
            value=base + lift,
            ci_low=(base + lift) * 0.9,
            ci_high=(base + lift) * 1.1,
            delta_vs_baseline=lift,
            p_value_vs_baseline=0.01,
            significant=True,
            computed_at=now,
        )


def test_an_editor_previews_a_homepage_boosts_originals_and_sees_the_preview_change(page, serving_world, screenshot):
    editor = _editor()
    _operator_data()
    profile = Profile.objects.get(
        pk=ViewingEvent.objects.order_by("-profile_id").values_list("profile_id", flat=True)[0]
    )

    _log_in(page, editor.username, next_url="/admin/")
    page.wait_for_url("**/admin/")
    assert page.locator("#staff-pages").is_visible()
    screenshot(page, "admin-index")

    page.click("#staff-pages >> text=Homepage preview")
    page.wait_for_url("**/staff/preview/")
    page.fill("input[name=q]", str(profile.pk))
    page.select_option("select[name=device]", "1")
    page.select_option("select[name=hour]", "21")
    page.click(".preview-form button[type=submit]")
    page.click(f"a.button[href*='profile={profile.pk}']")
    page.wait_for_selector(".home-row")
    rows = page.locator(".page[data-role=served] .home-row")
    assert rows.count() >= 3
    assert page.locator(".home-row[data-row=top_picks] .tile").count() > 0
    reasons = page.locator(".page[data-role=served] .tile-reason").all_inner_texts()
    assert reasons and all(text.strip() for text in reasons)
    assert page.locator(".page[data-role=served] .tile.boosted").count() == 0
    originals_before = _top_originals(page)
    screenshot(page, "preview")

    first = page.locator(".home-row[data-row=top_picks] .tile").first
    first.click()
    why = page.locator("#why")
    why.wait_for(state="visible")
    text = why.inner_text()
    for heading in ("CANDIDATE SOURCES", "SCORES", "TOP FEATURES", "RULES"):
        assert heading in text.upper()
    assert "ranker score" in text
    screenshot(page, "preview-why")
    preview_url = page.url

    # An editor adds an originals boost in the admin...
    page.goto("/admin/ranking/boost/add/")
    page.fill("#id_name", "Originals push")
    page.select_option("#id_target_kind", "originals")
    page.fill("#id_multiplier", "50")
    screenshot(page, "admin-boost")
    page.click("input[name=_save]")
    page.wait_for_url("**/admin/ranking/boost/")
    assert "Originals push" in page.inner_text("#result_list")

    # ... and the same preview shows the boosted originals, before and after side by side.
    page.goto(preview_url)
    page.wait_for_selector(".home-row")
    assert page.locator(".page[data-role=served] .tile.boosted").count() > 0
    assert _top_originals(page) > originals_before
    page.locator(".page[data-role=served] .tile.boosted").first.click()
    assert "Originals push" in page.locator("#why").inner_text()
    page.keyboard.press("Escape")
    page.click("a.toggle[data-compare=no_rules]")
    page.wait_for_selector(".pages.side-by-side")
    assert page.locator(".page").count() == 2
    assert page.locator(".page[data-role=compare] .tile.boosted").count() == 0
    assert page.locator(".tile.only-here").count() > 0
    screenshot(page, "preview-compare-no-rules")
    page.click("a.toggle[data-compare=no_diversify]")
    page.wait_for_selector(".page[data-role=compare]")
    assert "without diversification" in page.inner_text(".page[data-role=compare] .page-label")
    screenshot(page, "preview-compare-no-diversify")

    # The operators' pages.
    page.click("nav.staff-tabs >> text=Models")
    assert page.locator("svg.chart").count() >= 3  # popularity, mf, content
    assert page.locator(".model-kind[data-kind=mf] .status-active").count() == 1
    screenshot(page, "models")
    page.click("nav.staff-tabs >> text=Jobs")
    assert "ValueError: no viewing history" in page.inner_text("#failures")
    assert page.locator("#schedule a[href*='/admin/django_celery_beat/periodictask/']").count() > 0
    screenshot(page, "jobs")
    page.click("nav.staff-tabs >> text=Experiments")
    assert "higher than baseline" in page.inner_text(".experiment[data-experiment=ranker-v2-vs-v1] .verdicts")
    assert page.locator(".experiment svg.chart").count() == 2
    screenshot(page, "experiments")
    page.click("nav.staff-tabs >> text=Health")
    assert page.inner_text("[data-check=database] .status").lower() == "ok"
    screenshot(page, "health")
    response = page.goto("/staff/health.json")
    assert response.status == 200 and '"database"' in response.text()


def _top_originals(page) -> int:
    """Originals among the first page's summary: '… originals (N in the top 20)'."""
    summary = page.inner_text(".page[data-role=served] .page-summary")
    return int(re.search(r"\((\d+) in the top 20\)", summary).group(1))


def test_a_user_outside_staff_is_refused_everywhere(page, live_server, screenshot):
    outsider = UserFactory(username="vera-viewer", is_staff=False, password=PASSWORD)

    # The admin login refuses accounts outside staff...
    _log_in(page, outsider.username, next_url="/staff/preview/")
    assert "staff account" in page.inner_text(".errornote")
    screenshot(page, "refused-login")

    # ... and a session of theirs opened elsewhere gets a 403 page, and no admin.
    client = Client()
    client.force_login(outsider)
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    for url in (
        "/staff/",
        "/staff/preview/",
        "/staff/models/",
        "/staff/jobs/",
        "/staff/experiments/",
        "/staff/health/",
        "/staff/health.json",
    ):
        response = page.goto(url)
        assert response.status == 403, url
    page.goto("/staff/preview/")
    assert page.locator("#staff-refused").is_visible()
    screenshot(page, "refused-staff-page")
    page.goto("/admin/")
    assert "/admin/login/" in page.url
