"""The federation's window clock (federates/common/clock.py) and the grid's output delay."""

from __future__ import annotations

import json

from lemcosim.federates.amm.federate import AmmFederate
from lemcosim.federates.common.clock import (
    GRID_SUBSTEP,
    MARKET_SUBSTEP,
    SERVER_OUTPUT_DELAY_S,
    WindowClock,
)
from lemcosim.runner.compose import compose
from lemcosim.runner.validate import load_scenario

YEAR = WindowClock(window_s=900.0, windows=35_040, substep_s=1e-3)


def test_a_time_just_after_a_substep_is_in_it_and_the_next_substep_is_whole():
    last = YEAR.windows - 1  # T = 31,535,100 s: a double resolves ~4 ns there, ε is 1 µs
    after_grid = YEAR.time_of(last, GRID_SUBSTEP) + SERVER_OUTPUT_DELAY_S
    assert after_grid > YEAR.time_of(last, GRID_SUBSTEP)
    assert YEAR.window_of(after_grid) == last
    assert YEAR.substep_of(after_grid) == GRID_SUBSTEP
    assert YEAR.next_substep_s(after_grid) == YEAR.time_of(last, MARKET_SUBSTEP)
    assert YEAR.next_substep_s(YEAR.time_of(3, 2)) == YEAR.time_of(3, 3)  # 2,700.003 s


def test_the_market_asks_just_after_the_grid_which_sends_with_that_delay(tmp_path):
    # T_1 + δ + ε = 900 + 0.001 + 0.000001 s
    assert AmmFederate.step_time_s(AmmFederate, YEAR, 1) == 900.001001
    scenario, _ = load_scenario("year_ieee13", [])
    comp = compose(scenario, scenario.model_dump(mode="json"), tmp_path)
    configs = {name: json.loads(path.read_text()) for name, path in comp.configs.items()}
    assert configs["grid"]["outputDelay"] == SERVER_OUTPUT_DELAY_S == 1e-6
    assert "outputDelay" not in configs["amm"] and "outputDelay" not in configs["prosumers"]
