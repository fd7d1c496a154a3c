"""generate_outcomes CAMPAIGN -o FILE: demo results with a planted effect per segment."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from campaigns.demo_data import outcome_rows
from campaigns.models import Campaign
from customers.services import SafeCsvWriter


def _rates(text: str, option: str) -> tuple[float, float]:
    treatment, colon, control = text.partition(":")
    try:
        rates = float(treatment), float(control)
    except ValueError:
        rates = None
    if not colon or rates is None or not all(0 <= r <= 1 for r in rates):
        raise CommandError(f"{option} {text!r}: write TREATMENT:CONTROL rates, e.g. 0.12:0.04")
    return rates


class Command(BaseCommand):
    help = (
        "Write demo outcomes for a campaign: each segment converts at the rates given for "
        "its treatment and control groups (a planted effect, or none), to try import_outcomes "
        "and the lift on demo data."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", type=int)
        parser.add_argument("-o", "--output", required=True)
        parser.add_argument(
            "--effect",
            action="append",
            default=[],
            metavar='"SEGMENT=TREATMENT:CONTROL"',
            help='conversion rates of a segment\'s groups, e.g. "High-Value Customers=0.3:0.1"',
        )
        parser.add_argument("--default", default="0.05:0.05", help="other segments (no effect)")
        parser.add_argument("--order-value", type=float, default=80.0)
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args, **options):
        campaign = Campaign.objects.filter(id=options["campaign_id"]).first()
        if campaign is None:
            raise CommandError(f"There is no campaign {options['campaign_id']}.")
        labels = {s["key"]: s["label"] for s in campaign.strata}
        rates = {}
        for text in options["effect"]:
            name, sep, value = text.rpartition("=")
            if not sep or name.strip() not in labels.values():
                raise CommandError(
                    f"--effect {text!r}: name one of the campaign's segments: "
                    + ", ".join(labels.values())
                )
            rates[name.strip()] = _rates(value, "--effect")
        members = (
            (customer_id, labels[stratum], group)
            for customer_id, stratum, group in campaign.members.order_by(
                "customer__customer_id"
            ).values_list("customer__customer_id", "stratum", "group")
        )
        rows = outcome_rows(
            members,
            rates,
            default=_rates(options["default"], "--default"),
            order_value=options["order_value"],
            seed=options["seed"],
        )
        writer = SafeCsvWriter()
        with open(options["output"], "w", encoding="utf-8", newline="") as out:
            out.write(writer.row(("customer_id", "converted", "revenue")))
            for row in rows:
                out.write(writer.row(row))
        self.stdout.write(f"Wrote demo outcomes of campaign {campaign.id} to {options['output']}.")
