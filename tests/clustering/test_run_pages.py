"""The runs pages and a retrain's life as a person sees them: a finished retrain that never
reloads the page, activations that ask first and say who and when, the runs list and the
comparison that say on which features, per-K inertia that says it came from a sample, the
first model of a fresh database and runs that wait for a worker."""

from __future__ import annotations

import io
import json
import re
from datetime import timedelta
from functools import partial

import pytest
from django.core.management import call_command
from django.db.models.functions import Now

from clustering import engine, services
from clustering.models import TrainingRun
from clustering.services import (
    TrainingParams,
    training_run_claim,
    training_run_start,
    training_runs_resend,
)
from tests.clustering.helpers import train

HX = {"HX-Request": "true"}


def text(response) -> str:
    return response.content.decode()


def squeeze(html: str) -> str:
    """The page's text with tags dropped and white space collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --------------------------------------------------------------------------- a finished retrain


@pytest.fixture
def running(trained) -> TrainingRun:
    run = training_run_start(params=TrainingParams(k=3), enqueue=False)
    assert training_run_claim(run_id=run.id)
    return run


def test_a_retrain_that_finishes_while_the_dashboard_watches_offers_a_refresh_button(
    running, manager_client
):
    services.training_run_execute(run_id=running.id)

    response = manager_client.get(
        f"/runs/{running.id}/status/?was=running",
        headers={**HX, "HX-Current-URL": "http://testserver/?tab=cards"},
    )

    assert response.status_code == 200
    assert "HX-Refresh" not in response.headers and "HX-Redirect" not in response.headers
    html = text(response)
    assert "<html" not in html  # only the status partial is swapped: open forms stay
    assert "A new model is active" in html
    assert f"run {running.id}</a> finished with 3 segments" in html
    assert '<a class="button" href="/?tab=cards">Refresh to see the new model</a>' in html
    assert "hx-trigger" not in html


def test_the_refresh_button_of_a_run_page_leads_back_to_that_page(running, manager_client):
    services.training_run_execute(run_id=running.id)

    response = manager_client.get(
        f"/runs/{running.id}/status/?was=running",
        headers={**HX, "HX-Current-URL": f"http://testserver/runs/{running.id}/"},
    )

    assert f'<a class="button" href="/runs/{running.id}/">Refresh' in text(response)


def test_a_refresh_button_never_leads_to_another_site(running, manager_client):
    services.training_run_execute(run_id=running.id)

    response = manager_client.get(
        f"/runs/{running.id}/status/?was=running",
        headers={**HX, "HX-Current-URL": "https://evil.example/phish"},
    )

    assert '<a class="button" href="/">Refresh' in text(response)
    assert "evil.example" not in text(response)


# --------------------------------------------------------------------------- activation


def test_the_run_page_asks_to_confirm_an_activation_with_a_box_to_tick(trained, manager_client):
    newer = train(k=3)

    html = text(manager_client.get(f"/runs/{trained.id}/"))

    form = re.search(r'<form [^>]*id="activate-form".*?</form>', html, re.S).group(0)
    assert f'action="/runs/{trained.id}/activate/"' in form
    assert re.search(r'<input type="checkbox" name="confirm" value="yes" required>', form)
    assert f"instead of run {newer.id} (3 segments" in squeeze(form)


def test_an_activation_without_the_box_ticked_changes_nothing(trained, manager_client):
    newer = train(k=3)

    response = manager_client.post(f"/runs/{trained.id}/activate/", follow=True)

    assert TrainingRun.objects.get(is_active=True) == newer
    assert f"Tick the box to confirm that run {trained.id} should be active." in text(response)


def test_an_activation_is_recorded_with_who_and_when_on_the_run_page_and_the_list(
    trained, manager, manager_client
):
    train(k=3)

    manager_client.post(f"/runs/{trained.id}/activate/", {"confirm": "yes"})

    trained.refresh_from_db()
    assert trained.is_active and trained.activated_by == manager
    run_page = text(manager_client.get(f"/runs/{trained.id}/"))
    activated = re.search(r'<dd id="run-activated">(.*?)</dd>', run_page, re.S).group(1)
    assert re.fullmatch(
        r'<time datetime="[^"]+" title="(now|[^"]*ago)">[^<]+</time> by max', activated
    )
    runs = text(manager_client.get("/runs/"))
    row = re.search(rf'<tr class="active-run">.*?Run {trained.id}</a>.*?</tr>', runs, re.S)
    cell = re.search(r'<td class="run-activated">(.*?)</td>', row.group(0), re.S).group(1)
    assert cell.endswith("</time> by max")


def test_a_retrain_is_recorded_as_activated_by_whoever_started_it(customers, manager):
    run = training_run_start(user=manager, params=TrainingParams(k=3), enqueue=False)
    assert training_run_claim(run_id=run.id)

    run = services.training_run_execute(run_id=run.id)

    assert run.is_active and run.activated_by == manager and run.activated_at is not None


# --------------------------------------------------------------------------- the runs list


def test_the_runs_list_says_on_which_features_with_which_algorithm_and_customers(
    trained, marketer_client
):
    two = train(k=3, features=("annual_income", "spending_score"))

    html = text(marketer_client.get("/runs/"))

    rows = {
        int(run_id): squeeze(row)
        for run_id, row in re.findall(
            r'<tr[^>]*>\s*<td><a href="/runs/(\d+)/">(.*?)</tr>', html, re.S
        )
    }
    assert "Succeeded Annual income (k), Spending score K-Means" in rows[two.id]
    assert "Age, Annual income (k), Spending score, Purchases per year" in rows[trained.id]
    assert " k-means " in rows[two.id].lower()
    assert " 400 " in rows[trained.id]
    assert "same features" in squeeze(html)


def test_dates_on_the_runs_pages_have_one_format_and_the_relative_time_as_tooltip(
    trained, marketer_client
):
    other = train(k=3)
    pages = [
        text(marketer_client.get("/runs/")),
        text(marketer_client.get(f"/runs/{trained.id}/")),
        text(marketer_client.get("/runs/compare/")),
    ]

    for html in pages:
        times = re.findall(r'<time datetime="[^"]+" title="([^"]+)">([^<]+)</time>', html)
        assert times, "no date on the page"
        for tooltip, shown in times:
            assert re.fullmatch(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}", shown), shown
            assert tooltip.endswith("ago") or tooltip == "now", tooltip
        assert not re.search(r"\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}", html)  # the old format
    options = re.findall(rf'<option value="{other.id}"[^>]*>([^<]+)</option>', pages[2])
    assert options and re.search(r"\d{1,2} [A-Z][a-z]{2} \d{4}, \d{2}:\d{2}\)$", options[0])


# --------------------------------------------------------------------------- comparing runs


def test_the_compare_page_opens_on_the_active_run_against_the_one_before(trained, marketer_client):
    second, third = train(k=3), train(k=5)

    response = marketer_client.get("/runs/compare/")

    assert (response.context["run_a"], response.context["run_b"]) == (second, third)
    html = text(response)
    assert "Choose two different runs" not in html
    assert f"Rows: segment in run {second.id}. Columns: segment in run {third.id}." in html
    assert re.search(rf'<option value="{second.id}" selected>', html)
    assert re.search(rf'<option value="{third.id}" selected>', html)
    assert trained  # the oldest is not compared by default


def test_after_a_rollback_the_compare_page_opens_on_the_active_run_and_its_predecessor(
    trained, manager_client
):
    second, _third = train(k=3), train(k=5)
    manager_client.post(f"/runs/{second.id}/activate/", {"confirm": "yes"})

    response = manager_client.get("/runs/compare/")

    assert (response.context["run_a"], response.context["run_b"]) == (trained, second)


def test_with_one_run_the_compare_page_says_there_is_nothing_to_compare(trained, marketer_client):
    html = text(marketer_client.get("/runs/compare/"))

    assert f"Run {trained.id} is the only finished run so far" in html
    assert "Choose two different runs" not in html


def test_the_compare_page_says_when_runs_were_trained_on_different_features(
    trained, marketer_client
):
    two = train(k=3, features=("annual_income", "spending_score"))

    html = text(marketer_client.get("/runs/compare/", {"a": trained.id, "b": two.id}))
    same = text(marketer_client.get("/runs/compare/", {"a": trained.id, "b": train(k=5).id}))

    note = squeeze(re.search(r'<p [^>]*id="different-features".*?</p>', html, re.S).group(0))
    assert "trained on different features" in note
    assert f"run {two.id}: Annual income (k), Spending score)" in note
    assert "silhouettes are not comparable" in note
    assert 'id="different-features"' not in same


# --------------------------------------------------------------------------- per-K on a sample


@pytest.fixture
def sampled(customers, monkeypatch) -> TrainingRun:
    """A run whose sweep ran on a sample of 200 of the 400 customers, as above 100,000."""
    monkeypatch.setattr(
        engine, "sweep", partial(engine.sweep, large_data_threshold=300, sweep_sample_size=200)
    )
    return train(k_min=2, k_max=6)


def test_per_k_inertia_from_a_sample_is_labelled_and_on_the_full_data_scale(
    sampled, marketer_client
):
    assert sampled.sweep_sample_size == 200
    fitted = sampled.customers_used - sampled.outliers
    html = text(marketer_client.get(f"/runs/{sampled.id}/"))

    note = squeeze(re.search(r'<p [^>]*id="per-k-sample">.*?</p>', html, re.S).group(0))
    assert "each K was tried on a random sample of 200" in note
    assert f"scaled to all {fitted}" in note
    table = re.search(r'<table class="data" id="per-k">.*?</table>', html, re.S).group(0)
    assert "Inertia on the sample of 200" in table
    chosen = re.search(r'<tr class="chosen"><td>\d+ \(chosen\)</td><td>([\d.]+)</td>', table)
    # The chosen K's inertia reads on the final model's scale, not the sample's (half of it).
    assert float(chosen.group(1)) == pytest.approx(sampled.inertia, rel=0.25)


def test_per_k_inertia_in_the_json_summary_says_it_came_from_a_sample(sampled, marketer):
    out = io.StringIO()
    call_command("train", "--sync", "--json", "--k-min", "2", "--k-max", "6", stdout=out)
    summary = json.loads(out.getvalue())

    assert summary["sweep_sample_size"] == 200
    chosen = next(row for row in summary["per_k"] if row["k"] == summary["k"])
    assert chosen["inertia"] == pytest.approx(summary["inertia"], rel=0.25)
    assert chosen["inertia_sample"] == pytest.approx(summary["inertia"] / 2, rel=0.3)


def test_per_k_inertia_without_a_sample_is_left_as_it_is(trained, marketer_client):
    out = io.StringIO()
    call_command("train", "--sync", "--json", stdout=out)
    summary = json.loads(out.getvalue())

    assert summary["sweep_sample_size"] == summary["customers_used"] - summary["outliers"]
    assert all(row["inertia_sample"] is None for row in summary["per_k"])
    html = text(marketer_client.get(f"/runs/{trained.id}/"))
    assert 'id="per-k-sample"' not in html


# --------------------------------------------------------------------------- the first model


def test_a_fresh_database_gets_its_first_model_queued_once(
    customers, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(services, "training_run_enqueue", lambda run_id: queued.append(run_id))
    out = io.StringIO()

    with django_capture_on_commit_callbacks(execute=True):
        call_command("train", "--if-no-model", stdout=out)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("train", "--if-no-model", stdout=out)  # a second `make run`: nothing

    run = TrainingRun.objects.get()
    assert run.status == TrainingRun.Status.PENDING and run.features_auto
    assert queued == [run.id]
    assert f"Training the first model in the background (run {run.id})" in out.getvalue()


def test_a_database_with_a_model_gets_no_first_model(trained, monkeypatch):
    monkeypatch.setattr(services, "training_run_enqueue", lambda run_id: pytest.fail("queued"))

    call_command("train", "--if-no-model", stdout=io.StringIO())

    assert TrainingRun.objects.count() == 1


def test_a_database_without_customers_gets_no_first_model(db):
    call_command("train", "--if-no-model", stdout=io.StringIO())

    assert not TrainingRun.objects.exists()


# --------------------------------------------------------------------------- waiting for a worker


def pending_for(run: TrainingRun, seconds: float) -> TrainingRun:
    TrainingRun.objects.filter(id=run.id).update(created_at=Now() - timedelta(seconds=seconds))
    run.refresh_from_db()
    return run


@pytest.fixture
def sent(monkeypatch) -> list[int]:
    """Runs whose task was sent (to no broker)."""
    from clustering.tasks import train_task

    sent: list[int] = []
    monkeypatch.setattr(train_task, "delay", lambda run_id: sent.append(run_id))
    return sent


def test_a_run_pending_over_a_minute_is_sent_again_once_a_minute(customers, sent):
    fresh = training_run_start(params=TrainingParams(), enqueue=False)
    assert training_runs_resend() == [] and sent == []

    pending_for(fresh, 61)
    assert training_runs_resend() == [fresh.id]
    assert training_runs_resend() == []  # not again within the minute
    TrainingRun.objects.filter(id=fresh.id).update(resent_at=Now() - timedelta(seconds=61))
    assert training_runs_resend() == [fresh.id]
    assert sent == [fresh.id, fresh.id]


def test_a_claimed_run_is_never_sent_again(customers, sent):
    run = pending_for(training_run_start(params=TrainingParams(), enqueue=False), 120)
    assert training_run_claim(run_id=run.id)

    assert training_runs_resend() == [] and sent == []


def test_the_page_says_since_when_a_run_waits_and_when_it_was_sent_again(
    customers, sent, manager_client
):
    run = pending_for(training_run_start(params=TrainingParams(), enqueue=False), 150)
    training_runs_resend()

    html = text(manager_client.get(f"/runs/{run.id}/status/?was=pending", headers=HX))

    words = squeeze(html)
    assert re.search(
        rf"Run {run.id} is waiting for a worker since \d+ \w+ \d{{4}}, \d\d:\d\d ?; "
        r"re-sent to the queue \d+ \w+ \d{4}, \d\d:\d\d",
        words,
    ), words
    assert "a worker that starts, and Celery beat every minute, send it again" in words
    assert "marked failed" in words
    assert 'hx-trigger="every 1s"' in html
