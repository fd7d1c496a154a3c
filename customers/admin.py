from __future__ import annotations

from django.contrib import admin
from django.db import models
from django.db.models import CharField, F, Func, OuterRef, Subquery, Value
from django.db.models.functions import Concat, LPad
from django.http import StreamingHttpResponse
from django.urls import reverse

from clustering.models import ClusterAssignment
from customers.catalogue import BUILT_IN_KEYS, CUSTOMER_ID_MAX_LENGTH
from customers.forms import CustomerAdminForm, PlainFloatField, PlainIntegerField
from customers.models import Attribute, Customer, ImportRecord
from customers.services import customers_export_lines


class BandFilter(admin.SimpleListFilter):
    """Filter a numeric field by the bands a marketer thinks in."""

    field: str
    bands: tuple[tuple[str, str, float | None, float | None], ...]

    def lookups(self, request, model_admin):
        return [(key, label) for key, label, _low, _high in self.bands]

    def queryset(self, request, queryset):
        for key, _label, low, high in self.bands:
            if self.value() == key:
                if low is not None:
                    queryset = queryset.filter(**{f"{self.field}__gte": low})
                if high is not None:
                    queryset = queryset.filter(**{f"{self.field}__lt": high})
        return queryset


class AgeBandFilter(BandFilter):
    title = "age band"
    parameter_name = "age_band"
    field = "age"
    bands = (
        ("u25", "under 25", None, 25),
        ("25-34", "25 to 34", 25, 35),
        ("35-49", "35 to 49", 35, 50),
        ("50-64", "50 to 64", 50, 65),
        ("65+", "65 and over", 65, None),
    )


class IncomeBandFilter(BandFilter):
    title = "income band"
    parameter_name = "income_band"
    field = "annual_income"
    bands = (
        ("u30", "under 30k", None, 30),
        ("30-60", "30k to 60k", 30, 60),
        ("60-100", "60k to 100k", 60, 100),
        ("100+", "100k and over", 100, None),
    )


@admin.action(description="Export selected customers as CSV")
def export_selected(modeladmin, request, queryset):
    response = StreamingHttpResponse(
        customers_export_lines(queryset=queryset), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = 'attachment; filename="customers.csv"'
    return response


# Customer IDs in natural order, "C-9" before "C-10" (as text, "C-10" comes first): by the
# ID without its trailing digits, then by the whole ID padded on the left with zeros (which
# no collation ignores, as some do spaces), so that a shorter number sorts first. SQLite and
# PostgreSQL both have RTRIM(text, characters).
ID_STEM = Func(F("customer_id"), Value("0123456789"), function="RTRIM", output_field=CharField())
NATURAL_ID_ORDER = Concat(
    ID_STEM, LPad("customer_id", CUSTOMER_ID_MAX_LENGTH, Value("0")), output_field=CharField()
)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerAdminForm
    list_display = ("customer", *BUILT_IN_KEYS, "segment", "updated_at")
    list_filter = ("sex", AgeBandFilter, IncomeBandFilter)
    search_fields = ("customer_id__startswith",)
    ordering = (NATURAL_ID_ORDER,)
    readonly_fields = ("created_at", "updated_at", "segment")
    actions = (export_selected,)
    # Adds the "Import CSV" link (to the upload page) next to "Add customer".
    change_list_template = "customers/admin/change_list.html"
    list_per_page = 50
    # Counting a million rows on every page costs more than it tells.
    show_full_result_count = False

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        # Numbers as the importer reads them: "3_0", "1e2" or other scripts' digits are not.
        if isinstance(db_field, models.FloatField):
            kwargs["form_class"] = PlainFloatField
        elif isinstance(db_field, models.IntegerField) and not db_field.primary_key:
            kwargs["form_class"] = PlainIntegerField
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_queryset(self, request):
        # The segment of the active model, read with the page's rows (not one query a row).
        current = ClusterAssignment.objects.filter(run__is_active=True, customer=OuterRef("pk"))
        segment = Subquery(current.values("cluster__segment__name")[:1])
        return super().get_queryset(request).annotate(segment_name=segment)

    @admin.display(description="Customer ID", ordering=NATURAL_ID_ORDER)
    def customer(self, obj: Customer) -> str:
        return obj.customer_id

    @admin.display(description="Segment (active model)")
    def segment(self, obj: Customer) -> str:
        return getattr(obj, "segment_name", None) or "in no segment"

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["import_url"] = reverse("customers:import")
        return super().changelist_view(request, extra_context)


admin.site.site_header = "Customer segmentation: data management"
admin.site.site_title = "Segmentation admin"


@admin.register(Attribute)
class AttributeAdmin(admin.ModelAdmin):
    """The customers' own columns: relabel them here; their values are on each customer."""

    list_display = ("key", "label", "kind", "source", "expression", "created_at")
    readonly_fields = ("key", "kind", "source", "expression", "header", "created_at")

    def has_add_permission(self, request) -> bool:
        return False  # attributes come from imported files, with keys the importer makes


@admin.register(ImportRecord)
class ImportRecordAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "file_name",
        "created_by",
        "created_at",
        "created",
        "updated",
        "undone_at",
    )
    readonly_fields = [f.name for f in ImportRecord._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
