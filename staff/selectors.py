"""Reads behind the staff pages: profile search, model versions, job runs and schedules, experiments.

Every query is index-backed and bounded (keyset or small pages), so a page costs the same at 1M profiles and
100K job runs as on an empty database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, F, Prefetch, Window
from django.db.models.functions import RowNumber, Upper
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from catalog.models import SubscriptionTier
from experiments.models import Arm, Experiment, ExperimentResult
from recommendations.models import ModelKind, ModelVersion
from tasks.models import JobRun
from users.models import Profile, ViewingEvent

PROFILES_PER_PAGE = 20
MAX_ID = 2**63 - 1  # PostgreSQL bigint: a larger id matches no row (and would fail the query)
VERSIONS_PER_KIND = 20
RUNS_PER_PAGE = 50
FAILURES_SHOWN = 20
EXPERIMENTS_PER_PAGE = 5
# Metrics shown per version, in this order, when a version has them (training writes different ones per kind).
VERSION_METRICS = (
    "ndcg_at_10",
    "recall_at_500",
    "recall_at_10",
    "map_at_10",
    "precision_at_10",
    "baseline_ndcg_at_10",
    "users",
    "queries",
)
# "Candidate recall" on the plot: recall of the 500 merged candidates when training recorded it, else recall@10.
RECALL_METRICS = ("candidate_recall", "recall_at_500", "recall_at_10")


# --- profiles ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProfileHit:
    id: int
    name: str
    is_kids: bool
    # Account details, None unless asked for (users.view_profile_details: never editors).
    account_id: int | None = None
    country: str | None = None
    tier: str | None = None


@dataclass(frozen=True)
class ProfileSearch:
    query: str
    hits: tuple[ProfileHit, ...]
    next_after: int | None  # the id to continue after, when there are more


def profiles_search(
    *, query: str, after: int = 0, limit: int = PROFILES_PER_PAGE, with_account: bool = False
) -> ProfileSearch:
    """A profile by id (ASCII digits), else profiles whose name equals `query` in any case, by id, `limit` per
    page; with_account adds each one's account id, country and tier. Both are index scans (the primary key;
    profile_name_upper_idx on UPPER(name), id). A query no profile can match (a NUL, an id beyond bigint, a name
    longer than names are) finds nothing without a query."""
    query = query.strip()
    if not query or "\x00" in query or len(query) > Profile._meta.get_field("name").max_length:
        return ProfileSearch(query, (), None)
    fields = ["id", "name", "is_kids"]
    profiles = Profile.objects.all()
    if with_account:
        profiles = profiles.select_related("account")
        fields += ["account__id", "account__country", "account__subscription_tier"]
    profiles = profiles.only(*fields)
    if query.isascii() and query.isdigit():  # not str.isdigit alone: "²" is a digit that int() refuses
        if int(query) > MAX_ID:
            return ProfileSearch(query, (), None)
        profiles = profiles.filter(pk=int(query))
    else:
        profiles = profiles.alias(upper_name=Upper("name")).filter(upper_name=query.upper(), pk__gt=min(after, MAX_ID))
    rows = list(profiles.order_by("id")[: limit + 1])
    hits = tuple(
        ProfileHit(
            p.pk,
            p.name,
            p.is_kids,
            p.account.pk,
            p.account.country,
            SubscriptionTier(p.account.subscription_tier).label,
        )
        if with_account
        else ProfileHit(p.pk, p.name, p.is_kids)
        for p in rows[:limit]
    )
    return ProfileSearch(query, hits, rows[limit - 1].pk if len(rows) > limit else None)


# --- models -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KindVersions:
    kind: str
    label: str
    versions: tuple[ModelVersion, ...]  # newest first, at most VERSIONS_PER_KIND
    active: ModelVersion | None
    can_roll_back: bool  # an earlier version was active and could serve again
    metric_names: tuple[str, ...]  # the VERSION_METRICS these versions have


def model_versions_by_kind(*, per_kind: int = VERSIONS_PER_KIND) -> list[KindVersions]:
    """The newest versions of every kind (one windowed query) and whether each kind can roll back (one more)."""
    ranked = ModelVersion.objects.annotate(
        newest=Window(RowNumber(), partition_by=[F("kind")], order_by=F("created_at").desc())
    ).filter(newest__lte=per_kind)
    rows = list(ranked.select_related("activated_by").order_by("kind", "-created_at"))
    rollback_kinds = set(
        ModelVersion.objects.filter(status=ModelVersion.Status.RETIRED, activated_at__isnull=False)
        .values("kind")
        .annotate(n=Count("id"))
        .values_list("kind", flat=True)
    )
    active = {
        v.kind: v for v in ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).select_related("activated_by")
    }
    out = []
    for kind, label in ModelKind.choices:
        versions = tuple(v for v in rows if v.kind == kind)
        if not versions and kind not in active:
            continue
        present = {name for v in versions for name, value in v.metrics.items() if isinstance(value, int | float)}
        out.append(
            KindVersions(
                kind,
                label,
                versions,
                active.get(kind),
                kind in rollback_kinds,
                tuple(m for m in VERSION_METRICS if m in present),
            )
        )
    return out


@dataclass(frozen=True)
class ModelChange:
    """What an activation or a rollback would change for one kind, shown before it is confirmed."""

    kind: str
    label: str
    serving: ModelVersion | None  # active now
    next: ModelVersion | None  # active afterwards; None: nothing to roll back to


def model_change_for_activation(*, version: ModelVersion) -> ModelChange:
    serving = ModelVersion.objects.filter(kind=version.kind, status=ModelVersion.Status.ACTIVE).first()
    return ModelChange(version.kind, ModelKind(version.kind).label, serving, version)


def model_change_for_rollback(*, kind: str) -> ModelChange:
    """The version model_version_rollback would re-activate: the most recently active retired one."""
    serving = ModelVersion.objects.filter(kind=kind, status=ModelVersion.Status.ACTIVE).first()
    previous = (
        ModelVersion.objects.filter(kind=kind, status=ModelVersion.Status.RETIRED, activated_at__isnull=False)
        .order_by("-activated_at")
        .first()
    )
    return ModelChange(kind, ModelKind(kind).label, serving, previous)


def recall_metric_of(versions: tuple[ModelVersion, ...]) -> str | None:
    """Which recall the versions of a kind recorded (RECALL_METRICS order), for the plot."""
    for name in RECALL_METRICS:
        if any(isinstance(v.metrics.get(name), int | float) for v in versions):
            return name
    return None


# --- jobs -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobsOverview:
    failures: tuple[JobRun, ...]  # newest failed or retrying runs
    running: tuple[JobRun, ...]
    runs: tuple[JobRun, ...]  # one page of every run, newest first
    next_before: int | None  # keyset: the page after this one shows runs with a smaller id
    schedules: tuple[PeriodicTask, ...]


def jobs_overview(*, before: int | None = None, per_page: int = RUNS_PER_PAGE) -> JobsOverview:
    """Failures first, then what runs now, then a page of every run by id (runs are created as they start, so
    id order is start order, on the primary key) and the beat schedule (a small table)."""
    failed = (JobRun.Status.FAILED, JobRun.Status.RETRYING, JobRun.Status.LOST)
    # One index range scan per status on jobrun_status_recent_idx, merged: no sort of the whole table.
    failures = sorted(
        [
            run
            for status in failed
            for run in JobRun.objects.filter(status=status).order_by("-started_at")[:FAILURES_SHOWN]
        ],
        key=lambda run: run.started_at,
        reverse=True,
    )[:FAILURES_SHOWN]
    running = JobRun.objects.filter(status=JobRun.Status.RUNNING).order_by("-started_at")[:FAILURES_SHOWN]
    runs = JobRun.objects.order_by("-id")
    if before is not None:
        runs = runs.filter(pk__lt=before)
    page = list(runs[: per_page + 1])
    schedules = PeriodicTask.objects.select_related("crontab", "interval", "solar", "clocked").order_by("name")
    return JobsOverview(
        tuple(failures),
        tuple(running),
        tuple(page[:per_page]),
        page[per_page - 1].pk if len(page) > per_page else None,
        tuple(schedules),
    )


# --- experiments ------------------------------------------------------------------------------------
def experiments_page(*, page: int = 1, per_page: int = EXPERIMENTS_PER_PAGE) -> Page:
    """A page of experiments, newest first, with their arms and stored results (three queries and a count)."""
    results = ExperimentResult.objects.select_related("arm").order_by("metric", "arm_id", "computed_at")
    experiments = Experiment.objects.order_by("-id").prefetch_related(
        Prefetch("arms", queryset=Arm.objects.order_by("id")), Prefetch("results", queryset=results)
    )
    return Paginator(experiments, per_page).get_page(page)


def age_of(moment: dt.datetime | None, *, now: dt.datetime | None = None) -> dict[str, Any] | None:
    """How long ago, in seconds and words ("3 h", "2 d")."""
    if moment is None:
        return None
    seconds = max(0.0, ((now or timezone.now()) - moment).total_seconds())
    if seconds < 120:
        words = f"{seconds:.0f} s"
    elif seconds < 7200:
        words = f"{seconds / 60:.0f} min"
    elif seconds < 172_800:
        words = f"{seconds / 3600:.1f} h"
    else:
        words = f"{seconds / 86400:.1f} d"
    return {"seconds": round(seconds, 1), "text": words}


# --- feature freshness ------------------------------------------------------------------------------
def title_views_between(*, title_ids: list[int], start: dt.datetime, end: dt.datetime) -> dict[int, int]:
    """Viewings per title among `title_ids` that started in [start, end): one GROUP BY on the title index."""
    rows = (
        ViewingEvent.objects.filter(title_id__in=title_ids, started_at__gte=start, started_at__lt=end)
        .order_by()
        .values("title_id")
        .annotate(views=Count("id"))
        .values_list("title_id", "views")
    )
    return {int(title_id): int(views) for title_id, views in rows}
