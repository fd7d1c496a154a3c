"""The README states the figures of bad inputs the suite checks (tests/hardening/bad_inputs.py)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.hardening.bad_inputs import inventory, totals

README = Path(__file__).resolve().parents[2] / "README.md"


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def test_the_readme_states_the_figures_the_suite_checks():
    counts = totals()
    text = README.read_text()
    section = text[text.index("## What the site promises under faults and load") :]

    stated = re.search(
        r"\*\*([\d,]+) kinds of bad file\*\*,\s+\*\*([\d,]+) malformed API bodies\*\*\s+and\s+"
        r"\*\*([\d,]+) bad form posts\*\*,\s+plus\s+\*\*([\d,]+)\*\*\s+generated",
        " ".join(section.split()),
    )

    assert stated, "the README's faults section does not state the figures"
    assert [_number(n) for n in stated.groups()] == [
        counts["file"],
        counts["api"],
        counts["form"],
        counts["fuzz"],
    ]


def test_every_row_of_the_table_counts_something():
    for kind, rows in inventory().items():
        for what, count in rows.items():
            assert count > 0, (kind, what)
