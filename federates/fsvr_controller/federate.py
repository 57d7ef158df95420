"""FSVR controller federate: reads the device's input phasors, commands a new setting.

At T_w + 2δ it reads `{grid}/device_v_in` (solved at T_w + δ), picks A by the voltage-correction
scheme and sends it to `{grid}/control`; the grid applies it from its next solve. Answers of the
grid (accepted or why not) are read and logged one window later.
"""

from __future__ import annotations

import json

import numpy as np

from lemcosim.federates.common.app import FederateContext, FederateModel, FederateSettings
from lemcosim.federates.common.clock import MARKET_SUBSTEP
from lemcosim.federates.fsvr_controller.config import FsvrControllerConfig
from lemcosim.federates.fsvr_controller.correction import correct
from lemcosim.federates.grid.vuf import vuf_pct


class FsvrControllerFederate(FederateModel):
    substep = MARKET_SUBSTEP

    def __init__(self, settings: FederateSettings) -> None:
        self.name = settings.name
        self.config = FsvrControllerConfig.model_validate(settings.params)

    def on_window(self, ctx: FederateContext, window: int) -> None:
        t, k = ctx.time_s, self.substep
        for _, text, _ in ctx.receive(f"{self.name}/ctl"):
            answer = json.loads(text)
            ctx.log.record(t, window, str(answer.get("id")), "accepted",
                           1.0 if answer.get("accepted") else 0.0, "1/0", k)
            if answer.get("reason"):
                ctx.log.record(t, window, str(answer.get("id")), "reason", answer["reason"], "", k)
        key = f"{self.config.grid}/device_v_in"
        if not ctx.updated(key):
            return
        data = ctx.read_json(key)
        v_in = np.asarray(data["re"], float) + 1j * np.asarray(data["im"], float)
        a, v_out = correct(v_in, self.config.v_nom_pu, self.config.vw1_over_vir)
        ctx.send(f"{self.name}/ctl", f"{self.config.grid}/control",
                 {"id": f"w{window}", "device": {"kind": "fsvr", "alpha": a.ravel().tolist()}})
        ctx.log.record_many(t, window, {f"alpha_{p}{q + 1}": float(a["abc".index(p), q])
                                        for p in "abc" for q in range(3)}, "alpha", "pu", k)
        ctx.log.record(t, window, "device", "vuf_in_pct", float(vuf_pct(v_in)), "%", k)
        ctx.log.record(t, window, "device", "vuf_out_expected_pct", float(vuf_pct(v_out)), "%", k)
