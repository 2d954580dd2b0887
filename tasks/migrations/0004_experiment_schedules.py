from django.db import migrations

from tasks.schedules import sync_default_schedules


def add_missing_schedules(apps, schema_editor):
    # Adds the bandit and experiment-metrics schedules (by name); existing ones are never touched.
    sync_default_schedules(apps.get_model("django_celery_beat", "PeriodicTask"),
                           apps.get_model("django_celery_beat", "CrontabSchedule"))


class Migration(migrations.Migration):
    dependencies = [("tasks", "0003_training_schedules")]

    operations = [migrations.RunPython(add_missing_schedules, migrations.RunPython.noop)]
