"""Prepare the demo: a small synthetic world and two staff logins, then say where to log in."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction

from catalog.models import Title
from features import selectors as feature_selectors
from features import services as feature_services
from recommendations.models import ApiClient, ModelVersion
from users.models import Profile

DEMO_PASSWORD = "reco-demo"  # noqa: S105 — a local demo on 127.0.0.1 only
DEMO_API_KEY = "reco-demo-key-not-for-production"  # noqa: S105 — the demo client app's key
DEMO_WORLD = ["--titles", "3000", "--accounts", "1000", "--events", "150000", "--seed", "42"]
DEMO_TRAINING = ["--kinds", "popularity,mf,content,ncf,ranker", "--ncf-epochs", "3"]


class Command(BaseCommand):
    help = (
        "Load a small deterministic synthetic world (3,000 titles, ~2,500 profiles, 150,000 viewing events) "
        "unless the catalog already has titles, train and activate the models unless some are active, "
        "refresh the online features (every run), and create the demo logins 'admin' (superuser) and 'editor' "
        f"(Editors group), both with the password '{DEMO_PASSWORD}'. Safe to run again."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1:8000", help="where the server will listen")

    def handle(self, *args, host: str, verbosity: int, **options) -> None:
        if not Title.objects.exists():
            call_command("generate_synthetic", *DEMO_WORLD, verbosity=verbosity, stdout=self.stdout)
        if not ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists():
            call_command("train_models", *DEMO_TRAINING, verbosity=verbosity, stdout=self.stdout)
        self._refresh_features(verbosity)
        with transaction.atomic():
            _demo_user("admin", superuser=True)
            editor = _demo_user("editor", superuser=False)
            editor.groups.add(Group.objects.get(name="Editors"))
            if not ApiClient.objects.filter(name="demo-app").exists():
                ApiClient.issue("demo-app", key=DEMO_API_KEY)
        profile_id = Profile.objects.filter(viewing_events__isnull=False).values_list("id", flat=True).first()
        self.stdout.write(
            self.style.SUCCESS(
                f"\nReco demo is ready. Admin: http://{host}/admin/  (login 'admin' or 'editor', password "
                f"'{DEMO_PASSWORD}')\nAPI docs: http://{host}/api/docs/\nTry the API (demo client key):\n"
                f"  curl -s -H 'X-Api-Key: {DEMO_API_KEY}' 'http://{host}/api/recs?profile_id={profile_id}&n=10'\n"
            )
        )

    def _refresh_features(self, verbosity: int) -> None:
        """The online features the request path reads (the embedded store has no beat to refresh them)."""
        titles = feature_services.content_features_refresh()
        profiles = 0
        if bounds := feature_selectors.profile_id_bounds():
            low, high = bounds
            profiles = feature_services.user_features_refresh(profile_id_start=low, profile_id_end=high + 1)
        if verbosity:
            self.stdout.write(f"Online features refreshed: {titles:,} titles, {profiles:,} profiles.")


def _demo_user(username: str, *, superuser: bool):
    user, _ = get_user_model().objects.get_or_create(username=username)
    user.is_staff = True
    user.is_superuser = superuser
    user.set_password(DEMO_PASSWORD)
    user.save()
    return user
