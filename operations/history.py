"""Prediction history: every prediction of the page and the API, kept for a while."""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from clustering.models import Segment, TrainingRun
from customers.services import SafeCsvWriter
from operations.models import PredictionRecord

logger = logging.getLogger(__name__)


def predictions_record(
    *,
    predictions: Sequence,
    rows: Sequence[dict],
    user=None,
    channel: str,
    customer_refs: Sequence[str | None] = (),
) -> int:
    """Store predictions (clustering.prediction.Prediction) with the values they used.

    The page's are written at once (a marketer may open the history next). The API's wait
    in this process for up to PREDICTION_HISTORY_FLUSH_SECONDS and are written together,
    so a prediction is not held up by a database write of its own: one write per request
    took the API's throughput from 0.90 of its ping's to 0.33-0.54 (`make loadtest`).
    A history that cannot be written is logged and the answer still goes out: the caller
    asked for a segment, not for a record."""
    who = user.pk if user is not None and user.is_authenticated else None
    refs = list(customer_refs) or [None] * len(predictions)
    now = timezone.now()
    # Plain field values: the model instances are built where they are written, off the
    # request's path.
    records = [
        {
            "created_at": now,
            "user_id": who,
            "channel": channel,
            "run_id": p.run_id,
            "run_number": p.run_id,
            "segment_id": p.segment.id,
            "segment_name": p.segment.name[:80],
            "confidence": p.confidence,
            "unusual": p.unusual,
            "inputs": row,
            "customer_ref": (ref or "")[:100],
        }
        for p, row, ref in zip(predictions, rows, refs, strict=True)
    ]
    delay = settings.PREDICTION_HISTORY_FLUSH_SECONDS
    if channel == PredictionRecord.Channel.API and delay > 0:
        _pending.add(records, delay)
        return len(records)
    return _write(records)


def predictions_flush() -> int:
    """Write the API predictions this process still holds; returns how many."""
    return _pending.flush()


def _write(records: list[dict]) -> int:
    try:
        with transaction.atomic():
            _without_waiting_for_the_disk()
            PredictionRecord.objects.bulk_create(PredictionRecord(**r) for r in records)
    except DatabaseError:
        logger.exception("could not store %s prediction(s) in the history", len(records))
        return 0
    return len(records)


def _forget_deleted(records: list[dict]) -> None:
    """A run, segment or user deleted since the prediction (held ones are written up to a
    second later) is left out of its record, as the keys' SET NULL would have done, so one
    such record does not cost the whole batch."""
    for field, model in (
        ("run_id", TrainingRun),
        ("segment_id", Segment),
        ("user_id", get_user_model()),
    ):
        ids = {r[field] for r in records} - {None}
        alive = set(model.objects.filter(id__in=ids).values_list("id", flat=True))
        for record in records:
            if record[field] not in alive:
                record[field] = None


# API predictions held before one write: a busy process writes every PENDING_MAX of them.
PENDING_MAX = 500


class _Pending:
    """This process's API predictions not yet written, and the timer that writes them.

    The timer runs in a thread of its own (with a database connection of its own, closed
    after each write); a worker that stops normally writes what is left at exit, one
    killed outright loses at most the last PREDICTION_HISTORY_FLUSH_SECONDS of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[dict] = []
        self._timer: threading.Timer | None = None

    def add(self, records: list[dict], delay: float) -> None:
        with self._lock:
            self._records.extend(records)
            full = len(self._records) >= PENDING_MAX
            if not full and self._timer is None:
                self._timer = threading.Timer(delay, self._flush_in_thread)
                self._timer.daemon = True
                self._timer.start()
        if full:
            self.flush()

    def flush(self) -> int:
        with self._lock:
            records, self._records = self._records, []
            timer, self._timer = self._timer, None
        if timer is not None and timer is not threading.current_thread():
            timer.cancel()
        if not records:
            return 0
        _forget_deleted(records)  # held a moment: what was deleted meanwhile
        return _write(records)

    def _flush_in_thread(self) -> None:
        try:
            self.flush()
        finally:
            connections.close_all()  # this thread's own connection


_pending = _Pending()
atexit.register(_pending.flush)


def _without_waiting_for_the_disk() -> None:
    """The history is a log beside the answer: on PostgreSQL its commit does not wait for
    the disk (asynchronous commit: a crash in the next fraction of a second may lose the
    newest records, never corrupt them), so a prediction is not held up by an fsync; it
    halved the API's prediction throughput. SQLite already commits without one (WAL,
    synchronous=NORMAL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def predictions_prune(*, now=None) -> int:
    """Delete predictions older than PREDICTION_HISTORY_DAYS."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.PREDICTION_HISTORY_DAYS)
    deleted, _ = PredictionRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def predictions_filtered(*, user, params) -> tuple[QuerySet, dict]:
    """Predictions the user may see, filtered by the page's fields; everyone's for those
    with view_all_predictions, else their own."""
    records = PredictionRecord.objects.select_related("user")
    if not user.has_perm("operations.view_all_predictions"):
        records = records.filter(user=user)
    filters = {
        "since": _day(params.get("since")),
        "until": _day(params.get("until")),
        "channel": params.get("channel") if params.get("channel") in ("page", "api") else "",
        "segment": (params.get("segment") or "").strip()[:80],
        "who": (params.get("who") or "").strip()[:150],
        "customer": (params.get("customer") or "").strip()[:100],
    }
    if filters["since"]:
        records = records.filter(created_at__date__gte=filters["since"])
    if filters["until"]:
        records = records.filter(created_at__date__lte=filters["until"])
    if filters["channel"]:
        records = records.filter(channel=filters["channel"])
    if filters["segment"]:
        records = records.filter(segment_name__icontains=filters["segment"])
    if filters["who"]:
        records = records.filter(user__username__icontains=filters["who"])
    if filters["customer"]:
        records = records.filter(customer_ref=filters["customer"])
    errors = [
        f"“{params.get(name)}” in {label} is not a date (YYYY-MM-DD)."
        for name, label in (("since", "From"), ("until", "To"))
        if params.get(name) and filters[name] is None
    ]
    return records, {**filters, "errors": errors, "query": _query(filters)}


def _query(filters: dict) -> str:
    return urlencode({k: v for k, v in filters.items() if v and k not in ("errors", "query")})


CSV_HEADER = [
    "when",
    "channel",
    "user",
    "run",
    "segment",
    "confidence",
    "unusual",
    "customer_id",
    "inputs",
]


def predictions_csv_lines(records: QuerySet) -> Iterator[str]:
    """The filtered history as CSV, through the site's formula-guarded writer."""
    writer = SafeCsvWriter()
    yield writer.row(CSV_HEADER)
    for record in records.iterator(chunk_size=2000):
        inputs = "; ".join(f"{key}={value}" for key, value in record.inputs.items())
        yield writer.row(
            [
                record.created_at.isoformat(timespec="seconds"),
                record.channel,
                record.user.get_username() if record.user else "",
                record.run_number,
                record.segment_name,
                round(record.confidence, 4),
                record.unusual,
                record.customer_ref,
                inputs,
            ]
        )


def customer_predictions(*, customer_id: str, limit: int = 50) -> list[PredictionRecord]:
    return list(
        PredictionRecord.objects.filter(customer_ref=customer_id).select_related("user")[:limit]
    )
