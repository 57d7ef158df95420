"""What writing and reading a market round trip's JSON costs: Python's json against
federates/common/wire.py (orjson), on a real batch and its real answer.

usage: python benchmarks/wire.py [NETWORK] [--intents N] [--repeat K]

The batch is what the AMM federate sends: the approval chain and the intents a fork of the
window lists for the first N transactions of benchmarks/amm.py's population (real AmmWindow);
the answer is the grid service's (real OpenDSS) to that batch. Printed: each message's size, the
time per write and read with json and with wire, their ratio (json / wire), and whether every
value read back equals the one written (floats bit for bit).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from amm import market, transactions  # noqa: E402

from lemcosim.federates.common import wire  # noqa: E402


def batch(network: str, n: int) -> tuple[dict, dict]:
    """(request, answer) of one batched approval of the first `n` transactions' intents."""
    grid, window = market(network, approve=lambda injections: {})  # the fork asks no one
    fork = window.fork()
    for tx in transactions(network, n):
        fork.transact(tx)
    request = {"id": "amm-1", "chain": window.chain().to_json(),
               "intents": [i.to_json() for i in fork.intent_log], "after_refusal": "continue",
               "extremes": False}
    return request, grid.answer_sequence(request) | {"id": "amm-1"}


def per_call_s(work: Callable[[], Any], repeat: int) -> float:
    """The fastest of five runs of `repeat` calls, per call (the least disturbed by others)."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            work()
        best = min(best, time.perf_counter() - start)
    return best / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", nargs="?", default="ieee13")
    parser.add_argument("--intents", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=500)
    args = parser.parse_args()
    request, answer = batch(args.network, args.intents)
    print(f"{args.network}: a batch of {len(request['intents'])} intents and its answer "
          f"({sum(a.get('feasible', False) for a in answer['answers'])} approved)")
    for name, value in (("request", request), ("answer", answer)):
        text = json.dumps(value)
        data = wire.encode(value)
        wired = data.decode()  # text, as a federate receives it
        exact = wire.decode(data) == value == json.loads(text)
        write_json = per_call_s(lambda v=value: json.dumps(v).encode(), args.repeat)
        write_wire = per_call_s(lambda v=value: wire.encode(v), args.repeat)
        read_json = per_call_s(lambda t=text: json.loads(t), args.repeat)
        read_wire = per_call_s(lambda t=wired: wire.decode(t), args.repeat)
        print(f"  {name:8s} {len(data) / 1e3:5.1f} kB (json {len(text) / 1e3:5.1f} kB): write "
              f"json {write_json * 1e6:6.1f} µs, wire {write_wire * 1e6:5.1f} µs "
              f"({write_json / write_wire:4.1f}x); read json {read_json * 1e6:6.1f} µs, wire "
              f"{read_wire * 1e6:5.1f} µs ({read_json / read_wire:4.1f}x); read back equal: "
              f"{'yes' if exact else 'NO'}")


if __name__ == "__main__":
    main()
