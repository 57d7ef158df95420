"""A market-like federate written against HELICS only: asks the grid federate each window.

usage: query_client.py CONFIG.json ANSWERS.json
At T_w + 2δ it sends a power-flow query (window w: w·200 kW of extra load at 652.a) to
`grid/query`; in window 1 it also sends a bad FSVR setting to `grid/control`. It collects every
answer at T_w + 3δ and writes them all to ANSWERS.json at the end.
"""

import json
import sys

import helics as h

config_path, answers_path = sys.argv[1], sys.argv[2]
config = json.load(open(config_path))
clock = config["lemcosim"]
window_s, windows, delta = clock["window_s"], clock["windows"], clock["substep_s"]

fed = h.helicsCreateCombinationFederateFromConfig(config_path)
h.helicsFederateEnterExecutingMode(fed)
ep = h.helicsFederateGetEndpointByIndex(fed, 0)
answers = []
for w in range(windows):
    h.helicsFederateRequestTime(fed, w * window_s + 2 * delta)
    query = {"id": f"q{w}", "injections": {"652.a": [-200.0 * w, 0.0]}}
    h.helicsEndpointSendBytesTo(ep, json.dumps(query).encode(), "grid/query")
    if w == 1:
        control = {"id": "c1", "device": {"kind": "fsvr", "alpha": [0.03] + [0] * 8}}
        h.helicsEndpointSendBytesTo(ep, json.dumps(control).encode(), "grid/control")
    h.helicsFederateRequestTime(fed, w * window_s + 3 * delta)
    while h.helicsEndpointHasMessage(ep):
        msg = h.helicsEndpointGetMessage(ep)
        answers.append({"window": w, "time": h.helicsMessageGetTime(msg),
                        "answer": json.loads(h.helicsMessageGetString(msg))})
h.helicsFederateRequestTime(fed, windows * window_s)
json.dump(answers, open(answers_path, "w"))
h.helicsFederateDisconnect(fed)
h.helicsFederateFree(fed)
