"""Fixtures of the hardware tests: exact-frame scripted ports, in-process device ports, emulators."""
from __future__ import annotations

import numpy as np
import pytest

class ScriptedPort:
    """A SerialBase stand-in that asserts the exact bytes written and replays exact replies.

    ``script`` is a list of ``(expected_write, reply_bytes)``; the reply becomes readable
    after the matching write. Modelled on pymeasure's ``expected_protocol``.
    """

    port = "scripted://"
    timeout = 0.001

    def __init__(self, script):
        self.script = list(script)
        self.written: list[bytes] = []
        self._rx = bytearray()

    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def write(self, data: bytes) -> int:
        self.written.append(bytes(data))
        assert self.script, f"unexpected write {bytes(data).hex()}"
        expected, answer = self.script.pop(0)
        assert bytes(data) == expected, f"sent {bytes(data).hex()}\nwant {expected.hex()}"
        self._rx += answer
        return len(data)

    def read(self, n: int = 1) -> bytes:
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out

    def flush(self) -> None:
        pass

    def reset_input_buffer(self) -> None:
        self._rx.clear()

    def close(self) -> None:
        pass

    def done(self) -> bool:
        """True when every scripted exchange happened."""
        return not self.script


class DevicePort(ScriptedPort):
    """A port wired straight to an in-process ``Emulator.receive`` (no pty, no threads).

    ``lose_replies`` lists indices of writes whose reply is lost on the way back;
    ``quiet`` runs the emulator's quiet-line handling after each write.
    """

    port = "device://"

    def __init__(self, emulator, lose_replies=()):
        super().__init__([])
        self.emulator = emulator
        self.lose = set(lose_replies)
        self.n_writes = 0

    def write(self, data: bytes) -> int:
        self.written.append(bytes(data))
        out = self.emulator.receive(bytes(data)) + self.emulator.flush()
        if self.n_writes not in self.lose:
            self._rx += out
        self.n_writes += 1
        return len(data)


@pytest.fixture
def scripted():
    """The ScriptedPort class."""
    return ScriptedPort


@pytest.fixture
def device_port_cls():
    """The DevicePort class."""
    return DevicePort


@pytest.fixture(scope="session")
def noise_free_profile():
    """The macro40nm profile without read or programming noise."""
    from sim import load_profile

    return load_profile(None).noise_free()


@pytest.fixture
def rng():
    """A seeded generator for test inputs."""
    return np.random.default_rng(1234)
