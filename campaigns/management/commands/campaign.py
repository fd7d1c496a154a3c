"""campaign create | export | report: campaigns for scripts and schedulers."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from campaigns.models import Campaign
from campaigns.selectors import campaign_report_json
from campaigns.services import (
    EXPORT_GROUPS,
    CampaignInvalid,
    CampaignSpec,
    campaign_create,
    campaign_draw_check,
    campaign_export_lines,
    campaign_strategy_lines,
    parse_control_share,
)
from clustering.models import Segment
from purchases.rfm import GROUPS


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _filters(texts: list[str]) -> tuple[dict, dict]:
    """(ranges, categories) from ``--filter`` options: ``age=30:50`` (either end may be
    empty) is a range, ``region=north,south`` the values a category may take."""
    ranges, categories = {}, {}
    for text in texts:
        key, sep, value = text.partition("=")
        if not sep:
            raise CommandError(f"--filter {text!r}: write FEATURE=FROM:TO or FEATURE=A,B")
        if ":" in value:
            ranges.update([_range(text)])
        else:
            categories[key.strip()] = tuple(v.strip() for v in value.split(",") if v.strip())
    return ranges, categories


def _range(text: str) -> tuple[str, tuple[float | None, float | None]]:
    """``age=30:50``, ``annual_income=60:`` or ``age=:40``."""
    key, sep, bounds = text.partition("=")
    low, colon, high = bounds.partition(":")
    try:
        return key.strip(), (
            float(low) if low.strip() else None,
            float(high) if high.strip() else None,
        )
    except ValueError:
        raise CommandError(f"--filter {text!r}: FROM and TO must be numbers") from None


class Command(BaseCommand):
    help = "Create a campaign (freezing its audience), export it, or report its lift and ROI."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="create a campaign and freeze its audience")
        create.add_argument("--name", required=True)
        create.add_argument("--segments", help='segment names, "A,B"')
        create.add_argument("--rfm-groups", help='RFM group names or keys, "Champions,At Risk"')
        create.add_argument("--control", type=float, default=0.1, help="control share (0.1)")
        create.add_argument("--cost-per-contact", default="0")
        create.add_argument("--channel", default="email", choices=Campaign.Channel.values)
        create.add_argument("--min-confidence", type=float, help="0.7 = 70 %%")
        create.add_argument(
            "--filter",
            action="append",
            default=[],
            metavar="FEATURE=FROM:TO or FEATURE=A,B",
            help="a range of a numeric feature, or the values of a category (repeatable)",
        )
        create.add_argument("--seed", type=int, help="the draw's seed (random by default)")
        create.add_argument("--json", action="store_true")
        export = sub.add_parser("export", help="write the audience for the campaign tool")
        export.add_argument("campaign_id", type=int)
        export.add_argument("--group", choices=EXPORT_GROUPS, default="treatment")
        export.add_argument("-o", "--output", required=True)
        report = sub.add_parser("report", help="lift and ROI per segment and in total")
        report.add_argument("campaign_id", type=int)
        report.add_argument("--json", action="store_true")
        verify = sub.add_parser("verify", help="redo the draw from the stored seed and compare")
        verify.add_argument("campaign_id", type=int)

    def handle(self, *args, **options):
        return getattr(self, f"_{options['action']}")(options)

    def _campaign(self, campaign_id: int) -> Campaign:
        campaign = Campaign.objects.filter(id=campaign_id).first()
        if campaign is None:
            raise CommandError(f"There is no campaign {campaign_id}.")
        return campaign

    def _create(self, options) -> None:
        if bool(options["segments"]) == bool(options["rfm_groups"]):
            raise CommandError("Give --segments or --rfm-groups (one of them).")
        try:
            cost = Decimal(options["cost_per_contact"])
        except InvalidOperation:
            raise CommandError("--cost-per-contact must be a number, e.g. 0.5") from None
        if options["segments"]:
            target, targets = Campaign.Target.SEGMENTS, self._segment_ids(options["segments"])
        else:
            target, targets = Campaign.Target.RFM, self._rfm_keys(options["rfm_groups"])
        ranges, categories = _filters(options["filter"])
        spec = CampaignSpec(
            name=options["name"],
            target=target,
            targets=tuple(targets),
            control_share=parse_control_share(options["control"]),
            cost_per_contact=cost,
            channel=options["channel"],
            min_confidence=options["min_confidence"],
            filters=ranges,
            categories=categories,
            seed=options["seed"],
        )
        try:
            campaign = campaign_create(spec=spec)
        except CampaignInvalid as problem:
            raise CommandError("; ".join(problem.errors.values())) from None
        if options["json"]:
            self.stdout.write(json.dumps(campaign_report_json(campaign=campaign), indent=2))
            return
        self.stdout.write(
            f"Campaign {campaign.id} “{campaign.name}”: {campaign.audience:,} customers, "
            f"{campaign.treatment_size:,} to contact and {campaign.control_size:,} held back "
            f"(seed {campaign.seed})."
        )

    def _segment_ids(self, text: str) -> list[int]:
        names = _names(text)
        found = dict(Segment.objects.filter(name__in=names).values_list("name", "id"))
        unknown = [n for n in names if n not in found]
        if unknown:
            raise CommandError(f"No segment called {', '.join(map(repr, unknown))}.")
        return [found[n] for n in names]

    def _rfm_keys(self, text: str) -> list[str]:
        by_name = {g.name.casefold(): g.key for g in GROUPS} | {g.key: g.key for g in GROUPS}
        names = _names(text)
        unknown = [n for n in names if n.casefold() not in by_name]
        if unknown:
            raise CommandError(f"No RFM group called {', '.join(map(repr, unknown))}.")
        return [by_name[n.casefold()] for n in names]

    def _export(self, options) -> None:
        campaign = self._campaign(options["campaign_id"])
        path = Path(options["output"])
        strategies = path.with_name(f"{path.stem}.strategies.csv")
        try:
            with path.open("w", encoding="utf-8", newline="") as out:
                for line in campaign_export_lines(campaign=campaign, group=options["group"]):
                    out.write(line)
            with strategies.open("w", encoding="utf-8", newline="") as out:
                for line in campaign_strategy_lines(campaign=campaign):
                    out.write(line)
        except OSError as problem:
            raise CommandError(f"{problem.filename}: {problem.strerror}") from None
        self.stdout.write(f"Wrote {path} ({options['group']}) and the strategies to {strategies}.")

    def _verify(self, options) -> None:
        campaign = self._campaign(options["campaign_id"])
        if not campaign_draw_check(campaign=campaign):
            raise CommandError(
                f"Redoing the draw of campaign {campaign.id} from seed {campaign.seed} gives "
                "other groups than the stored ones."
            )
        self.stdout.write(
            f"Redoing the draw from seed {campaign.seed} gives the stored groups: "
            f"{campaign.treatment_size:,} to contact, {campaign.control_size:,} held back."
        )

    def _report(self, options) -> None:
        campaign = self._campaign(options["campaign_id"])
        data = campaign_report_json(campaign=campaign)
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        self.stdout.write(f"{campaign.name} (seed {campaign.seed})")
        for row in data["segments"]:
            self.stdout.write(f"  {row['segment']}: {row['verdict']}")
        self.stdout.write(f"  In total: {data['total']['verdict']}")
        roi = data["total"]["roi"]
        self.stdout.write(
            f"  Incremental revenue {data['total']['incremental_revenue'] or 0:,.2f}, "
            f"cost {data['total']['cost']:,.2f}, ROI "
            + (f"{roi * 100:.0f} %" if roi is not None else "not measurable")
        )
