"""Job runs in the admin: read-only, failures easy to find; a fanned-out run lists its shards and their attempts.
The beat's schedules: "Run selected tasks" counts as a run of each."""

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django_celery_beat.admin import PeriodicTaskAdmin as BeatPeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

from staff import formatting
from tasks.models import JobRun, JobShard
from tasks.services import periodic_tasks_record_run


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    @admin.display(description="duration")
    def duration(self, row: JobRun | JobShard) -> str:
        return formatting.duration(row.duration_seconds)

    @admin.display(description="rows")
    def rows(self, row: JobRun | JobShard) -> str:
        return formatting.thousands(row.rows_written)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class JobShardInline(ReadOnlyInline):
    model = JobShard
    fields = ("number", "range_start", "range_end", "status", "attempts", "rows", "duration", "error")
    readonly_fields = fields
    show_change_link = False
    classes = ("collapse",)


class ShardRunInline(ReadOnlyInline):
    """Every attempt of every shard: a lost or failed one shows here, with its error."""

    model = JobRun
    fk_name = "parent"
    verbose_name, verbose_name_plural = "shard attempt", "shard attempts"
    fields = ("params", "status", "attempt", "started_at", "duration", "rows", "worker", "error")
    readonly_fields = fields
    classes = ("collapse",)


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("job_name", "status_short", "progress", "attempt", "started", "duration", "rows", "worker")
    list_filter = ("status", "job")
    search_fields = ("job", "task_id", "error", "worker")
    # the change page: every field, the duration as people read it
    fields = [("duration" if f.name == "duration_seconds" else f.name) for f in JobRun._meta.fields if f.name != "id"]
    readonly_fields = fields
    raw_id_fields = ("parent",)
    inlines = (JobShardInline, ShardRunInline)
    show_full_result_count = False
    list_per_page = 50

    @admin.display(description="job", ordering="job")
    def job_name(self, run: JobRun) -> str:
        kwargs = run.params.get("kwargs") if isinstance(run.params, dict) else None
        kind = kwargs.get("kind") if isinstance(kwargs, dict) else None
        name = run.job.removeprefix("tasks.")
        return f"{name} ({kind})" if kind else name

    @admin.display(description="status", ordering="status")
    def status_short(self, run: JobRun) -> str:
        label = run.get_status_display()
        return format_html('<span title="{}">{}</span>', label, label.split(" (")[0])

    @admin.display(description="started", ordering="started_at")
    def started(self, run: JobRun) -> str:
        return date_format(localtime(run.started_at), "Y-m-d H:i:s")

    @admin.display(description="duration", ordering="duration_seconds")
    def duration(self, run: JobRun) -> str:
        return formatting.duration(run.duration_seconds)

    @admin.display(description="rows", ordering="rows_written")
    def rows(self, run: JobRun) -> str:
        return formatting.thousands(run.rows_written)

    @admin.display(description="shards")
    def progress(self, run: JobRun) -> str:
        return run.progress

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None and obj.shards_total else ()

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


admin.site.unregister(PeriodicTask)


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(BeatPeriodicTaskAdmin):
    """django-celery-beat's admin, with the run count beside the last run, and "Run selected tasks" counting as
    a run of each schedule (beat's own sends do; a run by hand did not)."""

    list_display = ("name", "enabled", "scheduler", "last_run", "total_run_count", "one_off")

    @admin.display(description="last run", ordering="last_run_at")
    def last_run(self, task: PeriodicTask) -> str:
        return date_format(localtime(task.last_run_at), "Y-m-d H:i") if task.last_run_at else "never"

    @admin.action(description="Run selected tasks")
    def run_tasks(self, request: HttpRequest, queryset: QuerySet[PeriodicTask]) -> None:
        self.celery_app.loader.import_default_modules()
        if any(self.celery_app.tasks.get(task.task) is None for task in queryset):
            super().run_tasks(request, queryset)  # says which task is unknown, runs none
            return
        ids = list(queryset.values_list("pk", flat=True))
        try:
            super().run_tasks(request, queryset)  # sent to the broker; run here when there is none
        except Exception as error:
            self.message_user(
                request, f"A task failed: {type(error).__name__}: {error} (see Job runs).", messages.ERROR
            )
        periodic_tasks_record_run(task_ids=ids)
