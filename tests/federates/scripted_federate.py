"""A researcher's own federate, written against HELICS only (no lemcosim import).

usage: scripted_federate.py CONFIG.json [--fail-at-window N] [--sleep-per-window S]
                            [--ignore-sigterm]
Reads its window clock from the composed config, publishes a counter on its first publication,
and raises at window N if asked: the runner must then stop the federation and name it.
"""

import json
import signal
import sys
import time

import helics as h

config_path = sys.argv[1]


def option(flag: str, default: float) -> float:
    return float(sys.argv[sys.argv.index(flag) + 1]) if flag in sys.argv else default


fail_at = int(option("--fail-at-window", -1))
sleep_s = option("--sleep-per-window", 0.0)
config = json.load(open(config_path))
if "--ignore-sigterm" in sys.argv:  # a federate that must be killed (runner cleanup tests)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
clock = config["lemcosim"]
window_s, windows = clock["window_s"], clock["windows"]

fed = h.helicsCreateCombinationFederateFromConfig(config_path)
h.helicsFederateEnterExecutingMode(fed)
pubs = [h.helicsFederateGetPublicationByIndex(fed, i)
        for i in range(h.helicsFederateGetPublicationCount(fed))]
inputs = [h.helicsFederateGetInputByIndex(fed, i) for i in range(h.helicsFederateGetInputCount(fed))]
seen = 0
for window in range(windows):
    t = window * window_s + 0.5  # between the producers (T_w) and the window's end
    h.helicsFederateRequestTime(fed, t)
    if window == fail_at:
        raise RuntimeError(f"scripted failure at window {window}")
    time.sleep(sleep_s)
    for pub in pubs:
        h.helicsPublicationPublishDouble(pub, float(window))
    seen += sum(1 for i in inputs if h.helicsInputIsUpdated(i) and h.helicsInputGetString(i))
h.helicsFederateRequestTime(fed, windows * window_s)
h.helicsFederateDisconnect(fed)
h.helicsFederateFree(fed)
print(f"windows={windows} updates_seen={seen}")
