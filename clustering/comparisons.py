"""Customers followed between two runs: counted once by the database, then kept.

The counts are stored for the ordered pair (lower run id, higher run id); asking
for the other direction reads the same row transposed.
"""

from __future__ import annotations

import logging

from django.db import connection

from clustering.models import ClusterAssignment, RunComparison, TrainingRun

logger = logging.getLogger(__name__)

Moves = dict[tuple[int, int], int]


def run_moves(*, run_a: TrainingRun, run_b: TrainingRun) -> Moves | None:
    """Customers by (cluster in run_a, cluster in run_b), or None when they cannot be followed.

    None means one of the runs lost its assignments to pruning before the two were
    ever compared.
    """
    moves = _moves_between(*sorted((run_a.id, run_b.id)))
    if moves is None or run_a.id < run_b.id:
        return moves
    return {(b, a): n for (a, b), n in moves.items()}


def run_moves_warm(*, earlier_id: int | None, later_id: int) -> None:
    """Count the moves from the run that was active to a newly trained one.

    Called after a retrain, so the comparison a marketer asks for first is ready, and
    kept even when the earlier run's assignments are pruned. A failure here only
    means the page counts later.
    """
    if earlier_id is None or earlier_id == later_id:
        return
    try:
        _moves_between(*sorted((earlier_id, later_id)))
    except Exception:
        logger.exception("comparing run %s with run %s failed", earlier_id, later_id)


def _moves_between(earlier: int, later: int) -> Moves | None:
    """The stored counts of the ordered pair, counted and stored first if need be."""
    moves = _stored_moves(earlier, later)
    return moves if moves is not None else _count_and_store(earlier, later)


def _stored_moves(earlier: int, later: int) -> Moves | None:
    rows = (
        RunComparison.objects.filter(earlier_id=earlier, later_id=later)
        .values_list("moves", flat=True)
        .first()
    )
    return None if rows is None else {(a, b): n for a, b, n in rows}


def _count_and_store(earlier: int, later: int) -> Moves | None:
    if _either_pruned(earlier, later):
        return None
    moves = _count_moves(earlier, later)
    # Pruning deletes a run's assignments in one transaction and the count is one
    # statement, so a prune that raced the count leaves it empty, never partial.
    if _either_pruned(earlier, later):
        return None
    if not moves:  # no customer in both runs: nothing worth keeping
        return moves
    RunComparison.objects.bulk_create(
        [
            RunComparison(
                earlier_id=earlier,
                later_id=later,
                moves=[[a, b, n] for (a, b), n in sorted(moves.items())],
            )
        ],
        ignore_conflicts=True,  # two viewers counted at once: either row is right
    )
    return moves


def _either_pruned(earlier: int, later: int) -> bool:
    runs = TrainingRun.objects.filter(id__in=(earlier, later), assignments_pruned=False)
    return runs.count() < 2


def _count_moves(earlier: int, later: int) -> Moves:
    table = ClusterAssignment._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT a.cluster_id, b.cluster_id, COUNT(*) FROM {table} a "
            f"JOIN {table} b ON a.customer_id = b.customer_id AND b.run_id = %s "
            f"WHERE a.run_id = %s GROUP BY a.cluster_id, b.cluster_id",
            [later, earlier],
        )
        return {(a, b): n for a, b, n in cursor.fetchall()}
