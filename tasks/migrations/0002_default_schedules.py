from django.db import migrations

from tasks.schedules import DEFAULT_SCHEDULES, sync_default_schedules


def add_default_schedules(apps, schema_editor):
    sync_default_schedules(apps.get_model("django_celery_beat", "PeriodicTask"),
                           apps.get_model("django_celery_beat", "CrontabSchedule"))


def remove_default_schedules(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name__in=list(DEFAULT_SCHEDULES)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(add_default_schedules, remove_default_schedules)]
