"""Job runs in the admin: read-only, failures easy to find; a fanned-out run lists its shards and their attempts."""
from django.contrib import admin

from tasks.models import JobRun, JobShard


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class JobShardInline(ReadOnlyInline):
    model = JobShard
    fields = ("number", "range_start", "range_end", "status", "attempts", "rows_written", "duration_seconds", "error")
    readonly_fields = fields
    show_change_link = False
    classes = ("collapse",)


class ShardRunInline(ReadOnlyInline):
    """Every attempt of every shard: a lost or failed one shows here, with its error."""

    model = JobRun
    fk_name = "parent"
    verbose_name, verbose_name_plural = "shard attempt", "shard attempts"
    fields = ("params", "status", "attempt", "started_at", "duration_seconds", "rows_written", "worker", "error")
    readonly_fields = fields
    classes = ("collapse",)


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = (
        "job", "status", "progress", "attempt", "started_at", "duration_seconds", "rows_written", "worker",
    )  # fmt: skip
    list_filter = ("status", "job")
    search_fields = ("job", "task_id", "error", "worker")
    readonly_fields = [f.name for f in JobRun._meta.fields]
    raw_id_fields = ("parent",)
    inlines = (JobShardInline, ShardRunInline)
    show_full_result_count = False
    list_per_page = 50

    @admin.display(description="shards")
    def progress(self, run: JobRun) -> str:
        return run.progress

    def get_inlines(self, request, obj):  # noqa: ANN001, ANN201
        return self.inlines if obj is not None and obj.shards_total else ()

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
