"""Read-only admin for client events: filter by type, experiment and arm; search by request id."""

from __future__ import annotations

from django.contrib import admin

from config.admin import LargeTableAdmin, ReadOnlyAdmin
from events.models import Event
from events.selectors import experiment_arms


class ExperimentFilter(admin.SimpleListFilter):
    title = "experiment"
    parameter_name = "experiment"

    def lookups(self, request, model_admin):
        experiments = dict.fromkeys(experiment for experiment, _ in experiment_arms())
        return [(experiment, experiment) for experiment in experiments]

    def queryset(self, request, queryset):
        return queryset.filter(experiment=self.value()) if self.value() else queryset


class ArmFilter(admin.SimpleListFilter):
    """The arms of the chosen experiment, or of every experiment."""

    title = "arm"
    parameter_name = "arm"

    def lookups(self, request, model_admin):
        chosen = request.GET.get(ExperimentFilter.parameter_name)
        arms = dict.fromkeys(arm for experiment, arm in experiment_arms() if arm and chosen in (None, experiment))
        return [(arm, arm) for arm in arms]

    def queryset(self, request, queryset):
        return queryset.filter(arm=self.value()) if self.value() else queryset


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin, LargeTableAdmin):
    # the client app and the policy are on each event's page: the list stays readable at 1280 px
    list_display = ("id", "type", "profile", "title", "position", "experiment", "arm", "device_type", "occurred_at")
    list_select_related = ("profile", "title", "client")
    list_filter = ("type", ExperimentFilter, ArmFilter)
    raw_id_fields = ("client", "profile", "title")
    search_fields = ("=request_id",)  # exact: served by the request_id index
    search_help_text = "Exact request id of an /api/recs response."
    ordering = ("-pk",)  # newest first by the primary key: any other order sorts the whole table
    sortable_by = ()
