"""Network files with mistakes: each gives a named error (file, table, row, field)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from lemcosim.networks.loader import NetworkError, load_network, shipped_networks

GOOD = """
name: tiny
title: a two-line test feeder
citation: hand-written for tests
voltage_bases_kv: [12.47]
substation_bus: s
source: {bus: s, kv: 12.47, mvasc3: 500}
linecodes:
  three: {units: km, r1_ohm: 0.3, x1_ohm: 0.4}
  single: {units: km, r_ohm: [[0.5]], x_ohm: [[0.6]]}
lines:
  - {name: l1, bus1: s, bus2: m, phases: abc, linecode: three, length: 1}
  - {name: l2, bus1: m, bus2: e, phases: b, linecode: single, length: 0.5}
loads:
  - {name: ld1, bus: m, phases: abc, kw: 300, kvar: 100}
  - {name: ld2, bus: e, phases: b, kw: 20}
"""


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "net"
    folder.mkdir(exist_ok=True)
    (folder / "network.yaml").write_text(textwrap.dedent(text))
    return folder


def test_good_network(tmp_path):
    net = load_network(write(tmp_path, GOOD))
    assert [line.name for line in net.lines] == ["l1", "l2"]
    assert net.buses == ["s", "m", "e"]


@pytest.mark.parametrize("change, message", [
    (("bus: e, phases: b, kw: 20", "bus: x, phases: b, kw: 20"), "loads ld2: unknown bus 'x'"),
    (("bus: e, phases: b, kw: 20", "bus: e, phases: a, kw: 20"),
     "loads ld2: phase(s) a not all present at bus e (it has b)"),
    (("linecode: single, length: 0.5", "linecode: nothing, length: 0.5"),
     "lines l2: unknown linecode 'nothing'"),
    (("phases: b, linecode: single", "phases: bc, linecode: single"),
     "lines l2: linecode single has 1 conductors, the line 2 phases"),
    (("linecode: three, length: 1", "length: 1"), "lines row 1 (l1): field (row): a line needs "
                                                   "linecode and length"),
    (("r1_ohm: 0.3, x1_ohm: 0.4", "r1_ohm: 0.3"), "linecode three: field (row): sequence data "
                                                   "need both r1_ohm and x1_ohm"),
    (("{name: l2, bus1: m", "{name: l1, bus1: m"), "lines l1: duplicate name"),
    (("bus1: m, bus2: e", "bus1: q, bus2: e"), "lines l2: buses q and e are not connected"),
    (("phases: abc, kw: 300", "phases: abd, kw: 300"), "loads row 1 (ld1): field phases"),
    (("kw: 20}", "kw: 20, colour: red}"), "loads row 2 (ld2): field colour: Extra inputs"),
    (("substation_bus: s", "substation_bus: zz"), "substation_bus 'zz' is not a bus"),
])
def test_mistakes_are_named(tmp_path, change, message):
    old, new = change
    assert old in GOOD
    with pytest.raises(NetworkError, match=re.escape(message)):
        load_network(write(tmp_path, GOOD.replace(old, new, 1)))


def test_tables_may_live_in_csv_files(tmp_path):
    folder = write(tmp_path, GOOD.split("loads:")[0] + "loads: loads.csv\n")
    (folder / "loads.csv").write_text("name,bus,phases,kw,kvar\nld1,m,abc,300,100\nld2,e,b,20,\n")
    net = load_network(folder)
    assert [(ld.name, ld.kw, ld.kvar) for ld in net.loads] == [("ld1", 300, 100), ("ld2", 20, 0)]
    (folder / "loads.csv").write_text("name,bus,phases,kw\nld1,zz,abc,300\n")
    with pytest.raises(NetworkError, match=r"loads ld1: unknown bus 'zz'"):
        load_network(folder)


def test_unknown_network_lists_the_shipped_ones():
    assert "ieee13" in shipped_networks()
    with pytest.raises(NetworkError, match="unknown network 'ieee14'.*shipped are .*ieee13"):
        load_network("ieee14")
