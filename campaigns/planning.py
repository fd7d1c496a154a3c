"""The planning calculator: contacting everyone against contacting one segment, in money,
before any campaign runs. Pure Python: no Django.

The playbook's example: everyone is 5,000 customers converting at 2 % (100 sales, $50k);
the High-Value Customers are 850 converting at 12 % (102 sales, $51k); at the same cost
per contact the segment costs 83 % less.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    """One audience: who is contacted and what that is expected to bring."""

    label: str
    customers: int
    conversion: float  # 0.02 = 2 %
    order_value: float
    cost_per_contact: float

    @property
    def sales(self) -> float:
        return self.customers * self.conversion

    @property
    def revenue(self) -> float:
        return self.sales * self.order_value

    @property
    def cost(self) -> float:
        return self.customers * self.cost_per_contact

    @property
    def profit(self) -> float:
        return self.revenue - self.cost

    @property
    def roi(self) -> float | None:
        return self.profit / self.cost if self.cost else None

    @property
    def cost_per_sale(self) -> float | None:
        return self.cost / self.sales if self.sales else None


@dataclass(frozen=True)
class Plan:
    everyone: Option
    segment: Option

    @property
    def cost_saved(self) -> float:
        return self.everyone.cost - self.segment.cost

    @property
    def cost_saved_share(self) -> float | None:
        """The playbook's "saved 83 % on marketing costs"."""
        return self.cost_saved / self.everyone.cost if self.everyone.cost else None

    @property
    def sales_difference(self) -> float:
        return self.segment.sales - self.everyone.sales

    @property
    def profit_difference(self) -> float:
        return self.segment.profit - self.everyone.profit

    @property
    def verdict(self) -> str:
        """The comparison in one sentence, in money."""
        segment = self.segment.label
        if self.cost_saved_share is None:
            cost = "costs nothing either way"
        elif self.cost_saved >= 0:
            share = self.cost_saved_share * 100
            cost = f"costs {share:.0f} % less ({self.cost_saved:,.2f} saved)"
        else:
            cost = f"costs {-self.cost_saved:,.2f} more"
        sales = round(self.sales_difference)
        sales_text = (
            f"{sales:,} more sales"
            if sales > 0
            else f"{-sales:,} fewer sales"
            if sales
            else "as many sales"
        )
        profit = self.profit_difference
        earns = (
            f"earns {profit:,.0f} more"
            if profit > 0
            else f"earns {-profit:,.0f} less"
            if profit
            else "earns the same"
        )
        return (
            f"Contacting only {segment} {cost}, for {sales_text}; after costs it {earns} "
            "than contacting everyone."
        )

    @property
    def better(self) -> str:
        """Which option earns more after costs ("" when they are equal)."""
        if self.segment.profit == self.everyone.profit:
            return ""
        return "segment" if self.segment.profit > self.everyone.profit else "everyone"


def plan(
    *,
    everyone_customers: int,
    everyone_conversion: float,
    segment_name: str,
    segment_customers: int,
    segment_conversion: float,
    order_value: float,
    cost_per_contact: float,
) -> Plan:
    return Plan(
        Option("Everyone", everyone_customers, everyone_conversion, order_value, cost_per_contact),
        Option(segment_name, segment_customers, segment_conversion, order_value, cost_per_contact),
    )
