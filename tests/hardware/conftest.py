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

    ``lose_replies`` lists indices of writes whose reply is lost on the way back; the
    device reboots (the emulator's reset fault, both of its points) on receipt of the
    writes in ``reboot_on_receipt`` (the request is lost) and after executing those in
    ``reboot_before_reply`` (the reply is lost). After the writes in ``die_after`` are
    delivered the port fails as a pulled adapter does (OSError EIO on every call). The
    quiet-line handling runs after each write.
    """

    port = "device://"

    def __init__(self, emulator, lose_replies=(), reboot_on_receipt=(),
                 reboot_before_reply=(), die_after=()):
        super().__init__([])
        self.emulator = emulator
        self.lose = set(lose_replies)
        self.reboot_on_receipt = set(reboot_on_receipt)
        self.reboot_before_reply = set(reboot_before_reply)
        self.die_after = set(die_after)
        self.dead = False
        self.n_writes = 0

    def _check(self) -> None:
        if self.dead:
            raise OSError(5, "Input/output error")

    @property
    def in_waiting(self) -> int:
        self._check()
        return len(self._rx)

    def read(self, n: int = 1) -> bytes:
        self._check()
        return super().read(n)

    def write(self, data: bytes) -> int:
        self._check()
        self.written.append(bytes(data))
        i = self.n_writes
        if i in self.die_after:
            self.dead = True
            self.lose.add(i)
        self.n_writes += 1
        if i in self.reboot_on_receipt:
            self.emulator.reboot()
            return len(data)
        out = self.emulator.receive(bytes(data)) + self.emulator.flush()
        if i in self.reboot_before_reply:
            self.emulator.reboot()
        elif i not in self.lose:
            self._rx += out
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


class Cable:
    """An in-process emulator reached through a relay that can be unplugged.

    The emulator serves one pseudo-terminal (the device's UART, which stays up); a relay
    thread copies bytes between it and a second pseudo-terminal whose slave path the driver
    opens (the USB adapter). ``unplug()`` closes the adapter's master side, so the driver's
    port fails as when the adapter is pulled or the emulator's process dies, while the
    device keeps running; bytes the device sends meanwhile are lost. ``plug()`` makes a new
    adapter and returns its path. ``arm(after_device_bytes=n)`` unplugs once n more bytes
    went to the host (mid-reply); ``arm(after_request=cmd)`` right after a request with
    command ``cmd`` went to the device (its reply is lost).
    """

    def __init__(self, emulator):
        import os
        import threading
        import tty

        self.emu = emulator
        self._dev_master, self._dev_slave = os.openpty()
        tty.setraw(self._dev_slave)
        os.set_blocking(self._dev_slave, False)
        self._stop = threading.Event()
        self._server = threading.Thread(target=emulator.serve,
                                        args=(self._dev_master, self._stop.is_set),
                                        daemon=True)
        self._server.start()
        self._host = None  # (master, slave) of the adapter's pty while plugged
        self._requests = []  # ("plug" | "unplug", done_event, result box)
        self._lock = threading.Lock()
        self._after_bytes = None
        self._after_cmd = None
        self.unplugged = threading.Event()
        """Set whenever the adapter is unplugged."""
        self._to_host = bytearray()
        self._to_dev = bytearray()
        self._decoder = None
        self._relay = threading.Thread(target=self._run, daemon=True)
        self._relay.start()

    # ---- control (from the test's thread) ----
    def _ask(self, what: str):
        import threading

        done, box = threading.Event(), []
        with self._lock:
            self._requests.append((what, done, box))
        assert done.wait(5), f"relay did not {what}"
        return box[0] if box else None

    def plug(self) -> str:
        """A new adapter; returns the path for the driver."""
        return self._ask("plug")

    def unplug(self) -> None:
        """Pull the adapter now."""
        self._ask("unplug")

    def arm(self, after_device_bytes: int | None = None, after_request: int | None = None):
        """Unplug automatically (see the class docstring)."""
        from hardware import FrameDecoder

        with self._lock:
            self._after_bytes = after_device_bytes
            self._after_cmd = after_request
            self._decoder = FrameDecoder(65535) if after_request is not None else None
            self.unplugged.clear()

    def close(self) -> None:
        import os

        self._ask("stop")
        self._stop.set()
        self._server.join(5)
        for fd in (self._dev_master, self._dev_slave):
            os.close(fd)

    # ---- the relay thread ----
    def _do_unplug(self) -> None:
        import os

        if self._host is not None:
            for fd in self._host:
                os.close(fd)
            self._host = None
        self._to_host.clear()
        self._after_bytes = self._after_cmd = None
        self.unplugged.set()

    def _run(self) -> None:
        import errno
        import os
        import select
        import tty

        while True:
            with self._lock:
                requests, self._requests = self._requests, []
            for what, done, box in requests:
                if what == "plug":
                    self._do_unplug()
                    self.unplugged.clear()
                    master, slave = os.openpty()
                    tty.setraw(slave)
                    os.set_blocking(master, False)
                    self._host = (master, slave)
                    box.append(os.ttyname(slave))
                elif what == "unplug":
                    self._do_unplug()
                else:
                    self._do_unplug()
                    done.set()
                    return
                done.set()
            host = self._host[0] if self._host else None
            rd = [self._dev_slave] + ([host] if host is not None else [])
            wr = ([host] if host is not None and self._to_host else []) + \
                ([self._dev_slave] if self._to_dev else [])
            r, w, _ = select.select(rd, wr, [], 0.005)
            if self._dev_slave in r:
                try:
                    data = os.read(self._dev_slave, 65536)
                except BlockingIOError:
                    data = b""
                if host is not None:
                    with self._lock:
                        n = self._after_bytes
                        if n is not None:
                            data = data[:n]
                            self._after_bytes = n - len(data)
                    self._to_host += data
            if host is not None and host in r:
                try:
                    data = os.read(host, 65536)
                except OSError as exc:  # EIO: the driver has not opened the adapter yet
                    if exc.errno not in (errno.EIO, errno.EAGAIN):
                        raise
                    data = b""
                self._to_dev += data
                with self._lock:
                    cut = self._decoder is not None and any(
                        getattr(f, "cmd", None) == self._after_cmd and not f.more
                        for f in self._decoder.feed(data))
                if cut:  # the request reaches the device, its answer never the host
                    while self._to_dev:
                        select.select([], [self._dev_slave], [], 0.05)
                        del self._to_dev[:os.write(self._dev_slave, self._to_dev)]
                    self._do_unplug()
                    continue
            if host is not None and self._to_host:
                try:
                    del self._to_host[:os.write(host, self._to_host)]
                except (BlockingIOError, OSError):
                    pass
                with self._lock:
                    if self._after_bytes == 0 and not self._to_host:
                        self._do_unplug()
                        continue
            if self._to_dev:
                try:
                    del self._to_dev[:os.write(self._dev_slave, self._to_dev)]
                except BlockingIOError:
                    pass


@pytest.fixture
def cable_cls():
    """The Cable class."""
    return Cable
