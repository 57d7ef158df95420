"""Grid model and service without HELICS: queries, controls, bad input, user .dss feeders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import lemcosim

from lemcosim.federates.grid.model import GridError, GridModel, Limits
from lemcosim.federates.grid.service import GridService
from lemcosim.networks.loader import NetworkError

DATA = Path(__file__).resolve().parent / "data"


def service(**kwargs) -> GridService:
    return GridService(GridModel("ieee13", **kwargs))


def test_query_answers_without_changing_the_committed_state():
    svc = service()
    committed = svc.solve_window({"675.a": [100.0, 0.0]})
    answer = svc.answer_query({"id": 7, "injections": {"652.a": [-800.0, -300.0]}})
    # 800 kW more load at the end of a lateral: more loss, and 652.a falls below 0.95 pu
    assert answer["converged"] and not answer["feasible"]
    assert answer["losses_kw"] > committed.flow.losses_kw
    v_min = next(v for v in answer["violations"] if v["constraint"] == "v_min")
    assert v_min["where"] == "652.a" and v_min["value"] < 0.95 and v_min["limit"] == 0.95
    again = svc.model.solve()
    assert np.abs(again.v_pu - committed.flow.v_pu).max() < 1e-6  # state restored
    assert again.losses_kw == pytest.approx(committed.flow.losses_kw)


def test_query_with_a_device_setting_restores_the_committed_device():
    svc = service(device=None)
    svc_fsvr = GridService(GridModel("ieee13", device=None))
    base = svc_fsvr.solve_window({})
    answer = svc_fsvr.answer_query(
        {"injections": {}, "device": {"kind": "svr", "taps": [0.0625, 0.05, 0.06875]}})
    assert answer["converged"] and answer["losses_kw"] != pytest.approx(base.flow.losses_kw)
    # the committed (absent) device is back for the next window
    assert svc_fsvr.solve_window({}).flow.losses_kw == pytest.approx(base.flow.losses_kw)
    assert svc_fsvr.model.device is None
    assert svc.answer_query({"injections": {"999.a": [1, 0]}})["reason"].startswith(
        "injection '999.a': unknown bus '999'")


def test_feasible_query_reports_extremes():
    svc = GridService(GridModel("ieee13", limits=Limits(v_min_pu=0.9, v_max_pu=1.1,
                                                         vuf_max_pct=3.0, loading_max_pct=200)))
    svc.solve_window({})
    answer = svc.answer_query({"injections": {"671.a": [50.0, 0.0]}})
    assert answer["feasible"] and answer["violations"] == []
    assert answer["extremes"]["vuf_max"]["where"] == "675"  # IEEE 13's most unbalanced bus


def test_control_commits_valid_settings_and_keeps_the_last_valid_one():
    svc = GridService(GridModel("ieee13", device=None))
    refused = svc.apply_control({"device": {"kind": "fsvr", "alpha": [0.0] * 9}})
    assert not refused["accepted"] and "no controllable device" in refused["reason"]
    from lemcosim.federates.grid.devices import DeviceSetting

    svc = GridService(GridModel("ieee13", device=DeviceSetting("fsvr")))
    ok = svc.apply_control({"device": {"kind": "fsvr", "alpha": [0.05, 0, 0, 0, 0.05, 0, 0, 0, 0.05]}})
    assert ok["accepted"]
    bad = svc.apply_control({"device": {"kind": "fsvr", "alpha": [0.07] + [0] * 8}})
    assert not bad["accepted"] and "keeping the last valid setting" in bad["reason"]
    assert svc.model.device.alpha[0, 0] == 0.05


def test_non_convergence_is_an_answer_not_a_crash():
    # 5 MW of constant-power load on the single-phase 1/0 cable lateral at 652: voltage collapse
    svc = service()
    base = svc.solve_window({})
    answer = svc.answer_query({"injections": {"652.a": [-5000.0, 0.0]}})
    assert not answer["converged"] and not answer["feasible"]
    assert "did not converge" in answer["reason"]
    assert answer["violations"][0]["constraint"] == "convergence"
    # the committed window still solves afterwards
    assert svc.model.solve().losses_kw == pytest.approx(base.flow.losses_kw, rel=1e-6)


def test_injections_at_unknown_buses_or_phases_are_named():
    grid = GridModel("ieee13")
    with pytest.raises(GridError, match="unknown bus '7'"):
        grid.set_injections({"7.a": [1, 0]})
    with pytest.raises(GridError, match="bus 611 has no phase a"):
        grid.set_injections({"611.a": [1, 0]})
    with pytest.raises(GridError, match="expected BUS.PHASE"):
        grid.set_injections({"611": [1, 0]})


def test_a_users_dss_feeder_takes_injections_by_bus_name():
    # 300 kW at the far end; a 300 kW injection there cancels the load: losses fall to ~ the
    # reactive part only
    grid = GridModel(str(DATA / "three_bus.dss"))
    loaded = grid.solve()
    grid.set_injections({f"far.{p}": [100.0, 0.0] for p in "abc"})
    relieved = grid.solve()
    assert loaded.converged and relieved.converged
    assert relieved.losses_kw < 0.2 * loaded.losses_kw
    assert set(relieved.buses_json()) == {"src", "mid", "far"}


def test_a_dss_file_that_fails_to_compile_shows_opendss_message(tmp_path):
    bad = tmp_path / "bad.dss"
    bad.write_text("clear\nnew circuit.x basekv=11 bus1=a\nnew line.l1 bus1=a bus2=b lenght=2\n")
    with pytest.raises(NetworkError, match=r'Unknown parameter "lenght"'):
        GridModel(str(bad))


def test_powerflow_cli_json_is_exactly_one_object():
    proc = lemcosim("powerflow", "ieee13", "--json", "--injection", "671.a=100,20",
                    "--device", "fsvr", "--setting", "0.05,0,0,0,0.05,0,0,0,0.075")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert set(result) == {"converged", "losses_kw", "losses_kvar", "buses", "vuf_pct",
                           "max_line_loading_pct"}
    assert set(result["buses"]["671"]) == {"a", "b", "c"}
    assert set(result["buses"]["671"]["a"]) == {"v_pu", "angle_deg"}
    assert "fsvr" not in " ".join(result["buses"])  # device nodes are not feeder buses


def test_powerflow_cli_table_and_named_errors():
    proc = lemcosim("powerflow", "ieee13")
    assert proc.returncode == 0 and "losses 110.46 kW" in proc.stdout  # IEEE 13, published taps
    for args, message in [
        (["ieee99"], "unknown network 'ieee99'"),
        (["ieee13", "--injection", "999.a=5"], "unknown bus '999'"),
        (["ieee13", "--injection", "671.a"], "expected BUS.PHASE=P_KW[,Q_KVAR]"),
        (["ieee13", "--device", "fsvr", "--setting", "0.03,0,0,0,0,0,0,0,0"], "not one of the 9"),
        (["ieee13", "--device", "svr", "--at", "nowhere"], "location 'nowhere' is neither"),
    ]:
        proc = lemcosim("powerflow", *args)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


# IEEE 13's base case reaches 1.0685 pu, 2.05 % VUF and 147 % line loading: limits above those
LIMITS = Limits(v_max_pu=1.07, vuf_max_pct=3.0, loading_max_pct=200.0)


def _sequence_request(loss_kw: float) -> dict:
    """Two ESUs (675: L-share 0.6, 671: 0.4) and three intents: a 2 kWh sale at 634.a, a
    1.5 kWh purchase at 671.b, then 150 kWh bought at 652.a (600 kW: far below 0.95 pu)."""
    storage = [{"keys": [f"675.{p}" for p in "abc"], "share": 0.6, "deliverable_kwh": 100.0,
                "absorbable_kwh": 100.0},
               {"keys": [f"671.{p}" for p in "abc"], "share": 0.4, "deliverable_kwh": 100.0,
                "absorbable_kwh": 100.0}]
    intents = [{"id": "t0", "trade_kw": {"634.a": 8.0}, "es_i_kwh": [-1.2, -0.8]},
               {"id": "t1", "trade_kw": {"671.b": -6.0}, "es_i_kwh": [0.9, 0.6]},
               {"id": "t2", "trade_kw": {"652.a": -600.0}, "es_i_kwh": [90.0, 60.0]},
               {"id": "t3", "trade_kw": {"634.b": 4.0}, "es_i_kwh": [-0.6, -0.4]}]
    return {"chain": {"dt_s": 900.0, "trades_kw": {}, "es_cont_kwh": [0.0, 0.0],
                      "loss_kw": loss_kw, "loss_compensation": True, "storage": storage},
            "intents": intents}


def test_a_batch_of_intents_is_answered_as_one_query_each_skipping_refusals():
    # one query per transaction, the injections written out as docs/interfaces.md defines them:
    # approved trades + this trade + ESU (ES_cont + ES_i)·(3600/900)/3 per phase; after an
    # approval ES_cont moves by ES_i + share·ΔLoss, ΔLoss = (losses − previous)·900/3600; a
    # refused one changes nothing, and the next is asked on the same state
    one_by_one = service(limits=LIMITS)
    base = one_by_one.solve_window({}).flow.losses_kw
    request = _sequence_request(base)
    shares, es_cont, trades, loss, expected = (0.6, 0.4), [0.0, 0.0], {}, base, []
    for intent in request["intents"]:
        es = [c + e for c, e in zip(es_cont, intent["es_i_kwh"], strict=True)]
        injections = {k: [v, 0.0] for k, v in trades.items()}
        for key, p in intent["trade_kw"].items():
            injections.setdefault(key, [0.0, 0.0])[0] += p
        for bus, e in zip(("675", "671"), es, strict=True):
            for phase in "abc":
                injections.setdefault(f"{bus}.{phase}", [0.0, 0.0])[0] += e * (3600.0 / 900.0) / 3
        answer = one_by_one.answer_query({"injections": injections})
        expected.append(answer)
        if not answer["feasible"]:
            continue
        for key, p in intent["trade_kw"].items():
            trades[key] = trades.get(key, 0.0) + p
        d_loss = (answer["losses_kw"] - loss) * 900.0 / 3600.0
        es_cont = [c + s * d_loss for c, s in zip(es, shares, strict=True)]
        loss = answer["losses_kw"]
    assert [a["feasible"] for a in expected] == [True, True, False, True]  # 652.a below 0.95 pu

    batched = service(limits=LIMITS)  # a fresh engine: the same power flows from the same start
    batched.solve_window({})
    answers = batched.answer_sequence(request)["answers"]
    assert [a["id"] for a in answers] == ["t0", "t1", "t2", "t3"]  # t3 asked without t2
    for got, want in zip(answers, expected, strict=True):
        for key in ("feasible", "converged", "reason", "violations", "losses_kw", "extremes"):
            assert got[key] == want[key], key  # identical, not merely close

    stopping = service(limits=LIMITS)  # "after_refusal": "stop": the batch ends at the refusal
    stopping.solve_window({})
    answers = stopping.answer_sequence(request | {"after_refusal": "stop"})["answers"]
    assert [a["id"] for a in answers] == ["t0", "t1", "t2"]
    assert [a["losses_kw"] for a in answers] == [a["losses_kw"] for a in expected[:3]]


def test_a_batch_skips_an_intent_a_storage_unit_cannot_serve():
    svc = service(limits=LIMITS)
    request = _sequence_request(svc.solve_window({}).flow.losses_kw)
    request["intents"][1]["es_i_kwh"] = [102.0, 0.6]  # 675: ES_cont ≈ 100.8 > 100 kWh
    answers = svc.answer_sequence(request)["answers"]
    assert [a["id"] for a in answers] == ["t0", "t1", "t2", "t3"]
    assert answers[0]["feasible"] and answers[1] == {"id": "t1", "stopped": "storage limit"}
    assert not answers[2]["feasible"] and answers[3]["feasible"]  # t2 as before; t3 after t0 only
    stopped = service(limits=LIMITS).answer_sequence(request | {"after_refusal": "stop"})
    assert [a["id"] for a in stopped["answers"]] == ["t0", "t1"]


def test_an_injection_keeps_its_reactive_power_when_only_its_real_power_changes():
    # OpenDSS's kW setter rescales kvar to keep a load's power factor: 10 kW + 5 kvar set to
    # 20 kW would hold 10 kvar. The grid must hold the 5 kvar it was given, and a flow from that
    # edit history must equal a fresh model's solve of the same injections.
    model = GridModel("ieee13")
    model.set_injections({"671.a": [10.0, 5.0]})
    model.solve()
    model.set_injections({"671.a": [20.0, 5.0]})
    edited = model.solve()
    from lemcosim.networks.builder import dss

    loads = dss().Loads
    loads.Idx(model._elements["671.a"])
    assert (loads.kW(), loads.kvar()) == (-20.0, -5.0)  # a load: positive into the grid is negative
    fresh = GridModel("ieee13")
    fresh.set_injections({"671.a": [20.0, 5.0]})
    reference = fresh.solve()
    assert np.allclose(edited.v_pu, reference.v_pu, atol=1e-7)
    assert edited.losses_kw == pytest.approx(reference.losses_kw, abs=1e-5)  # solver tolerance


def test_a_batch_that_asks_for_no_extremes_gets_the_same_decisions_without_them():
    # a market that logs no extremes (amm.log_answer_detail: false) asks the grid to leave them out
    from lemcosim.federates.common.approval import ApprovalChain, Intent

    def batch(extremes: bool) -> list[dict]:
        svc = service(limits=Limits(rule="no_worse"))
        svc.solve_window({"675.a": [50.0, 0.0], "634.b": [-20.0, 0.0]})
        # a balanced 15 kW sale at 671, 800 kW more load at the end of lateral 652, the sale again
        balanced = {"671.a": 5.0, "671.b": 5.0, "671.c": 5.0}
        trades = [balanced, {"652.a": -800.0}, balanced]
        request = {"chain": ApprovalChain(900.0, ()).to_json(), "extremes": extremes,
                   "intents": [Intent(f"i{i}", t, ()).to_json() for i, t in enumerate(trades)]}
        return svc.answer_sequence(request)["answers"]

    full, lean = batch(True), batch(False)
    assert all("extremes" in a for a in full) and not any("extremes" in a for a in lean)
    assert [{k: v for k, v in a.items() if k != "extremes"} for a in full] == lean
    assert [a["feasible"] for a in lean] == [True, False, True]
    assert lean[1]["reason"].startswith("v_min at 652.a")  # 652.a falls below 0.95 pu


def test_a_batch_names_bus_phases_in_any_case_as_one_query_does():
    # set_injections takes "671.B" as 671.b; a batch's chain and intents are read the same way
    from lemcosim.federates.common.approval import ApprovalChain, Intent

    def first_answer(trades: dict, trade: dict) -> dict:
        svc = service(limits=Limits(rule="no_worse"))
        svc.solve_window({"675.a": [50.0, 0.0]})
        chain = ApprovalChain(900.0, ()).to_json() | {"trades_kw": trades}
        return svc.answer_sequence({"chain": chain, "intents": [Intent("i0", trade, ()).to_json()]}
                                   )["answers"][0]

    upper = first_answer({"675.A": 3.0}, {"671.B": 5.0})
    assert upper["converged"] and upper == first_answer({"675.a": 3.0}, {"671.b": 5.0})
