"""Customers, the raw material of every segmentation, and the attributes their files bring.

The built-in fields and their ranges come from the feature catalogue
(customers.catalogue); the database checks the same ranges. Every field but
the ID may be unknown (NULL): a blank in a file stays missing, never zero.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from customers.catalogue import (
    BUILT_IN_CATALOGUE,
    CATEGORICAL,
    CUSTOMER_ID_MAX_LENGTH,
    NUMERIC,
    SEX_CHOICES,
    SOURCE_ATTRIBUTE,
    SOURCE_DERIVED,
    Feature,
)


def _validators(key: str) -> list:
    feature = BUILT_IN_CATALOGUE[key]
    return [MinValueValidator(feature.minimum), MaxValueValidator(feature.maximum)]


def range_check(key: str) -> models.CheckConstraint:
    feature = BUILT_IN_CATALOGUE[key]
    within = Q(**{f"{key}__gte": feature.minimum, f"{key}__lte": feature.maximum})
    return models.CheckConstraint(
        condition=within | Q(**{f"{key}__isnull": True}), name=f"customer_{key}_range"
    )


def _number_field(key: str, field_class, **options):
    feature = BUILT_IN_CATALOGUE[key]
    return field_class(
        feature.label[0].lower() + feature.label[1:],
        null=True,
        blank=True,
        validators=_validators(key),
        help_text=feature.help + " Leave empty when unknown.",
        **options,
    )


RANGED_FIELDS = tuple(f.key for f in BUILT_IN_CATALOGUE.numeric())


class Customer(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"
        UNKNOWN = "unknown", "Unknown"

    customer_id = models.CharField(
        "customer ID",
        max_length=CUSTOMER_ID_MAX_LENGTH,
        unique=True,
        help_text="The identifier your own systems use, kept as text (leading zeros matter).",
    )
    age = _number_field("age", models.PositiveSmallIntegerField)
    annual_income = _number_field("annual_income", models.FloatField)
    spending_score = _number_field("spending_score", models.PositiveSmallIntegerField)
    purchase_frequency = _number_field("purchase_frequency", models.PositiveIntegerField)
    sex = models.CharField(
        max_length=8,
        choices=Sex.choices,
        default=Sex.UNKNOWN,
        help_text=BUILT_IN_CATALOGUE["sex"].help,
    )
    # The customer's own columns (Attribute keys -> number or text). jsonb on PostgreSQL:
    # one row per customer however many attributes a file brings (see the README).
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["customer_id"]
        indexes = [
            models.Index(fields=["sex"], name="customer_sex_idx"),
            models.Index(fields=["age"], name="customer_age_idx"),
            models.Index(fields=["annual_income"], name="customer_income_idx"),
            models.Index(fields=["updated_at"], name="customer_updated_idx"),
        ]
        constraints = [range_check(key) for key in RANGED_FIELDS] + [
            models.CheckConstraint(
                condition=Q(sex__in=[code for code, _label in SEX_CHOICES]),
                name="customer_sex_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.customer_id


class Attribute(models.Model):
    """A column of the customers' own data, kept on every customer under ``key``."""

    class Kind(models.TextChoices):
        NUMERIC = NUMERIC, "Number"
        CATEGORICAL = CATEGORICAL, "Category"

    class Source(models.TextChoices):
        ATTRIBUTE = SOURCE_ATTRIBUTE, "Imported column"
        DERIVED = SOURCE_DERIVED, "Derived on import"

    key = models.SlugField(max_length=40, unique=True, allow_unicode=False)
    label = models.CharField(max_length=80, help_text="As the pages show it.")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.NUMERIC)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.ATTRIBUTE)
    whole = models.BooleanField(default=False, help_text="Whole numbers only.")
    unit = models.CharField(max_length=40, blank=True)
    expression = models.CharField(max_length=1000, blank=True)
    header = models.CharField(max_length=200, blank=True, help_text="The file's column name.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.label

    def as_feature(self) -> Feature:
        header = self.header or self.label
        return Feature(
            key=self.key,
            label=self.label,
            short_label=self.key.replace("_", " "),
            kind=self.kind,
            unit=f" {self.unit}" if self.unit else "",
            whole=self.whole,
            aliases=(self.key.replace("_", ""),),
            source=self.source,
            help=f"Derived on import: {self.expression}"
            if self.expression
            else f"From the column {header!r}",
            log_allowed=self.kind == NUMERIC,
            expression=self.expression,
        )


def field_label(name: str) -> str:
    """A customer field's label as the pages show it ("Annual income (k)")."""
    from customers.selectors import catalogue_current

    feature = catalogue_current().get(name)
    if feature is not None:
        return feature.label
    if name == "customer_id":
        return "Customer ID"
    return name.replace("_", " ").capitalize()


class ImportRecord(models.Model):
    """One import that wrote customers: who, when, which file, how it was read, what it did.

    Its ImportChange rows keep the values it replaced, so it can be undone.
    """

    file_name = models.CharField(max_length=255)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    mapping = models.JSONField(default=dict, help_text="Columns, derived columns, ID source.")
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)
    attributes_created = models.JSONField(default=list, blank=True)
    undone_at = models.DateTimeField(null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("undo_import", "Can undo a customer import")]

    def __str__(self) -> str:
        return f"Import {self.pk} of {self.file_name}"


class ImportChange(models.Model):
    """A customer an import created (``previous`` is NULL) or changed (its earlier values)."""

    record = models.ForeignKey(ImportRecord, on_delete=models.CASCADE, related_name="changes")
    # No database constraint: a customer deleted later must not block or cascade the history.
    customer = models.ForeignKey(
        Customer, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    previous = models.JSONField(null=True)

    class Meta:
        indexes = [models.Index(fields=["customer", "record"], name="import_change_customer_idx")]

    def __str__(self) -> str:
        return f"customer {self.customer_id} in import {self.record_id}"
