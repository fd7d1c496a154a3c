"""A segment's members: search in text attributes, ranges of any number, and a campaign
export that follows the same filters and warns when the segments are arbitrary cuts."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest

from clustering.models import ClusterAssignment, TrainingRun
from customers.models import Attribute, Customer
from tests.clustering.helpers import CAMPAIGN_HEADER, segment_of

# The ID cell links to the customer's page.
CUSTOMER_ID = re.compile(r"<tr><td><a href=\"/customers/\d+/\">(DEMO-\d+)</a></td>")
ARBITRARY_CUTS = "no clear segments: these segments are arbitrary cuts, not personas"


@pytest.fixture
def loyal(trained):
    """The Loyal cluster of the active run; its customers have a channel ("web" or "store")."""
    Attribute.objects.create(key="channel", label="Channel", kind=Attribute.Kind.CATEGORICAL)
    customers = list(Customer.objects.order_by("id"))
    for i, customer in enumerate(customers):
        customer.attributes = {"channel": "store" if i % 5 == 0 else "web"}
    Customer.objects.bulk_update(customers, ["attributes"])
    return segment_of(trained, "Loyal Customers")


def members(cluster, **filters) -> set[str]:
    rows = ClusterAssignment.objects.filter(cluster=cluster, **filters)
    return set(rows.values_list("customer__customer_id", flat=True))


def shown(client, cluster, **params) -> set[str]:
    """Every customer ID the members page lists for these filters, page after page."""
    found, page = set(), 1
    while True:
        response = client.get(f"/segments/{cluster.segment_id}/", {**params, "page": page})
        found |= set(CUSTOMER_ID.findall(response.content.decode()))
        if not response.context["page"].has_next():
            return found
        page += 1


def exported(client, cluster, **params) -> list[dict[str, str]]:
    response = client.get(f"/segments/{cluster.segment_id}/export.csv", params)
    assert response.status_code == 200
    content = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(content)))


def test_the_search_finds_members_by_a_text_attribute(loyal, marketer_client):
    expected = members(loyal, customer__attributes__channel="store")

    assert 0 < len(expected) < loyal.size
    assert shown(marketer_client, loyal, q="STOR") == expected


def test_the_search_reads_a_category_by_its_label_and_a_whole_label_only_as_itself(
    loyal, marketer_client
):
    women = members(loyal, customer__sex="female")
    men = members(loyal, customer__sex="male")

    assert women and men
    assert shown(marketer_client, loyal, q="Female") == women
    assert shown(marketer_client, loyal, q="male") == men  # not the women as well


def test_members_can_be_filtered_by_the_range_of_any_numeric_feature(loyal, marketer_client):
    expected = members(loyal, customer__age__gte=30, customer__age__lte=40.5)
    assert 0 < len(expected) < loyal.size

    assert shown(marketer_client, loyal, min_age="30", max_age="40.5") == expected
    assert shown(marketer_client, loyal, max_purchase_frequency="20") == members(
        loyal, customer__purchase_frequency__lte=20
    )


def test_a_numeric_attribute_is_filtered_as_a_number_and_a_missing_value_never_matches(
    loyal, marketer_client
):
    Attribute.objects.create(key="visits", label="Visits", kind=Attribute.Kind.NUMERIC)
    customers = list(Customer.objects.order_by("id"))
    for i, customer in enumerate(customers):
        customer.attributes = {**customer.attributes, "visits": None if i % 7 == 0 else i % 12}
    Customer.objects.bulk_update(customers, ["attributes"])
    with_visits = {c.customer_id: c.attributes["visits"] for c in customers}
    in_loyal = members(loyal)

    found = shown(marketer_client, loyal, min_visits="9", max_visits="100")

    expected = {i for i in in_loyal if with_visits[i] is not None and with_visits[i] >= 9}
    assert found == expected != set()
    assert shown(marketer_client, loyal, max_visits="1000") == {
        i for i in in_loyal if with_visits[i] is not None
    }


def test_the_range_inputs_are_built_from_the_run_s_features(loyal, marketer_client):
    page = marketer_client.get(f"/segments/{loyal.segment_id}/").content.decode()

    names = re.findall(r'name="(min_[a-z_]+)"', page)
    assert names[:4] == [f"min_{key}" for key in loyal.run.features]
    assert 'name="max_annual_income"' in page


def test_a_range_that_is_not_a_number_is_ignored_and_said(loyal, marketer_client):
    response = marketer_client.get(f"/segments/{loyal.segment_id}/", {"min_age": "thirty"})

    assert "Age from: “thirty” is not a number." in response.content.decode()
    assert response.context["page"].paginator.count == loyal.size


def test_the_sort_links_pages_and_export_keep_every_filter(loyal, marketer_client):
    response = marketer_client.get(
        f"/segments/{loyal.segment_id}/", {"q": "web", "band": "very", "min_age": "20"}
    )

    page = html.unescape(response.content.decode())
    kept = "q=web&band=very&min_age=20"
    assert f'export.csv?{kept}"' in page
    assert f'href="?{kept}&sort=age"' in page
    assert f'href="?{kept}&sort=-confidence&page=2"' in page


def test_the_export_follows_the_search_and_the_ranges(loyal, marketer_client):
    rows = exported(marketer_client, loyal, q="store", min_age="30", max_age="40")

    expected = members(
        loyal,
        customer__attributes__channel="store",
        customer__age__gte=30,
        customer__age__lte=40,
    )
    assert expected
    assert {row["customer_id"] for row in rows} == expected


def test_the_export_of_segments_that_hold_has_an_empty_warning_column(loyal, marketer_client):
    rows = exported(marketer_client, loyal)

    assert list(rows[0]) == [*CAMPAIGN_HEADER[:6], "channel", *CAMPAIGN_HEADER[6:]]
    assert {row["segment_warning"] for row in rows} == {""}


def test_the_export_of_a_run_without_clear_segments_says_they_are_arbitrary_cuts(
    loyal, marketer_client
):
    TrainingRun.objects.filter(id=loyal.run_id).update(silhouette=0.18)

    rows = exported(marketer_client, loyal)

    assert len(rows) == loyal.size
    assert {row["segment_warning"] for row in rows} == {ARBITRARY_CUTS}
