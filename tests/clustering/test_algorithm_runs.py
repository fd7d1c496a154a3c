"""Other algorithms through the training service, the stored runs and the prediction service:
a compare retrain, activating a non-default candidate, HDBSCAN's Unsegmented customers."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from django.core.management import call_command
from django.db.models import Q
from sklearn.metrics import silhouette_score

from clustering import algorithms, engine
from clustering.model_store import model_load
from clustering.models import Cluster, ClusterAssignment, Segment, TrainingRun
from clustering.prediction import cache_clear, predict_one
from clustering.services import run_activate
from customers.models import Customer
from tests.clustering.helpers import FEATURES, PLAYBOOK, train

ROW = {"age": 38, "annual_income": 95.0, "spending_score": 60, "purchase_frequency": 28}


def stored_labels(run: TrainingRun) -> tuple[np.ndarray, np.ndarray]:
    """(customers' features on the run's scale, their stored cluster index; -1 for noise)."""
    rows = ClusterAssignment.objects.filter(run=run).values_list(
        "customer_id", "cluster__index", "cluster__is_noise"
    )
    ids = {pk: -1 if noise else index for pk, index, noise in rows}
    customers = Customer.objects.filter(pk__in=ids).order_by("pk")
    X = np.array([[getattr(c, f) for f in run.features] for c in customers], dtype=float)
    labels = np.array([ids[c.pk] for c in customers])
    pipeline = model_load(file_name=run.model_file, sha256=run.model_sha256)
    return engine.to_model_space(pipeline, X), labels


@pytest.mark.parametrize("algorithm", ["gmm", "ward", "hdbscan"])
def test_each_algorithm_finds_the_planted_personas_and_reports_sklearns_silhouette(
    customers, algorithm
):
    run = train(algorithm=algorithm, features=FEATURES, log_features=())

    assert run.algorithm_requested == algorithm and run.is_active
    # The demo data's 4 % uniform noise may earn a mixture a fifth, described component.
    names = set(run.clusters.filter(is_noise=False).values_list("segment__name", flat=True))
    assert names >= PLAYBOOK and len(names) <= 5
    Xs, labels = stored_labels(run)
    kept = labels >= 0
    assert run.silhouette == pytest.approx(silhouette_score(Xs[kept], labels[kept]), abs=1e-5)
    assert run.stability_refits == 10 and run.stability_spread is not None
    assert all(c.stability is not None for c in run.clusters.filter(is_noise=False))


def test_a_mixture_run_predicts_with_the_models_own_probabilities(customers):
    run = train(algorithm="gmm", features=FEATURES, log_features=())
    pipeline = model_load(file_name=run.model_file, sha256=run.model_sha256)
    cache_clear()

    prediction = predict_one(ROW)

    proba = pipeline.predict_proba(np.array([[ROW[f] for f in run.features]]))[0]
    order = np.argsort(-proba)
    assert prediction.run_id == run.id
    assert prediction.confidence == pytest.approx(proba[order[0]])
    assert prediction.runner_up_probability == pytest.approx(proba[order[1]])
    by_index = dict(run.clusters.values_list("index", "segment_id"))
    assert prediction.segment.id == by_index[int(order[0])]


def test_hdbscan_leaves_planted_noise_unsegmented_without_a_persona_or_strategy(db):
    call_command("generate_customers", count=600, seed=7, stdout=io.StringIO())
    rng = np.random.default_rng(5)
    for i in range(30):  # customers scattered far from every planted persona
        Customer.objects.create(
            customer_id=f"STRAY-{i}",
            age=int(rng.uniform(18, 110)),
            annual_income=float(rng.uniform(200, 2000)),
            spending_score=int(rng.uniform(1, 100)),
            purchase_frequency=int(rng.uniform(60, 600)),
        )

    run = train(algorithm="hdbscan", features=FEATURES, log_features=())

    noise = Cluster.objects.get(run=run, is_noise=True)
    assert noise.segment.name == "Unsegmented" and noise.segment.actions == []
    strays = ClusterAssignment.objects.filter(run=run, customer__customer_id__startswith="STRAY")
    assert strays.filter(cluster=noise).count() >= 20
    assert run.noise_share == pytest.approx(noise.size / run.customers_used, abs=1e-4)
    assert not Segment.objects.filter(archetype="unsegmented").exclude(name="Unsegmented")
    cache_clear()
    far = predict_one({"age": 50, "annual_income": 5000, "spending_score": 50,
                       "purchase_frequency": 500})  # fmt: skip
    assert far.segment.name == "Unsegmented" and far.confidence == 0.0
    assert far.runner_up.name != "Unsegmented"


def test_compare_trains_every_algorithm_recommends_by_the_rule_and_any_can_be_activated(
    customers,
):
    run = train(algorithm="compare", features=FEATURES, log_features=())

    table = run.comparison
    rows = table["candidates"]
    assert [row["algorithm"] for row in rows] == [*algorithms.ALGORITHMS, "ensemble"]
    assert table["rule"] == algorithms.RECOMMENDATION_RULE
    scores = {
        row["algorithm"]: algorithms.CandidateScore(
            row["algorithm"],
            row["silhouette"] or float("nan"),
            row["stability"],
            row["noise_share"] or 0.0,
        )
        for row in rows
    }
    ensemble = rows[-1]
    parts = [scores[a] for a in algorithms.ALGORITHMS]
    kept = algorithms.consensus_kept(parts, scores["ensemble"])
    assert (ensemble["run_id"] is not None) == kept
    among = [*parts, scores["ensemble"]] if kept else parts
    assert table["recommended"] == algorithms.recommend(among) == run.algorithm_requested
    assert run.is_active
    others = TrainingRun.objects.filter(comparison_of=run)
    assert others.count() == (4 if kept else 3) and not others.filter(is_active=True).exists()
    # The table and the runs list show the same silhouette (rounded once, to 3 places).
    for row in rows:
        if row["run_id"] is not None:
            stored = TrainingRun.objects.get(id=row["run_id"]).silhouette
            assert f"{row['silhouette']:.3f}" == f"{stored:.3f}", row["algorithm"]
            assert row["silhouette"] == pytest.approx(stored, abs=1e-6)

    ward = TrainingRun.objects.get(comparison_of=run, algorithm_requested="ward")
    if ward.id == run.id:  # pragma: no cover - the recommendation is K-Means or mixture here
        ward = others.exclude(algorithm_requested="ward").first()
    run_activate(run_id=ward.id)
    cache_clear()
    assert predict_one(ROW).run_id == ward.id


def test_segment_identity_and_edited_strategy_carry_across_algorithms(customers):
    first = train(features=FEATURES, log_features=())
    loyal = first.clusters.get(segment__name="Loyal Customers").segment
    loyal.actions = ["Invite to the members' evening"]
    loyal.save()

    mixture = train(algorithm="gmm", features=FEATURES, log_features=())

    assert mixture.clusters.filter(segment=loyal).exists()
    loyal.refresh_from_db()
    assert loyal.actions == ["Invite to the members' evening"]


def test_train_command_refuses_an_unknown_algorithm(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="invalid choice"):
        call_command("train", "--algorithm", "dbscan", sync=True)


# --------------------------------------------------------------------------- pages


def test_the_compare_run_page_shows_the_algorithms_side_by_side_with_the_rule(
    customers, marketer_client
):
    run = train(algorithm="compare", features=FEATURES, log_features=())

    page = marketer_client.get(f"/runs/{run.id}/").content.decode()

    assert "Algorithms compared" in page and algorithms.RECOMMENDATION_RULE in page
    for label in algorithms.LABELS.values():
        assert label in page
    assert algorithms.ENSEMBLE_RULE in page
    assert page.count("recommended</span>") == 1
    for other in TrainingRun.objects.filter(comparison_of=run):
        assert f'href="/runs/{other.id}/"' in page
    # A candidate's own page shows the same table and can be activated from there.
    other = TrainingRun.objects.filter(comparison_of=run).first()
    candidate_page = marketer_client.get(f"/runs/{other.id}/").content.decode()
    assert "Algorithms compared" in candidate_page and "this run" in candidate_page


def test_a_run_page_draws_the_segment_tree_merging_the_closest_segments_first(
    customers, marketer_client
):
    run = train(algorithm="ward", features=FEATURES, log_features=())

    page = marketer_client.get(f"/runs/{run.id}/").content.decode()

    assert '<svg class="dendrogram"' in page and "<line " in page
    names = list(run.clusters.values_list("segment__name", flat=True))
    assert all(name in page for name in names)
    assert "cdn" not in page.lower()


def test_hdbscan_dashboard_card_says_unsegmented_customers_are_not_a_segment(db, marketer_client):
    call_command("generate_customers", count=500, seed=7, stdout=io.StringIO())
    for i in range(20):
        Customer.objects.create(customer_id=f"FAR-{i}", age=20 + 3 * i,
                                annual_income=300 + 80 * i, spending_score=1 + 4 * i,
                                purchase_frequency=100 + 25 * i)  # fmt: skip
    run = train(algorithm="hdbscan", features=FEATURES, log_features=())
    noise = run.clusters.get(is_noise=True)

    page = marketer_client.get("/").content.decode()

    assert "Not a segment:" in page and "Unsegmented" in page
    card = page[page.index(f'id="segment-{noise.segment_id}"') :]
    card = card[: card.index("</article>")]
    assert "<h4>Strategy</h4>" not in card and "Edit name and strategy" not in card
    assert "Unsegmented)" in page  # the share on the model line
    # HDBSCAN finds its own number of groups: the run page says so, not a K range it ignored.
    run_page = marketer_client.get(f"/runs/{run.id}/").content.decode()
    assert "chosen from 2" not in run_page
    assert f"{run.chosen_k} dense groups, found by HDBSCAN itself (plus Unsegmented)" in run_page


def test_a_segment_that_falls_apart_on_resampling_is_flagged_on_its_card(trained, marketer_client):
    shaky = trained.clusters.order_by("index").first()
    Cluster.objects.filter(id=shaky.id).update(stability=0.41)

    page = marketer_client.get("/").content.decode()

    card = page[page.index(f'id="segment-{shaky.segment_id}"') :]
    card = card[: card.index("</article>")]
    assert "41 % of its customers' pairs stay together" in card
    assert "falls apart on resampling" in card
    assert page.count("segment-falls-apart") == 1


def test_train_json_gives_the_algorithm_stability_spread_and_comparison(customers):
    out = io.StringIO()
    call_command("train", "--algorithm", "compare", "--features", ",".join(FEATURES),
                 "--log", "none", sync=True, json=True, stdout=out)  # fmt: skip

    summary = json.loads(out.getvalue())
    run = TrainingRun.objects.get(id=summary["run_id"])
    assert summary["algorithm_requested"] == run.comparison["recommended"]
    assert summary["stability_refits"] == 10 and summary["stability_spread"] >= 0
    assert len(summary["comparison"]["candidates"]) == len(algorithms.LABELS)
    segments = [cluster for cluster in summary["clusters"] if not cluster["unsegmented"]]
    assert segments and all(cluster["stability"] is not None for cluster in segments)


def test_the_train_commands_tables_line_up_whatever_the_names(customers):
    out = io.StringIO()
    call_command("train", "--algorithm", "compare", "--features", ",".join(FEATURES),
                 "--log", "none", sync=True, stdout=out)  # fmt: skip

    lines = out.getvalue().splitlines()
    candidates = [line for line in lines[1:] if "silhouette" in line and " segments " in line]
    segments = [line for line in lines if re.search(r"\(\s*\d+%\)", line)]
    assert len(candidates) == len(algorithms.LABELS) and len(segments) >= 2
    # Each table's columns start at one place on every line.
    assert len({line.index("silhouette") for line in candidates}) == 1
    assert len({line.index(" segments ") for line in candidates}) == 1
    assert len({re.search(r"\((\s*\d+%)\)", line).start() for line in segments}) == 1

    # A marketer's long segment name does not push its line's figures out of the column.
    from clustering.management.commands.train import Command

    run = TrainingRun.objects.get(id=int(re.match(r"Run (\d+)", lines[0]).group(1)))
    segment = run.clusters.order_by("size").first().segment
    segment.name = "Young urban professionals who buy often online"
    segment.save(update_fields=["name"])
    out = io.StringIO()
    Command(stdout=out).report(run, as_json=False)
    segments = [line for line in out.getvalue().splitlines() if re.search(r"\(\s*\d+%\)", line)]
    assert len({re.search(r"\((\s*\d+%)\)", line).start() for line in segments}) == 1


def test_compare_on_the_business_file_names_every_candidates_segments_from_their_numbers(
    db, tmp_path
):
    from tests.clustering.test_real_files_train import assert_names_agree_with_numbers, import_file
    from tests.customers.real_files import wholesale_file

    import_file(wholesale_file(tmp_path / "wholesale.csv"), "--attributes", "all",
                "--categorical", "Channel,Region")  # fmt: skip
    call_command("train", "--algorithm", "compare", sync=True, stdout=io.StringIO())

    run = TrainingRun.objects.get(is_active=True)
    assert run.comparison["recommended"] == run.algorithm_requested
    for candidate in [run, *TrainingRun.objects.filter(comparison_of=run)]:
        assert candidate.status == TrainingRun.Status.SUCCEEDED
        assert_names_agree_with_numbers(candidate)
        assert candidate.log_features  # the spend columns are read on a log scale
    # The planted retailers (high grocery, milk, detergents) are found by the recommended run.
    names = " ".join(run.clusters.values_list("segment__name", flat=True)).lower()
    assert "grocery" in names or "detergents" in names


def test_a_compare_retrain_counts_once_when_old_assignments_are_pruned(customers, settings):
    settings.CLUSTERING_KEEP_ASSIGNMENT_RUNS = 2
    first = train(features=FEATURES, log_features=())
    compare = train(algorithm="compare", features=FEATURES, log_features=())

    first.refresh_from_db()
    assert not first.assignments_pruned  # still a rollback target
    assert ClusterAssignment.objects.filter(run=first).exists()
    run_activate(run_id=first.id)
    train(features=FEATURES, log_features=(), k=3)
    train(features=FEATURES, log_features=(), k=5)

    # Beyond the two newest retrains: the compare run and its candidates go together.
    group = TrainingRun.objects.filter(Q(id=compare.id) | Q(comparison_of=compare))
    assert group.count() >= 4 and all(run.assignments_pruned for run in group)
    assert not ClusterAssignment.objects.filter(run__in=group).exists()


def test_a_mixture_run_page_says_the_number_was_chosen_by_bic_and_shows_it_per_k(
    customers, marketer_client
):
    run = train(algorithm="gmm", features=FEATURES, log_features=())

    page = marketer_client.get(f"/runs/{run.id}/").content.decode()

    assert algorithms.GMM_RULE in page and "BIC (lowest chosen)" in page
    assert page.count("<td>", page.index('id="per-k"')) >= 3 * len(run.k_values)


def test_a_mixture_records_its_covariance_type_chosen_by_bic_and_the_run_page_shows_it(
    customers, marketer_client
):
    run = train(algorithm="gmm", features=FEATURES, log_features=())

    assert run.covariance_requested == "auto"
    assert run.covariance_type in algorithms.COVARIANCE_TYPES
    pipeline = model_load(file_name=run.model_file, sha256=run.model_sha256)
    assert pipeline[-1].mixture_.covariance_type == run.covariance_type
    page = marketer_client.get(f"/runs/{run.id}/").content.decode()
    assert 'id="run-covariance"' in page and "the lowest BIC among full" in page


def test_a_covariance_type_set_on_the_command_line_is_the_one_fitted(customers):
    from tests.clustering.helpers import train_command

    train_command("--algorithm", "gmm", "--covariance", "tied", "--features", ",".join(FEATURES))

    run = TrainingRun.objects.latest("id")
    assert (run.covariance_requested, run.covariance_type) == ("tied", "tied")


def test_the_unsegmented_group_cannot_be_renamed_into_a_persona(db, manager_client):
    segment = Segment.objects.create(name="Unsegmented", archetype=algorithms.UNSEGMENTED)

    response = manager_client.post(
        f"/segments/{segment.id}/edit/", {"name": "Loyal Customers", "description": "x"}
    )

    assert response.status_code == 400
    segment.refresh_from_db()
    assert segment.name == "Unsegmented"


def test_the_runs_list_and_the_compare_page_name_the_algorithm_in_words(customers, marketer_client):
    """'Gaussian mixture' as on the run page and the retrain form, not the code 'gmm'."""
    first = train(features=FEATURES, log_features=())
    mixture = train(algorithm="gmm", features=FEATURES, log_features=())

    runs = marketer_client.get("/runs/").content.decode()
    compare = marketer_client.get(f"/runs/compare/?a={first.id}&b={mixture.id}").content.decode()

    for page in (runs, compare):
        assert "<td>Gaussian mixture</td>" in page and "<td>K-Means</td>" in page
        assert "<td>gmm</td>" not in page and "<td>kmeans</td>" not in page


def test_hdbscan_stores_for_every_customer_what_its_model_places_afresh(db):
    # The fit's own placements are reused when scoring (not computed twice); each stored
    # segment and confidence must still be what the saved model gives that customer,
    # the outliers left out of the fit included.
    call_command("generate_customers", count=600, seed=7, stdout=io.StringIO())
    for i in range(5):
        Customer.objects.create(
            customer_id=f"FAR-{i}",
            age=100,
            annual_income=5000.0 + 100 * i,
            spending_score=99,
            purchase_frequency=900,
        )

    run = train(algorithm="hdbscan", features=FEATURES, log_features=())

    assert run.outliers > 0
    rows = ClusterAssignment.objects.filter(run=run).order_by("customer_id")
    stored = list(
        rows.values_list("customer_id", "cluster__index", "cluster__is_noise", "confidence")
    )
    by_pk = Customer.objects.in_bulk([pk for pk, *_ in stored])
    customers = [by_pk[pk] for pk, *_ in stored]
    X = np.array([[getattr(c, f) for f in run.features] for c in customers], dtype=float)
    pipeline = model_load(file_name=run.model_file, sha256=run.model_sha256)
    afresh = engine.score(pipeline, X, sigma2=run.within_variance)
    labels = np.array([algorithms.NOISE if noise else index for _, index, noise, _ in stored])
    assert np.array_equal(labels, afresh.cluster)
    assert np.allclose([c for *_, c in stored], afresh.confidence)
