"""Federation time convention: window w starts at T_w = w·Δt; market stages are sub-steps.

Sub-step k of window w sits at T_w + k·δ (δ = `substep_s`, default 1 ms). Producers act at k = 0
(prosumers publish positions and injections), the grid solves the window at k = 1 (an AMM opens its
pool alongside and sends its first batch of approvals, which the grid serves once that solve is
done), markets trade and publish from k = 2 on; a request/answer round trip with the grid costs
one sub-step (a request sent at a server's own sub-step is served after its step's work; a server
that advances time while serving is asked only after its step, `first_request_substep`).
Everything in a window must finish before T_{w+1}, which bounds a window to Δt/δ − 2 sub-steps
(899 998 by default).

The grid sends and publishes with an output delay ε (`SERVER_OUTPUT_DELAY_S`, HELICS
`output_delay`): what it sends at t reaches others at t + ε. The market asks for its first grant
at T_w + δ + ε, which HELICS may give while the grid still solves its step at T_w + δ, and the
batch it sends then is stamped after the grid's time: HELICS wakes the grid as soon as the batch
arrives. A batch stamped with the grid's own time T_w + δ woke it only once the market's next
time request had arrived too (two messages through the broker instead of one, ~0.3 ms more per
window on 2 cores; docs/performance.md).
"""

from __future__ import annotations

from dataclasses import dataclass

PROSUMER_SUBSTEP = 0
GRID_SUBSTEP = 1
MARKET_SUBSTEP = 2
CONTROLLER_SUBSTEP = MARKET_SUBSTEP  # the FSVR controller acts on the market's publications
# ε: far below any sub-step (runner/schema.py bounds δ), far above a double's resolution at a
# year's times (~4 ns at 3.2e7 s) and above HELICS' 1 ns
SERVER_OUTPUT_DELAY_S = 1e-6
MIN_SUBSTEP_S = 100 * SERVER_OUTPUT_DELAY_S


def first_request_substep(server_substep: int, serving_advances_time: bool) -> int:
    """The first sub-step at which a federate may send a server a request. One that arrives at
    the server's own sub-step is served after that step's work. But a server whose serving
    advances time (it asks others in turn: the FSVR controller's assist queries the grid) must
    not be asked inside its own step: it would request time from inside the step it was granted
    (the market, the controller and the grid then stalled, waiting on each other, in 1 run in 6 of
    ch5_ieee13_all_seller_fsvr on a loaded machine). Such a server is asked from the next."""
    return server_substep + 1 if serving_advances_time else server_substep


@dataclass(frozen=True)
class WindowClock:
    window_s: float
    windows: int
    substep_s: float = 1e-3

    def time_of(self, window: int, substep: int = 0) -> float:
        return window * self.window_s + substep * self.substep_s

    def next_substep_s(self, time_s: float) -> float:
        """The sub-step after the one `time_s` is in (a time just after a sub-step, such as
        T_w + δ + ε, is in it)."""
        window = self.window_of(time_s)
        return self.time_of(window, self.substep_of(time_s) + 1)

    @property
    def end_s(self) -> float:
        return self.windows * self.window_s

    def window_of(self, time_s: float) -> int:
        return min(int((time_s + 1e-9) // self.window_s), self.windows - 1)

    def substep_of(self, time_s: float) -> int:
        return int(round((time_s - self.window_of(time_s) * self.window_s) / self.substep_s))
