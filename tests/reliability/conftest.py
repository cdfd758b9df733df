"""Counts the cases each fuzz target ran and prints them at the end of the run."""
from collections import Counter

import pytest

CASES: Counter = Counter()


@pytest.fixture
def count_case():
    """Call with the fuzz target's name once per case it tries."""
    return lambda target: CASES.update([target])


def pytest_terminal_summary(terminalreporter):
    if CASES:
        terminalreporter.write_sep("-", "fuzz cases run")
        for target, count in sorted(CASES.items()):
            terminalreporter.write_line(f"{target:28s} {count:6d}")
