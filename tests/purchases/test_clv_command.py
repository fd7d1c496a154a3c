"""`manage.py clv` on the CDNOW sample imported as an order log."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from purchases.models import ClvRun, CustomerValue

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).parent / "data" / "CDNOW_sample.txt"


@pytest.fixture
def cdnow(tmp_path):
    """The sample's sample ID, date, CDs and dollars: a headerless whitespace order log."""
    rows = [line.split()[1:] for line in SAMPLE.read_text().splitlines() if line.strip()]
    path = tmp_path / "cdnow.txt"
    path.write_text("\n".join(" ".join(row) for row in rows) + "\n")
    call_command(
        "import_transactions", str(path), "--columns", "customer_id,date,quantity,amount",
        "--no-progress", stdout=io.StringIO(),
    )  # fmt: skip
    return path


def test_clv_reports_the_published_parameters_on_the_calibration_period(cdnow):
    out = io.StringIO()
    call_command("clv", "--sync", "--calibration-end", "1997-09-30", "--json", stdout=out)
    summary = json.loads(out.getvalue())

    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert summary["holdout"]["parameters"][name] == pytest.approx(value, rel=0.01)
    holdout = summary["holdout"]
    assert holdout["total_actual"] == 1882  # repeat purchase days in weeks 40-78
    assert holdout["total_expected"] == pytest.approx(1882, rel=0.15)
    assert holdout["correlation"] > 0.5
    assert len(holdout["cumulative_actual"]) == len(holdout["weeks"]) > 20


def test_clv_activates_a_run_with_a_value_for_every_customer(cdnow):
    call_command("clv", "--sync", stdout=io.StringIO())

    run = ClvRun.objects.get(is_active=True)
    assert run.status == ClvRun.Status.SUCCEEDED
    assert CustomerValue.objects.count() == run.customers == 2357
    values = CustomerValue.objects.all()
    assert all(0 <= v.p_alive <= 1 and v.expected_value >= 0 for v in values)


def test_clv_without_purchases_fails_with_a_reason():
    with pytest.raises(CommandError, match="no purchases yet"):
        call_command("clv", "--sync", stdout=io.StringIO())
    assert ClvRun.objects.get().status == ClvRun.Status.FAILED
