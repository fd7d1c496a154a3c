"""The database the suite runs on, and what happens when it drops the site's connections.

In CI (REQUIRE_SERVICES=1) the suite must run on PostgreSQL: if DATABASE_URL fell back to
SQLite, the COPY paths of imports and trainings would go untested while CI stayed green.
"""

from __future__ import annotations

import io

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from clustering.tokens import api_token_create
from tests.conftest import require_service
from tests.hardening.conftest import train
from tests.hardening.live import fetch, gunicorn, signed_in_opener


def require_postgresql() -> None:
    require_service(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")


@pytest.mark.postgres
def test_the_suite_runs_on_postgresql_when_services_are_required(db):
    require_postgresql()

    assert connection.vendor == "postgresql"


@pytest.fixture
def copy_statements(monkeypatch) -> list[str]:
    """Every COPY statement psycopg runs during the test (the real COPY still runs)."""
    seen: list[str] = []
    real_copy = psycopg.Cursor.copy

    def recording_copy(self, statement, *args, **kwargs):
        seen.append(str(statement))
        return real_copy(self, statement, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "copy", recording_copy)
    return seen


@pytest.mark.postgres
@pytest.mark.django_db
def test_imports_and_trainings_write_and_read_with_copy(tmp_path, copy_statements):
    require_postgresql()
    rows = [f"PG-{i:04d},{20 + i % 60},{10 + i % 120},{1 + i % 99},{i % 40}" for i in range(600)]
    path = tmp_path / "customers.csv"
    header = "customer_id,age,annual_income,spending_score,purchase_frequency"
    path.write_text("\n".join([header, *rows]) + "\n")

    call_command("import_customers", str(path), "--no-progress", stdout=io.StringIO())
    train(k=3)

    statements = " | ".join(copy_statements)
    assert "COPY customer_import" in statements  # the import's staging table
    assert "COPY clustering_clusterassignment" in statements and "FORMAT BINARY" in statements
    assert "TO STDOUT WITH CSV" in statements  # the training reads the customers
    assert connection.vendor == "postgresql"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_after_the_database_drops_the_site_s_connections_the_next_request_succeeds(
    manager, tmp_path
):
    """A restart or failover of PostgreSQL closes every connection. gunicorn's worker keeps
    its connection between requests (CONN_MAX_AGE); the next request must notice the
    closed connection and reconnect (CONN_HEALTH_CHECKS), not answer 500."""
    require_postgresql()
    secret = api_token_create(user=manager, name="monitor")[1]
    headers = {"Authorization": f"Bearer {secret}"}
    with gunicorn(tmp_path / "gunicorn.log") as base:
        opener, _jar = signed_in_opener(manager)
        assert fetch(opener, f"{base}/api/ping/", headers=headers)[0] == 200
        assert fetch(opener, f"{base}/customers/imports/")[0] == 200
        answers = []
        for _ in range(3):
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                assert cursor.fetchone()[0] >= 1  # the web worker's connection was there
            answers.append(fetch(opener, f"{base}/api/ping/", headers=headers)[0])
            answers.append(fetch(opener, f"{base}/customers/imports/")[0])
        log = (tmp_path / "gunicorn.log").read_text()

    assert answers == [200] * 6, log[-3000:]
