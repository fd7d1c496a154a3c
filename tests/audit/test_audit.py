"""The audit trail: strategy versions and restoring one, every run activation with its
author, and a segment's history over runs."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from audit.models import RunActivation, StrategyVersion
from clustering.models import Segment
from clustering.services import run_activate
from tests.campaigns.helpers import swap_customers
from tests.clustering.conftest import client_for
from tests.clustering.helpers import train

pytestmark = pytest.mark.django_db


def edit(client, segment, description, actions="Call them"):
    return client.post(
        reverse("clustering:segment_edit", args=[segment.id]),
        {"name": segment.name, "description": description, "actions_text": actions},
    )


def test_each_strategy_edit_is_a_version_with_its_author(trained, marketer_client, marketer):
    segment = trained.clusters.first().segment

    edit(marketer_client, segment, "First idea")
    edit(marketer_client, segment, "Second idea")

    versions = list(StrategyVersion.objects.filter(segment=segment).order_by("number"))
    assert [v.description for v in versions][-2:] == ["First idea", "Second idea"]
    assert versions[0].author is None and versions[0].note == "created by a training"
    assert versions[-1].author == marketer


def test_saving_the_same_strategy_again_adds_no_version(trained, marketer_client):
    segment = trained.clusters.first().segment
    edit(marketer_client, segment, "Same")
    count = StrategyVersion.objects.filter(segment=segment).count()

    edit(marketer_client, segment, "Same")

    assert StrategyVersion.objects.filter(segment=segment).count() == count


def test_restoring_an_earlier_version_brings_its_strategy_back(trained, marketer_client, manager):
    segment = trained.clusters.first().segment
    edit(marketer_client, segment, "Good idea", "Send a voucher")
    edit(marketer_client, segment, "Bad idea", "Spam them")
    good = StrategyVersion.objects.get(segment=segment, description="Good idea")

    response = client_for(manager).post(
        reverse("audit:version_restore", args=[segment.id, good.id])
    )

    segment.refresh_from_db()
    newest = StrategyVersion.objects.filter(segment=segment).order_by("-number").first()
    assert response.status_code == 302
    assert (segment.description, segment.actions) == ("Good idea", ["Send a voucher"])
    assert newest.restored_from == good and newest.author == manager
    assert "restored version" in newest.note


def test_restoring_needs_the_permission_to_edit_segments(trained, make_user):
    segment = trained.clusters.first().segment
    version = StrategyVersion.objects.filter(segment=segment).first()
    viewer = client_for(make_user("vic", perms=("clustering.view_segment",)))

    response = viewer.post(reverse("audit:version_restore", args=[segment.id, version.id]))

    assert response.status_code == 403


def test_the_history_page_lists_versions_with_a_restore_button(trained, marketer_client):
    segment = trained.clusters.first().segment
    edit(marketer_client, segment, "Newer")

    page = marketer_client.get(reverse("audit:segment_history", args=[segment.id])).content
    page = page.decode()

    assert "by mia" in page and "Restore version 1" in page
    assert 'id="size-chart"' in page and "<polyline" not in page  # one run: one point


def test_every_activation_is_recorded_with_its_author_and_a_rollback_is_named(trained, manager):
    second = train()
    run_activate(run_id=trained.id, user=manager)  # back to the first run

    activations = list(RunActivation.objects.order_by("id"))

    assert [a.run_id for a in activations] == [trained.id, second.id, trained.id]
    assert activations[-1].user == manager and activations[-1].is_rollback
    assert not activations[1].is_rollback


def test_the_run_page_shows_its_activations(trained, manager, manager_client):
    train()
    run_activate(run_id=trained.id, user=manager)

    page = manager_client.get(reverse("clustering:run_detail", args=[trained.id])).content
    page = page.decode()

    assert 'id="run-activations"' in page
    assert "rolled back to from run" in page and "by max" in page


def test_size_over_time_spans_the_retrains_and_lists_joined_and_left(trained, marketer_client):
    swap_customers(trained)
    second = train()
    swap_customers(second, count=10)
    third = train()
    segment = third.clusters.order_by("-size").first().segment

    page = marketer_client.get(reverse("audit:segment_history", args=[segment.id])).content
    page = page.decode()

    assert page.count("<polyline") >= 2  # size, and the centre per feature
    table = page.split('id="timeline-table"')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + Segment.objects.get(id=segment.id).clusters.count()
    assert "joined" in page and "left" in page


def test_the_compare_page_and_csv_give_who_joined_and_left(trained, marketer_client):
    a, _b = swap_customers(trained)
    second = train()
    segment = a.segment

    page = marketer_client.get(
        reverse("clustering:run_compare"), {"a": trained.id, "b": second.id}
    ).content.decode()
    response = marketer_client.get(
        reverse("audit:segment_changes_csv", args=[segment.id]),
        {"from": trained.id, "to": second.id},
    )

    assert 'id="segment-changes"' in page
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {r["change"] for r in rows} == {"joined", "left"}
    assert {r["segment"] for r in rows} == {segment.name}
    changes = page.split('id="segment-changes"')[1].split(segment.name)[1].split("</tr>")[0]
    joined = sorted(r["customer_id"] for r in rows if r["change"] == "joined")
    assert f"<td>{len(joined)}</td>" in changes
    assert f'<span class="joined-ids">{", ".join(joined)}</span>' in changes


def test_the_card_returned_after_an_edit_names_the_new_version_and_its_author(
    trained, marketer_client
):
    segment = trained.clusters.first().segment

    response = marketer_client.post(
        reverse("clustering:segment_edit", args=[segment.id]),
        {"name": segment.name, "description": "Fresh", "actions_text": "Call"},
        headers={"HX-Request": "true"},
    )

    line = response.content.decode().split(f'id="segment-{segment.id}-version">')[1]
    assert line.startswith(f"Version 2 (S{segment.id}v2)")
    assert "by mia" in line.split("</p>")[0]
