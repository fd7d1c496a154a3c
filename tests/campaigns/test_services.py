"""Creating a campaign freezes its audience; outcomes come back; lift and ROI follow."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from audit.models import StrategyVersion
from campaigns.models import CampaignMember, Outcome, OutcomeImport
from campaigns.outcomes import outcomes_import_stream
from campaigns.selectors import campaign_report, segment_campaign_summary, summary_text
from campaigns.services import (
    CampaignInvalid,
    CampaignSpec,
    campaign_create,
    campaign_draw_check,
    campaign_export_lines,
    campaign_strategy_lines,
)
from clustering.models import ClusterAssignment
from customers.csv_format import CsvFormatError
from customers.models import Customer
from purchases.models import CustomerRfm
from tests.campaigns.helpers import as_file, make_campaign, planted_outcomes, two_segments

pytestmark = pytest.mark.django_db


def test_creating_a_campaign_freezes_every_targeted_customer_into_one_group(trained, marketer):
    segments = two_segments(trained)

    campaign = make_campaign(trained, user=marketer)

    targeted = ClusterAssignment.objects.filter(
        run=trained, cluster__segment__in=segments
    ).values_list("customer_id", flat=True)
    members = campaign.members.values_list("customer_id", flat=True)
    assert sorted(members) == sorted(targeted)
    assert campaign.created_by == marketer
    assert campaign.treatment_size + campaign.control_size == campaign.audience == len(targeted)


def test_each_segment_gets_its_own_ten_percent_control_group(trained):
    campaign = make_campaign(trained)

    for info in campaign.strata:
        size = info["treatment"] + info["control"]
        assert info["control"] == int(size * 0.1 + 0.5)
        stored = campaign.members.filter(stratum=info["key"], group="control").count()
        assert stored == info["control"]


def test_the_stored_draw_can_be_redone_and_the_same_seed_gives_the_same_groups(trained):
    first = make_campaign(trained, name="First", seed=99)
    second = make_campaign(trained, name="Second", seed=99)

    def controls(campaign):
        return set(campaign.members.filter(group="control").values_list("customer_id", flat=True))

    assert campaign_draw_check(campaign=first)
    assert controls(first) == controls(second)
    assert controls(make_campaign(trained, name="Third", seed=100)) != controls(first)


def test_min_confidence_and_a_feature_range_narrow_the_audience(trained):
    everyone = make_campaign(trained, name="All")
    narrowed = make_campaign(
        trained, name="Narrow", min_confidence=0.9, filters={"age": (30.0, 50.0)}
    )

    ages = narrowed.members.values_list("customer__age", flat=True)
    assert 0 < narrowed.audience < everyone.audience
    assert all(30 <= age <= 50 for age in ages)
    assert not narrowed.members.filter(confidence__lt=0.9).exists()


def test_a_campaign_without_a_control_group_or_a_name_is_refused_with_reasons(trained):
    with pytest.raises(CampaignInvalid) as refused:
        make_campaign(trained, name=" ", control_share=0.0)

    assert set(refused.value.errors) == {"name", "control_share"}
    assert not CampaignMember.objects.exists()


def test_the_export_lists_the_treatment_group_with_segment_and_strategy_id(trained):
    campaign = make_campaign(trained)

    rows = list(csv.DictReader(io.StringIO("".join(campaign_export_lines(campaign=campaign)))))

    assert len(rows) == campaign.treatment_size
    assert {r["group"] for r in rows} == {"treatment"}
    strategy_ids = {s["label"]: s["strategy_id"] for s in campaign.strata}
    assert {r["segment"] for r in rows} == set(strategy_ids)
    assert all(r["strategy_id"] == strategy_ids[r["segment"]] for r in rows)
    assert "strategy" not in rows[0]  # the text is in the strategies file, once


def test_the_strategy_id_names_the_version_of_the_strategy_at_freezing(trained, marketer):
    segment = two_segments(trained)[0]
    segment.description = "Premium launch: early access"
    segment.updated_by = marketer
    segment.save()

    campaign = make_campaign(trained)

    version = StrategyVersion.objects.filter(segment=segment).order_by("-number").first()
    info = next(s for s in campaign.strata if s["segment_id"] == segment.id)
    assert info["strategy_id"] == version.strategy_id
    strategies = "".join(campaign_strategy_lines(campaign=campaign))
    assert strategies.count("Premium launch: early access") == 1


def test_export_of_all_says_each_customers_group(trained):
    campaign = make_campaign(trained)

    lines = "".join(campaign_export_lines(campaign=campaign, group="all"))
    rows = list(csv.DictReader(io.StringIO(lines)))

    assert len(rows) == campaign.audience
    assert sum(r["group"] == "control" for r in rows) == campaign.control_size


def test_outcomes_import_counts_members_and_reports_outsiders_and_extra_columns(
    trained, marketer, customers
):
    campaign = make_campaign(trained)
    member = campaign.members.select_related("customer").first()
    outsider = (
        ClusterAssignment.objects.filter(run=trained)
        .exclude(customer_id__in=campaign.members.values("customer_id"))
        .select_related("customer")
        .first()
        .customer
    )
    text = (
        "Customer ID,Converted,Revenue,Coupon\n"
        f"{member.customer.customer_id},yes,120.50,A\n"
        f"{outsider.customer_id},yes,999,B\n"
        "NOBODY-1,no,,C\n"
    )

    report = outcomes_import_stream(
        campaign=campaign, stream=as_file(text), source="results.csv", user=marketer
    )

    assert report.written and report.counted == 1
    assert report.ignored_columns == ["Coupon"]
    assert report.outsiders == [(3, outsider.customer_id), (4, "NOBODY-1")]
    assert list(Outcome.objects.values_list("member_id", "converted", "revenue")) == [
        (member.id, True, 120.5)
    ]
    assert OutcomeImport.objects.get().imported_by == marketer


def test_an_outcomes_file_with_bad_rows_writes_nothing_and_names_row_and_column(trained):
    campaign = make_campaign(trained)
    ids = list(campaign.members.values_list("customer__customer_id", flat=True)[:3])
    text = (
        "customer_id,converted,revenue\n"
        f"{ids[0]},yes,10\n"
        f"{ids[1]},perhaps,10\n"
        f"{ids[2]},no,12abc\n"
        f"{ids[0]},no,0\n"
    )

    report = outcomes_import_stream(campaign=campaign, stream=as_file(text), source="bad.csv")

    assert not report.written
    assert [(e.row, e.column) for e in report.errors] == [
        (3, "converted"),
        (4, "revenue"),
        (5, "customer_id"),
    ]
    assert "repeated (first on row 2)" in report.errors[2].reason
    assert not Outcome.objects.exists() and not OutcomeImport.objects.exists()


def test_an_outcomes_file_without_a_converted_column_is_refused_as_a_whole(trained):
    campaign = make_campaign(trained)

    with pytest.raises(CsvFormatError, match="no converted column"):
        outcomes_import_stream(
            campaign=campaign, stream=as_file("customer_id,revenue\nX,1\n"), source="x.csv"
        )


def test_a_new_outcomes_file_replaces_the_previous_one(trained):
    campaign = make_campaign(trained)
    ids = list(campaign.members.values_list("customer__customer_id", flat=True)[:2])
    outcomes_import_stream(
        campaign=campaign, stream=as_file(f"customer_id,converted\n{ids[0]},yes\n"), source="a"
    )

    outcomes_import_stream(
        campaign=campaign, stream=as_file(f"customer_id,converted\n{ids[1]},yes\n"), source="b"
    )

    assert Outcome.objects.get().member.customer.customer_id == ids[1]


def test_planted_effect_is_significant_in_one_segment_and_not_in_the_other(trained):
    campaign = make_campaign(trained, control_share=0.3)
    first, second = (s["label"] for s in campaign.strata)
    text = planted_outcomes(campaign, {first: (0.9, 0.1), second: (0.2, 0.2)})
    outcomes_import_stream(campaign=campaign, stream=as_file(text), source="planted.csv")

    report = campaign_report(campaign=campaign)

    by_label = {row["stratum"]["label"]: row for row in report["rows"]}
    assert by_label[first]["lift"].conversion.significant
    assert by_label[first]["lift"].conversion.low > 0.5
    assert not by_label[second]["lift"].conversion.significant
    assert "not significant" in by_label[second]["conversion_words"]
    total = report["total"]["lift"]
    assert total.cost == pytest.approx(campaign.treatment_size * 0.5)
    assert total.roi == pytest.approx((total.incremental_revenue - total.cost) / total.cost)


def test_lift_equals_a_hand_computation_on_fixed_outcomes(trained):
    campaign = make_campaign(trained, control_share=0.2)
    key = campaign.strata[0]["key"]
    treated = list(
        campaign.members.filter(stratum=key, group="treatment").values_list(
            "customer__customer_id", flat=True
        )
    )
    control = list(
        campaign.members.filter(stratum=key, group="control").values_list(
            "customer__customer_id", flat=True
        )
    )
    # Ten treated customers converted (revenue 50 each), nobody in control.
    text = "customer_id,converted,revenue\n" + "".join(f"{c},yes,50\n" for c in treated[:10])
    outcomes_import_stream(campaign=campaign, stream=as_file(text), source="fixed.csv")

    row = campaign_report(campaign=campaign)["rows"][0]["lift"]

    assert row.treatment.conversions == 10 and row.control.conversions == 0
    assert row.conversion.estimate == pytest.approx(10 / len(treated))
    assert row.revenue.estimate == pytest.approx(500 / len(treated))
    assert row.incremental_revenue == pytest.approx(500.0)
    assert row.control.customers == len(control)


def test_segment_card_summary_pools_the_last_campaigns(trained):
    campaign = make_campaign(trained, control_share=0.3)
    segment_id = campaign.strata[0]["segment_id"]
    text = planted_outcomes(
        campaign, {campaign.strata[0]["label"]: (0.5, 0.1), campaign.strata[1]["label"]: (0, 0)}
    )
    outcomes_import_stream(campaign=campaign, stream=as_file(text), source="o.csv")

    summary = segment_campaign_summary(segment_id=segment_id)

    assert summary_text(summary).startswith("last campaign: +")
    assert "95 % CI" in summary_text(summary)


def _rfm(customers, group: str, scores=(5, 4, 3)) -> None:
    CustomerRfm.objects.bulk_create(
        CustomerRfm(
            customer=c,
            as_of=date(2026, 11, 1),
            recency_days=3,
            frequency=9,
            monetary_total=900.0,
            monetary_mean=100.0,
            tenure_days=400,
            r_score=scores[0],
            f_score=scores[1],
            m_score=scores[2],
            group=group,
        )
        for c in customers
    )


def test_the_export_carries_rfm_scores_and_group_when_there_is_a_purchase_history(trained):
    campaign = make_campaign(trained)
    with_history = Customer.objects.filter(
        pk__in=campaign.members.filter(group="treatment").values("customer_id")[:5]
    )
    _rfm(with_history, "champions")

    rows = list(csv.DictReader(io.StringIO("".join(campaign_export_lines(campaign=campaign)))))

    scored = [r for r in rows if r["rfm_group"]]
    assert {r["customer_id"] for r in scored} == {c.customer_id for c in with_history}
    assert {(r["rfm_group"], r["r_score"], r["f_score"], r["m_score"]) for r in scored} == {
        ("Champions", "5", "4", "3")
    }
    assert all(r["r_score"] == "" for r in rows if not r["rfm_group"])


def test_a_campaign_on_rfm_groups_draws_a_control_group_in_each(trained):
    from customers.models import Customer

    customers = list(Customer.objects.order_by("pk")[:200])
    _rfm(customers[:120], "champions")
    _rfm(customers[120:], "at_risk", (1, 4, 4))

    campaign = campaign_create(
        spec=CampaignSpec(name="Win back", target="rfm", targets=("champions", "at_risk"), seed=4)
    )

    assert [(s["label"], s["control"]) for s in campaign.strata] == [
        ("Champions", 12),
        ("At Risk", 8),
    ]
    assert campaign.audience == 200 and campaign.run is None


def test_a_category_and_a_purchase_history_feature_narrow_the_audience(trained):
    members = Customer.objects.filter(pk__in=ClusterAssignment.objects.values("customer_id"))
    _rfm(list(members.order_by("pk")[:150]), "champions")
    CustomerRfm.objects.filter(pk__in=members.order_by("pk").values("pk")[:50]).update(
        recency_days=200
    )

    campaign = make_campaign(
        trained, categories={"sex": ("female",)}, filters={"rfm_recency": (None, 30.0)}
    )

    chosen = campaign.members.values_list("customer__sex", "customer__rfm__recency_days")
    assert chosen and all(sex == "female" and recency <= 30 for sex, recency in chosen)
    assert campaign.categories == {"sex": ["female"]}


def test_hdbscans_unsegmented_group_cannot_be_a_campaign_target(marketer_client):
    """Unsegmented customers share no profile and have no strategy to test: neither the
    form nor the service offers them as a target."""
    from tests.clustering.helpers import train
    from tests.operations.helpers import add_customers

    add_customers(600, seed=1, prefix="OLD")
    for i in range(30):  # far from every persona: left Unsegmented
        Customer.objects.create(
            customer_id=f"STRAY-{i}",
            age=18 + (i * 7) % 90,
            annual_income=300.0 + 50 * i,
            spending_score=1 + (i * 13) % 99,
            purchase_frequency=80 + 15 * i,
        )
    run = train(
        algorithm="hdbscan",
        features=("age", "annual_income", "spending_score", "purchase_frequency"),
        log_features=(),
    )
    noise = run.clusters.select_related("segment").get(is_noise=True)
    page = marketer_client.get("/campaigns/new/").content.decode()

    with pytest.raises(CampaignInvalid) as refused:
        campaign_create(
            spec=CampaignSpec(name="Leftovers", targets=(noise.segment_id,), control_share=0.1)
        )

    assert f'value="{noise.segment_id}"' not in page
    assert "is not a segment" in refused.value.errors["targets"]
