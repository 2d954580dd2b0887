from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("tasks", "0004_experiment_schedules"),
    ]

    operations = [
        migrations.AddField(
            model_name="jobrun",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, help_text="Last sign of life while running.", null=True),
        ),
        migrations.AddField(
            model_name="jobrun",
            name="lock_name",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="jobrun",
            name="lock_token",
            field=models.CharField(blank=True, help_text="The holder's token in the job lock.", max_length=32),
        ),
        migrations.AddField(
            model_name="jobrun",
            name="worker",
            field=models.CharField(blank=True, help_text="host:pid of the process that ran it.", max_length=200),
        ),
        migrations.AlterField(
            model_name="jobrun",
            name="status",
            field=models.CharField(
                choices=[
                    ("running", "Running"),
                    ("succeeded", "Succeeded"),
                    ("retrying", "Failed, will retry"),
                    ("failed", "Failed"),
                    ("skipped", "Skipped (another run holds the lock)"),
                    ("lost", "Lost (its worker died)"),
                ],
                default="running",
                max_length=10,
            ),
        ),
        migrations.AddIndex(
            model_name="jobrun",
            index=models.Index(fields=["task_id"], name="jobrun_task_idx"),
        ),
    ]
