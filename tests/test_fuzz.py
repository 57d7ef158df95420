"""Fuzzed inputs: malformed scenarios, network tables, profile files, bids and ciphertexts.

Every generated case either validates or raises a LemcosimError with a message: never another
exception (a traceback for the user) and never a hang. Examples are bounded (a few dozen per
test, no deadline per example) so the whole file stays within a minute or two.
"""

from __future__ import annotations

import copy
import tempfile
import textwrap
from pathlib import Path
from typing import Any, get_args, get_origin

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from phe import paillier
from pydantic import BaseModel

from lemcosim.federates.auction.aggregate import aggregate
from lemcosim.federates.auction.bids import Bid, EncryptedBid
from lemcosim.federates.auction.codec import SlotLayout
from lemcosim.federates.auction.keys import check, fingerprint
from lemcosim.federates.common.errors import LemcosimError
from lemcosim.networks.loader import load_network
from lemcosim.runner.schema import Scenario
from lemcosim.runner.validate import load_checked, load_scenario

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

BASE = {
    "name": "fuzz",
    "time": {"window_s": 900, "windows": 2},
    "network": {"name": "ieee13"},
    "prosumers": {"groups": [{"count": 3, "buses": ["671", "675"], "phases": ["a", "b"]}]},
    "grid": {},
    "amm": {"esus": [{"name": "es1", "bus": "633", "capacity_kwh": 100, "power_kw": 50}]},
    "recorder": {},
}


def expect_named_error_or_success(call) -> None:
    try:
        call()
    except LemcosimError as exc:
        assert str(exc).strip(), "a LemcosimError without a message"


# --- scenarios from the schema ------------------------------------------------------------------
def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def schema_paths(model: type[BaseModel], prefix: tuple = (), depth: int = 4) -> list[tuple]:
    """Every key path of the schema (list items as index 0, mapping entries as key `x`)."""
    out = []
    for name, info in model.model_fields.items():
        path = prefix + (name,)
        out.append(path)
        inner = _model_in(info.annotation)
        if inner is None or depth == 0:
            continue
        origins = {get_origin(a) for a in (info.annotation, *get_args(info.annotation))}
        step = (0,) if list in origins else ("x",) if dict in origins else ()
        out += schema_paths(inner, path + step, depth - 1)
    return out


PATHS = schema_paths(Scenario)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0, -1, 1e308, -0.0]),
    st.text(max_size=12), st.sampled_from(["671", "a", "abc", "nosuch", "2026-13-45", "", "x.csv",
                                           "ieee13", "grid", "prosumers", "grid/v_min_pu"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "x", "name", "bus"]), inner,
                                                 max_size=3)), max_leaves=6)


def set_path(data: dict, path: tuple, value: Any) -> None:
    node: Any = data
    for part in path[:-1]:
        if isinstance(part, int):
            if not isinstance(node, list) or not node:
                return
            node = node[0]
        else:
            if not isinstance(node, dict):
                return
            if not isinstance(node.get(part), (dict, list)):
                node[part] = [{}] if part in ("groups", "esus", "transactions") else {}
            node = node[part]
    last = path[-1]
    if isinstance(node, dict):
        node[last] = value
    elif isinstance(node, list) and node and isinstance(last, int):
        node[0] = value


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(PATHS), VALUES), min_size=1, max_size=3))
def test_schema_mutations_validate_or_are_named(mutations):
    data = copy.deepcopy(BASE)
    for path, value in mutations:
        set_path(data, path, value)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_text(yaml.safe_dump(data))
        expect_named_error_or_success(lambda: load_checked(path))


BASE_TEXT = yaml.safe_dump(BASE, sort_keys=False)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(BASE_TEXT)), st.integers(0, 3),
                          st.text(alphabet=":{}[]-,'\"\n #&*!|>%@`\t.x9", max_size=3)),
                min_size=1, max_size=4))
def test_text_edits_of_a_scenario_file_are_named(edits):
    text = BASE_TEXT
    for at, cut, insert in edits:
        text = text[:at] + insert + text[at + cut:]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.yaml"
        path.write_text(text)
        expect_named_error_or_success(lambda: load_scenario(path))


# --- network tables -----------------------------------------------------------------------------
NETWORK = textwrap.dedent("""\
    name: fuzznet
    citation: generated by tests/test_fuzz.py
    frequency_hz: 50
    voltage_bases_kv: [11]
    substation_bus: src
    source: {bus: src, kv: 11, pu: 1.0, mvasc3: 200, mvasc1: 210}
    linecodes:
      oh: {units: km, r1_ohm: 0.3, x1_ohm: 0.35}
    lines: lines.csv
    loads: loads.csv
    """)
CELLS = st.one_of(st.sampled_from(["src", "mid", "far", "abc", "a", "ba", "oh", "km", "ft", "1",
                                   "2.5", "-1", "0", "inf", "nan", ".inf", "[", "{a: 1}", "true",
                                   "pq", "z", "wye", "delta", "", "x,y", '"']),
                  st.text(alphabet="abc0123456789.-e", max_size=6))
LINE_COLUMNS = ["name", "bus1", "bus2", "phases", "linecode", "length", "units"]
LOAD_COLUMNS = ["name", "bus", "phases", "conn", "model", "kw", "kvar"]
GOOD_LINES = [["l1", "src", "mid", "abc", "oh", "2", "km"], ["l2", "mid", "far", "abc", "oh", "2", "km"]]
GOOD_LOADS = [["ld", "far", "abc", "wye", "pq", "300", "100"]]


def csv_text(columns: list[str], rows: list[list[str]]) -> str:
    return "\n".join([",".join(columns)] + [",".join(r) for r in rows]) + "\n"


@FUZZ
@example(edits=[(False, 0, 0, '"')], drop_row=False)  # an unterminated CSV quote
@example(edits=[(True, 0, 5, "[")], drop_row=False)  # a cell that is no YAML value
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 1), st.integers(0, 6), CELLS), min_size=1,
                max_size=4), st.booleans())
def test_network_tables_load_or_are_named(edits, drop_row):
    lines, loads = copy.deepcopy(GOOD_LINES), copy.deepcopy(GOOD_LOADS)
    for in_lines, row, column, cell in edits:
        table = lines if in_lines else loads
        table[row % len(table)][column] = cell
    if drop_row:
        lines.pop()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "network.yaml").write_text(NETWORK)
        (folder / "lines.csv").write_text(csv_text(LINE_COLUMNS, lines))
        (folder / "loads.csv").write_text(csv_text(LOAD_COLUMNS, loads))
        expect_named_error_or_success(lambda: load_network(folder))


# --- profile files through validation -----------------------------------------------------------
PROFILE_CELLS = st.sampled_from(["00:00", "12:00", "23:59", "24:00", "12", "1:2:3", "0.5", "1",
                                 "-0.1", "inf", "nan", "", "x", "1e400", "time", "shape"])


@FUZZ
@example(rows=[], header=True)  # a header and no data rows
@given(st.lists(st.lists(PROFILE_CELLS, min_size=1, max_size=3), min_size=0, max_size=5),
       st.booleans())
def test_profile_files_validate_or_are_named(rows, header):
    text = ("time,shape\n" if header else "") + "\n".join(",".join(r) for r in rows)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "p.csv").write_text(text)
        path = Path(tmp) / "s.yaml"
        path.write_text(yaml.safe_dump({
            "name": "fuzz", "time": {"windows": 2},
            "prosumers": {"groups": [{"count": 2, "buses": ["x"], "load_profile": "p.csv"}]},
            "recorder": {}}))
        expect_named_error_or_success(lambda: load_checked(path))


# --- bids and ciphertexts -----------------------------------------------------------------------
LAYOUT = SlotLayout(levels=4, max_qty_kwh=5.0, max_cluster=10, key_bits=512)
CURVE_VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10))


@FUZZ
@given(st.lists(CURVE_VALUES, max_size=6), st.lists(CURVE_VALUES, max_size=6))
def test_bids_are_valid_or_rejected_by_name(buy, sell):
    bid = Bid("p1", np.array(buy, dtype=float), np.array(sell, dtype=float))
    expect_named_error_or_success(lambda: bid.validate(LAYOUT))


@pytest.fixture(scope="module")
def keypair():
    # a 512-bit test key (phe draws from the OS's randomness); never a size for real use
    return paillier.generate_paillier_keypair(n_length=512)


CIPHERTEXTS = st.one_of(st.integers(-2**1100, 2**1100), st.none(), st.booleans(), st.text(max_size=8),
                        st.floats(), st.sampled_from([0, 1, -1]))


def test_ciphertexts_are_checked_or_rejected_by_name(keypair):
    public, _ = keypair

    @FUZZ
    @given(CIPHERTEXTS, st.sampled_from([fingerprint(public), "0" * 16, ""]))
    def one(ciphertext, key_id):
        expect_named_error_or_success(lambda: check(public, ciphertext, key_id, "prosumer p1 buy"))

    one()


def test_a_cluster_of_fuzzed_ciphertexts_aggregates_or_is_refused_by_name(keypair):
    public, _ = keypair
    good = public.encrypt(LAYOUT.pack(np.zeros(4, dtype=int))).ciphertext(be_secure=False)

    @FUZZ
    @given(st.lists(st.one_of(st.just(good), CIPHERTEXTS.filter(lambda c: isinstance(c, int))),
                    min_size=0, max_size=5))
    def one(ciphertexts):
        bids = [EncryptedBid(f"p{i}", fingerprint(public), c, c) for i, c in enumerate(ciphertexts)]
        try:
            result = aggregate("c1", bids, public, LAYOUT, k_min=2)
        except LemcosimError as exc:
            assert "k_min" in str(exc)
            return
        assert len(result.members) + len(result.rejected) == len(bids)
        assert all(reason for _, reason in result.rejected)

    one()
