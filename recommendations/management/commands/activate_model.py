"""Activate a registered model version (or roll back a kind) from the command line."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from recommendations.models import ModelVersion
from recommendations.services import ModelActivationError, model_version_activate, model_version_rollback


class Command(BaseCommand):
    help = (
        "Make a model version the active one of its kind (its artifact is verified first), or with "
        "--rollback KIND re-activate the previously active version. Web processes switch within seconds."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("version_id", nargs="?", type=int, help="ModelVersion id (see the admin)")
        parser.add_argument("--rollback", metavar="KIND", help="roll this kind back instead")

    def handle(self, *args, version_id: int | None, rollback: str | None, **options) -> None:
        if (version_id is None) == (rollback is None):
            raise CommandError("Give a version id or --rollback KIND.")
        try:
            if rollback:
                version = model_version_rollback(kind=rollback)
            else:
                version = model_version_activate(version_id=version_id)
        except ModelVersion.DoesNotExist:
            raise CommandError(f"No model version {version_id}.") from None
        except ModelActivationError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(self.style.SUCCESS(f"{version} is active."))
