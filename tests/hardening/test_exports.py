"""What the site writes out: every CSV guards spreadsheet formulas (numbers stay numbers),
nothing private stays in a browser's cache, and no text a user writes is unbounded."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from clustering.models import (
    SEGMENT_ACTION_MAX_LENGTH,
    SEGMENT_ACTIONS_MAX,
    SEGMENT_DESCRIPTION_MAX_LENGTH,
    SEGMENT_STRATEGY_EXPORT_MAX_LENGTH,
    ApiToken,
    Segment,
)
from customers.models import Attribute, Customer, ImportRecord
from customers.services import SafeCsvWriter

pytestmark = pytest.mark.django_db

FORMULA_IDS = ["=cmd|' /C calc'!A0", "+1+1", "@SUM(A1)", "-2+3"]


@pytest.fixture
def formulas(trained):
    """Four members of the trained model renamed to IDs a spreadsheet would run, with a
    negative number and a formula-looking category among their attributes."""
    Attribute.objects.create(key="balance", label="Balance", kind="numeric")
    Attribute.objects.create(key="note", label="Note", kind="categorical")
    customers = list(Customer.objects.order_by("pk")[: len(FORMULA_IDS)])
    for customer, customer_id in zip(customers, FORMULA_IDS, strict=True):
        customer.customer_id = customer_id
        customer.attributes = {"balance": -5.5, "note": "=HYPERLINK(1)"}
        customer.save()
    return trained


@pytest.mark.parametrize(
    "value, written",
    [
        ("=1+1", "'=1+1"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("-x", "'-x"),
        ("a=b", "a=b"),
        (-5, "-5"),
        (-0.25, "-0.25"),
        (None, ""),
    ],
)
def test_the_csv_writer_guards_text_and_leaves_numbers(value, written):
    line = SafeCsvWriter().row([value])

    assert next(csv.reader(io.StringIO(line))) == [written]


def parsed(body: str) -> dict[str, dict[str, str]]:
    return {row["customer_id"]: row for row in csv.DictReader(io.StringIO(body))}


def assert_guarded(rows: dict[str, dict[str, str]]) -> None:
    for customer_id in FORMULA_IDS:
        row = rows["'" + customer_id]  # shown as text, never run
        assert row["balance"] == "-5.5"  # a negative number stays a number
        assert row["note"] == "'=HYPERLINK(1)"
        assert row["age"].isdigit()
    assert not any(cid[:1] in "=+-@\t" for cid in rows)


def admin_export(admin_client) -> str:
    response = admin_client.post(
        reverse("admin:customers_customer_changelist"),
        {
            "action": "export_selected",
            "_selected_action": list(Customer.objects.values_list("pk", flat=True)),
        },
    )
    assert response.status_code == 200
    return b"".join(response.streaming_content).decode()


def test_the_admin_export_guards_formulas(admin_client, formulas):
    assert_guarded(parsed(admin_export(admin_client)))


def test_export_customers_guards_formulas(formulas):
    out = io.StringIO()
    call_command("export_customers", stdout=out)

    assert_guarded(parsed(out.getvalue()))


def test_the_campaign_export_guards_formulas(client, marketer, formulas):
    client.force_login(marketer)
    rows = {}
    for cluster in formulas.clusters.all():
        response = client.get(f"/segments/{cluster.segment_id}/export.csv")
        rows.update(parsed(b"".join(response.streaming_content).decode()))

    assert_guarded({cid: row for cid, row in rows.items() if cid.startswith("'")})
    for row in rows.values():
        assert float(row["confidence"]) <= 1 and "." in row["confidence"]


def test_a_guarded_export_imports_back_unchanged(tmp_path, formulas):
    path = tmp_path / "export.csv"
    call_command("export_customers", "--output", str(path))
    before = dict(Customer.objects.values_list("customer_id", "attributes"))

    call_command("import_customers", str(path), "--no-progress", stdout=io.StringIO())

    assert dict(Customer.objects.values_list("customer_id", "attributes")) == before
    assert ImportRecord.objects.get().updated == 0


# --- Private responses ---------------------------------------------------------------------------


def test_signed_in_pages_and_csv_exports_are_not_stored_by_browsers(
    client, admin_client, marketer, trained
):
    client.force_login(marketer)
    segment = trained.clusters.first().segment_id
    responses = {
        "dashboard": client.get("/"),
        "members": client.get(f"/segments/{segment}/"),
        "campaign export": client.get(f"/segments/{segment}/export.csv"),
        "admin page": admin_client.get("/admin/customers/customer/"),
        "admin export": admin_client.post(
            reverse("admin:customers_customer_changelist"),
            {"action": "export_selected", "_selected_action": [Customer.objects.first().pk]},
        ),
    }

    for what, response in responses.items():
        assert response.status_code == 200, what
        assert "no-store" in response["Cache-Control"], what
        assert "private" in response["Cache-Control"], what


def test_the_api_answers_are_not_stored_either(client, token, trained):
    response = client.get("/api/segments/", headers={"Authorization": f"Bearer {token}"})

    assert "no-store" in response["Cache-Control"]


# --- Bounded text --------------------------------------------------------------------------------


def edit(client, segment: Segment, **fields):
    data = {"name": segment.name, "description": "", "actions_text": "", **fields}
    return client.post(f"/segments/{segment.id}/edit/", data, headers={"HX-Request": "true"})


TOO_LONG = {
    "description": (
        {"description": "x" * (SEGMENT_DESCRIPTION_MAX_LENGTH + 1)},
        f"keep it within {SEGMENT_DESCRIPTION_MAX_LENGTH:,}",
    ),
    "too many actions": (
        {"actions_text": "\n".join(f"Call {i}" for i in range(SEGMENT_ACTIONS_MAX + 1))},
        f"a segment takes at most {SEGMENT_ACTIONS_MAX}",
    ),
    "a long action": (
        {"actions_text": "Call\n" + "y" * (SEGMENT_ACTION_MAX_LENGTH + 1)},
        f"Action 2 is {SEGMENT_ACTION_MAX_LENGTH + 1} characters long",
    ),
    "a megabyte": ({"description": "z" * 1_000_000}, "1,000,000 characters long"),
}


@pytest.mark.parametrize("fields, message", TOO_LONG.values(), ids=TOO_LONG.keys())
def test_the_segment_form_refuses_unbounded_text_saying_the_limit(
    client, marketer, trained, fields, message
):
    client.force_login(marketer)
    segment = trained.clusters.first().segment
    before = (segment.description, list(segment.actions))

    response = edit(client, segment, **fields)

    assert response.status_code == 200
    assert message in response.content.decode()
    segment.refresh_from_db()
    assert (segment.description, list(segment.actions)) == before


@pytest.mark.parametrize("fields, message", TOO_LONG.values(), ids=TOO_LONG.keys())
def test_the_segment_admin_refuses_unbounded_text(admin_client, trained, fields, message):
    segment = trained.clusters.first().segment
    actions = fields.get("actions_text", "").splitlines() or segment.actions
    data = {
        "name": segment.name,
        "description": fields.get("description", segment.description),
        "actions": json.dumps(actions),
    }

    url = reverse("admin:clustering_segment_change", args=[segment.id])

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert message in response.content.decode()


def test_a_segment_within_the_limits_is_saved(client, marketer, trained):
    client.force_login(marketer)
    segment = trained.clusters.first().segment
    actions = "\n".join("a" * SEGMENT_ACTION_MAX_LENGTH for _ in range(SEGMENT_ACTIONS_MAX))

    edit(client, segment, description="d" * SEGMENT_DESCRIPTION_MAX_LENGTH, actions_text=actions)

    segment.refresh_from_db()
    assert len(segment.description) == SEGMENT_DESCRIPTION_MAX_LENGTH
    assert len(segment.actions) == SEGMENT_ACTIONS_MAX


def test_the_campaign_export_does_not_repeat_a_huge_strategy(client, marketer, trained):
    """A description saved before the limits existed is cut in the export, not repeated
    whole on each of the members' rows."""
    cluster = trained.clusters.order_by("-size").first()
    Segment.objects.filter(id=cluster.segment_id).update(description="w" * 1_000_000)
    client.force_login(marketer)

    response = client.get(f"/segments/{cluster.segment_id}/export.csv")

    body = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == cluster.size
    assert {len(row["strategy"]) for row in rows} == {SEGMENT_STRATEGY_EXPORT_MAX_LENGTH}
    assert len(body) < cluster.size * (SEGMENT_STRATEGY_EXPORT_MAX_LENGTH + 300)


def test_the_api_token_command_refuses_a_name_it_would_have_cut(marketer):
    with pytest.raises(CommandError, match="characters long; keep it within 80"):
        call_command("api_token", "mia", "--name", "n" * 81, stdout=io.StringIO())

    assert not ApiToken.objects.exists()


def test_a_derived_column_name_is_bounded(tmp_path, db):
    path = tmp_path / "c.csv"
    path.write_text("customer_id,a\nC1,1\n")

    with pytest.raises(CommandError, match="the limit is 80"):
        call_command(
            "import_customers", str(path), "--derive", "n" * 81 + "=[a]*2", stdout=io.StringIO()
        )
