"""Each shipped feeder's base case against its published power flow (numbers in tests/published/)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from lemcosim.networks.builder import compile_network, dss
from lemcosim.networks.loader import load_network
from lemcosim.networks.results import NodeIndex, bus_phase_voltages

PUBLISHED = Path(__file__).resolve().parent / "published"


def solve_base_case(name: str) -> tuple[dict, float]:
    """Voltages {bus: {phase: {v_pu, angle_deg}}} and total loss, kW, with the published taps."""
    compile_network(load_network(name), regulators="published")
    dss().Solution.Solve()
    assert dss().Solution.Converged()
    return bus_phase_voltages(NodeIndex.of_active_circuit()), dss().Circuit.Losses()[0] / 1000.0


def angle_gap_deg(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def published_loss_kw(path: Path) -> float:
    """The reference total loss, from the file's `# total_loss_kw: X` comment line."""
    for line in path.read_text().splitlines():
        if line.startswith("# total_loss_kw:"):
            return float(line.split(":")[1].split()[0])
    raise AssertionError(f"{path} gives no total_loss_kw")


@pytest.mark.parametrize("name", sorted(p.name.removesuffix("_voltages.csv")
                                        for p in PUBLISHED.glob("*_voltages.csv")))
def test_unbalanced_feeder_matches_published_voltages(name):
    """Every published bus phase within 0.005 pu and 0.5°; total loss within 1 %."""
    path = PUBLISHED / f"{name}_voltages.csv"
    published = pd.read_csv(path, comment="#", dtype={"bus": str})
    loss_kw = published_loss_kw(path)
    voltages, losses_kw = solve_base_case(name)
    worst_v = worst_a = 0.0
    for row in published.itertuples():
        solved = voltages[row.bus.lower()][row.phase]
        worst_v = max(worst_v, abs(solved["v_pu"] - row.v_pu))
        worst_a = max(worst_a, angle_gap_deg(solved["angle_deg"], row.angle_deg))
        assert abs(solved["v_pu"] - row.v_pu) <= 0.005, (row.bus, row.phase, solved)
        assert angle_gap_deg(solved["angle_deg"], row.angle_deg) <= 0.5, (row.bus, row.phase, solved)
    assert losses_kw == pytest.approx(loss_kw, rel=0.01)
