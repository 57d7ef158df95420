"""Read a solved OpenDSS circuit: per-bus, per-phase voltages (pu, degrees) in one vectorised pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lemcosim.networks.builder import dss

PHASE_OF_NODE = {1: "a", 2: "b", 3: "c"}


@dataclass(frozen=True)
class NodeIndex:
    """The circuit's phase nodes (`bus.1` … `bus.3`) in OpenDSS order, resolved once per circuit."""

    names: list[str]  # "bus.phase", phase a/b/c
    bus: np.ndarray
    phase: np.ndarray
    keep: np.ndarray  # positions of phase nodes among all OpenDSS nodes (skips neutrals, 4+)
    base_v: np.ndarray  # line-to-neutral base voltage, V

    @classmethod
    def of_active_circuit(cls) -> NodeIndex:
        engine = dss()
        names = [n.lower() for n in engine.Circuit.AllNodeNames()]
        bases = np.zeros(len(names))
        for bus in engine.Circuit.AllBusNames():
            engine.Circuit.SetActiveBus(bus)
            for node in engine.Bus.Nodes():
                key = f"{bus.lower()}.{node}"
                if key in names:
                    bases[names.index(key)] = engine.Bus.kVBase() * 1000.0
        keep, bus_of, phase_of, labels = [], [], [], []
        for i, name in enumerate(names):
            bus, _, node = name.rpartition(".")
            if node.isdigit() and int(node) in PHASE_OF_NODE and bases[i] > 0:
                keep.append(i)
                bus_of.append(bus)
                phase_of.append(PHASE_OF_NODE[int(node)])
                labels.append(f"{bus}.{PHASE_OF_NODE[int(node)]}")
        keep_arr = np.array(keep, dtype=int)
        return cls(labels, np.array(bus_of), np.array(phase_of), keep_arr, bases[keep_arr])


def node_phasors(index: NodeIndex) -> np.ndarray:
    """Complex node voltages of the solved circuit, pu, in `index` order."""
    volts = np.asarray(dss().Circuit.AllBusVolts())
    complex_v = volts[0::2] + 1j * volts[1::2]
    return complex_v[index.keep] / index.base_v


def bus_phase_voltages(index: NodeIndex) -> dict[str, dict[str, dict[str, float]]]:
    """{bus: {phase: {"v_pu", "angle_deg"}}} of the solved circuit."""
    v = node_phasors(index)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for bus, phase, value in zip(index.bus, index.phase, v, strict=True):
        out.setdefault(str(bus), {})[str(phase)] = {
            "v_pu": float(abs(value)), "angle_deg": float(np.degrees(np.angle(value)))}
    return out
