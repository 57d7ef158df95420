"""The JSON every federate sends and publishes (docs/interfaces.md), written and read by orjson.

A batch of intents and its answers are 6–10 kB of floats per market round trip: for a 60-intent
batch Python's json module spends ~90 µs writing the request and ~40 µs reading the answer,
orjson ~6 and ~16 µs (`python benchmarks/wire.py`). Both write each float's shortest repr that
reads back to the same double, so every value crosses the wire bit for bit as before.

Where the two differ, and how this module keeps what the federation relies on:
- A value orjson cannot write (an int beyond 64 bits, a non-string key, a type it does not know)
  is written by json instead.
- A non-finite float is written as `null` (JSON has no NaN); every message field that can be
  undefined is already None on our side (a failed flow's losses, a VUF without a positive
  sequence). Text with NaN or Infinity tokens (Python's json writes them) is still read.
- No spaces after `:` and `,`, and non-ASCII characters as UTF-8 rather than \\u escapes.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


def encode(value: Any) -> bytes:
    """`value` as UTF-8 JSON."""
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:  # e.g. a Paillier ciphertext as int: more than 64 bits
        return json.dumps(value).encode()


def encode_text(value: Any) -> str:
    """`value` as JSON text (a publication's string)."""
    return encode(value).decode()


def decode(text: str) -> Any:
    """The value of JSON text (a message or value as a federate receives it); raises
    json.JSONDecodeError (a ValueError) on anything else."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN/Infinity tokens, which only json reads
        return json.loads(text)
