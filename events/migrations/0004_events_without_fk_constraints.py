"""Events keep their foreign keys in Django but not in the database: the ingest checks a batch's profiles and
titles with one query each, and the constraints' triggers looked every stored row up again (issue #19)."""
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("events", "0003_event_keys_and_monthly_partitions"),
        ("catalog", "0001_initial"),
        ("users", "0001_initial"),
        ("recommendations", "0003_apiclient_scopes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="event", name="client",
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.PROTECT,
                                    related_name="+", to="recommendations.apiclient"),
        ),
        migrations.AlterField(
            model_name="event", name="profile",
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="events", to="users.profile"),
        ),
        migrations.AlterField(
            model_name="event", name="title",
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="events", to="catalog.title"),
        ),
        migrations.AlterField(
            model_name="eventkey", name="client",
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="+", to="recommendations.apiclient"),
        ),
    ]
