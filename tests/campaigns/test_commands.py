"""campaign create/export/report and import_outcomes, as a script would use them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Campaign
from tests.campaigns.helpers import planted_outcomes, two_segments

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_campaign_create_json_gives_the_groups_per_segment(trained):
    first, second = two_segments(trained)

    data = json.loads(
        run(
            "campaign",
            "create",
            "--name",
            "Autumn",
            "--segments",
            f"{first.name},{second.name}",
            "--control",
            "0.1",
            "--cost-per-contact",
            "0.5",
            "--seed",
            "3",
            "--json",
        )
    )

    campaign = Campaign.objects.get(name="Autumn")
    assert data["campaign_id"] == campaign.id and data["seed"] == 3
    assert [row["segment"] for row in data["segments"]] == [first.name, second.name]
    sizes = {
        r["segment"]: r["treatment"]["customers"] + r["control"]["customers"]
        for r in data["segments"]
    }
    assert sum(sizes.values()) == campaign.audience
    assert data["cost_per_contact"] == 0.5 and data["outcomes"] is None


def test_campaign_create_refuses_an_unknown_segment(trained):
    with pytest.raises(CommandError, match="No segment called 'Nobody'"):
        run("campaign", "create", "--name", "X", "--segments", "Nobody")


def test_export_import_and_report_from_the_command_line(trained, tmp_path):
    first, second = two_segments(trained)
    run(
        "campaign",
        "create",
        "--name",
        "Mail",
        "--segments",
        f"{first.name},{second.name}",
        "--control",
        "0.3",
        "--cost-per-contact",
        "0.5",
        "--seed",
        "8",
    )
    campaign = Campaign.objects.get(name="Mail")
    target = tmp_path / "mail.csv"

    run("campaign", "export", str(campaign.id), "--group", "all", "-o", str(target))
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text(
        planted_outcomes(campaign, {first.name: (0.9, 0.1), second.name: (0.2, 0.2)})
    )
    imported = json.loads(run("import_outcomes", str(campaign.id), str(outcomes), "--json"))
    report = json.loads(run("campaign", "report", str(campaign.id), "--json"))

    rows = list(csv.DictReader(target.open()))
    assert len(rows) == campaign.audience
    assert (tmp_path / "mail.strategies.csv").read_text().count("\n") == 3
    assert imported["written"] and imported["ignored_columns"] == ["campaign_code"]
    by_segment = {row["segment"]: row for row in report["segments"]}
    assert by_segment[first.name]["conversion_difference"]["significant"] is True
    assert by_segment[second.name]["conversion_difference"]["significant"] is False
    assert report["total"]["cost"] == pytest.approx(campaign.treatment_size * 0.5)
    assert report["outcomes"]["counted"] == imported["counted"]


def test_import_outcomes_with_a_bad_row_fails_and_names_it(trained, tmp_path):
    first, second = two_segments(trained)
    run("campaign", "create", "--name", "M", "--segments", first.name)
    campaign = Campaign.objects.get(name="M")
    customer_id = campaign.members.values_list("customer__customer_id", flat=True).first()
    bad = tmp_path / "bad.csv"
    bad.write_text(f"customer_id,converted,revenue\n{customer_id},maybe,3\n")
    out = io.StringIO()

    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_outcomes", str(campaign.id), str(bad), stdout=out)

    assert "row 2, column 'converted'" in out.getvalue()
    assert campaign.last_import is None


def test_campaign_create_takes_a_range_and_a_category_filter(trained):
    first, _second = two_segments(trained)

    run(
        "campaign",
        "create",
        "--name",
        "F",
        "--segments",
        first.name,
        "--filter",
        "age=20:45",
        "--filter",
        "sex=female,other",
    )

    campaign = Campaign.objects.get(name="F")
    assert campaign.filters == {"age": [20.0, 45.0]}
    assert campaign.categories == {"sex": ["female", "other"]}
    values = campaign.members.values_list("customer__age", "customer__sex")
    assert values and all(20 <= age <= 45 and sex in ("female", "other") for age, sex in values)


def test_demo_outcomes_with_a_planted_effect_show_it_in_the_report(trained, tmp_path):
    first, second = two_segments(trained)
    run(
        "campaign",
        "create",
        "--name",
        "Demo",
        "--segments",
        f"{first.name},{second.name}",
        "--control",
        "0.3",
        "--seed",
        "2",
    )
    campaign = Campaign.objects.get(name="Demo")
    results = tmp_path / "results.csv"

    run(
        "generate_outcomes",
        str(campaign.id),
        "-o",
        str(results),
        "--effect",
        f"{first.name}=0.8:0.1",
        "--default",
        "0.1:0.1",
    )
    run("import_outcomes", str(campaign.id), str(results))
    report = json.loads(run("campaign", "report", str(campaign.id), "--json"))

    rows = list(csv.DictReader(results.open()))
    assert len(rows) == campaign.audience
    by_segment = {row["segment"]: row for row in report["segments"]}
    assert by_segment[first.name]["conversion_difference"]["significant"]
    assert by_segment[first.name]["revenue_per_customer_difference"]["estimate"] > 0


def test_demo_outcomes_refuse_a_segment_outside_the_campaign(trained, tmp_path):
    first, _second = two_segments(trained)
    run("campaign", "create", "--name", "Demo", "--segments", first.name)
    campaign = Campaign.objects.get(name="Demo")

    with pytest.raises(CommandError, match="name one of the campaign's segments"):
        run(
            "generate_outcomes",
            str(campaign.id),
            "-o",
            str(tmp_path / "x.csv"),
            "--effect",
            "Nobody=0.5:0.1",
        )


def test_campaign_verify_redoes_the_draw_and_notices_a_changed_group(trained):
    first, _second = two_segments(trained)
    run("campaign", "create", "--name", "V", "--segments", first.name, "--seed", "5")
    campaign = Campaign.objects.get(name="V")

    assert "gives the stored groups" in run("campaign", "verify", str(campaign.id))

    member = campaign.members.filter(group="treatment").first()
    member.group = "control"
    member.save()
    with pytest.raises(CommandError, match="gives other groups"):
        run("campaign", "verify", str(campaign.id))
