"""Test data and database snapshots shared by the customers tests."""

from __future__ import annotations

from customers.models import Customer

MALL_HEADER = "CustomerID,Genre,Age,Annual Income (k$),Spending Score (1-100)"
# The first rows of the well-known "Mall Customers" data set, with zero-padded IDs.
MALL_ROWS = (
    "0001,Male,19,15,39",
    "0002,Male,21,15,81",
    "0003,Female,20,16,6",
    "0004,Female,23,16,77",
    "0005,Female,31,17,40",
)


def csv_text(header: str, *rows: str, newline: str = "\n") -> str:
    return newline.join((header, *rows)) + newline


def stored() -> dict[str, tuple]:
    """Every stored customer by ID, with all its values and its last change time."""
    return {
        c.customer_id: (
            c.sex,
            c.age,
            c.annual_income,
            c.spending_score,
            c.purchase_frequency,
            c.updated_at,
        )
        for c in Customer.objects.all()
    }


def values(customer_id: str) -> tuple:
    return stored()[customer_id][:5]
