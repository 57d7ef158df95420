"""What the grid federate does per window and per request, free of HELICS (testable on its own).

- `solve_window(injections)`: commit the window's injections, solve, report.
- `answer_query(request)`: solve committed + extra injections (optionally with another device
  setting) and answer feasibility, violations, losses and the committed state's losses
  PLoss_0; the committed state is restored.
- `answer_sequence(request)`: batched approval of a market's intents, in order (docs/interfaces.md).
- `apply_control(request)`: commit a new device setting; a bad one keeps the last valid setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from lemcosim.federates.common.approval import ApprovalChain, Intent
from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.grid.devices import DeviceError, setting_from_json
from lemcosim.federates.grid.model import GridError, GridModel, Limits, PowerFlow


def _refused(reason: str) -> dict[str, Any]:
    """The answer to a query the grid cannot evaluate (bad injection or device setting)."""
    return {"feasible": False, "converged": False, "reason": reason, "violations": [],
            "losses_kw": None}


@dataclass
class WindowReport:
    flow: PowerFlow
    limits: Limits
    device_v_in: np.ndarray | None = None  # solved device input phasors, pu
    device: dict | None = None  # the device setting in force

    def publications(self) -> dict[str, Any]:
        """Publication suffix → value (JSON-able or float), as in docs/interfaces.md."""
        f = self.flow
        if not f.converged:
            return {"converged": 0.0}
        mags = f.magnitude()
        return {
            "voltages": {n: round(float(v), 7) for n, v in zip(f.node_names, mags, strict=True)},
            "losses_kw": f.losses_kw,
            "losses_kvar": f.losses_kvar,
            "vuf_pct": {b: round(float(v), 6) for b, v in zip(f.vuf_buses, f.vuf_pct, strict=True)},
            "max_vuf_pct": f.extreme("vuf_max")[1],
            "line_loading_pct": {n: round(float(v), 4)
                                 for n, v in zip(f.line_names, f.loading_pct, strict=True)},
            "max_line_loading_pct": f.extreme("loading_max")[1],
            "v_min_pu": float(mags.min()),
            "v_max_pu": float(mags.max()),
            "converged": 1.0,
        } | ({} if self.device_v_in is None else {"device_v_in": {
            "re": self.device_v_in.real.round(9).tolist(),
            "im": self.device_v_in.imag.round(9).tolist()}})

    def rows(self) -> list[tuple[str, str, float | str, str]]:
        """Log rows (entity, quantity, value, unit)."""
        f = self.flow
        if not f.converged:
            return [("feeder", "converged", 0.0, "1/0"), ("feeder", "reason", f.reason, "")]
        rows: list[tuple[str, str, float | str, str]] = [
            ("feeder", "converged", 1.0, "1/0"),
            ("feeder", "losses_kw", f.losses_kw, "kW"),
            ("feeder", "losses_kvar", f.losses_kvar, "kvar"),
            ("feeder", "max_vuf_pct", f.extreme("vuf_max")[1], "%"),
            ("feeder", "max_line_loading_pct", f.extreme("loading_max")[1], "%"),
        ]
        rows += [(n, "v_pu", float(abs(v)), "pu") for n, v in zip(f.node_names, f.v_pu, strict=True)]
        rows += [(b, "vuf_pct", float(v), "%") for b, v in zip(f.vuf_buses, f.vuf_pct, strict=True)]
        rows += [(n, "loading_pct", float(v), "%")
                 for n, v in zip(f.line_names, f.loading_pct, strict=True)]
        rows += [(v["constraint"], "violation", float(v["value"]), "")
                 for v in f.violations(self.limits) if v["value"] is not None]
        if self.device is not None:
            rows.append(("device", "setting", json.dumps(self.device), ""))
        rows.append(("limits", "rule", self.limits.rule, ""))  # how queries are judged
        return rows


class GridService:
    def __init__(self, model: GridModel) -> None:
        self.model = model
        self.committed: dict[str, tuple[float, float]] = {}
        self.committed_flow: PowerFlow | None = None
        # a query may try another device setting; the committed one is put back lazily, before
        # the next window solve or control, so a run of queries does not rebuild twice each
        self.committed_device = model.device
        self.failed_flows = 0  # power flows that did not converge (the grid's window summary)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> GridService:
        net = params.get("network") or {}
        device_cfg = params.get("device")
        device = None
        if device_cfg:
            device = setting_from_json({"kind": device_cfg["kind"], **(device_cfg.get("setting") or {})},
                                       device_cfg.get("vw1_over_vir", 0.025))
        model = GridModel(
            net.get("dss") or net["name"], regulators=net.get("regulators", "published"),
            load_mult=float(net.get("load_mult", 1.0)), device=device,
            device_at=(device_cfg or {}).get("at"), limits=Limits(**(params.get("limits") or {})))
        return cls(model)

    def solve_window(self, injections: dict[str, list[float]]) -> WindowReport:
        if self.model.device is not self.committed_device:
            self.model.set_device(self.committed_device)
        self.model.set_injections(injections)
        self.committed = dict(self.model.injections)
        self.committed_flow = self.model.solve()
        self.failed_flows += not self.committed_flow.converged
        report = WindowReport(self.committed_flow, self.model.limits)
        if self.model.device is not None:
            report.device = self.model.device.to_json()
            if self.committed_flow.converged:
                report.device_v_in = self.model.device_voltages()[0]
        return report

    def answer_query(self, request: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(request, dict):
            raise GridError("a query is a JSON object")
        extra = request.get("injections") or {}
        if not isinstance(extra, dict):
            raise GridError("query `injections` must map BUS.PHASE to [p_kw, q_kvar]")
        load_mult = self.model.load_mult
        v_in = None
        try:
            device = (setting_from_json(request["device"]) if request.get("device")
                      else self.committed_device)
            if device is not self.model.device:
                self.model.set_device(device)
            if request.get("load_mult") is not None:
                if float(request["load_mult"]) <= 0:
                    raise GridError(f"load_mult {request['load_mult']} must be positive")
                self.model.set_load_mult(float(request["load_mult"]))
            flow, verdict = self._evaluate(extra)
            if flow is not None and flow.converged and self.model.device is not None:
                v_in = self.model.device_voltages()[0]
        except (DeviceError, GridError) as exc:
            flow, verdict = None, _refused(str(exc))
        finally:
            self.model.set_injections(self.committed)
            if self.model.load_mult != load_mult:
                self.model.set_load_mult(load_mult)
        if flow is None:
            return verdict
        return verdict | {"base_losses_kw": self._base_losses_kw()} | {
            "vuf_pct": dict(zip(flow.vuf_buses, np.round(flow.vuf_pct, 6).tolist(), strict=True)),
            "band_violation_pu": (flow.band_violation_pu(self.model.limits) if flow.converged
                                  else None),
        } | ({} if v_in is None else {"device_v_in": {"re": v_in.real.tolist(),
                                                       "im": v_in.imag.tolist()}}) | (
            {"phasors": {"names": flow.node_names, "re": flow.v_pu.real.tolist(),
                         "im": flow.v_pu.imag.tolist()},
             "band_pu": [self.model.limits.v_min_pu, self.model.limits.v_max_pu],
             "limits": {"vuf_max_pct": self.model.limits.vuf_max_pct}}
            if request.get("detail") and flow.converged else {})

    def _evaluate(self, extra: dict) -> tuple[PowerFlow, dict[str, Any]]:
        """Solve the committed injections plus `extra` ({BUS.PHASE: [p_kw, q_kvar]}) and judge the
        result (what every answer carries); the injections stay applied (callers restore)."""
        self.model.set_injections(extra, base=self.committed)  # a bad one raises GridError
        flow = self.model.solve()
        return flow, self._judge(flow)

    def _judge(self, flow: PowerFlow, extremes: bool = True) -> dict[str, Any]:
        """What every answer carries about a solved query (`extremes`: with the extreme voltage,
        VUF and loading and where)."""
        self.failed_flows += not flow.converged
        violations = flow.violations(self.model.limits, self.committed_flow)
        return {
            "feasible": flow.converged and not violations,
            "converged": flow.converged,
            "reason": flow.reason or ("; ".join(f"{v['constraint']} at {v['where']}: {v['value']}"
                                                 for v in violations)),
            "violations": violations,
            "rule": self.model.limits.rule,
            "losses_kw": flow.losses_kw if flow.converged else None,
        } | ({"extremes": flow.extremes() if flow.converged else {}} if extremes else {})

    def answer_sequence(self, request: dict[str, Any]) -> dict[str, Any]:
        """Batched approval (docs/interfaces.md): the `intents` in order, each evaluated on the
        approval state `chain` plus every intent approved before it, exactly as one query per
        transaction would carry it. A refused intent, or one a storage account cannot serve (the
        market refuses it itself), is not applied and the next is evaluated without it: the
        market uses each answer only while its own decisions match (federates/amm/federate.py).
        With `"after_refusal": "stop"` the batch ends there instead. Local intents (settled
        without the grid) only add their trade. The committed state is restored once, after the
        batch (loads edited back and forth per intent would cost as much as the solves)."""
        chain = ApprovalChain.from_json(request["chain"])
        base_losses_kw = self._base_losses_kw()
        if chain.loss_kw is None:  # the window's first batch: PLoss_0 is the committed state's
            chain.loss_kw = base_losses_kw
        stop = request.get("after_refusal") == "stop"
        extremes = request.get("extremes", True) is not False  # a market that logs none
        if self.model.device is not self.committed_device:
            self.model.set_device(self.committed_device)
        answers: list[dict[str, Any]] = []
        edits = _IntentEdits(self.committed, chain)
        try:
            for raw in request.get("intents") or []:
                intent = Intent.from_json(raw)
                if intent.local:
                    edits.add_trade(intent.commit_kw or intent.trade_kw)
                    continue
                es_cont = chain.provisional(intent)
                if any(a.exceeded(es) for a, es in zip(chain.storage, es_cont, strict=True)):
                    answers.append({"id": intent.id, "stopped": "storage limit"})
                    if stop:
                        break
                    continue
                try:
                    self.model.update_injections(edits.of(intent.trade_kw, es_cont))
                    verdict = self._judge(self.model.solve(), extremes)
                except GridError as exc:
                    verdict = _refused(str(exc))
                answers.append({"id": intent.id} | verdict)
                if verdict["feasible"]:
                    edits.approve(intent, es_cont, verdict["losses_kw"])
                elif stop:
                    break
        finally:
            self.model.set_injections(self.committed)
        return {"answers": answers, "base_losses_kw": base_losses_kw}

    def _base_losses_kw(self) -> float | None:
        """PLoss_0: the losses of the committed window state, as its solve found them (every
        answer carries them, so a market needs no subscription to the grid: a value cycle
        market ⇄ grid makes HELICS re-send time requests between them without end)."""
        flow = self.committed_flow
        return flow.losses_kw if flow is not None and flow.converged else None

    def apply_control(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            setting = setting_from_json(request.get("device") if isinstance(request, dict) else None)
            if self.committed_device is None:
                raise DeviceError("this feeder has no controllable device (scenario grid.device)")
            self.model.set_device(setting)
            self.committed_device = setting
        except LemcosimError as exc:
            return {"accepted": False, "reason": f"{exc}; keeping the last valid setting"}
        return {"accepted": True, "reason": "", "device": setting.to_json()}


class _IntentEdits:
    """The injection edits of each intent of a batch, key by key, on top of the intent before
    (the approval state updated per intent, never rebuilt from every key): the keys whose value
    can differ are the intent's trade, the trade of the intent evaluated before, trades added to
    the chain since and the storage units'. Each value is the sum `ApprovalChain.injections` and
    `GridModel.set_injections(extra, base=committed)` make, in their order, and new injection
    elements are met in the order those would create them (the same circuit, the same floats)."""

    def __init__(self, committed: dict[str, tuple[float, float]], chain: ApprovalChain) -> None:
        self.committed, self.chain = committed, chain
        self._kw_per_kwh = 3600.0 / chain.dt_s
        self._touched: dict[str, None] = dict.fromkeys(chain.trades_kw)  # trades not yet edited
        self._last: tuple[str, ...] = ()  # the trade keys of the intent evaluated before

    def of(self, trade: dict[str, float], es_cont_kwh: list[float]) -> dict[str, tuple[float, float]]:
        """{BUS.PHASE: (p_kw, q_kvar)} to set for an intent with `trade` and storage `es_cont_kwh`."""
        keys = self._touched | dict.fromkeys(trade)
        storage = []
        for account, es in zip(self.chain.storage, es_cont_kwh, strict=True):
            p_kw = es * self._kw_per_kwh / len(account.keys)
            keys.update(dict.fromkeys(account.keys))
            storage.append((account.keys, p_kw))
        keys.update(dict.fromkeys(self._last))
        trades, committed = self.chain.trades_kw, self.committed
        out = {}
        for key in keys:
            p = trades.get(key, 0.0)
            if key in trade:
                p += trade[key]
            for account_keys, p_kw in storage:
                if key in account_keys:
                    p += p_kw
            base = committed.get(key)
            out[key] = (base[0] + p, base[1] + 0.0) if base is not None else (p, 0.0)
        self._touched, self._last = {}, tuple(trade)
        return out

    def add_trade(self, trade: dict[str, float]) -> None:
        self.chain.add_trade(trade)
        self._touched.update(dict.fromkeys(trade))

    def approve(self, intent: Intent, es_cont_kwh: list[float], losses_kw: float) -> None:
        self.chain.approve(intent, es_cont_kwh, losses_kw)
        self._touched.update(dict.fromkeys(intent.commit_kw if intent.commit_kw is not None
                                           else intent.trade_kw))
