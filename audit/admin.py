"""The audit trail in the admin, read only: it is written by the site."""

from __future__ import annotations

from django.contrib import admin

from audit.models import RunActivation, StrategyVersion


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StrategyVersion)
class StrategyVersionAdmin(ReadOnly):
    list_display = ("segment", "number", "name", "author", "created_at", "note")
    list_filter = ("segment",)


@admin.register(RunActivation)
class RunActivationAdmin(ReadOnly):
    list_display = ("run", "previous", "user", "at")
