"""The database router: ORM reads to a replica when config.db.replicas allows it, everything else to the primary.

Installed only when DATABASE_REPLICA_URLS names replicas. Sessions, users and login attempts are always read on
the primary (a login must count at once). Writes always go to the primary, and mark the request as having
written (its later reads see the primary); a single-row save of a profile or an account pins its profiles.
Migrations run on the primary only: the replicas follow by streaming.
"""

from __future__ import annotations

from config.db.replicas import PRIMARY, PRIMARY_APPS, note_write, read_alias, replica_aliases


class ReplicaRouter:
    def db_for_read(self, model, **hints) -> str:
        return PRIMARY if model._meta.app_label in PRIMARY_APPS else read_alias()

    def db_for_write(self, model, **hints) -> str:
        instance = hints.get("instance")
        note_write(model_label=model._meta.label, pk=getattr(instance, "pk", None))
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, model_name: str | None = None, **hints) -> bool | None:
        return False if db in replica_aliases() else None
