from __future__ import annotations

from django.contrib import admin, messages

from clustering.models import ApiToken, Segment, TrainingRun
from clustering.tokens import api_token_create


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("name", "archetype", "is_active", "updated_at", "updated_by")
    list_filter = ("is_active", "archetype")
    search_fields = ("name",)
    readonly_fields = ("archetype", "is_active", "created_at", "updated_at", "updated_by")


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    """Runs are read here; they are started and activated on the site."""

    list_display = (
        "id",
        "status",
        "is_active",
        "chosen_k",
        "silhouette",
        "stability",
        "customers_used",
        "created_by",
        "created_at",
    )
    list_filter = ("status", "is_active")

    def get_queryset(self, request):
        return super().get_queryset(request).defer("projection")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Creating a token shows its secret once; afterwards only a prefix is visible."""

    list_display = ("name", "user", "prefix", "created_at", "last_used_at", "revoked")
    list_filter = ("revoked",)
    fields = ("user", "name", "revoked", "prefix", "created_at", "last_used_at")
    readonly_fields = ("prefix", "created_at", "last_used_at")

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        token, secret = api_token_create(user=obj.user, name=obj.name)
        obj.pk, obj.prefix, obj.key_hash = token.pk, token.prefix, token.key_hash
        messages.warning(
            request,
            f"The token for {obj.user} is {secret} — copy it now, it will not be shown again.",
        )
