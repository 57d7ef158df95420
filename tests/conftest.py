"""Fixtures shared by the federation tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_no_process_left


@pytest.fixture
def run_dir(tmp_path: Path):
    """A run folder whose processes are checked (and cleaned) after the test, pass or fail."""
    path = tmp_path / "run"
    yield path
    if (path / "logs" / "pids.json").exists():
        assert_no_process_left(path)
