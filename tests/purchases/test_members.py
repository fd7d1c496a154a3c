"""A segment's members page and its CSV export carry each customer's RFM scores and group."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.management import call_command

from clustering.models import Cluster, ClusterAssignment, TrainingRun
from purchases.models import CustomerRfm
from purchases.rfm import GROUP_BY_KEY
from tests.clustering.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(db):
    call_command("generate_customers", count=300, seed=6, stdout=io.StringIO())
    call_command("generate_transactions", seed=6, stdout=io.StringIO())
    call_command("train", sync=True, stdout=io.StringIO())
    run = TrainingRun.objects.get(is_active=True)
    return Cluster.objects.filter(run=run).order_by("-size").first()


def test_the_members_table_shows_scores_and_group_and_sorts_by_them(cluster, marketer):
    client = client_for(marketer)
    url = f"/segments/{cluster.segment_id}/"

    page = client.get(url, {"sort": "-rfm_m"}).content.decode()

    assert ">R</a>" in page and ">F</a>" in page and ">M</a>" in page and ">RFM group</a>" in page
    top = (
        CustomerRfm.objects.filter(
            customer__in=ClusterAssignment.objects.filter(cluster=cluster).values("customer")
        )
        .order_by("-m_score", "-customer__customer_id")
        .select_related("customer")
        .first()
    )
    row = page[page.index(f">{top.customer.customer_id}</a></td>") :].split("</tr>")[0]
    cells = f"<td>{top.r_score}</td><td>{top.f_score}</td><td>{top.m_score}</td>"
    assert cells + f"<td>{GROUP_BY_KEY[top.group].name}</td>" in row.replace("'", "&#x27;")


def test_the_export_carries_rfm_values_scores_and_group_names(cluster, marketer):
    response = client_for(marketer).get(f"/segments/{cluster.segment_id}/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

    assert len(rows) == cluster.size
    for row in rows[:20]:
        rfm = CustomerRfm.objects.get(customer__customer_id=row["customer_id"])
        assert (row["rfm_r"], row["rfm_f"], row["rfm_m"]) == tuple(
            str(s) for s in (rfm.r_score, rfm.f_score, rfm.m_score)
        )
        assert row["rfm_group"] == GROUP_BY_KEY[rfm.group].name
        assert float(row["rfm_monetary"]) == pytest.approx(rfm.monetary_total)
        assert int(row["rfm_recency"]) == rfm.recency_days


def test_the_members_table_shows_amounts_in_cents_not_float_noise(cluster, marketer):
    """A sum like 336.34 stored as 336.34000000000003 reads as 336.34 on the page."""
    member = ClusterAssignment.objects.filter(cluster=cluster).first().customer
    CustomerRfm.objects.filter(customer=member).update(
        monetary_total=0.1 + 0.2, monetary_mean=336.34000000000003, interpurchase_days=86.6666666
    )

    page = client_for(marketer).get(f"/segments/{cluster.segment_id}/", {"sort": "customer_id"})
    html = page.content.decode()

    assert "0.30000000000000004" not in html and "336.34000000000003" not in html
    assert "86.6666666" not in html
    row = html[html.index(f">{member.customer_id}</a></td>") :].split("</tr>")[0]
    assert "<td>0.3</td>" in row and "<td>336.34</td>" in row and "<td>86.67</td>" in row


def test_the_customer_page_shows_the_days_between_purchases(cluster, marketer):
    """Every RFM value the catalogue knows shows on the customer's page, the mean days
    between purchases too (a customer with one purchase day has none)."""
    client = client_for(marketer)
    repeat = CustomerRfm.objects.filter(interpurchase_days__isnull=False).first()
    once = CustomerRfm.objects.filter(interpurchase_days__isnull=True).first()
    CustomerRfm.objects.filter(pk=repeat.pk).update(interpurchase_days=43.24)

    page = client.get(f"/customers/{repeat.customer_id}/").content.decode()
    assert "Days between purchases</th><td>43.2" in page  # 43.24 to one place

    if once is not None:
        page = client.get(f"/customers/{once.customer_id}/").content.decode()
        assert "Days between purchases</th><td>– (one purchase day)" in page
