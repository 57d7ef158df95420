"""Analysis of run folders: `load_run(RUN_DIR)` → tidy DataFrame; `analyze` → tables, figures."""

from lemcosim.analysis.load import load_run
from lemcosim.analysis.monthly import pool_share_by_month

__all__ = ["load_run", "pool_share_by_month"]
