"""``rram-lsm encode --scheduler``: a Dask cluster of real ``dask scheduler`` and
``dask worker`` processes on localhost gives the features of a serial run, bit for bit."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import numpy as np
import pytest

from lsm import EncodeOptions, preset
from rram_lsm.app.cli import main
from rram_lsm.app.features import encode, encode_distributed, split_parts
from rram_lsm.app.session import ChipSession
from rram_lsm.errors import ConfigError

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two single-threaded workers as separate processes; stopped after."""
    dask = shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command line is not installed")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                 "--no-dashboard", "--memory-limit", "0"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from dask.distributed import Client

        deadline = time.monotonic() + 90
        with Client(address, timeout=60) as client:
            while len(client.scheduler_info()["workers"]) < 2:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    pytest.fail("the dask scheduler and workers did not come up")
                time.sleep(0.2)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.fixture
def synthetic(monkeypatch):
    monkeypatch.delenv("RRAM_LSM_DATA", raising=False)


def test_split_parts_start_on_batches():
    assert split_parts(500, 2, 256) == [(0, 256), (256, 500)]
    assert split_parts(40, 3, 8) == [(0, 16), (16, 32), (32, 40)]
    assert split_parts(10, 4, 8) == [(0, 8), (8, 10)]  # fewer batches than parts
    with pytest.raises(ConfigError, match="parts"):
        split_parts(10, 0, 8)


def test_real_cluster_gives_the_serial_features(cluster, synthetic):
    cfg = preset("nmnist", n_neurons=40)
    # 40 samples in batches of 8 over 3 parts: the second and third replay earlier batches
    opts = EncodeOptions(batch_size=8, chunk_size=8, progress=False)
    small = dict(synthetic_per_class=(3, 1))
    feats, record = encode_distributed(cluster, "nmnist", None, cfg, options=opts, parts=3,
                                       cache=False, **small)
    from lsm.data import open_dataset

    ds = open_dataset("nmnist", None, progress=False, **small)
    with ChipSession("sim") as chip:
        serial = encode(chip, "nmnist", ds, lsm_preset=cfg, options=opts, cache=False)
    np.testing.assert_array_equal(feats.values, serial.values)
    np.testing.assert_array_equal(feats.labels, serial.labels)
    assert feats.meta["firing_rate_per_step"] == serial.meta["firing_rate_per_step"]
    assert feats.meta["silent_fraction"] == serial.meta["silent_fraction"]
    assert feats.meta["distributed"]["parts"] == [(0, 16), (16, 32), (32, 40)]
    assert feats.meta["placement"] == serial.meta["placement"]
    assert record["tiles"][0]["name"] == "nmnist"


def test_encode_cli_scheduler_equals_serial_cli(cluster, synthetic, tmp_path):
    a, b = tmp_path / "serial.npz", tmp_path / "dask.npz"
    common = ["encode", "--dataset", "nmnist", "--neurons", "40", "--no-progress",
              "--no-cache"]
    assert main(common + ["--out", str(a)]) == 0
    assert main(common + ["--out", str(b), "--scheduler", cluster,
                          "--json", str(tmp_path / "d.json")]) == 0
    from lsm import Features

    sa, sb = Features.load(a), Features.load(b)
    np.testing.assert_array_equal(sa.values, sb.values)
    # 500 samples in batches of 256, one part per worker
    assert sb.meta["distributed"]["parts"] == [[0, 256], [256, 500]]


def test_a_serial_port_is_refused(synthetic):
    with pytest.raises(ConfigError, match="serial port"):
        encode_distributed("serial", "nmnist", None, None, backend="serial:/dev/null")
