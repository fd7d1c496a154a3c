from __future__ import annotations

from django import forms
from django.contrib import admin, messages

from clustering.forms import check_segment_actions, check_segment_description
from clustering.models import ApiToken, Segment, TrainingRun
from clustering.tokens import TokenNameInvalid, api_token_create, api_token_name_check


class SegmentAdminForm(forms.ModelForm):
    """The same limits on what people write as the site's segment form."""

    class Meta:
        model = Segment
        fields = ("name", "description", "actions")

    def clean_description(self) -> str:
        return check_segment_description(self.cleaned_data.get("description", ""))

    def clean_actions(self) -> list[str]:
        return check_segment_actions(self.cleaned_data.get("actions"))


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentAdminForm
    list_display = ("name", "archetype", "is_active", "updated_at", "updated_by")
    list_filter = ("is_active", "archetype")
    search_fields = ("name",)
    readonly_fields = ("archetype", "is_active", "created_at", "updated_at", "updated_by")

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user  # the strategy's version history names its author
        super().save_model(request, obj, form, change)


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


class ApiTokenAdminForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ("user", "name", "revoked")

    def clean_name(self) -> str:
        try:
            return api_token_name_check(self.cleaned_data.get("name", ""))
        except TokenNameInvalid as problem:
            raise forms.ValidationError(str(problem).capitalize() + ".") from None


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    form = ApiTokenAdminForm
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
