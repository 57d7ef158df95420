"""An external FSVR controller that imports only helics and numpy (not lemcosim).

usage: python external_fsvr_controller.py RUN_DIR/federates/fsvr_controller.json

Run a scenario whose `fsvr_controller` section says `external: true` (for example
`lemcosim run configs/fsvr_external.yaml`); the runner prints this federate's config file and
waits for it. Each window, at T_w + 2δ, this program reads the FSVR's input phasors from
`grid/device_v_in`, applies the voltage-correction scheme — per output phase the row of nine-level
coefficients that brings (I + A)·V_in closest to a balanced nominal set, a row with more winding in
circuit only if it is closer by more than TOL_PU — and sends the setting to `grid/control`
(docs/interfaces.md). The grid applies it from its next solve.
"""

import itertools
import json
import sys

import helics as h
import numpy as np

A_OP = np.exp(2j * np.pi / 3)
LEVELS = np.arange(-4, 5) * 0.025  # V_w1/V_ir = 0.025: α ∈ {−0.10, …, +0.10}
ROWS = np.array(list(itertools.product(LEVELS, LEVELS, LEVELS)))  # 729 rows, the zero row too
TOL_PU = 1e-4  # smaller gains are not worth more winding (e.g. rows adding only V0)


def correction(v_in: np.ndarray) -> np.ndarray:
    """Per phase p the row minimising |V_out_p − V_ref_p| by exhaustive search; among rows within
    TOL_PU of the best, the least Σ|α| (so never worse than A = 0)."""
    v_pos = (v_in[0] + A_OP * v_in[1] + A_OP**2 * v_in[2]) / 3
    v_ref = v_pos / abs(v_pos) * np.array([1, A_OP**2, A_OP])
    error = np.abs(v_in[None, :] + (ROWS @ v_in)[:, None] - v_ref[None, :])  # (729, 3)
    size = np.abs(ROWS).sum(axis=1)
    rows = []
    for p in range(3):
        near = np.flatnonzero(error[:, p] <= error[:, p].min() + TOL_PU)
        rows.append(ROWS[near[np.lexsort((error[near, p], size[near]))[0]]])
    return np.array(rows)


def main(config_path: str) -> None:
    config = json.load(open(config_path))
    clock = config["lemcosim"]
    window_s, windows, delta = clock["window_s"], clock["windows"], clock["substep_s"]
    grid = config["lemcosim"]["params"]["grid"]
    fed = h.helicsCreateCombinationFederateFromConfig(config_path)
    h.helicsFederateEnterExecutingMode(fed)
    v_in_sub = h.helicsFederateGetInputByIndex(fed, 0)
    ctl = h.helicsFederateGetEndpointByIndex(fed, 0)
    for window in range(windows):
        h.helicsFederateRequestTime(fed, window * window_s + 2 * delta)
        while h.helicsEndpointHasMessage(ctl):
            answer = json.loads(h.helicsMessageGetString(h.helicsEndpointGetMessage(ctl)))
            print(f"window {window}: setting {answer['id']} accepted={answer['accepted']}")
        if not h.helicsInputIsUpdated(v_in_sub):
            continue
        data = json.loads(h.helicsInputGetString(v_in_sub))
        a = correction(np.asarray(data["re"]) + 1j * np.asarray(data["im"]))
        request = {"id": f"w{window}", "device": {"kind": "fsvr", "alpha": a.ravel().tolist()}}
        h.helicsEndpointSendBytesTo(ctl, json.dumps(request).encode(), f"{grid}/control")
    h.helicsFederateRequestTime(fed, windows * window_s)
    h.helicsFederateDisconnect(fed)
    h.helicsFederateFree(fed)


if __name__ == "__main__":
    main(sys.argv[1])
