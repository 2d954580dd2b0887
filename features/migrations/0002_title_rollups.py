"""Daily per-title rollups of viewing history, so the 5-minute content refresh reads a day, not all of it."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("features", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="TitleDay",
            fields=[
                ("pk", models.CompositePrimaryKey("title_id", "day", blank=True, editable=False, primary_key=True,
                                                  serialize=False)),
                ("title_id", models.BigIntegerField()),
                ("day", models.DateField()),
                ("views", models.BigIntegerField()),
                ("completed", models.BigIntegerField()),
                ("watch_percentage_sum", models.FloatField()),
                ("decayed", models.FloatField()),
            ],
            options={"db_table": "features_title_day"},
        ),
        migrations.CreateModel(
            name="TitleTotal",
            fields=[
                ("title_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("views", models.BigIntegerField()),
                ("completed", models.BigIntegerField()),
                ("watch_percentage_sum", models.FloatField()),
                ("decayed", models.FloatField()),
            ],
            options={"db_table": "features_title_total"},
        ),
        migrations.CreateModel(
            name="TitleRollup",
            fields=[
                ("id", models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False)),
                ("through_day", models.DateField()),
                ("last_viewing_id", models.BigIntegerField()),
                ("rebuilt_at", models.DateTimeField()),
                ("advanced_at", models.DateTimeField()),
            ],
            options={"db_table": "features_title_rollup"},
        ),
    ]
