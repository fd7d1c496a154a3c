"""Lifetime value per segment (on its card) and per RFM group (in the RFM table)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.db.models import Avg, Sum

from clustering.models import Cluster, ClusterAssignment, TrainingRun
from purchases.models import CustomerRfm, CustomerValue
from purchases.rfm import GROUPS
from tests.clustering.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def valued(db):
    call_command("generate_customers", count=500, seed=12, stdout=io.StringIO())
    call_command("generate_transactions", seed=12, stdout=io.StringIO())
    call_command("train", sync=True, stdout=io.StringIO())
    call_command("clv", "--sync", stdout=io.StringIO())
    return TrainingRun.objects.get(is_active=True)


def test_each_segment_card_shows_its_expected_value_and_share_still_buying(valued, marketer):
    page = client_for(marketer).get("/").content.decode()

    for cluster in Cluster.objects.filter(run=valued).select_related("segment"):
        members = ClusterAssignment.objects.filter(cluster=cluster).values("customer_id")
        values = CustomerValue.objects.filter(customer_id__in=members)
        total = values.aggregate(t=Sum("expected_value"))["t"]
        # P(alive) over repeat buyers: BG/NBD keeps every one-time buyer "alive" at 1.
        alive = values.filter(customer__rfm__frequency__gte=2).aggregate(a=Avg("p_alive"))["a"]
        card = page[page.index(f'id="segment-{cluster.segment_id}"') :].split("</article>")[0]
        shown = re.search(r"Lifetime value: <strong>([\d,]+)</strong>", card).group(1)
        assert int(shown.replace(",", "")) == round(total)
        assert f"repeat buyers still buying {alive * 100:.0f} %" in card.replace("\xa0", " ")


def test_the_rfm_table_has_value_per_customer_and_share_still_buying(valued, marketer):
    page = client_for(marketer).get("/").content.decode()

    table = page[page.index('id="rfm-groups"') :]
    assert '<th scope="col">Per customer</th><th scope="col">Still buying<sup>*</sup></th>' in table
    assert "Among the group's repeat buyers" in table
    champions = table[table.index('<th scope="row">Champions</th>') :].split("</tr>")[0]
    assert champions.count("–") == 0  # every column filled once a CLV run is active


def test_without_a_clv_run_the_cards_say_nothing_about_value(db, marketer):
    call_command("generate_customers", count=300, seed=12, stdout=io.StringIO())
    call_command("train", sync=True, stdout=io.StringIO())

    assert "Lifetime value:" not in client_for(marketer).get("/").content.decode()


def test_one_time_buyers_are_not_counted_as_still_buying(valued, marketer):
    """A group of one-time buyers reads '–', not the 100 % the model gives each of them."""
    one_timers = CustomerRfm.objects.filter(frequency__lt=2).values("customer_id")
    group = CustomerRfm.objects.filter(frequency__lt=2).values_list("group", flat=True).first()
    assert group is not None and CustomerValue.objects.filter(customer_id__in=one_timers).exists()
    CustomerRfm.objects.filter(group=group).update(frequency=1)
    name = next(g.name for g in GROUPS if g.key == group)

    table = client_for(marketer).get("/").content.decode()
    row = table[table.index(f'<th scope="row">{name}</th>') :].split("</tr>")[0]

    assert "100 %" not in row.replace("\xa0", " ")
    assert row.count("<td>–</td>") == 2  # still buying, likely lost
