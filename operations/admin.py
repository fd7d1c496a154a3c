from __future__ import annotations

from django import forms
from django.contrib import admin

from operations.models import (
    DriftReport,
    Notification,
    NotificationPreference,
    PredictionRecord,
    Schedule,
    ScheduledRun,
)
from operations.schedules import (
    ScheduleError,
    cron_fields,
    schedule_delete,
    schedule_params,
    schedule_save,
)


class ScheduleAdminForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = (
            "name",
            "enabled",
            "kind",
            "cron",
            "interval_seconds",
            "activation",
            "features",
            "k",
            "k_min",
            "k_max",
            "missing",
            "algorithm",
            "drift_psi_threshold",
        )

    def clean(self):
        """The same checks as schedule_save, as form errors instead of a server error."""
        data = super().clean()
        names = {f.name for f in Schedule._meta.fields}
        candidate = Schedule(**{k: v for k, v in data.items() if k in names})
        try:
            schedule_params(candidate)
            if candidate.kind == Schedule.Kind.INTERVAL and not candidate.interval_seconds:
                raise ScheduleError("Give the interval in seconds.")
            if candidate.kind != Schedule.Kind.INTERVAL:
                cron_fields(candidate)
        except ValueError as problem:
            raise forms.ValidationError(str(problem)) from None
        return data


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    """Saved through the same service as the operations page, so the beat entry follows."""

    form = ScheduleAdminForm
    list_display = ("name", "enabled", "kind", "cron", "activation", "algorithm", "updated_at")

    def save_model(self, request, obj, form, change):
        schedule_save(schedule=obj, user=request.user)

    def delete_model(self, request, obj):
        schedule_delete(schedule=obj)

    def delete_queryset(self, request, queryset):
        for schedule in queryset:
            schedule_delete(schedule=schedule)


@admin.register(ScheduledRun)
class ScheduledRunAdmin(admin.ModelAdmin):
    list_display = ("schedule", "run", "reason", "outcome", "created_at")
    readonly_fields = [f.name for f in ScheduledRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(PredictionRecord)
class PredictionRecordAdmin(admin.ModelAdmin):
    list_display = ("created_at", "channel", "user", "run_number", "segment_name", "confidence")
    list_filter = ("channel",)
    readonly_fields = [f.name for f in PredictionRecord._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "subject", "emailed_to")
    readonly_fields = [f.name for f in Notification._meta.fields]


admin.site.register(NotificationPreference)
admin.site.register(DriftReport)
