"""Connecting to the broker: ports no other connection can take, and a federate that retries its
registration (a CI run once failed with "unable to register federate" on a loaded machine)."""

from __future__ import annotations

import contextlib
import io
import json
import secrets
import socket
import threading
import time
from pathlib import Path

import pytest
from helpers import in_child_process

from lemcosim.federates.common.app import _register
from lemcosim.runner.compose import _ephemeral_low, free_port


def test_broker_ports_lie_below_the_ephemeral_range_with_their_neighbours_free():
    """An outgoing connection takes a random port of ip_local_port_range (32768–60999 by
    default); a broker port below it, with the span above it, cannot be taken that way."""
    for _ in range(20):
        port = free_port(span=48)
        assert 20000 <= port and port + 48 < _ephemeral_low()
        for p in (port, port + 47):
            with socket.socket() as s:
                s.bind(("127.0.0.1", p))  # raises if taken


@pytest.mark.federation
def test_a_federate_registers_on_its_second_attempt_when_the_broker_comes_late(tmp_path: Path):
    """First attempt: no broker yet, and the core gives up after 5 tries of 300 ms (measured:
    1.8 s; HELICS' default is 24 s). The broker starts 2.5 s in; a later attempt registers.
    HELICS runs in a child process (`in_child_process`): a call that hangs fails the test."""
    port = free_port()
    config = tmp_path / "late.json"
    config.write_text(json.dumps({
        "name": "late", "coreType": "zmq",
        "coreInitString": f"--federates=1 --broker_address=tcp://127.0.0.1:{port} "
                          "--local_interface=127.0.0.1 --networktimeout=300ms --timeout=10s",
    }))

    def register_late() -> tuple[float, str]:
        import helics as h

        brokers = []

        def start_broker() -> None:
            time.sleep(2.5)
            brokers.append(h.helicsCreateBroker("zmq", f"b{secrets.token_hex(4)}",
                                                f"-f 1 --port={port} --local_interface=127.0.0.1 "
                                                "--timeout=20s"))

        starter = threading.Thread(target=start_broker, daemon=True)
        starter.start()
        fed, err = None, io.StringIO()
        try:
            started = time.monotonic()
            with contextlib.redirect_stderr(err):
                fed = _register(h, config, "late")
            waited_s = time.monotonic() - started
            h.helicsFederateEnterExecutingMode(fed)
            assert h.helicsFederateRequestTime(fed, 1.0) == 1.0
            h.helicsFederateDisconnect(fed)
        finally:
            starter.join(timeout=10)
            if fed is not None:
                h.helicsFederateFree(fed)
            for broker in brokers:
                h.helicsBrokerWaitForDisconnect(broker, 5000)
                h.helicsBrokerFree(broker)
        return waited_s, err.getvalue()

    waited_s, err = in_child_process(register_late)
    assert waited_s >= 2.5  # it did wait for the broker
    assert "late: registration attempt 1 failed" in err


@pytest.mark.federation
def test_string_inputs_of_every_length_read_back_exactly():
    """lemcosim reads string inputs through one cffi buffer type (`_input_string`): values of
    changing lengths, empty and multi-byte ones come back as the HELICS binding returns them
    (in a child process, `in_child_process`: a HELICS call that hangs fails the test)."""
    port = free_port()
    values = ["", "x", '{"671.a": [1.5, 0.0]}' * 300, "Δt = 900 s, ρ_eq", "y" * 70_001]

    def echo_every_value() -> list[tuple[str, str]]:
        import helics as h

        from lemcosim.federates.common.app import _input_string

        broker = h.helicsCreateBroker("zmq", f"b{secrets.token_hex(4)}",
                                      f"-f 1 --port={port} --local_interface=127.0.0.1 --timeout=20s")
        info = h.helicsCreateFederateInfo()
        h.helicsFederateInfoSetCoreTypeFromString(info, "zmq")
        h.helicsFederateInfoSetCoreInitString(
            info, f"--federates=1 --broker_address=tcp://127.0.0.1:{port} "
                  "--local_interface=127.0.0.1 --timeout=20s")
        fed = h.helicsCreateValueFederate(f"f{secrets.token_hex(4)}", info)
        read = []
        try:
            pub = h.helicsFederateRegisterGlobalPublication(fed, "echo", h.HELICS_DATA_TYPE_STRING, "")
            sub = h.helicsFederateRegisterSubscription(fed, "echo", "")
            h.helicsFederateEnterExecutingMode(fed)
            for t, value in enumerate(values, start=1):
                h.helicsPublicationPublishString(pub, value)
                h.helicsFederateRequestTime(fed, float(t))
                read.append((_input_string(h, sub), h.helicsInputGetString(sub)))
        finally:
            h.helicsFederateDisconnect(fed)
            h.helicsFederateFree(fed)
            h.helicsBrokerWaitForDisconnect(broker, 5000)
            h.helicsBrokerFree(broker)
        return read

    assert in_child_process(echo_every_value) == [(value, value) for value in values]
