"""The `lemcosim run` command line every benchmark starts its federations with."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path


def run_command(scenario: str, out: Path, overrides: Iterable[str] = (),
                windows: int | None = None) -> list[str]:
    """`python -m lemcosim.runner.cli run SCENARIO --out OUT --no-progress`, with `--set
    time.windows=N` when `windows` is given and one `--set` per override."""
    sets = ([f"time.windows={windows}"] if windows is not None else []) + list(overrides)
    return [sys.executable, "-m", "lemcosim.runner.cli", "run", scenario, "--out", str(out),
            "--no-progress", *(arg for s in sets for arg in ("--set", s))]
