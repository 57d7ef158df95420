"""What must not change when the market–grid protocol changes: every transaction's decision and
prices, each ESU's delivery, and the losses of each window's final power flow.

`python tests/reference_results.py RUN_DIR OUT.json` extracts them from a run folder. The files
in tests/data/reference_*.json were captured from commit ccc1e1b (one HELICS round trip per
transaction, before issue 13's batched approval); batches with `after_refusal: stop` reproduced
them bit for bit (commit 3490b09). They were captured again with `after_refusal: stop` when the
market began to read the grid's committed losses PLoss_0 as the double they are: it had read the
double publication as a string, which HELICS rounds to six decimals (112.34567890123456 kW read
as 112.345679), so ΔLoss of each window's first trade moved by up to 5e-7 kW·Δt. The quickstart
file was captured again when the market began to publish its ESUs' utility exchange at T_w (the
grid's window solve includes it; before, the grid re-solved its base state a sub-step later):
PLoss_0 is then found from another starting point of the solver; every decision and text was
unchanged and every number within `TOLERANCE` of the file it replaces.
reference_quickstart_storage.json (quickstart's ESUs at 10 and 6 kW, 64 windows, `after_refusal:
stop`: 27 storage limits) was captured from commit ed5651f, whose market ended a batch at each
storage limit. They are compared by tests/test_ch3_cases.py and tests/test_quickstart.py: exactly
(floats as JSON round-trips them) with `after_refusal: stop`, which makes the grid solve the very
power flows of one query per transaction in their order; with the default `continue`, a batch may
make the grid solve an intent the market then does not use, which moves OpenDSS's starting point
for the next solve (the solver stops at 1e-8): decisions and texts stay identical, numbers agree
to `TOLERANCE`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

from lemcosim.analysis import load_run

# measured on quickstart: ΔLoss within 2.6e-7 kWh (a few Wh between two losses of ~100 kW, each
# within the solver's 1e-8), ρ_eff within 8e-8 M/kWh, losses within 8e-9 kW (as tests/test_resume.py)
TOLERANCE = {"rel_tol": 1e-6, "abs_tol": 1e-6}
_NUMBER = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")

TX_QUANTITIES = ("approved", "reason", "side", "prosumer", "bus", "e_kwh", "m", "rho", "rho_eff",
                 "rho_es", "d_loss_kwh", "price_after", "utility_kwh")
MARKET_QUANTITIES = ("opening_price", "closing_price", "volume_kwh", "approved", "rejected")
ESU_QUANTITIES = ("soc_kwh", "es_cont_kwh")


def market_results(run_dir: Path | str) -> dict:
    """{"transactions": {id: {quantity: value}}, "market": …, "esus": …, "grid_losses_kw": …}."""
    df = load_run(run_dir)
    amm = df[df.federate == "amm"]
    out: dict = {"transactions": {}, "market": {}, "esus": {}, "grid_losses_kw": {}}
    for row in amm.itertuples():
        value = row.text if isinstance(row.text, str) and row.text else float(row.value)
        entity, quantity = str(row.entity), str(row.quantity)
        if entity.startswith("w") and "t" in entity and quantity in TX_QUANTITIES:
            out["transactions"].setdefault(entity, {})[quantity] = value
        elif entity == "market" and quantity in MARKET_QUANTITIES:
            out["market"][f"{int(row.window)}:{quantity}"] = value
        elif quantity in ESU_QUANTITIES:
            out["esus"][f"{int(row.window)}:{entity}:{quantity}"] = value
    grid = df[(df.federate == "grid") & (df.entity == "feeder") & (df.quantity == "losses_kw")]
    for window, rows in grid.sort_values("time_s", kind="stable").groupby("window"):
        out["grid_losses_kw"][str(int(window))] = float(rows["value"].iloc[-1])
    return out


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(json.dumps(market_results(sys.argv[1]), indent=1, sort_keys=True))


def assert_same_results(run_dir: Path | str, scenario: str, exact: bool = True) -> None:
    """The run's market results equal the stored reference (NaN equal to NaN): exactly, or
    decisions and texts exactly and numbers within `TOLERANCE` (numbers inside texts too)."""
    expected = json.loads((Path(__file__).parent / "data" / f"reference_{scenario}.json").read_text())
    got = json.loads(json.dumps(market_results(run_dir)))  # the same float round trip
    same = _same if exact else _close
    for part, values in expected.items():
        assert got[part].keys() == values.keys(), f"{scenario}: {part} entries differ"
        differ = [k for k, v in values.items() if not same(got[part][k], v)]
        assert not differ, (f"{scenario}: {len(differ)} {part} differ, first {differ[0]}: "
                            f"{got[part][differ[0]]} != {values[differ[0]]}")


def _same(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b or (a != a and b != b)


def _close(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float):
        return (a != a and b != b) or math.isclose(a, b, **TOLERANCE)
    if isinstance(a, str) and isinstance(b, str):
        numbers_a, numbers_b = _NUMBER.findall(a), _NUMBER.findall(b)
        return (_NUMBER.sub("#", a) == _NUMBER.sub("#", b) and len(numbers_a) == len(numbers_b)
                and all(math.isclose(float(x), float(y), **TOLERANCE)
                        for x, y in zip(numbers_a, numbers_b, strict=True)))
    return a == b
