"""`prosumers.split: N`: a population run as N federates gives the market and the grid exactly
what the one federate gives them."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import lemcosim

from lemcosim.analysis.load import load_run
from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.prosumers.population import checked_positions, merge_positions, part_slice

KEYS = ["federate", "window", "substep", "entity", "quantity", "time_s"]
BASE = ["quickstart", "--set", "time.windows=3", "--set", "recorder.enabled=false"]


def test_parts_are_contiguous_cover_every_member_once_and_differ_by_at_most_one():
    # 10 members in 3 parts: 3 + 4 + 3 (boundaries round(10/3) = 3, round(20/3) = 7)
    assert [part_slice(10, k, 3) for k in range(3)] == [slice(0, 3), slice(3, 7), slice(7, 10)]
    for n, parts in ((1, 1), (7, 7), (60, 4), (6001, 8)):
        sizes = [part_slice(n, k, parts).stop - part_slice(n, k, parts).start for k in range(parts)]
        assert sum(sizes) == n and max(sizes) - min(sizes) <= 1


def test_merged_positions_are_the_whole_population_in_its_order():
    whole = {"id": ["p0", "p1", "p2"], "bus": ["671", "675", "692"], "e_kwh": [0.5, -1.0, 0.25]}
    parts = [{c: v[s] for c, v in whole.items()} for s in (slice(0, 1), slice(1, 3))]
    assert merge_positions(parts) == whole
    assert merge_positions([{}, parts[0]]) == parts[0]  # a part not yet published
    assert merge_positions([]) == {}


def test_a_published_positions_object_is_checked_column_by_column():
    where = "amm: subscription 'ext/positions_next'"
    good = {"id": ["p0", "p1"], "bus": ["671", "675"], "phase": ["a", "b"], "e_kwh": [0.5, -1]}
    assert checked_positions(good | {"window": 4}, where) == good  # other keys are not columns
    assert checked_positions(None, where) == {} == checked_positions({}, where)  # not yet published
    for bad, message in (
            ([0.5], "expected an object with columns id, bus, phase, e_kwh, got list"),
            ({c: v for c, v in good.items() if c != "phase"}, "missing column(s) phase"),
            (good | {"bus": "671"}, "every column must be a list with one value per member"),
            (good | {"e_kwh": [0.5]}, "'e_kwh': 1"),
            (good | {"e_kwh": [0.5, "1"]}, "e_kwh of member 'p1' is '1', not a finite number"),
            (good | {"e_kwh": [None, 1.0]}, "e_kwh of member 'p0' is None"),
            (good | {"e_kwh": [float("inf"), 1.0]}, "e_kwh of member 'p0' is inf")):
        with pytest.raises(LemcosimError) as err:
            checked_positions(bad, where)
        assert str(err.value).startswith(where) and message in str(err.value), err.value


@pytest.mark.federation
def test_a_population_split_in_three_federates_gives_the_unsplit_results(tmp_path):
    one, three = tmp_path / "one", tmp_path / "three"
    done = lemcosim("run", *BASE, "--out", str(one), "--no-progress")
    assert done.returncode == 0, done.stderr
    done = lemcosim("run", *BASE, "--set", "prosumers.split=3", "--out", str(three), "--no-progress")
    assert done.returncode == 0, done.stderr

    def market_and_grid(run):
        df = load_run(run, federates=["amm", "grid"])
        return df.sort_values(KEYS + ["text"], kind="stable").reset_index(drop=True)

    a, b = market_and_grid(one), market_and_grid(three)
    assert len(a) == len(b) > 500
    assert a[KEYS + ["text"]].astype(str).equals(b[KEYS + ["text"]].astype(str))
    va, vb = a["value"].to_numpy(float), b["value"].to_numpy(float)
    assert (np.isnan(va) == np.isnan(vb)).all()
    assert np.array_equal(va[~np.isnan(va)], vb[~np.isnan(vb)])  # bit for bit

    # each part logs its own members: the parts' rows add up to the population's
    whole = load_run(one, federates=["prosumers"])
    parts = load_run(three, federates=[f"prosumers_{k}" for k in range(3)])
    for quantity in ("members", "pv_kwp", "net_kw", "load_kw"):
        x = whole[whole.quantity == quantity].groupby("window")["value"].sum()
        y = parts[parts.quantity == quantity].groupby("window")["value"].sum()
        assert np.allclose(x.to_numpy(), y.to_numpy(), rtol=1e-12, atol=1e-9), quantity


def test_an_auction_population_is_split_by_its_terminals_not_by_split(tmp_path):
    done = lemcosim("validate", "ch6_cigre_lv_uncongested", "--set", "prosumers.split=2")
    assert done.returncode != 0 and "auction.terminals" in done.stderr
    done = lemcosim("compose", "ch6_cigre_lv_uncongested", "--set", "prosumers.split=2",
                    "--out", str(tmp_path / "x"))
    assert done.returncode != 0 and "auction.terminals" in done.stderr
    assert "Traceback" not in done.stderr
