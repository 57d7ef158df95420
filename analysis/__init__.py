"""Analysis of run folders: `load_run(RUN_DIR)` → tidy DataFrame; `analyze` → tables, figures."""

from lemcosim.analysis.load import load_run

__all__ = ["load_run"]
