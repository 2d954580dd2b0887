"""The admin and staff pages at 1280 px: nothing cut off or scrolled sideways, numbers as people read them, and
model activations and rollbacks that ask first (issue #18). Screenshots land in var/test-artifacts/screenshots/."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from experiments.models import Metric
from recommendations.models import ModelKind, ModelVersion
from recommendations.training.jobs import model_train
from tasks.models import JobRun, JobShard
from tests.factories.auth import UserFactory
from tests.factories.events import EventFactory
from tests.factories.experiments import ArmFactory, ExperimentFactory, ExperimentResultFactory
from tests.factories.ranking import BoostFactory, RuleChangeFactory
from tests.factories.tasks import JobRunFactory
from users.models import ViewingEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "browser-test-password"
WIDTH = 1280
# A raw float as Python prints it: five or more decimals (0.5532059140000456), which no page should show.
RAW_FLOAT = re.compile(r"\b\d+\.\d{5,}\b")

# Every box that ends past the window, and every box that scrolls sideways (the admin's result lists do).
OVERFLOWS = """(width) => {
  const out = [];
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
    (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  if (document.documentElement.scrollWidth > width + 1) out.push(`the page is ${document.documentElement.scrollWidth}px wide`);
  for (const el of document.querySelectorAll('#content table, #content .results, #content .module, #content form, #content section, #content svg')) {
    if (!el.getClientRects().length) continue;  // hidden (a collapsed inline, a closed details)
    const right = Math.round(el.getBoundingClientRect().right);
    if (right > width + 1) out.push(`${name(el)} ends at ${right}px`);
    const style = getComputedStyle(el);
    if (['auto', 'scroll'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1)
      out.push(`${name(el)} scrolls sideways: ${el.scrollWidth}px in ${el.clientWidth}px`);
  }
  return out;
}"""


@pytest.fixture
def narrow_page(browser, live_server):
    context = browser.new_context(base_url=live_server.url, viewport={"width": WIDTH, "height": 900})
    context.set_default_timeout(20_000)
    one = context.new_page()
    yield one
    context.close()


def _operator_world() -> dict:
    """What operators and editors look at, with the long values real runs have."""
    call_command("sync_schedules", verbosity=0)
    now = timezone.now()
    worker = "reco-worker-features-7f9c6d5b8-x2kqp.internal:1234567"
    for job, status in (
        ("tasks.features.refresh_content_features", JobRun.Status.SUCCEEDED),
        ("tasks.training.train_model", JobRun.Status.FAILED),
        ("tasks.features.refresh_recent_user_features", JobRun.Status.SKIPPED),
        ("tasks.experiments.compute_experiment_metrics", JobRun.Status.LOST),
        ("tasks.maintenance.mark_lost_job_runs", JobRun.Status.RETRYING),
    ):
        JobRunFactory(
            job=job,
            status=status,
            started_at=now - dt.timedelta(minutes=7),
            duration_seconds=0.5532059140000456,
            rows_written=1_234_567,
            worker=worker,
            params={"args": [], "kwargs": {"kind": "mf"}},
            error="Traceback (most recent call last):\nValueError: " + "a long error message " * 8,
        )
    parent = JobRunFactory(
        job="tasks.features.refresh_user_features",
        status=JobRun.Status.RUNNING,
        started_at=now,
        duration_seconds=None,
        shards_total=50,
        shards_done=37,
        shards_failed=1,
        worker=worker,
    )
    for number in range(3):
        JobShard.objects.create(
            parent=parent,
            number=number,
            range_start=number * 50_000,
            range_end=(number + 1) * 50_000,
            status=JobShard.Status.DONE,
            attempts=1,
            rows_written=49_999,
            duration_seconds=61.2345678,
        )
        JobRunFactory(
            job="tasks.features.refresh_user_features_shard",
            parent=parent,
            worker=worker,
            duration_seconds=61.2345678,
            params={"args": [number * 50_000, (number + 1) * 50_000], "kwargs": {"shard_id": number}},
        )
    change = RuleChangeFactory(
        changes={
            "starts_at": {"before": None, "after": now.isoformat()},
            "is_active": {"before": True, "after": False},
            "multiplier": {"before": "1.50", "after": "3.00"},
        }
    )
    BoostFactory(name="Christmas originals push in every country we serve", multiplier=Decimal("3.00"))
    experiment = ExperimentFactory(
        name="ranker-v2-vs-v1-with-a-long-experiment-name", description="Does it lift engagement?"
    )
    control = ArmFactory(experiment=experiment, name="control", is_baseline=True, traffic_share=Decimal("0.5"))
    treatment = ArmFactory(
        experiment=experiment, name="new-ranker-with-bandit-exploration", traffic_share=Decimal("0.5")
    )
    for metric, base in ((Metric.CTR, 0.0512345678), (Metric.ENGAGEMENT, 0.1034567891)):
        ExperimentResultFactory(
            arm=control, metric=metric, value=base, ci_low=base * 0.9, ci_high=base * 1.1, computed_at=now
        )
        ExperimentResultFactory(
            arm=treatment,
            metric=metric,
            value=base * 1.2,
            ci_low=base * 1.1,
            ci_high=base * 1.3,
            delta_vs_baseline=base * 0.2,
            p_value_vs_baseline=0.0123456789,
            significant=True,
            computed_at=now,
        )
    event = ViewingEvent.objects.select_related("profile", "title").first()
    EventFactory(profile=event.profile, title=event.title)
    return {"parent": parent, "change": change, "profile": event.profile_id}


def test_every_admin_and_staff_page_fits_1280_px_and_shows_numbers_for_people(narrow_page, serving_world, screenshot):
    world = _operator_world()
    UserFactory(username="ada-admin", is_staff=True, is_superuser=True, password=PASSWORD)
    page = narrow_page
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "ada-admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")

    pages = {
        "admin-index": "/admin/",
        "admin-job-runs": "/admin/tasks/jobrun/",
        "admin-job-run-fanned-out": f"/admin/tasks/jobrun/{world['parent'].pk}/change/",
        "admin-periodic-tasks": "/admin/django_celery_beat/periodictask/",
        "admin-model-versions": "/admin/recommendations/modelversion/",
        "admin-rule-changes": "/admin/ranking/rulechange/",
        "admin-rule-change": f"/admin/ranking/rulechange/{world['change'].pk}/change/",
        "admin-boosts": "/admin/ranking/boost/",
        "admin-titles": "/admin/catalog/title/",
        "admin-profiles": "/admin/users/profile/",
        "admin-viewing-events": "/admin/users/viewingevent/",
        "admin-experiments": "/admin/experiments/experiment/",
        "admin-experiment-results": "/admin/experiments/experimentresult/",
        "admin-events": "/admin/events/event/",
        "admin-api-clients": "/admin/recommendations/apiclient/",
        "staff-index": "/staff/",
        "staff-preview": f"/staff/preview/?profile={world['profile']}",
        "staff-models": "/staff/models/",
        "staff-jobs": "/staff/jobs/",
        "staff-experiments": "/staff/experiments/",
        "staff-health": "/staff/health/",
    }
    problems = {}
    for name, url in pages.items():
        response = page.goto(url)
        assert response.status == 200, url
        found = page.evaluate(OVERFLOWS, WIDTH)
        raw = RAW_FLOAT.findall(page.inner_text("#content"))
        if raw:
            found.append(f"raw floats {raw[:3]}")
        if found:
            problems[name] = found
        screenshot(page, f"1280-{name}")
    assert not problems, "\n".join(f"{name}: {found}" for name, found in problems.items())

    page.goto("/admin/tasks/jobrun/")
    listed = page.inner_text("#result_list")
    assert "0.6 s" in listed and "1,234,567" in listed
    page.goto(f"/admin/ranking/rulechange/{world['change'].pk}/change/")
    audit = page.inner_text("#content")
    assert "Starts at" in audit and "Active" in audit and "starts_at" not in audit and "is_active" not in audit


def test_activate_and_roll_back_ask_for_confirmation_in_the_admin_and_on_the_models_page(
    narrow_page, serving_world, screenshot
):
    UserFactory(username="ada-admin", is_staff=True, is_superuser=True, password=PASSWORD)
    active = ModelVersion.objects.get(kind=ModelKind.POPULARITY, status=ModelVersion.Status.ACTIVE)
    newer = model_train(kind=ModelKind.POPULARITY, activation="never").version
    page = narrow_page
    page.goto("/admin/login/?next=/admin/")
    page.fill("#id_username", "ada-admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")

    # The admin's action: an intermediate page says what changes; only "Yes" activates.
    page.goto("/admin/recommendations/modelversion/")
    page.check(f"input[name=_selected_action][value='{newer.pk}']")
    page.select_option("select[name=action]", "activate")
    page.click("button[name=index]")
    page.wait_for_selector("#confirm-model-change")
    text = page.inner_text("#confirm-model-change")
    assert active.version in text and newer.version in text
    screenshot(page, "admin-activate-confirmation")
    newer.refresh_from_db()
    assert newer.status == ModelVersion.Status.CANDIDATE
    page.click("#confirm-model-change input[type=submit]")
    page.wait_for_selector(".messagelist")
    assert "is active" in page.inner_text(".messagelist")
    newer.refresh_from_db()
    assert newer.status == ModelVersion.Status.ACTIVE

    # The staff page's Roll back: the same question first, then back to the models page.
    page.goto("/staff/models/")
    page.click(".model-kind[data-kind=popularity] button[data-action=rollback]")
    page.wait_for_selector("#confirm-model-change")
    assert active.version in page.inner_text("#confirm-model-change")
    assert page.evaluate(OVERFLOWS, WIDTH) == []
    screenshot(page, "staff-rollback-confirmation")
    newer.refresh_from_db()
    assert newer.status == ModelVersion.Status.ACTIVE
    page.click("#confirm-model-change button[data-action=confirm]")
    page.wait_for_url("**/staff/models/")
    assert "Rolled back" in page.inner_text(".messagelist")
    active.refresh_from_db()
    assert active.status == ModelVersion.Status.ACTIVE
