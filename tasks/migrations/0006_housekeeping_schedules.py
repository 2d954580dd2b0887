from django.db import migrations

from tasks.schedules import sync_default_schedules


def add_missing_schedules(apps, schema_editor):
    # Adds the lost-run sweep and the online-feature check (an interval schedule: the first to need
    # IntervalSchedule); existing schedules are never touched.
    sync_default_schedules(apps.get_model("django_celery_beat", "PeriodicTask"),
                           apps.get_model("django_celery_beat", "CrontabSchedule"),
                           apps.get_model("django_celery_beat", "IntervalSchedule"))


class Migration(migrations.Migration):
    dependencies = [("tasks", "0005_jobrun_lost_and_heartbeat")]

    operations = [migrations.RunPython(add_missing_schedules, migrations.RunPython.noop)]
