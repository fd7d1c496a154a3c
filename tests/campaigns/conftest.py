"""Fixtures of the campaign tests: the clustering tests' demo customers and trained model."""

from __future__ import annotations

from tests.clustering.conftest import (  # noqa: F401  (fixtures)
    client_for,
    customers,
    manager_client,
    marketer_client,
    one_blas_thread,
    trained,
)
