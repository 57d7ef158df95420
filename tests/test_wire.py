"""The federation's JSON (federates/common/wire.py): what crosses the wire reads back as written."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lemcosim.federates.common import wire


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


@pytest.mark.parametrize("x", [0.1 + 0.2, -0.0, 5e-324, 1.7976931348623157e308, 1 / 3,
                               2.0**53 + 2.0, 123456.789e-20])
def test_every_float_reads_back_bit_for_bit(x):
    # 0.1 + 0.2 = 0.30000000000000004, the smallest subnormal, the largest double: the shortest
    # repr of each reads back to the same 64 bits
    assert _bits(wire.decode(wire.encode({"p_kw": x}))["p_kw"]) == _bits(x)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_finite_float_reads_back_as_json_reads_it(x):
    assert _bits(wire.decode(wire.encode([x]))[0]) == _bits(json.loads(json.dumps([x]))[0])


def test_a_paillier_sized_int_goes_through_json():
    ciphertext = 7**700  # ~2000 bits, beyond orjson's 64
    assert wire.decode(wire.encode({"c": ciphertext})) == {"c": ciphertext}


def test_non_string_keys_are_written_as_json_writes_them():
    assert wire.decode(wire.encode({1: "a", 2.5: "b"})) == {"1": "a", "2.5": "b"}


def test_numpy_values_are_written_as_numbers():
    assert wire.decode(wire.encode({"v": np.array([1.5, 2.0]), "n": np.int64(3),
                                    "x": np.float64(0.1)})) == {"v": [1.5, 2.0], "n": 3, "x": 0.1}


def test_a_non_finite_float_is_written_as_null():
    # JSON has no NaN; our messages carry None wherever a value is undefined (module docstring)
    assert wire.decode(wire.encode({"vuf_pct": math.nan, "x": math.inf})) == {"vuf_pct": None,
                                                                              "x": None}


def test_nan_tokens_python_json_writes_are_still_read():
    value = wire.decode(json.dumps({"losses_kw": math.nan, "v": -math.inf}))
    assert math.isnan(value["losses_kw"]) and value["v"] == -math.inf


@pytest.mark.parametrize("text", ["", "{", "not json", "[1, 2"])
def test_text_that_is_no_json_raises_the_json_error_callers_catch(text):
    with pytest.raises(json.JSONDecodeError):
        wire.decode(text)
