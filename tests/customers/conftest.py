"""Fixtures of the customers tests: CSV files on disk and the import command."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command


@pytest.fixture
def write_csv(tmp_path) -> Callable[..., Path]:
    """write_csv(text or bytes, name=...) -> the path of a file with exactly that content."""

    def write(content: str | bytes, name: str = "customers.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return write


class ImportCommand:
    """Runs import_customers as a user would; keeps what the last run printed, even on failure."""

    def __init__(self) -> None:
        self.stdout = self.stderr = ""

    def __call__(self, path, *options: str) -> ImportCommand:
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command(
                "import_customers", str(path), "--no-progress", *options, stdout=out, stderr=err
            )
        finally:
            self.stdout, self.stderr = out.getvalue(), err.getvalue()
        return self


@pytest.fixture
def import_customers() -> ImportCommand:
    return ImportCommand()
