"""Campaigns in the admin, to look at: they are created and measured on the site."""

from __future__ import annotations

from django.contrib import admin

from campaigns.models import Campaign, OutcomeImport


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(ReadOnly):
    list_display = ("name", "channel", "audience", "control_size", "created_by", "created_at")
    exclude = ("strata",)


@admin.register(OutcomeImport)
class OutcomeImportAdmin(ReadOnly):
    list_display = ("campaign", "source", "counted", "outsiders", "imported_by", "imported_at")
