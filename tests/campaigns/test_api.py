"""POST /api/campaigns/<id>/outcomes/, GET /api/campaigns/<id>/ and
GET /api/segments/<id>/changes/: tokens, permissions, answers."""

from __future__ import annotations

import json

import pytest

from audit.selectors import segment_changes_ids
from campaigns.models import Outcome
from clustering.models import ClusterAssignment
from clustering.tokens import api_token_create
from tests.campaigns.helpers import make_campaign, swap_customers
from tests.clustering.helpers import train

pytestmark = pytest.mark.django_db


def bearer(secret):
    return {"Authorization": f"Bearer {secret}"}


def post_outcomes(client, campaign, secret, body, content_type="application/json"):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        f"/api/campaigns/{campaign.id}/outcomes/",
        data,
        content_type=content_type,
        headers=bearer(secret),
    )


def test_a_marketers_token_imports_outcomes_and_outsiders_are_reported(client, trained, marketer):
    campaign = make_campaign(trained)
    ids = list(campaign.members.values_list("customer__customer_id", flat=True)[:2])
    secret = api_token_create(user=marketer, name="Mailer")[1]

    response = post_outcomes(
        client,
        campaign,
        secret,
        {
            "outcomes": [
                {"customer_id": ids[0], "converted": True, "revenue": 80, "channel": "x"},
                {"customer_id": ids[1], "converted": "no"},
                {"customer_id": "SOMEONE-ELSE", "converted": True, "revenue": 5},
            ]
        },
    )

    body = response.json()
    assert response.status_code == 200
    assert body["counted"] == 2 and body["ignored_columns"] == ["channel"]
    assert body["outsiders"]["rows"] == [{"row": 2, "customer_id": "SOMEONE-ELSE"}]
    assert Outcome.objects.count() == 2
    assert campaign.last_import.imported_by == marketer


def test_invalid_outcomes_name_each_field_and_write_nothing(client, trained, marketer):
    campaign = make_campaign(trained)
    customer_id = campaign.members.values_list("customer__customer_id", flat=True).first()
    secret = api_token_create(user=marketer, name="Mailer")[1]

    response = post_outcomes(
        client,
        campaign,
        secret,
        {"outcomes": [{"customer_id": customer_id, "converted": "maybe", "revenue": "12x"}]},
    )

    body = response.json()
    assert response.status_code == 400
    assert set(body["errors"]) == {"outcomes[0].converted", "outcomes[0].revenue"}
    assert not Outcome.objects.exists()


def test_a_csv_body_is_read_like_the_file(client, trained, marketer):
    campaign = make_campaign(trained)
    customer_id = campaign.members.values_list("customer__customer_id", flat=True).first()
    secret = api_token_create(user=marketer, name="Mailer")[1]

    response = post_outcomes(
        client,
        campaign,
        secret,
        f"customer_id,converted,revenue\n{customer_id},yes,9.5\n",
        content_type="text/csv",
    )

    assert response.status_code == 200 and response.json()["counted"] == 1


def test_a_token_without_the_permission_gets_403(client, trained, make_user):
    campaign = make_campaign(trained)
    viewer = make_user("vic", perms=("clustering.view_segment", "campaigns.view_campaign"))
    secret = api_token_create(user=viewer, name="Read only")[1]

    response = post_outcomes(client, campaign, secret, {"outcomes": [{"customer_id": "x"}]})

    assert response.status_code == 403
    assert client.get(f"/api/campaigns/{campaign.id}/", headers=bearer(secret)).status_code == 200


def test_no_token_gets_401_and_an_unknown_campaign_404(client, trained, marketer):
    campaign = make_campaign(trained)
    secret = api_token_create(user=marketer, name="Mailer")[1]

    assert post_outcomes(client, campaign, "wrong", {"outcomes": []}).status_code == 401
    missing = client.post(
        "/api/campaigns/999999/outcomes/",
        "{}",
        content_type="application/json",
        headers=bearer(secret),
    )
    assert missing.status_code == 404


def test_changes_between_runs_equal_the_set_difference_of_assignments(client, trained, marketer):
    a, _b = swap_customers(trained)
    second = train()
    segment = a.segment
    secret = api_token_create(user=marketer, name="Sync")[1]

    response = client.get(
        f"/api/segments/{segment.id}/changes/?from={trained.id}&to={second.id}",
        headers=bearer(secret),
    )

    def members(run):
        ids = ClusterAssignment.objects.filter(run=run, cluster__segment=segment).values_list(
            "customer__customer_id", flat=True
        )
        return set(ids)

    before, after = members(trained), members(second)
    body = response.json()
    assert response.status_code == 200
    assert body["joined"] and body["left"]
    assert body["joined"] == sorted(after - before)
    assert body["left"] == sorted(before - after)
    assert (body["joined"], body["left"]) == segment_changes_ids(
        segment=segment, run_from=trained, run_to=second
    )


def test_changes_name_a_missing_run_parameter(client, trained, marketer):
    segment = trained.clusters.first().segment
    secret = api_token_create(user=marketer, name="Sync")[1]

    response = client.get(f"/api/segments/{segment.id}/changes/?from=abc", headers=bearer(secret))

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"from", "to"}
