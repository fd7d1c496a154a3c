"""Helpers of the operations tests: customers drawn from the demo population."""

from __future__ import annotations

from customers.csv_format import CustomerRow
from customers.demo_data import generate
from customers.services import customers_upsert


def add_customers(count: int, *, seed: int, prefix: str, income_shift: float = 0.0) -> None:
    """``count`` customers of the demo population (IDs ``prefix``-1 onwards); with
    ``income_shift`` everyone earns that much more: a planted shift."""
    columns = generate(count, seed)
    rows = [
        CustomerRow(
            customer_id=f"{prefix}-{i + 1}",
            values={
                "age": int(columns["age"][i]),
                "annual_income": float(columns["annual_income"][i]) + income_shift,
                "spending_score": int(columns["spending_score"][i]),
                "purchase_frequency": int(columns["purchase_frequency"][i]),
                "sex": str(columns["sex"][i]),
            },
        )
        for i in range(count)
    ]
    customers_upsert(rows=rows)
