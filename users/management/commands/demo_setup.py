"""Prepare the demo: a small synthetic world and two staff logins, then say where to log in."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from catalog.models import Title
from config.celery import app as celery_app
from features import selectors as feature_selectors
from recommendations.models import ApiClient, ModelKind, ModelVersion
from tasks.features import refresh_content_features, refresh_user_features, refresh_user_features_shard
from tasks.models import JobRun
from tasks.training import train_model
from users.models import Profile
from users.services import new_viewers_ensure

DEMO_PASSWORD = "reco-demo"
DEMO_API_KEY = "reco-demo-key-not-for-production"
DEMO_WORLD = ["--titles", "3000", "--accounts", "1000", "--events", "150000", "--seed", "42"]
DEMO_KINDS = ("popularity", "mf", "content", "ncf", "ranker")  # the ranker last: it learns from the others
DEMO_PARAMS = {"ncf": {"n_epochs": 3}}  # a quick NCF for the demo
NEW_VIEWER = "New viewer"  # just signed up: onboarding genres, no history (the cold start to look at)
NEW_VIEWER_GENRES = (("Comedy", "Romance", "Drama"), ("Sci-Fi", "Thriller", "Mystery"), ("Animation", "Family"))


class Command(BaseCommand):
    help = (
        "Load a small deterministic synthetic world (3,000 titles, ~2,500 profiles, 150,000 viewing events) "
        "unless the catalog already has titles, train and activate the models unless some are active, "
        "refresh the online features (every run; training and refreshes run as recorded job runs), and create the demo logins 'admin' (superuser) and 'editor' "
        f"(Editors group), both with the password '{DEMO_PASSWORD}'. Safe to run again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1:8000", help="where the server will listen")

    def handle(self, *args, host: str, verbosity: int, **options) -> None:
        if not Title.objects.exists():
            call_command("generate_synthetic", *DEMO_WORLD, verbosity=verbosity, stdout=self.stdout)
        if not ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists():
            self._train(verbosity)
        self._refresh_features(verbosity)
        with transaction.atomic():
            _demo_user("admin", superuser=True)
            editor = _demo_user("editor", superuser=False)
            editor.groups.add(Group.objects.get(name="Editors"))
            if not ApiClient.objects.filter(name="demo-app").exists():
                ApiClient.issue("demo-app", key=DEMO_API_KEY)
        new_viewers = new_viewers_ensure(name=NEW_VIEWER, genre_picks=NEW_VIEWER_GENRES)
        profile_id = Profile.objects.filter(viewing_events__isnull=False).values_list("id", flat=True).first()
        self.stdout.write(
            self.style.SUCCESS(
                f"\nReco demo is ready: http://{host}/\nAdmin: http://{host}/admin/  (login 'admin' or 'editor', password "
                f"'{DEMO_PASSWORD}')\nAPI docs: http://{host}/api/docs/\nTry the API (demo client key):\n"
                f"  curl -s -H 'X-Api-Key: {DEMO_API_KEY}' 'http://{host}/api/recs?profile_id={profile_id}&n=10'\n"
                + (
                    f"A new viewer (onboarding genres, nothing watched): profile_id={new_viewers[0]}\n"
                    if new_viewers
                    else ""
                )
            )
        )

    def _train(self, verbosity: int) -> None:
        """Each kind as a training job (recorded as a JobRun, as the daily schedule's are), run here and now."""
        for kind in DEMO_KINDS:
            run = _job(train_model, kwargs={"kind": kind, "params": DEMO_PARAMS.get(kind)})
            version = ModelVersion.objects.filter(kind=kind).order_by("-created_at", "-pk").first()
            if run.status != JobRun.Status.SUCCEEDED or version is None:
                self._failed(f"{kind:<10} not trained", run)
            elif verbosity:
                self.stdout.write(training_summary(version))

    def _refresh_features(self, verbosity: int) -> None:
        """The online features the request path reads (the embedded store has no beat to refresh them), as the
        jobs the schedules run, so the job-run list shows them."""
        runs = [_job(refresh_content_features)]
        if bounds := feature_selectors.profile_id_bounds():
            if celery_app.conf.task_always_eager:  # no broker: the full refresh's shards run here, in turn
                runs.append(_job(refresh_user_features))
            else:  # a broker: the shards would wait for a worker; one shard task covers every profile here
                low, high = bounds
                runs.append(_job(refresh_user_features_shard, args=(low, high + 1)))
        for run in runs:
            if run.status != JobRun.Status.SUCCEEDED:
                self._failed(run.job, run)
        if verbosity:
            titles, profiles = runs[0].rows_written, sum(run.rows_written for run in runs[1:])
            self.stdout.write(f"Online features refreshed: {titles:,} titles, {profiles:,} profiles.")

    def _failed(self, what: str, run: JobRun) -> None:
        reason = run.error.strip().splitlines()[-1] if run.error.strip() else run.get_status_display()
        self.stderr.write(f"{what}: {reason} (admin: Job runs)")


def _job(task, *, args: tuple = (), kwargs: dict | None = None) -> JobRun:
    """Run a job in this process (whatever the broker), recording its JobRun as a worker would; returns it."""
    result = task.apply(args=args, kwargs=kwargs or {}, throw=False)  # a failure is in its JobRun
    return JobRun.objects.filter(task_id=result.id, parent__isnull=True).order_by("-pk").first() or JobRun(
        job=task.name, status=JobRun.Status.FAILED, error=str(result.result)
    )


def training_summary(version: ModelVersion) -> str:
    """One line per trained kind with the metrics it has: the ranker is measured on its held-out queries
    against the order without it (it has no P@10 of its own); the other kinds on held-out viewings."""
    metrics, seconds = version.metrics, version.metrics.get("train_seconds", 0)
    if version.kind == ModelKind.RANKER:
        measured = (
            f"NDCG@10 {metrics.get('ndcg_at_10', 0):.4f} (without the ranker "
            f"{metrics.get('baseline_ndcg_at_10', 0):.4f}) on {metrics.get('held_out_queries', 0):,} queries"
        )
    else:
        measured = f"NDCG@10 {metrics.get('ndcg_at_10', 0):.4f}  P@10 {metrics.get('precision_at_10', 0):.4f}"
    state = "active" if version.status == ModelVersion.Status.ACTIVE else "candidate"
    return f"{version.kind:<10} {version.version}  {measured}  {seconds:.1f} s  {state}: {version.notes}"


def _demo_user(username: str, *, superuser: bool):
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.is_staff = True
    user.is_superuser = superuser
    user.set_password(DEMO_PASSWORD)
    user.save()
    return user
