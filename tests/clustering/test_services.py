"""Training runs in the database: train, retrain, fail, roll back, prune; the model files."""

from __future__ import annotations

import io
import json
import threading
from datetime import timedelta

import numpy as np
import pytest
from django.db import connections

from clustering import engine, naming
from clustering.model_store import ModelFileError, file_sha256, model_load, model_save
from clustering.models import Cluster, ClusterAssignment, Segment, TrainingRun
from clustering.services import (
    TrainingError,
    TrainingParams,
    _unique_name,
    run_activate,
    training_run_claim,
    training_run_fail,
    training_run_start,
    training_runs_reap,
)
from customers.models import Customer
from tests.clustering.helpers import (
    FEATURES,
    PLAYBOOK,
    running_run,
    train,
    train_command,
    train_run,
)
from tests.customers.factories import CustomerFactory

THREE_FEATURES = "age,annual_income,spending_score"


def only_run() -> TrainingRun:
    return TrainingRun.objects.get()


def segment_ids(run: TrainingRun) -> set[int]:
    return set(run.clusters.values_list("segment_id", flat=True))


# --------------------------------------------------------------------------- train --sync


def test_train_sync_finds_the_four_planted_personas_and_activates_them(customers):
    train_command()

    run = only_run()
    assert (run.status, run.is_active, run.chosen_k) == (TrainingRun.Status.SUCCEEDED, True, 4)
    assert set(run.clusters.values_list("segment__name", flat=True)) == PLAYBOOK


def test_every_segment_of_a_new_run_comes_with_a_strategy(customers):
    train_command()

    segments = Segment.objects.filter(clusters__run=only_run())
    assert segments.count() == 4
    for segment in segments:
        assert segment.description == naming.STRATEGIES[segment.archetype].description
        assert len(segment.actions) >= 3, segment.name


def test_every_customer_used_gets_exactly_one_assignment(customers):
    train_command()

    run = only_run()
    assigned = ClusterAssignment.objects.filter(run=run)
    assert run.customers_used == customers
    assert assigned.count() == customers
    assert assigned.values("customer").distinct().count() == customers


def test_planted_personas_are_found_again_on_subsamples(customers):
    train_command()

    assert only_run().stability > 0.9


def test_the_saved_model_file_matches_the_hash_recorded_with_the_run(customers, settings):
    train_command()

    run = only_run()
    path = settings.MODEL_STORAGE_DIR / run.model_file
    assert path.is_file()
    assert file_sha256(path) == run.model_sha256


def test_train_json_prints_the_run_summary_for_scripts(customers):
    summary = json.loads(train_command("--json"))

    run = only_run()
    assert (summary["run_id"], summary["status"], summary["k"]) == (run.id, "succeeded", 4)
    assert summary["silhouette"] == pytest.approx(run.silhouette)
    assert summary["inertia"] == pytest.approx(run.inertia)
    assert summary["stability"] == run.stability
    assert summary["features"] == list(FEATURES)
    assert (summary["customers_used"], summary["customers_excluded"]) == (400, 0)
    assert [row["k"] for row in summary["per_k"]] == list(range(2, 11))
    assert all(row["inertia"] > 0 and -1 <= row["silhouette"] <= 1 for row in summary["per_k"])
    clusters = summary["clusters"]
    assert {c["segment"] for c in clusters} == PLAYBOOK
    assert sum(c["size"] for c in clusters) == 400
    assert sum(c["share"] for c in clusters) == pytest.approx(1, abs=1e-3)
    assert all(set(c["means"]) == set(FEATURES) for c in clusters)
    assert summary["verdict"]["band"] == engine.silhouette_verdict(run.silhouette).band
    assert summary["verdict"]["text"]
    assert (summary["missing"], summary["imputed"]) == ("exclude", {})
    assert summary["log_features"] == run.log_features
    assert summary["outliers"] == run.outliers == 0


# --------------------------------------------------------------------------- missing values


@pytest.fixture
def unknown_frequency(customers) -> set[int]:
    """Every tenth customer's purchases per year are unknown; their primary keys."""
    tenth = Customer.objects.filter(customer_id__endswith="0")
    tenth.update(purchase_frequency=None)
    ids = set(tenth.values_list("id", flat=True))
    assert len(ids) == 40
    return ids


def test_customers_missing_a_used_feature_are_left_out_and_counted(unknown_frequency):
    train_command()

    run = only_run()
    assert (run.customers_used, run.customers_excluded) == (360, 40)
    assigned = set(ClusterAssignment.objects.filter(run=run).values_list("customer", flat=True))
    assert not assigned & unknown_frequency


def test_customers_missing_an_unused_feature_are_kept(unknown_frequency):
    train_command("--features", THREE_FEATURES)

    run = only_run()
    assert (run.customers_used, run.customers_excluded) == (400, 0)
    assigned = set(ClusterAssignment.objects.filter(run=run).values_list("customer", flat=True))
    assert unknown_frequency <= assigned


def test_a_default_retrain_leaves_out_a_feature_nobody_has(customers):
    Customer.objects.update(purchase_frequency=None)

    run = train()

    assert run.features == ["age", "annual_income", "spending_score"]
    assert run.features_auto
    assert (run.customers_used, run.customers_excluded) == (400, 0)
    assert ClusterAssignment.objects.filter(run=run).count() == 400


def test_filling_in_the_median_keeps_the_customers_missing_a_feature(unknown_frequency):
    known = Customer.objects.exclude(id__in=unknown_frequency)
    median = float(np.median(list(known.values_list("purchase_frequency", flat=True))))

    run = train(missing="median")

    assert run.features == list(FEATURES)
    assert (run.customers_used, run.customers_excluded) == (400, 0)
    assert run.imputed == {"purchase_frequency": pytest.approx(median)}
    assert run.missing_by_feature["purchase_frequency"] == 40
    assigned = set(ClusterAssignment.objects.filter(run=run).values_list("customer", flat=True))
    assert unknown_frequency <= assigned


@pytest.fixture
def absurd_income(customers) -> Customer:
    """One customer's income typed in dollars: 90,000 k among incomes of about 15 to 150 k."""
    customer = Customer.objects.order_by("id")[17]
    customer.annual_income = 90_000
    customer.save()
    return customer


def test_a_customer_with_an_absurd_income_is_not_a_segment_of_its_own(absurd_income):
    run = train()

    assert run.outliers == 1
    assignment = ClusterAssignment.objects.select_related("cluster").get(
        run=run, customer=absurd_income
    )
    assert assignment.unusual
    assert assignment.cluster.size > 1
    assert min(run.clusters.values_list("size", flat=True)) >= 20
    assert run.customers_used == 400  # the outlier still gets its nearest segment


def test_a_run_keeps_the_definition_of_each_of_its_features(trained):
    assert set(trained.feature_info) == set(trained.features) == set(FEATURES)
    income = trained.feature_info["annual_income"]
    assert (income["label"], income["short_label"], income["unit"]) == (
        "Annual income (k)",
        "income",
        " thousand per year",
    )
    assert trained.feature_info["age"]["whole"] is True


# --------------------------------------------------------------------------- retrains


@pytest.fixture
def edited_vip(trained) -> Segment:
    """The High-Value segment after a marketer renamed it and rewrote its strategy."""
    segment = Segment.objects.get(name="High-Value Customers")
    segment.name = "VIP club"
    segment.description = "Our own words."
    segment.actions = ["Call them", "Send flowers"]
    segment.save()
    return segment


def test_a_retrain_keeps_the_segments_and_their_edited_names_and_strategies(edited_vip):
    before = list(Segment.objects.values_list("id", "name", "description", "actions"))

    new_run = train()

    assert list(Segment.objects.values_list("id", "name", "description", "actions")) == before
    assert segment_ids(new_run) == set(Segment.objects.values_list("id", flat=True))
    assert new_run.clusters.get(segment=edited_vip).archetype == "high_value"


def test_a_segment_without_a_cluster_in_the_new_run_is_kept_inactive(trained):
    # K = 2 keeps the loyal customers and merges the rest into occasional shoppers.
    run = train(k=2)

    dropped = Segment.objects.exclude(id__in=segment_ids(run))
    assert set(dropped.values_list("name", flat=True)) == PLAYBOOK - {"Loyal Customers"}
    assert not any(segment.is_active for segment in dropped)
    assert all(s.is_active for s in Segment.objects.filter(id__in=segment_ids(run)))


def test_a_persona_that_comes_back_gets_its_edited_segment_back(edited_vip):
    train(k=2)

    run = train(k=4)

    edited_vip.refresh_from_db()
    assert edited_vip.is_active
    assert run.clusters.get(segment=edited_vip).archetype == "high_value"
    assert (edited_vip.name, edited_vip.actions) == ("VIP club", ["Call them", "Send flowers"])


def test_a_retrain_on_other_features_does_not_carry_personas_that_no_longer_fit(trained):
    run = train(features=("age", "annual_income"))

    for cluster in run.clusters.select_related("segment"):
        assert cluster.segment.archetype == cluster.archetype, cluster.segment.name
    assert not run.clusters.filter(segment__name="Potential Targets").exists()


def test_a_retrain_on_other_features_keeps_the_edited_personas_it_finds_again(edited_vip):
    run = train(features=("annual_income", "spending_score"))

    assert run.clusters.get(archetype="high_value").segment == edited_vip
    assert not Segment.objects.filter(name__regex=r" \d+$").exists()  # nothing duplicated
    edited_vip.refresh_from_db()
    assert (edited_vip.name, edited_vip.is_active) == ("VIP club", True)


def test_a_new_segment_name_is_numbered_once():
    taken = {"Potential Targets", "Potential Targets 2"}

    assert _unique_name("Potential Targets 2", taken) == "Potential Targets 3"
    assert _unique_name("Potential Targets", taken) == "Potential Targets 3"
    assert _unique_name("Budget Shoppers", taken) == "Budget Shoppers"


def test_retraining_back_and_forth_does_not_pile_up_segments(trained):
    for k in (2, 4, 3, 4, 2, 4):
        train(k=k)

    assert set(Segment.objects.values_list("name", flat=True)) == PLAYBOOK | {
        "Occasional Shoppers"  # the K = 2 merger, created once and found again
    }
    assert Segment.objects.filter(is_active=True).count() == 4


# --------------------------------------------------------------------------- failures


class FailingWriter:
    """Writes the first ``fail_after`` chunks of assignments, then breaks like a lost disk."""

    def __init__(self, write, fail_after: int) -> None:
        self.write, self.fail_after, self.written = write, fail_after, 0

    def __call__(self, *args) -> None:
        if self.written == self.fail_after:
            raise OSError("disk I/O error")
        self.write(*args)
        self.written += 1


@pytest.fixture
def broken_write(trained, monkeypatch) -> FailingWriter:
    """The next training writes half of its assignments (4 of 8 chunks), then breaks."""
    from clustering import services

    monkeypatch.setattr(services, "ASSIGNMENT_CHUNK", 50)
    writer = FailingWriter(services.assignments_write_chunk, fail_after=4)
    monkeypatch.setattr(services, "assignments_write_chunk", writer)
    return writer


def test_a_run_failing_half_way_is_marked_failed_with_a_readable_reason(broken_write):
    run = train_run(k=6)

    assert broken_write.written == 4
    assert run.status == TrainingRun.Status.FAILED
    assert "disk I/O error" in run.error
    assert "The previous model is still active" in run.error
    assert "Traceback" not in run.error


def test_a_run_failing_half_way_leaves_the_previous_model_active(trained, broken_write):
    train_run(k=6)

    assert TrainingRun.objects.get(is_active=True) == trained


def test_a_run_failing_half_way_leaves_no_clusters_assignments_or_segments(broken_write):
    segments_before = set(Segment.objects.values_list("id", "name", "is_active"))

    run = train_run(k=6)

    assert not Cluster.objects.filter(run=run).exists()
    assert not ClusterAssignment.objects.filter(run=run).exists()
    assert set(Segment.objects.values_list("id", "name", "is_active")) == segments_before


def test_a_run_failing_half_way_deletes_its_model_file(trained, broken_write, settings):
    train_run(k=6)

    files = sorted(path.name for path in settings.MODEL_STORAGE_DIR.iterdir())
    assert files == [trained.model_file]


def test_too_few_customers_fail_the_run_with_what_is_needed(db):
    CustomerFactory.create_batch(3)

    run = train_run()

    assert run.status == TrainingRun.Status.FAILED
    assert "Only 3 customer(s)" in run.error
    assert "at least 11 are needed" in run.error
    assert "Traceback" not in run.error
    assert not TrainingRun.objects.filter(is_active=True).exists()


# --------------------------------------------------------------------------- one at a time


def test_two_simultaneous_train_requests_give_one_run(transactional_db):
    barrier = threading.Barrier(2)
    results: list[int] = []

    def request() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(training_run_start(params=TrainingParams(), enqueue=False).id)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=request) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    run = only_run()
    assert results == [run.id, run.id]


def test_a_train_request_while_one_is_pending_returns_the_pending_run(db):
    pending = training_run_start(params=TrainingParams(), enqueue=False)

    again = training_run_start(params=TrainingParams(k=3), enqueue=False)

    assert again.id == pending.id
    assert TrainingRun.objects.count() == 1


def test_a_task_delivered_twice_trains_once(db):
    run = training_run_start(params=TrainingParams(), enqueue=False)

    assert training_run_claim(run_id=run.id) is True
    assert training_run_claim(run_id=run.id) is False


# --------------------------------------------------------------------------- rollback


@pytest.fixture
def two_runs(trained) -> tuple[TrainingRun, TrainingRun]:
    """The K=4 run, then a K=2 run that is now the active one."""
    newer = train(k=2)
    dropped = Segment.objects.filter(id__in=segment_ids(trained) - segment_ids(newer))
    assert dropped.exists() and not dropped.filter(is_active=True).exists()
    return trained, newer


def test_activating_an_older_run_makes_it_the_only_active_run(two_runs):
    older, newer = two_runs

    run_activate(run_id=older.id)

    assert list(TrainingRun.objects.filter(is_active=True)) == [older]


def test_activating_an_older_run_brings_back_its_segments(two_runs):
    older, newer = two_runs

    run_activate(run_id=older.id)

    active = set(Segment.objects.filter(is_active=True).values_list("id", flat=True))
    assert active == segment_ids(older)


def test_a_failed_run_cannot_be_activated(trained):
    failed = training_run_start(params=TrainingParams(), enqueue=False)
    training_run_fail(run_id=failed.id, message="broken")

    with pytest.raises(TrainingError, match="has not succeeded"):
        run_activate(run_id=failed.id)
    assert TrainingRun.objects.get(is_active=True) == trained


# --------------------------------------------------------------------------- pruning


@pytest.fixture
def three_runs(customers, settings) -> list[TrainingRun]:
    settings.CLUSTERING_KEEP_ASSIGNMENT_RUNS = 1
    runs = [train(k=4) for _ in range(3)]
    return [TrainingRun.objects.get(id=run.id) for run in runs]


def test_only_the_newest_runs_keep_their_assignments(three_runs):
    first, second, active = three_runs

    assert active.is_active
    assert ClusterAssignment.objects.filter(run=active).count() == 400
    assert not ClusterAssignment.objects.filter(run__in=[first, second]).exists()
    assert (first.assignments_pruned, second.assignments_pruned) == (True, True)


def test_a_pruned_run_cannot_be_activated(three_runs):
    first, _second, active = three_runs

    with pytest.raises(TrainingError, match="pruned"):
        run_activate(run_id=first.id)
    assert TrainingRun.objects.get(is_active=True) == active


# --------------------------------------------------------------------------- model files


@pytest.fixture
def stored_model():
    """A small fitted pipeline saved in the model folder."""
    rng = np.random.default_rng(0)
    return model_save(run_id=1, pipeline=engine.fit(rng.normal(size=(60, 2)), k=2))


def test_a_saved_model_loads_back(stored_model):
    pipeline = model_load(file_name=stored_model.file_name, sha256=stored_model.sha256)

    assert pipeline[-1].n_clusters == 2


def test_an_altered_model_file_is_refused(stored_model, settings):
    with open(settings.MODEL_STORAGE_DIR / stored_model.file_name, "ab") as stream:
        stream.write(b"\x00")

    with pytest.raises(ModelFileError, match="altered"):
        model_load(file_name=stored_model.file_name, sha256=stored_model.sha256)


@pytest.mark.parametrize(
    ("name", "copy_to"),
    [
        ("../{name}", "../{name}"),
        ("sub/{name}", "sub/{name}"),
        ("{name}\n", None),
        ("evil.joblib", "evil.joblib"),
        ("run-1-0123456789abcdef.pkl", "run-1-0123456789abcdef.pkl"),
    ],
)
def test_a_model_file_name_we_do_not_write_is_refused(stored_model, settings, name, copy_to):
    """Even when the file is there with a matching hash: loading a pickle runs its code."""
    folder = settings.MODEL_STORAGE_DIR
    if copy_to:
        copy = folder / copy_to.format(name=stored_model.file_name)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes((folder / stored_model.file_name).read_bytes())

    with pytest.raises(ModelFileError, match="refusing"):
        model_load(file_name=name.format(name=stored_model.file_name), sha256=stored_model.sha256)


# --------------------------------------------------------------------------- the reaper


def test_the_reaper_fails_a_run_whose_worker_went_silent(db, settings):
    settings.CLUSTERING_HEARTBEAT_TIMEOUT = 60
    silent = running_run(silent_for=timedelta(minutes=5))

    assert training_runs_reap() == 1

    silent.refresh_from_db()
    assert silent.status == TrainingRun.Status.FAILED
    assert "stopped responding" in silent.error
    assert silent.in_flight is None


def test_the_reaper_leaves_a_run_that_is_still_beating(db, settings):
    settings.CLUSTERING_HEARTBEAT_TIMEOUT = 60
    alive = running_run(silent_for=timedelta(seconds=5))

    assert training_runs_reap() == 0

    alive.refresh_from_db()
    assert alive.status == TrainingRun.Status.RUNNING


def test_train_sync_refuses_to_take_over_a_pending_run_with_other_settings(customers):
    from django.core.management import CommandError, call_command

    pending = training_run_start(params=TrainingParams(k=3), enqueue=False)

    with pytest.raises(CommandError, match=f"Run {pending.id} with other settings"):
        call_command("train", sync=True, k=5)

    pending.refresh_from_db()
    assert pending.status == TrainingRun.Status.PENDING


def test_train_wait_reports_a_run_no_worker_picked_up_instead_of_hanging(customers, settings):
    from django.core.management import CommandError, call_command

    settings.CLUSTERING_PENDING_TIMEOUT = 0  # no worker runs in this test

    with pytest.raises(CommandError, match="No worker picked up this run in time"):
        call_command("train", wait=True, k=3, timeout=20, stdout=io.StringIO())

    assert TrainingRun.objects.get().status == TrainingRun.Status.FAILED


def test_train_refuses_a_number_of_segments_below_two(customers):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="between 2 and 20"):
        call_command("train", sync=True, k=0, stdout=io.StringIO())


def test_a_strategy_the_site_wrote_follows_the_active_runs_centre_until_a_person_edits_it(
    trained, marketer
):
    """The site's own text for a profile segment quotes its centre; when another run of the
    segment becomes active, the text follows it, unless a marketer edited it."""
    from audit.models import StrategyVersion

    site, edited = trained.clusters.select_related("segment").order_by("index")[:2]
    # As if the site had written both texts for an older centre ("age +1.8 sd").
    old = naming.strategy_for("profile:high=age", reason="age +1.8 sd")
    Cluster.objects.filter(id__in=[site.id, edited.id]).update(
        archetype="profile:high=age", reason="age +1.8 sd"
    )
    for segment in (site.segment, edited.segment):
        segment.description, segment.actions = old.description, list(old.actions)
        segment.save()
    edited.segment.description, edited.segment.updated_by = "Our own plan.", marketer
    edited.segment.save()
    # A compare retrain: its candidates are never active, and change no text.
    train(algorithm="compare")
    newest = TrainingRun.objects.get(is_active=True)
    assert newest.id != trained.id
    now = newest.clusters.get(segment=site.segment)

    site.segment.refresh_from_db()
    edited.segment.refresh_from_db()
    expected = naming.strategy_for(now.archetype, reason=now.reason)
    assert site.segment.description == expected.description
    assert "+1.8 sd" not in site.segment.description
    assert edited.segment.description == "Our own plan."
    latest = StrategyVersion.objects.filter(segment=site.segment).order_by("-number").first()
    assert (latest.author, latest.note) == (None, "rewritten from the new active run's centre")
    rewrites = StrategyVersion.objects.filter(note__startswith="rewritten", segment=site.segment)
    assert rewrites.count() == 1
