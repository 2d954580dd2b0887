"""A small partial index of the viewings last watched over a day after they started (PostgreSQL only).

Reads by last_watched_at ("profiles active since") bound started_at to a day before, which the month partitions
prune to the newest one or two, and find the rare longer viewings through this index instead of probing every
month once per profile (features.selectors.profiles_active_since).
"""
from django.db import migrations

from users.models import LONG_VIEWING_SQL

CREATE = (f"CREATE INDEX IF NOT EXISTS viewing_long_idx ON users_viewingevent (last_watched_at, profile_id) "
          f"WHERE {LONG_VIEWING_SQL}")
DROP = "DROP INDEX IF EXISTS viewing_long_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0004_viewing_events_monthly_partitions"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
