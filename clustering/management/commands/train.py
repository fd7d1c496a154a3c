from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError

from clustering.algorithms import (
    ALGORITHMS,
    COMPARE,
    COVARIANCE_AUTO,
    COVARIANCE_TYPES,
    KMEANS,
    LABELS,
)
from clustering.models import TrainingRun
from clustering.selectors import run_summary
from clustering.services import (
    QueueUnavailable,
    TrainingParams,
    training_run_claim,
    training_run_execute,
    training_run_first,
    training_run_start,
    training_runs_reap,
)
from customers.selectors import catalogue_current


class Command(BaseCommand):
    help = (
        "Train a segmentation: sweep K, pick the best (or the one given), name the segments "
        "and activate the run. By default it is queued for the Celery worker."
    )

    def add_arguments(self, parser):
        parser.add_argument("--k", type=int, help="a fixed number of segments")
        parser.add_argument("--k-min", type=int, default=2)
        parser.add_argument("--k-max", type=int, default=10)
        parser.add_argument(
            "--features",
            default="",
            help="comma-separated catalogue keys (default: every number that at least "
            "CLUSTERING_MIN_FEATURE_COVERAGE of the customers have)",
        )
        parser.add_argument(
            "--missing",
            choices=TrainingRun.Missing.values,
            default=TrainingRun.Missing.EXCLUDE,
            help="customers missing a chosen feature: leave out (default) or fill in the median",
        )
        parser.add_argument(
            "--log",
            default="auto",
            help="log-scale features: auto (skewed money-like ones), none, or a comma-separated "
            "list",
        )
        parser.add_argument(
            "--algorithm",
            choices=[*ALGORITHMS, COMPARE],
            default=KMEANS,
            help="kmeans (default), gmm (Gaussian mixture), hdbscan (density, with "
            "Unsegmented customers), ward (hierarchical), or compare: all of them in one run, "
            "side by side, the recommended one activated",
        )
        parser.add_argument(
            "--covariance",
            choices=[COVARIANCE_AUTO, *COVARIANCE_TYPES],
            default=COVARIANCE_AUTO,
            help="the Gaussian mixture's covariance type: auto (default: the lowest BIC among "
            "full, diag, tied and spherical) or that type",
        )
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--sync", action="store_true", help="train in this process")
        mode.add_argument("--wait", action="store_true", help="queue and wait for the worker")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds --wait waits")
        parser.add_argument("--json", action="store_true", help="print the run summary as JSON")
        parser.add_argument(
            "--if-no-model",
            action="store_true",
            help="queue a training with default options only when there are customers, no "
            "active model and no run in flight (what `make run` does on a fresh database)",
        )

    def handle(self, *args, **options):
        if options["if_no_model"]:
            return self.first_model()
        params = self.params(options)
        try:
            run = training_run_start(params=params) if not options["sync"] else None
        except QueueUnavailable as problem:
            raise CommandError(f"The training queue is unavailable: {problem}") from None
        if options["sync"]:
            run = self.train_here(params)
        elif options["wait"]:
            run = self.wait(run, options["timeout"])
        self.report(run, options["json"])
        if run.status == TrainingRun.Status.FAILED:
            raise CommandError(run.error)

    def first_model(self) -> None:
        try:
            run = training_run_first()
        except QueueUnavailable as problem:
            # `make run` goes on: the site works, and Retrain on the dashboard tries again.
            self.stderr.write(f"Could not queue the first training: {problem}")
            return
        if run is not None:
            self.stdout.write(
                f"Training the first model in the background (run {run.id}): the segments "
                "appear on the dashboard in under a minute."
            )

    def params(self, options) -> TrainingParams:
        features = tuple(f.strip() for f in options["features"].split(",") if f.strip())
        catalogue = catalogue_current()
        usable = [f.key for f in (*catalogue.clusterable(), *catalogue.clusterable_categorical())]
        unknown = [f for f in features if f not in usable]
        if unknown:
            raise CommandError(
                f"{', '.join(unknown)}: not a feature that can be used for clustering (sex "
                f"never is); choose from {', '.join(usable)}"
            )
        log = options["log"].strip()
        log_features = (
            None
            if log == "auto"
            else ()
            if log == "none"
            else tuple(f.strip() for f in log.split(",") if f.strip())
        )
        try:
            return TrainingParams(
                features,
                options["k"],
                options["k_min"],
                options["k_max"],
                missing=options["missing"],
                log_features=log_features,
                algorithm=options["algorithm"],
                covariance=options["covariance"],
            )
        except ValueError as problem:
            raise CommandError(str(problem)) from None

    def train_here(self, params: TrainingParams) -> TrainingRun:
        run = training_run_start(params=params, enqueue=False)
        asked = (list(params.features), params.k, params.k_min, params.k_max, params.algorithm)
        found = (run.features, run.k_requested, run.k_min, run.k_max, run.algorithm_requested)
        if found != asked:
            raise CommandError(
                f"Run {run.id} with other settings is already {run.status}; one training "
                "runs at a time. Wait for it (or use --wait) and try again."
            )
        if not training_run_claim(run_id=run.id):
            raise CommandError(f"Run {run.id} is already {run.status}; wait for it or use --wait.")
        return training_run_execute(run_id=run.id)

    def wait(self, run: TrainingRun, timeout: float) -> TrainingRun:
        deadline = time.monotonic() + timeout
        while not run.is_finished:
            if time.monotonic() > deadline:
                raise CommandError(f"Run {run.id} did not finish within {timeout:.0f} s")
            time.sleep(0.5)
            training_runs_reap()  # a worker that died fails the run instead of hanging here
            run.refresh_from_db()
        return run

    def report(self, run: TrainingRun, as_json: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps(run_summary(run=run), indent=2))
            return
        if run.status != TrainingRun.Status.SUCCEEDED:
            self.stdout.write(f"Run {run.id}: {run.status}. {run.step}")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Run {run.id} ({LABELS.get(run.algorithm_requested, 'K-Means')}): "
                f"{run.chosen_k} segments from {run.customers_used} customers, "
                f"silhouette {run.silhouette:.3f}, stability {run.stability:.2f}"
                f" ± {run.stability_spread or 0:.2f}"
            )
        )
        candidates = run.comparison.get("candidates", [])
        # Columns as wide as their longest entry, so long names do not push the rest.
        label_width = max((len(row["label"]) for row in candidates), default=0)
        for row in candidates:
            mark = "  <- recommended" if row["recommended"] else ""
            if row["run_id"] is None:
                mark = "  (not kept: it does not beat its parts by the rule)"
            where = f"run {row['run_id']:>5}" if row["run_id"] else "         "
            self.stdout.write(
                f"  {row['label']:<{label_width}}  {where}  {row['k']:>2} segments  "
                f"silhouette {_shown(row['silhouette'])}  stability {_shown(row['stability'])}"
                f"{mark}"
            )
        if run.comparison:
            self.stdout.write(f"  {run.comparison['rule']}")
        clusters = list(run.clusters.select_related("segment").order_by("-size"))
        name_width = max((len(c.segment.name) for c in clusters), default=0)
        for cluster in clusters:
            self.stdout.write(
                f"  {cluster.segment.name:<{name_width}}  {cluster.size:>8,} "
                f"({cluster.share:>4.0%})  {cluster.reason}"
            )


def _shown(value) -> str:
    return "–" if value is None else f"{value:.3f}"
