"""FSVR controller federate: voltage correction each window, or the chapter-4 study.

Correction mode: at T_w + 2δ it measures and picks A by the voltage-correction scheme, then sends
it to `{grid}/control`; the grid applies it from its next solve. `target: feeder` measures the
feeder with two power-flow queries (the setting in force, and a probe one level up on the
diagonal: each node's gain) and corrects the feeder's voltages; `target: device_output` reads
`{grid}/device_v_in` (solved at T_w + δ) and corrects the device output only. Answers of the grid
(accepted or why not) are read and logged one window later.
Study mode: in window 0 it runs the optimisers and loadability searches, one power-flow query
round trip to the grid per evaluated setting (one sub-step each), and logs the results.
"""

from __future__ import annotations

import itertools

import numpy as np

from lemcosim.federates.common import wire
from lemcosim.federates.common.app import FederateContext, FederateModel, FederateSettings
from lemcosim.federates.common.clock import CONTROLLER_SUBSTEP
from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.fsvr_controller.config import FsvrControllerConfig
from lemcosim.federates.fsvr_controller.correction import (
    FeederView,
    correct,
    correct_feeder,
    levels,
)
from lemcosim.federates.fsvr_controller.optimise import (
    Objective,
    Solver,
    Space,
    Summary,
    feasible_setting,
)
from lemcosim.federates.fsvr_controller.study import run_study
from lemcosim.federates.grid.devices import DeviceSetting
from lemcosim.federates.grid.vuf import vuf_pct


class FsvrControllerFederate(FederateModel):
    substep = CONTROLLER_SUBSTEP

    def __init__(self, settings: FederateSettings) -> None:
        self.name = settings.name
        self.config = FsvrControllerConfig.model_validate(settings.params)
        self.interruptible = self.config.mode == "assist"
        self.a_now = np.zeros((3, 3))  # the setting this controller last commanded (correction)

    def on_interrupt(self, ctx: FederateContext, window: int) -> None:
        for source, text, _ in ctx.receive(f"{self.name}/assist"):
            request = wire.decode(text)
            ctx.send(f"{self.name}/assist", source, self._assist(ctx, window, request))

    def on_window(self, ctx: FederateContext, window: int) -> None:
        if self.config.mode == "assist":
            return  # everything happens on request (on_interrupt)
        if self.config.mode == "study":
            if window == 0:
                self._study(ctx)
            return
        t, k = ctx.time_s, self.substep
        for _, text, _ in ctx.receive(f"{self.name}/ctl"):
            answer = wire.decode(text)
            ctx.log.record(t, window, str(answer.get("id")), "accepted",
                           1.0 if answer.get("accepted") else 0.0, "1/0", k)
            if answer.get("reason"):
                ctx.log.record(t, window, str(answer.get("id")), "reason", answer["reason"], "", k)
        if self.config.target == "feeder":
            a = self._correct_feeder(ctx)
            if a is None:
                return
        else:
            key = f"{self.config.grid}/device_v_in"
            if not ctx.updated(key):
                return
            data = ctx.read_json(key)
            v_in = np.asarray(data["re"], float) + 1j * np.asarray(data["im"], float)
            a, v_out = correct(v_in, self.config.v_nom_pu, self.config.vw1_over_vir)
            ctx.log.record(t, window, "device", "vuf_in_pct", float(vuf_pct(v_in)), "%", k)
            ctx.log.record(t, window, "device", "vuf_out_expected_pct", float(vuf_pct(v_out)),
                           "%", k)
        self.a_now = a
        ctx.send(f"{self.name}/ctl", f"{self.config.grid}/control",
                 {"id": f"w{window}", "device": {"kind": "fsvr", "alpha": a.ravel().tolist()}})
        ctx.log.record_many(ctx.time_s, window, {f"alpha_{p}{q + 1}": float(a["abc".index(p), q])
                                                 for p in "abc" for q in range(3)}, "alpha", "pu",
                            ctx.clock.substep_of(ctx.time_s))

    def _correct_feeder(self, ctx: FederateContext) -> np.ndarray | None:
        """Measure the feeder at the setting in force and one level up on the diagonal (two
        queries at the grid's load), then the scheme's A for it; None if a flow did not solve."""
        solve = self._query_solver(ctx, scale_load=False)
        w1 = self.config.vw1_over_vir
        now = solve(DeviceSetting("fsvr", alpha=self.a_now, vw1_over_vir=w1), 1.0)
        if not now.converged or now.device_v_in is None or now.phasors is None:
            return None
        step = np.where(np.diag(self.a_now) < levels(w1)[-1] - 1e-12, w1, -w1)
        probe = solve(DeviceSetting("fsvr", alpha=self.a_now + np.diag(step), vw1_over_vir=w1), 1.0)
        if not probe.converged or probe.phasors is None:
            return None
        view = FeederView.measured(now.node_names, now.phasors, probe.phasors,
                                   step * now.device_v_in)
        return correct_feeder(now.device_v_in, self.a_now, view, now.band_pu,
                              self.config.v_nom_pu, w1)

    # --- chapter-4 study through the grid's queries ---------------------------------------
    def _assist(self, ctx: FederateContext, window: int, request: dict) -> dict:
        """The FSVR setting at least loss + VUF that makes the request's injections feasible."""
        a = self.config.assist
        objective = Objective("weighted", w_loss_per_kw=a.w_loss_per_kw,
                              w_vuf_per_pct=a.w_vuf_per_pct, require_feasible=True)
        solver = self._query_solver(ctx, request.get("injections") or {}, scale_load=False)
        space = Space("fsvr", vw1_over_vir=self.config.vw1_over_vir)
        result = feasible_setting(solver, space, objective, a.iterations)
        found = result.summary.converged and result.summary.feasible
        answer = {"id": request.get("id"), "feasible": found, "flows": result.flows + 1,
                  "losses_kw": result.summary.losses_kw if found else None,
                  "extremes": result.summary.extremes,
                  "device": result.setting.to_json() if found else None}
        k = ctx.clock.substep_of(ctx.time_s)
        ctx.log.record(ctx.time_s, window, str(request.get("id")), "assist_feasible",
                       1.0 if found else 0.0, "1/0", k)
        ctx.log.record(ctx.time_s, window, str(request.get("id")), "assist_flows",
                       float(answer["flows"]), "count", k)
        return answer

    def _query_solver(self, ctx: FederateContext, injections: dict | None = None,
                      scale_load: bool = True) -> Solver:
        """Power flows by grid queries. scale_load: the solver's load multiplier is the feeder's
        absolute load level (studies, λ); otherwise it is ignored and the grid solves at its own
        level (assist and correction act on the window's real state)."""
        ids = itertools.count()

        def solve(setting: DeviceSetting | None, load_mult: float) -> Summary:
            request_id = f"s{next(ids)}"
            request: dict = {"id": request_id, "injections": injections or {}, "detail": True}
            if scale_load:
                request["load_mult"] = load_mult
            if setting is not None:
                request["device"] = setting.to_json()
            ctx.send(f"{self.name}/ctl", f"{self.config.grid}/query", request)
            ctx.advance_to(ctx.time_s + ctx.clock.substep_s)
            for _, text, _ in ctx.receive(f"{self.name}/ctl"):
                answer = wire.decode(text)
                if answer.get("id") == request_id:
                    return Summary.of_answer(answer)
            raise LemcosimError(f"{self.name}: grid {self.config.grid!r} did not answer query "
                                f"{request_id} within one sub-step")
        return solve

    def _study(self, ctx: FederateContext) -> None:
        for row in run_study(self._query_solver(ctx), self.config.study, self.config.vw1_over_vir):
            for entity, quantity, value, unit in row.records():
                ctx.log.record(ctx.time_s, 0, entity, quantity, value, unit)
            ctx.log.flush()
