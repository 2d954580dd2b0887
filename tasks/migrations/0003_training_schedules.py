from django.db import migrations

from tasks.schedules import sync_default_schedules


def add_missing_schedules(apps, schema_editor):
    # Adds the schedules introduced since 0002 (by name); existing ones are never touched.
    sync_default_schedules(apps.get_model("django_celery_beat", "PeriodicTask"),
                           apps.get_model("django_celery_beat", "CrontabSchedule"))


class Migration(migrations.Migration):
    dependencies = [("tasks", "0002_default_schedules")]

    operations = [migrations.RunPython(add_missing_schedules, migrations.RunPython.noop)]
