"""A lemcosim federate that freezes once, as HELICS freezes a stalled federation.

usage: stalling_federate.py CONFIG.json STALL_AT_WINDOW [--always]
It publishes its window number on its first publication at T_w. In window STALL_AT_WINDOW, the
first time only (a marker file in the run folder) or every time (--always), it marks itself
waiting in a time request and then waits for ever without asking HELICS: every other federate
waits for it, and the runner sees what it sees in a HELICS stall (every heartbeat requesting,
none changing).
"""

import sys
import time
from pathlib import Path

from lemcosim.federates.common.app import FederateContext, FederateModel, run_federate


class Stalling(FederateModel):
    def __init__(self, stall_at: int, always: bool) -> None:
        self.stall_at = stall_at
        self.always = always

    def on_window(self, ctx: FederateContext, window: int) -> None:
        marker = Path(ctx.settings.run_dir) / f"{ctx.settings.name}.stalled_once"
        if window == self.stall_at and (self.always or not marker.exists()):
            marker.write_text(str(window))
            ctx.heartbeat.requesting(ctx.clock.time_of(window + 1))
            time.sleep(3600)
        key = next(iter(ctx.publications))
        ctx.publish(key, float(window))


if __name__ == "__main__":
    sys.exit(run_federate(sys.argv[1], lambda settings: Stalling(int(sys.argv[2]),
                                                              "--always" in sys.argv)))
