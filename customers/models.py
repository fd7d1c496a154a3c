"""Customers, the raw material of every segmentation."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import FieldDoesNotExist
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.text import capfirst


@dataclass(frozen=True)
class FieldRange:
    """The valid range of a numeric customer field; one source for forms, import and checks."""

    minimum: float
    maximum: float
    unit: str

    def validators(self) -> list:
        return [MinValueValidator(self.minimum), MaxValueValidator(self.maximum)]

    def describe(self) -> str:
        return f"between {self.minimum:g} and {self.maximum:g}{self.unit}"


RANGES: dict[str, FieldRange] = {
    "age": FieldRange(16, 110, " years"),
    "annual_income": FieldRange(0, 100_000, " thousand per year"),
    "spending_score": FieldRange(1, 100, ""),
    "purchase_frequency": FieldRange(0, 10_000, " purchases per year"),
}


def range_check(field: str) -> models.CheckConstraint:
    bounds = RANGES[field]
    condition = Q(**{f"{field}__gte": bounds.minimum, f"{field}__lte": bounds.maximum})
    if field == "purchase_frequency":
        condition |= Q(purchase_frequency__isnull=True)
    return models.CheckConstraint(condition=condition, name=f"customer_{field}_range")


class Customer(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "female", "Female"
        MALE = "male", "Male"
        OTHER = "other", "Other"
        UNKNOWN = "unknown", "Unknown"

    customer_id = models.CharField(
        "customer ID",
        max_length=64,
        unique=True,
        help_text="The identifier your own systems use, kept as text (leading zeros matter).",
    )
    age = models.PositiveSmallIntegerField(validators=RANGES["age"].validators())
    annual_income = models.FloatField(
        "annual income (k)",
        validators=RANGES["annual_income"].validators(),
        help_text="Thousands per year.",
    )
    spending_score = models.PositiveSmallIntegerField(
        validators=RANGES["spending_score"].validators(), help_text="1 to 100."
    )
    purchase_frequency = models.PositiveIntegerField(
        "purchases per year",
        null=True,
        blank=True,
        validators=RANGES["purchase_frequency"].validators(),
        help_text="Leave empty when unknown.",
    )
    sex = models.CharField(
        max_length=8,
        choices=Sex.choices,
        default=Sex.UNKNOWN,
        help_text="Shown in segment statistics; never used to build segments.",
    )
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
        constraints = [range_check(field) for field in RANGES] + [
            models.CheckConstraint(
                condition=Q(sex__in=["female", "male", "other", "unknown"]),
                name="customer_sex_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.customer_id


def field_label(name: str) -> str:
    """A customer field's label as the pages show it ("Annual income (k)")."""
    try:
        return capfirst(Customer._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name
