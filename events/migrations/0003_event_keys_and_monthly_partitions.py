"""API events partitioned by month of occurred_at (issue #15); their idempotency key moves to events_eventkey.

PostgreSQL requires the partition key in every unique constraint, and (client, client_event_id, item_position,
occurred_at) would let a retry that reports another occurred_at through. So the key gets a plain table of its own,
filled from the stored events, and the unique constraint on the events goes. Then, on PostgreSQL only, the table is
rebuilt partitioned (config.partitions.convert_to_partitioned: one INSERT ... SELECT, indexes built once; on this
2-core machine about 6 s per million rows). Elsewhere (SQLite) it stays one table.
"""
import django.db.models.deletion
from django.db import migrations, models

from config.partitions import API_EVENTS, convert_to_partitioned, convert_to_plain

MONTHS_AHEAD = 3  # what the migration creates; the daily job keeps RECO_PARTITION_MONTHS_AHEAD ready from then on
COPY_KEYS = """
INSERT INTO events_eventkey (client_id, client_event_id, item_position, occurred_at)
SELECT client_id, client_event_id, item_position, occurred_at FROM events_event
"""


def partition(apps, schema_editor):
    convert_to_partitioned(API_EVENTS, months_ahead=MONTHS_AHEAD)


def unpartition(apps, schema_editor):
    convert_to_plain(API_EVENTS)


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0002_impression_item_key"),
        ("recommendations", "0003_apiclient_scopes"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventKey",
            fields=[
                ("pk", models.CompositePrimaryKey("client", "client_event_id", "item_position", blank=True,
                                                  editable=False, primary_key=True, serialize=False)),
                ("client", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                             related_name="+", to="recommendations.apiclient")),
                ("client_event_id", models.CharField(max_length=80)),
                ("item_position", models.PositiveSmallIntegerField()),
                ("occurred_at", models.DateTimeField()),
            ],
            options={"indexes": [models.Index(fields=["occurred_at"], name="event_key_occurred_idx")]},
        ),
        migrations.RunSQL(COPY_KEYS, reverse_sql=migrations.RunSQL.noop, elidable=False),
        migrations.RemoveConstraint(model_name="event", name="event_unique_client_item"),
        migrations.RunPython(partition, unpartition, elidable=False),
    ]
