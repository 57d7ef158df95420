"""The one HELICS time loop every lemcosim federate runs.

A federate is started as `python -m lemcosim.federates.<type> CONFIG.json`. CONFIG.json is a plain
HELICS federate config (name, core, publications, subscriptions, endpoints) plus a `lemcosim`
section with the run folder, the window clock and the federate's parameters. The model object only
sees a `FederateContext`; this module owns every HELICS call about time, start-up and shutdown.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import time
import traceback
import types
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lemcosim.federates.common import checkpoint, wire
from lemcosim.federates.common.clock import WindowClock
from lemcosim.federates.common.errors import LemcosimError
from lemcosim.federates.common.heartbeat import Heartbeat, read_beat
from lemcosim.federates.common.tidylog import TidyLog

_TIME_EPS_S = 1e-7


@dataclass
class FederateSettings:
    """The `lemcosim` section of a composed federate config."""

    name: str
    type: str
    run_dir: Path
    clock: WindowClock
    start: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict[str, Any], config_path: Path) -> FederateSettings:
        try:
            section = config["lemcosim"]
            return cls(
                name=config["name"],
                type=section["type"],
                run_dir=Path(section["run_dir"]),
                clock=WindowClock(
                    window_s=float(section["window_s"]),
                    windows=int(section["windows"]),
                    substep_s=float(section.get("substep_s", 1e-3)),
                ),
                start=str(section.get("start", "")),
                params=dict(section.get("params", {})),
            )
        except KeyError as exc:
            raise LemcosimError(f"{config_path}: federate config lacks key {exc}") from None


class FederateModel:
    """Base of every federate's adapter: override what the federate needs.

    `substep` is where in each window the model acts (see clock.py). An `interruptible` model is
    woken by every value or message that reaches it between its own steps (`on_interrupt`).
    """

    substep: int = 0
    interruptible: bool = False

    def step_time_s(self, clock: WindowClock, window: int) -> float:
        """When in `window` the model acts: T_w + substep·δ unless it says otherwise."""
        return clock.time_of(window, self.substep)

    def setup(self, ctx: FederateContext) -> None:
        """Called once in executing mode, before the first window."""

    def on_window(self, ctx: FederateContext, window: int) -> None:
        """Called once per window at T_w + substep·δ."""

    def on_interrupt(self, ctx: FederateContext, window: int) -> None:
        """Called when a value or message arrives before the next own step (interruptible only)."""

    resumable = True  # False: never checkpointed (a run with it cannot be resumed)

    def checkpoint_state(self) -> Any:
        """What `restore_state` needs to continue after a window (`lemcosim run --resume`):
        by default every attribute but imported modules; models holding live handles
        (processes, solvers) override both methods."""
        return {k: v for k, v in vars(self).items() if not isinstance(v, types.ModuleType)}

    def restore_state(self, state: Any) -> None:
        vars(self).update(state)

    def finish(self, ctx: FederateContext) -> None:
        """Called once after the last window."""


class FederateContext:
    """What a model may do with HELICS: read, publish, send, receive, advance time, log."""

    def __init__(self, fed: Any, settings: FederateSettings, log: TidyLog) -> None:
        import helics as h

        self._h = h
        self.fed = fed
        self.settings = settings
        self.clock = settings.clock
        self.log = log
        self.heartbeat = Heartbeat(settings.run_dir / "logs" / f"{settings.name}.heartbeat")
        self.time_s = 0.0
        # last values of inputs a resumed run restored (HELICS holds none of its earlier run)
        self.restored_inputs: dict[str, str] = {}
        # (boundary time, action): run once when first granted a time ≥ boundary, before
        # anything at that time is handled (the window-boundary checkpoint)
        self.at_boundary: tuple[float, Callable[[], None]] | None = None
        # per-window counters (seconds waiting in HELICS, time requests, messages; models add
        # their own): logged per window with LEMCOSIM_PROFILE=1 (benchmarks/cosim.py)
        self.stats: defaultdict[str, float] = defaultdict(float)
        self._deferred: list[Callable[[], None]] = []  # see `defer`
        self.publications = {
            h.helicsPublicationGetName(p): p
            for p in (
                h.helicsFederateGetPublicationByIndex(fed, i)
                for i in range(h.helicsFederateGetPublicationCount(fed))
            )
        }
        self.inputs = {
            h.helicsInputGetTarget(i): i
            for i in (
                h.helicsFederateGetInputByIndex(fed, j)
                for j in range(h.helicsFederateGetInputCount(fed))
            )
        }
        self.endpoints = {
            h.helicsEndpointGetName(e): e
            for e in (
                h.helicsFederateGetEndpointByIndex(fed, k)
                for k in range(h.helicsFederateGetEndpointCount(fed))
            )
        }

    @property
    def window(self) -> int:
        return self.clock.window_of(self.time_s)

    def publish(self, key: str, value: Any) -> None:
        pub = self._lookup(self.publications, key, "publication")
        if isinstance(value, str):
            self._h.helicsPublicationPublishString(pub, value)
        elif isinstance(value, (int, float)):
            self._h.helicsPublicationPublishDouble(pub, float(value))
        else:
            self._h.helicsPublicationPublishString(pub, wire.encode_text(value))

    def updated(self, key: str) -> bool:
        return bool(self._h.helicsInputIsUpdated(self._lookup(self.inputs, key, "subscription")))

    def read_string(self, key: str) -> str:
        ipt = self._lookup(self.inputs, key, "subscription")
        saved = self._restored(key, ipt)
        return saved if saved is not None else _input_string(self._h, ipt)

    def read_double(self, key: str) -> float:
        """A double publication as sent (read as a string, HELICS would round it to six
        decimals: 112.34567890123456 becomes '112.345679')."""
        ipt = self._lookup(self.inputs, key, "subscription")
        saved = self._restored(key, ipt)
        return float(saved) if saved is not None else float(self._h.helicsInputGetDouble(ipt))

    def _restored(self, key: str, ipt: Any) -> str | None:
        """The checkpointed value of an input this federation has not published anew since."""
        if key in self.restored_inputs and not self._h.helicsInputIsUpdated(ipt):
            return self.restored_inputs[key]
        self.restored_inputs.pop(key, None)
        return None

    def input_snapshot(self) -> dict[str, str]:
        """The last value of every input not updated since last read (for a checkpoint; reading
        an updated one would clear its flag before the model sees it). Doubles keep every digit."""
        snapshot = dict(self.restored_inputs)
        for key, ipt in self.inputs.items():
            if not self._h.helicsInputIsUpdated(ipt):
                snapshot[key] = (repr(self._h.helicsInputGetDouble(ipt))
                                 if self._h.helicsInputGetPublicationType(ipt) == "double"
                                 else _input_string(self._h, ipt))
        return snapshot

    def read_json(self, key: str) -> Any | None:
        """The latest value of a JSON subscription, or None if nothing was published yet."""
        text = self.read_string(key)
        if not text:
            return None
        try:
            return wire.decode(text)
        except json.JSONDecodeError:
            raise LemcosimError(
                f"{self.settings.name}: subscription {key!r} carries no JSON: {text[:80]!r}"
            ) from None

    def send(self, endpoint: str, destination: str, payload: Any) -> None:
        ep = self._lookup(self.endpoints, endpoint, "endpoint")
        data = payload.encode() if isinstance(payload, str) else wire.encode(payload)
        self._h.helicsEndpointSendBytesTo(ep, data, destination)
        self.stats["messages_sent"] += 1
        self.stats["bytes_sent"] += len(data)

    def receive(self, endpoint: str) -> list[tuple[str, str, float]]:
        """Every pending message on an endpoint as (source, text, time_s)."""
        ep = self._lookup(self.endpoints, endpoint, "endpoint")
        out = []
        while self._h.helicsEndpointHasMessage(ep):
            msg = self._h.helicsEndpointGetMessage(ep)
            out.append(
                (
                    self._h.helicsMessageGetOriginalSource(msg),
                    self._h.helicsMessageGetString(msg),
                    self._h.helicsMessageGetTime(msg),
                )
            )
            self._h.helicsMessageFree(msg)  # the federate keeps every message until freed
        self.stats["messages_received"] += len(out)
        self.stats["bytes_received"] += sum(len(text) for _, text, _ in out)  # characters
        return out

    def defer(self, work: Callable[[], None]) -> None:
        """Run `work` while the next time request waits for its grant, off the federation's
        critical path: computing and logging only, no HELICS call (inputs read before)."""
        self._deferred.append(work)

    def run_deferred(self) -> None:
        work, self._deferred = self._deferred, []
        for job in work:
            job()

    def advance_to(
        self, target_s: float, on_interrupt: Callable[[FederateContext], None] | None = None
    ) -> float:
        """Request `target_s`; early grants (values/messages arriving) go to `on_interrupt`."""
        while self.time_s < target_s - _TIME_EPS_S:
            self.heartbeat.requesting(target_s)  # the runner's fault attribution reads these
            started = time.perf_counter()
            if self._deferred:
                self._h.helicsFederateRequestTimeAsync(self.fed, target_s)
                self.run_deferred()
                self.heartbeat.requesting(target_s)  # waiting from now: the runner's stall watch
                self.stats["deferred_s"] += time.perf_counter() - started
                started = time.perf_counter()
                self.time_s = self._h.helicsFederateRequestTimeComplete(self.fed)
            else:
                self.time_s = self._h.helicsFederateRequestTime(self.fed, target_s)
            self.stats["helics_wait_s"] += time.perf_counter() - started
            self.stats["time_requests"] += 1
            self.heartbeat.granted(self.time_s)
            if self.at_boundary is not None and self.time_s >= self.at_boundary[0] - _TIME_EPS_S:
                action, self.at_boundary = self.at_boundary[1], None
                action()
            if self.time_s < target_s - _TIME_EPS_S and on_interrupt is not None:
                on_interrupt(self)
        return self.time_s

    def advance_substep(self, window: int, substep: int) -> float:
        return self.advance_to(self.clock.time_of(window, substep))

    def _lookup(self, table: dict[str, Any], key: str, kind: str) -> Any:
        try:
            return table[key]
        except KeyError:
            raise LemcosimError(
                f"{self.settings.name}: no {kind} {key!r} in its HELICS config "
                f"(known: {', '.join(sorted(table)) or 'none'})"
            ) from None


def run_federate(config_path: str | Path, make_model: Callable[[FederateSettings], FederateModel]) -> int:
    """Run one federate to the end of the scenario; returns the process exit code."""
    import helics as h

    config_path = Path(config_path)
    config = json.loads(config_path.read_text())
    settings = FederateSettings.from_config(config, config_path)
    log = TidyLog(settings.run_dir / "logs", settings.name,
                  flush_every_windows=int(config["lemcosim"].get("log_flush_windows", 1)))
    checkpoint_every = int(config["lemcosim"].get("checkpoint_windows", 0))
    resume_after = config["lemcosim"].get("resume_after")  # last window of the run resumed
    if resume_after is not None:
        log.truncate_at(settings.clock.time_of(resume_after + 1, 0))
    fed = None
    try:
        model = make_model(settings)
        fed = _register(h, config_path, settings.name)
        h.helicsFederateEnterExecutingMode(fed)
        pace = _Pace.of(h, fed, settings.name, settings.clock, settings.run_dir / "logs")
        ctx = FederateContext(fed, settings, log)
        log.mark_progress(-1, "connected")
        model.setup(ctx)
        first = 0
        if resume_after is not None:  # set-up rows are in the log already; the state is restored
            log.discard()
            saved = checkpoint.load(log.logs_dir, settings.name, resume_after)
            model.restore_state(saved["model"])
            ctx.restored_inputs = saved["inputs"]
            first = resume_after + 1
            if pace is not None:
                pace.first_window = first
        log.flush()
        _spare_collections()
        interrupt = _interrupt_handler(model) if model.interruptible else None
        profile = bool(os.environ.get("LEMCOSIM_PROFILE"))
        mark = time.perf_counter()
        for window in range(first, settings.clock.windows):
            if checkpoint_every and model.resumable and window > first and window % checkpoint_every == 0:
                ctx.at_boundary = (settings.clock.time_of(window), _checkpoint(ctx, model, window - 1))
            if pace is not None:
                ctx.heartbeat.pacing(model.step_time_s(settings.clock, window))
                pace.wait_for(window, ctx.stats)
            ctx.advance_to(model.step_time_s(settings.clock, window), interrupt)
            model.on_window(ctx, window)
            if profile:  # since the last mark: the previous window's log write, then this window
                now = time.perf_counter()
                _profile(ctx, window, now - mark)
                mark = now
            # hands the rows to the log's writer thread, after the window's deferred rows
            ctx.defer(_end_window(ctx, window))
        ctx.advance_to(settings.clock.end_s, interrupt)
        ctx.run_deferred()
        model.finish(ctx)
        log.close()
        log.mark_progress(settings.clock.windows - 1, "done")
        h.helicsFederateDisconnect(fed)
        h.helicsFederateFree(fed)
        return 0
    except Exception as exc:  # noqa: BLE001 - every failure must reach the runner with its reason
        with contextlib.suppress(LemcosimError):  # a failed log writer: `exc` reported it already
            log.close()
        reason = str(exc) if isinstance(exc, LemcosimError) else traceback.format_exc()
        (settings.run_dir / "logs" / f"{settings.name}.error").write_text(reason)
        print(f"federate {settings.name} failed: {exc}", file=sys.stderr)
        if fed is not None:
            try:
                h.helicsFederateGlobalError(fed, -1, f"{settings.name}: {exc}"[:500])
                h.helicsFederateFree(fed)
            except Exception:  # noqa: BLE001 - the federation may already be gone
                pass
        return 1


# A market window at 6,000 prosumers allocates ~10^5 containers (log rows, results, intents),
# nearly all freed by reference counting; with CPython's defaults a young collection runs every
# 700 allocations and older ones rescan the survivors. With these thresholds a January-night window
# there costs the market 96 ms of work instead of 143 (benchmarks/cosim.py --prosumers 6000);
# cycles are still collected, only less often.
GC_THRESHOLDS = (20_000, 10, 10)


def _spare_collections() -> None:
    """Collect cycles less often from the first window on (`GC_THRESHOLDS`). Freezing set-up's
    objects out of collections as well (`gc.freeze`) gained nothing measurable."""
    gc.set_threshold(*GC_THRESHOLDS)


# HELICS gives up on a broker after ~20 s; a loaded machine has failed a first registration
# ("unable to register federate") with the broker up. Registration is idempotent until it succeeds.
_REGISTER_ATTEMPTS = 3


def _input_string(h: Any, ipt: Any) -> str:
    """`helicsInputGetString` with a buffer of the one C type `char[]`: the binding's own asks cffi
    for a new type `char[N]` per length N, which cffi parses (~0.1 ms) and keeps for good, so a
    JSON input whose length changes every window costs a parse per read and memory per length."""
    ffi = h.capi.ffi
    size = h.helicsInputGetStringSize(ipt) + 1
    buffer, length = ffi.new("char[]", size), ffi.new("int[1]")
    err = h.helicsErrorInitialize()
    h.capi.loadSym("helicsInputGetString")(ipt.handle, buffer, size, length, err)
    if err.error_code != 0:
        raise h.HelicsException(f"[{err.error_code}] {ffi.string(err.message).decode()}")
    return ffi.string(buffer, maxlen=length[0]).decode()


def _register(h: Any, config_path: Path, name: str) -> Any:
    for attempt in range(1, _REGISTER_ATTEMPTS):
        try:
            return h.helicsCreateCombinationFederateFromConfig(str(config_path))
        except h.HelicsException as exc:
            if "register" not in str(exc):
                raise
            print(f"federate {name}: registration attempt {attempt} failed ({exc}); retrying",
                  file=sys.stderr)
            time.sleep(0.5 * attempt)
    return h.helicsCreateCombinationFederateFromConfig(str(config_path))


def _end_window(ctx: FederateContext, window: int) -> Callable[[], None]:
    def end() -> None:
        started = time.perf_counter()
        ctx.log.end_window(window)
        ctx.stats["io_s"] += time.perf_counter() - started
    return end


def _checkpoint(ctx: FederateContext, model: FederateModel, window: int) -> Callable[[], None]:
    """Save the state after `window`: called at the first grant in the next window, before
    anything of that window is handled, so the interrupts that closed `window` are in it. The
    state is pickled here; the log's writer thread writes it once every row logged before the
    boundary survives a kill (a checkpoint agrees with the log), off the federation's path: with
    the wait for the writer and the fsync in the federate's thread a checkpoint of 0.3 MB held it
    4.3 ms (median; up to 17 ms), now 0.2 ms."""
    def save() -> None:
        logs_dir, name = ctx.log.logs_dir, ctx.settings.name
        payload = checkpoint.dumps({"model": model.checkpoint_state(),
                                    "inputs": ctx.input_snapshot()})
        ctx.log.flush_then(lambda: checkpoint.write(logs_dir, name, window, payload),
                           checkpoint.path_of(logs_dir, name, window))

    return save


def _profile(ctx: FederateContext, window: int, wall_s: float) -> None:
    """One row per counter (entity `profile`): the window's wall time, its HELICS wait, I/O and
    the rest (own work), time requests, messages, model counters, and the process's RSS."""
    stats = dict(ctx.stats) | {"wall_s": wall_s, "rss_mb": _rss_mb()}
    stats["work_s"] = (wall_s - stats.get("helics_wait_s", 0.0) - stats.get("io_s", 0.0)
                       - stats.get("pace_wait_s", 0.0))
    for quantity, value in stats.items():
        ctx.log.record(ctx.time_s, window, "profile", quantity, float(value),
                       "s" if quantity.endswith("_s") else "MB" if quantity == "rss_mb" else "count")
    ctx.stats.clear()


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Pace:
    """Keeps a federate that nothing feeds (no inputs, no endpoints) at most two windows ahead of
    the federates that read its publications: HELICS would grant it every time it asks for at
    once, and its publications would pile up in their queues (memory growing with the run).

    Before it asks for window w it waits until every dependent was granted T_{w−2}. Not a time
    dependency: that would close a cycle through the market ⇄ grid round trips and slow each of
    them several times (benchmarks/cosim.py); the lag of two windows lets a dependent finish
    window w − 1 with this federate's data in hand. A dependent's granted time is read from its
    heartbeat file (`logs/NAME.heartbeat`, written at every grant: no HELICS traffic); one
    without a readable heartbeat (not a lemcosim federate, or on another host) is asked through
    a HELICS `global_time` query, which the broker and every core must answer."""

    _LAG_WINDOWS = 2
    _MAX_SLEEP_S = 0.02

    def __init__(self, h: Any, fed: Any, name: str, clock: WindowClock,
                 logs_dir: Path | None = None) -> None:
        self._h, self._fed, self._clock = h, fed, clock
        self.first_window = 0  # the window a (resumed) run starts at
        self._query = h.helicsCreateQuery("root", "global_time")
        query = h.helicsCreateQuery(name, "dependents")
        try:
            dependents = h.helicsQueryExecute(query, fed)
        finally:
            h.helicsQueryFree(query)
        self._ids = {int(i) for i in dependents} if isinstance(dependents, list) else set()
        # id → heartbeat file of each dependent, by the names the broker knows them by
        self._heartbeats: dict[int, Path] = {}
        if logs_dir is not None and self._ids:
            for f in _federates(h.helicsQueryExecute(self._query, fed)):
                attributes = f.get("attributes", {})
                if int(attributes.get("id", -1)) in self._ids and attributes.get("name"):
                    self._heartbeats[int(attributes["id"])] = logs_dir / f"{attributes['name']}.heartbeat"

    @classmethod
    def of(cls, h: Any, fed: Any, name: str, clock: WindowClock,
           logs_dir: Path | None = None) -> _Pace | None:
        if h.helicsFederateGetInputCount(fed) or h.helicsFederateGetEndpointCount(fed):
            return None
        pace = cls(h, fed, name, clock, logs_dir)
        return pace if pace._ids else None

    def wait_for(self, window: int, stats: defaultdict[str, float]) -> None:
        if window < self.first_window + self._LAG_WINDOWS:  # its dependents start there too
            return
        floor = self._clock.time_of(window - self._LAG_WINDOWS) - _TIME_EPS_S
        started, sleep = time.perf_counter(), 5e-4
        while (slowest := self._slowest(floor)) is not None and slowest < floor:
            time.sleep(sleep)
            sleep = min(2 * sleep, self._MAX_SLEEP_S)
        stats["pace_wait_s"] += time.perf_counter() - started
        if slowest is not None:  # how far ahead of the slowest reader it goes on
            stats["pace_lead_windows"] = window - self._clock.window_of(slowest)

    def _slowest(self, floor: float) -> float | None:
        """The lowest granted time among the dependents still connected (None: none left), from
        their heartbeats while each reads at least `floor` or shows it below; from HELICS when a
        heartbeat cannot tell."""
        times = []
        for path in self._heartbeats.values():
            beat = read_beat(path)
            if beat is None:
                break
            times.append(beat.granted_s)
        else:
            if len(self._heartbeats) == len(self._ids):
                return min(times)
            if times and min(times) < floor:  # one heartbeat already says: wait
                return min(times)
        times = [f.get("granted_time", 0.0)
                 for f in _federates(self._h.helicsQueryExecute(self._query, self._fed))
                 if int(f.get("attributes", {}).get("id", -1)) in self._ids]
        return min(times) if times else None


def _federates(tree: Any) -> list[dict]:
    """Every federate entry of a `global_time` answer (brokers hold cores, cores federates)."""
    if not isinstance(tree, dict):
        return []
    return list(tree.get("federates", [])) + [
        f for child in tree.get("brokers", []) + tree.get("cores", []) for f in _federates(child)]


def _interrupt_handler(model: FederateModel) -> Callable[[FederateContext], None]:
    def handle(ctx: FederateContext) -> None:
        # its rows join the window's batch: one write per window, not one per request
        model.on_interrupt(ctx, ctx.window)

    return handle


def main(make_model: Callable[[FederateSettings], FederateModel]) -> None:
    """Entry point of every federate's `__main__`: `python -m lemcosim.federates.X CONFIG`."""
    if len(sys.argv) != 2:
        print(f"usage: python -m {sys.argv[0]} CONFIG.json", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(run_federate(sys.argv[1], make_model))
