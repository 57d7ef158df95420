"""Network (our format) → OpenDSS circuit through opendssdirect.py; or compile a user's .dss file.

OpenDSS is a process-wide engine: one circuit at a time. The builder emits plain OpenDSS commands,
so `commands_for(network)` is also a readable export of what is solved.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from lemcosim.networks.loader import NetworkError
from lemcosim.networks.model import Network

NODE = {"a": 1, "b": 2, "c": 3}
LOAD_MODEL = {"pq": 1, "z": 2, "i": 5, "linear_p_quadratic_q": 4}
RegulatorMode = Literal["published", "off", "control"]


def dss():
    import opendssdirect

    return opendssdirect


def nodes(bus: str, phases: str) -> str:
    return bus + "".join(f".{NODE[p]}" for p in phases)


def run(commands: list[str], context: str) -> None:
    """Run OpenDSS commands; an OpenDSS error becomes a NetworkError quoting OpenDSS's message."""
    engine = dss()
    for command in commands:
        try:
            engine.Text.Command(command)
        except Exception as exc:  # noqa: BLE001 - the DSS engine raises its own exception types
            raise NetworkError(f"{context}: OpenDSS rejected `{command[:120]}`: {exc}") from None


def _tri(matrix: list[list[float]]) -> str:
    return "[" + " | ".join(" ".join(f"{v:.10g}" for v in row) for row in matrix) + "]"


def branch_commands(net: Network, regulators: RegulatorMode = "published") -> list[str]:
    """Everything up to (not including) loads and capacitors, whose kV come from bus bases."""
    s = net.source
    strength = (f"mvasc3={s.mvasc3} mvasc1={s.mvasc1 or s.mvasc3}" if s.mvasc3 is not None else
                f"r1={s.r1_ohm or 0} x1={s.x1_ohm} r0={s.r0_ohm if s.r0_ohm is not None else s.r1_ohm or 0}"
                f" x0={s.x0_ohm if s.x0_ohm is not None else s.x1_ohm}")
    cmds = ["clear", f"set defaultbasefrequency={net.frequency_hz}",
            f"new circuit.{net.name} basekv={s.kv} pu={s.pu} angle={s.angle_deg} phases=3 "
            f"bus1={s.bus} {strength}"]
    for name, code in net.linecodes.items():
        if code.r_ohm is not None:
            text = (f"new linecode.{name} nphases={code.size} units={code.units} "
                    f"rmatrix={_tri(code.r_ohm)} xmatrix={_tri(code.x_ohm)}")
            if code.c_nf is not None:
                text += f" cmatrix={_tri(code.c_nf)}"
        else:
            text = (f"new linecode.{name} nphases=3 units={code.units} r1={code.r1_ohm} "
                    f"x1={code.x1_ohm} r0={_or(code.r0_ohm, code.r1_ohm)} "
                    f"x0={_or(code.x0_ohm, code.x1_ohm)} c1={code.c1_nf or 0} c0={code.c0_nf or 0}")
        if code.normamps is not None:
            text += f" normamps={code.normamps}"
        cmds.append(text)
    for tr in net.transformers:
        text = (f"new transformer.{tr.name} phases={tr.phases} windings={len(tr.windings)} "
                f"xhl={tr.x_pct} %noloadloss={tr.noloadloss_pct} %imag={tr.imag_pct}")
        if tr.x_ht_pct is not None:
            text += f" xht={tr.x_ht_pct} xlt={tr.x_lt_pct}"
        for i, w in enumerate(tr.windings, start=1):
            bus = nodes(w.bus, w.phases) if w.phases else w.bus
            text += (f" wdg={i} bus={bus} conn={w.conn} kv={w.kv} kva={w.kva} %r={w.r_pct}"
                     f" tap={w.tap}")
        cmds.append(text)
    for reg in net.regulators:
        n_ph = 3 if reg.phases == "abc" else 1
        tap = 1.0 if regulators == "off" else reg.tap
        cmds.append(f"new transformer.{reg.name} phases={n_ph} windings=2 "
                    f"buses=[{nodes(reg.bus1, reg.phases)} {nodes(reg.bus2, reg.phases)}] "
                    f"conns=[{reg.conn} {reg.conn}] kvs=[{reg.kv} {reg.kv}] "
                    f"kvas=[{reg.kva} {reg.kva}] xhl={reg.x_pct} %loadloss={reg.loadloss_pct} "
                    f"wdg=2 tap={tap}")
        if regulators == "control":
            text = (f"new regcontrol.{reg.name} transformer={reg.name} winding=2 vreg={reg.vreg} "
                    f"band={reg.band} ptratio={reg.ptratio} ctprim={reg.ctprim} r={reg.r} x={reg.x}")
            if reg.ptphase is not None:
                text += f" ptphase={reg.ptphase}"
            cmds.append(text)
    for line in net.lines:
        text = (f"new line.{line.name} phases={len(line.phases)} bus1={nodes(line.bus1, line.phases)} "
                f"bus2={nodes(line.bus2, line.phases)}")
        if line.r1_ohm is not None:
            # balanced branch data: positive = zero sequence, whole-line ohms (length 1, no units)
            text += (f" r1={line.r1_ohm} x1={line.x1_ohm} r0={line.r1_ohm} x0={line.x1_ohm} "
                     "c1=0 c0=0 length=1 units=none")
        elif line.switch and line.linecode is None:
            text += " switch=y r1=1e-4 r0=1e-4 x1=0 x0=0 c1=0 c0=0"
        else:
            units = line.units or net.linecodes[line.linecode].units
            text += f" linecode={line.linecode} length={line.length} units={units}"
            if line.switch:
                text += " switch=y"
        if line.normamps is not None:
            text += f" normamps={line.normamps}"
        cmds.append(text)
        if line.open:
            cmds.append(f"open line.{line.name} 1")
    bases = ", ".join(str(v) for v in net.voltage_bases_kv)
    cmds += [f"set voltagebases=[{bases}]", "calcvoltagebases"]
    return cmds


def _or(value: float | None, default: float | None) -> float | None:
    return default if value is None else value


def shunt_commands(net: Network, bus_kv_ln: dict[str, float]) -> list[str]:
    """Loads and capacitors, their rated kV from each bus's voltage base (line-to-neutral)."""
    cmds = []
    for load in net.loads:
        kv = _rated_kv(bus_kv_ln[load.bus], load.phases, load.conn)
        n_ph = 3 if load.phases == "abc" else 1
        cmds.append(f"new load.{load.name} bus1={nodes(load.bus, load.phases)} phases={n_ph} "
                    f"conn={load.conn} model={LOAD_MODEL[load.model]} kv={kv:.6g} kw={load.kw} "
                    f"kvar={load.kvar}"
                    + (f" vminpu={net.load_vmin_pu}" if net.load_vmin_pu is not None else ""))
    for cap in net.capacitors:
        kv = _rated_kv(bus_kv_ln[cap.bus], cap.phases, cap.conn)
        n_ph = 3 if cap.phases == "abc" else len(cap.phases) if cap.conn == "wye" else 1
        cmds.append(f"new capacitor.{cap.name} bus1={nodes(cap.bus, cap.phases)} phases={n_ph} "
                    f"kvar={cap.kvar} kv={kv:.6g} conn={cap.conn}")
    return cmds


def _rated_kv(kv_ln: float, phases: str, conn: str) -> float:
    """OpenDSS rating convention: line-to-line kV for three-phase and delta, else phase kV."""
    if len(phases) == 3 or conn == "delta" or len(phases) == 2:
        return kv_ln * math.sqrt(3)
    return kv_ln


def bus_bases_kv_ln() -> dict[str, float]:
    engine = dss()
    out = {}
    for name in engine.Circuit.AllBusNames():
        engine.Circuit.SetActiveBus(name)
        out[name.lower()] = engine.Bus.kVBase()
    return out


def compile_network(net: Network, regulators: RegulatorMode = "published",
                    load_mult: float = 1.0) -> None:
    """Make `net` the active OpenDSS circuit (not solved)."""
    context = f"network {net.name}"
    run(branch_commands(net, regulators), context)
    bases = bus_bases_kv_ln()
    run(shunt_commands(net, bases), context)
    run([f"set loadmult={load_mult}", "set maxiterations=100", "set maxcontroliter=50",
         f"set controlmode={'static' if regulators == 'control' else 'off'}"], context)


def compile_dss(path: str | Path, load_mult: float = 1.0) -> None:
    """Compile a user's OpenDSS master file; its own errors are shown as OpenDSS reports them."""
    path = Path(path).resolve()
    if not path.is_file():
        raise NetworkError(f"{path}: OpenDSS master file not found")
    cwd = Path.cwd()
    try:
        run(["clear", f'compile "{path}"'], str(path))
    finally:
        import os

        os.chdir(cwd)  # OpenDSS changes the working directory to the file's folder
    engine = dss()
    if engine.Circuit.NumBuses() == 0:
        raise NetworkError(f"{path}: compiled, but defines no circuit")
    run([f"set loadmult={load_mult}"], str(path))
