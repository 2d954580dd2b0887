"""Issue an API key for a client app (printed once; only its hash is stored)."""

from django.core.management.base import BaseCommand, CommandError

from recommendations.models import ApiClient, ApiScope


class Command(BaseCommand):
    help = "Create an API client and print its key, e.g. `manage.py create_api_client tv-app --rate 100/s`."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="a unique name for the client app")
        parser.add_argument("--rate", default="6000/min", help="requests allowed, e.g. 6000/min (default) or 100/s")
        parser.add_argument("--key", help="use this key instead of a random one (demo and tests)")
        parser.add_argument(
            "--scopes",
            default=",".join(ApiScope.values),
            help=f"comma-separated, of {', '.join(ApiScope.values)} (default: all)",
        )

    def handle(self, *args, name: str, rate: str, key: str | None, scopes: str, **options) -> None:
        if ApiClient.objects.filter(name=name).exists():
            raise CommandError(f"an API client named {name!r} exists; revoke it in the admin or pick another name")
        if key is not None and len(key) < 16:
            raise CommandError("--key must be at least 16 characters")
        try:
            from recommendations.api.auth import parse_rate

            parse_rate(rate)
        except (KeyError, ValueError):
            raise CommandError(f"--rate {rate!r}: expected COUNT/UNIT, e.g. 6000/min or 100/s") from None
        wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
        unknown = sorted(set(wanted) - set(ApiScope.values))
        if unknown:
            raise CommandError(f"--scopes: unknown {', '.join(unknown)}; use {', '.join(ApiScope.values)}")
        client, key = ApiClient.issue(name, key=key, rate=rate, scopes=wanted)
        self.stdout.write(key)
        self.stderr.write(f"API client {client.name}: send the key above as the X-Api-Key header")
