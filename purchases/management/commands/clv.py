from __future__ import annotations

import json
import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q

from purchases.clv_services import clv_run_execute, clv_run_start
from purchases.models import ClvRun, Purchase


class Command(BaseCommand):
    help = (
        "Fit the customer lifetime value models (BG/NBD for repeat purchases, Gamma-Gamma for "
        "spend) on the purchase history, store them as a CLV run and activate it. With "
        "--calibration-end, first check a model fitted up to that day against the purchases "
        "after it. The fit is queued for the Celery worker and the command waits for it; "
        "--sync fits in this process."
    )

    def add_arguments(self, parser):
        parser.add_argument("--calibration-end", type=date.fromisoformat, metavar="YYYY-MM-DD")
        parser.add_argument("--days", type=int, default=365, help="the horizon of the value")
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--sync", action="store_true", help="fit in this process")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait")
        parser.add_argument(
            "--if-no-model",
            action="store_true",
            help="queue a fit (and do not wait) only when there are purchases and no CLV run "
            "is active or in flight (what `make run` does)",
        )

    def handle(self, *args, **options):
        if options["if_no_model"]:
            return self.first_model()
        sync = options["sync"]
        with transaction.atomic():  # the task is queued when the run is committed
            run = clv_run_start(
                calibration_end=options["calibration_end"],
                horizon_days=options["days"],
                enqueue=not sync,
            )
        run = clv_run_execute(run_id=run.id) if sync else self.wait(run, options["timeout"])
        if options["json"]:
            self.stdout.write(json.dumps(clv_summary(run), indent=2))
        else:
            self.report(run)
        if run.status == ClvRun.Status.FAILED:
            raise CommandError(run.error)

    def first_model(self) -> None:
        in_flight = (ClvRun.Status.PENDING, ClvRun.Status.RUNNING)
        busy = ClvRun.objects.filter(Q(is_active=True) | Q(status__in=in_flight)).exists()
        if busy or not Purchase.objects.exists():
            return
        with transaction.atomic():
            run = clv_run_start()
        self.stdout.write(f"Fitting the lifetime-value model in the background (CLV run {run.id}).")

    def wait(self, run: ClvRun, timeout: float) -> ClvRun:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.is_finished:
                return run
            time.sleep(0.5)
        raise CommandError(
            f"CLV run {run.id} is still {run.get_status_display().lower()} ({run.step}) after "
            f"{timeout:.0f} s: is a worker running? (--sync fits in this process)"
        )

    def report(self, run: ClvRun) -> None:
        if run.status != ClvRun.Status.SUCCEEDED:
            return
        p = run.parameters
        self.stdout.write(
            f"CLV run {run.id}: {run.customers:,} customers ({run.repeat_customers:,} repeat), "
            f"history to {run.observation_end}, log-likelihood {run.log_likelihood:,.2f}"
        )
        self.stdout.write(
            f"  BG/NBD r={p['r']:.3f} alpha={p['alpha']:.3f} a={p['a']:.3f} b={p['b']:.3f}; "
            f"Gamma-Gamma p={p['p']:.3f} q={p['q']:.3f} v={p['v']:.3f}"
        )
        if run.holdout:
            h = run.holdout
            self.stdout.write(
                f"  Check after {h['calibration_end']}: expected {h['total_expected']:,.0f} repeat "
                f"purchases, actual {h['total_actual']:,}; correlation per customer "
                f"{h['correlation']:.2f}"
            )


def clv_summary(run: ClvRun) -> dict:
    return {
        "run_id": run.id,
        "status": run.status,
        "error": run.error or None,
        "parameters": run.parameters,
        "log_likelihood": run.log_likelihood,
        "customers": run.customers,
        "repeat_customers": run.repeat_customers,
        "observation_end": run.observation_end.isoformat() if run.observation_end else None,
        "horizon_days": run.horizon_days,
        "holdout": run.holdout or None,
    }
