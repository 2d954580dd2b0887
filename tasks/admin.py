"""Job runs in the admin: read-only, failures easy to find."""
from django.contrib import admin

from tasks.models import JobRun


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("job", "status", "attempt", "started_at", "duration_seconds", "rows_written", "worker")
    list_filter = ("status", "job")
    search_fields = ("job", "task_id", "error", "worker")
    readonly_fields = [f.name for f in JobRun._meta.fields]
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
