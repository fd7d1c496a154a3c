"""Fixtures of the operations tests: the clustering tests' customers, model and clients."""

from __future__ import annotations

from tests.clustering.conftest import (  # noqa: F401 (fixtures)
    customers,
    manager_client,
    marketer_client,
    one_blas_thread,
    trained,
)
