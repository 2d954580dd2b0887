"""Impression items get a key space of their own (issue #14).

An impression's items were stored as client_event_id "<event_id>:<position>", the key space of event ids, so a
click whose id was "X:1" was dropped as a duplicate of impression X's item 1. The key becomes (client,
client_event_id, item_position): an impression's rows keep its event id and differ by item position, every other
event is item 0. Existing impression rows lose their ":<position>" suffix in one UPDATE, so a batch stored before
the change and retried after it is still recognised as a duplicate.
"""
from django.db import migrations, models

# Portable (PostgreSQL and SQLite) and set-based. Only a row whose id ends in ":<its position>" is converted.
_SUFFIX = "':' || position"
STRIP_ITEM_SUFFIX = f"""
UPDATE events_event
SET client_event_id = substr(client_event_id, 1, length(client_event_id) - length({_SUFFIX}))
WHERE type = 'impression' AND position IS NOT NULL
  AND substr(client_event_id, length(client_event_id) - length({_SUFFIX}) + 1) = {_SUFFIX}
"""
# Back to the old scheme; fails on the old constraint where the new key space was used ("X:1" and X's item 1).
ADD_ITEM_SUFFIX = f"UPDATE events_event SET client_event_id = client_event_id || {_SUFFIX} WHERE type = 'impression'"


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="event",
            name="event_unique_client_event",
        ),
        migrations.RunSQL(STRIP_ITEM_SUFFIX, reverse_sql=ADD_ITEM_SUFFIX, elidable=False),
        migrations.AddField(
            model_name="event",
            name="item_position",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Case(
                    models.When(then=models.F("position"), type="impression"), default=models.Value(0)
                ),
                output_field=models.PositiveSmallIntegerField(),
            ),
        ),
        migrations.AddConstraint(
            model_name="event",
            constraint=models.UniqueConstraint(
                fields=("client", "client_event_id", "item_position"), name="event_unique_client_item"
            ),
        ),
        migrations.AddConstraint(
            model_name="event",
            constraint=models.CheckConstraint(
                condition=models.Q(models.Q(("type", "impression"), _negated=True), ("position__isnull", False),
                                   _connector="OR"),
                name="event_impression_has_position",
            ),
        ),
    ]
