"""tests/helpers.py `in_child_process`, which runs in-process HELICS tests: a hang fails the test
within its bound (a call blocked in C cannot be interrupted in the test's own process), a child's
failure comes back with its traceback, a result comes back as it was."""

from __future__ import annotations

import os
import time

import pytest
from helpers import in_child_process


def test_a_result_comes_back_from_another_process():
    assert in_child_process(lambda: ("pid", os.getpid())) != ("pid", os.getpid())
    assert in_child_process(lambda: {"kg/spoof": "x", "n": [1, 2.5]}) == {"kg/spoof": "x", "n": [1, 2.5]}


def test_a_failed_assertion_in_the_child_fails_the_test_with_its_traceback():
    def body():
        assert 1 + 1 == 3, "arithmetic"

    with pytest.raises(AssertionError, match="(?s)in the child process.*arithmetic"):
        in_child_process(body)


def test_a_hanging_child_is_killed_at_its_bound():
    started = time.monotonic()
    with pytest.raises(AssertionError, match="gave no result in 1 s"):
        in_child_process(lambda: time.sleep(60), timeout_s=1)
    assert time.monotonic() - started < 10  # killed at its 1 s bound


def test_a_child_that_dies_fails_the_test():
    with pytest.raises(AssertionError, match="its process died"):
        in_child_process(lambda: os._exit(3))
