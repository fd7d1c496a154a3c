"""The health the operations page shows: the worker, the queue, the model files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from clustering.model_store import FILE_NAME, storage_dir
from clustering.models import TrainingRun
from operations.models import ServiceStatus

WORKER, BROKER = "worker", "broker"


def status_note(*, name: str, ok: bool, detail: str = "") -> ServiceStatus:
    """Record a check; ``since`` moves only when the state changes."""
    now = timezone.now()
    status, created = ServiceStatus.objects.get_or_create(
        name=name, defaults={"ok": ok, "since": now, "checked_at": now, "detail": detail[:300]}
    )
    if not created:
        if status.ok != ok:
            status.since = now
        status.ok, status.checked_at, status.detail = ok, now, detail[:300]
        status.save()
    return status


def broker_check() -> ServiceStatus:
    """Connect to the broker (a few seconds at most) and record the answer."""
    from segmentation_site.celery import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=3)
    except Exception as problem:  # kombu raises many kinds; all mean "unavailable"
        return status_note(name=BROKER, ok=False, detail=f"{type(problem).__name__}: {problem}")
    return status_note(name=BROKER, ok=True)


@dataclass(frozen=True)
class WorkerState:
    ok: bool
    last_seen: datetime | None


def worker_state() -> WorkerState:
    """Alive when its beat-driven heartbeat task ran within three periods."""
    status = ServiceStatus.objects.filter(name=WORKER).first()
    if status is None:
        return WorkerState(False, None)
    limit = timedelta(seconds=3 * settings.OPERATIONS_HEARTBEAT_SECONDS)
    return WorkerState(timezone.now() - status.checked_at < limit, status.checked_at)


@dataclass(frozen=True)
class ModelFile:
    name: str
    size: int
    run: TrainingRun | None

    @property
    def prunable(self) -> bool:
        """No run can use it again: its run is gone, failed, or too old to activate."""
        run = self.run
        return run is None or (
            not run.is_active
            and (run.status != TrainingRun.Status.SUCCEEDED or run.assignments_pruned)
        )


def model_files() -> list[ModelFile]:
    folder = storage_dir()
    paths = [p for p in folder.iterdir() if p.is_file() and FILE_NAME.match(p.name)]
    runs = {
        r.model_file: r
        for r in TrainingRun.objects.filter(model_file__in=[p.name for p in paths]).only(
            "id", "model_file", "status", "is_active", "assignments_pruned"
        )
    }
    files = [ModelFile(p.name, p.stat().st_size, runs.get(p.name)) for p in paths]
    return sorted(files, key=lambda f: f.name)


def model_files_prune() -> tuple[int, int]:
    """Delete model files no run can use again; (files, bytes) freed."""
    freed = [f for f in model_files() if f.prunable]
    for item in freed:
        (storage_dir() / item.name).unlink(missing_ok=True)
    return len(freed), sum(f.size for f in freed)
