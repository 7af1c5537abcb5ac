"""Shared test fixtures: real-data location, device-port option, plotting backend."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest
from hypothesis import settings

matplotlib.use("Agg")

# numba compiles on first call: example deadlines would measure the compiler, not the code.
settings.register_profile("ci", deadline=None, max_examples=60)
settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent


def pytest_addoption(parser):
    parser.addoption("--device-port", default=None,
                     help="serial port or URL of a real macro; enables tests marked 'device'")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--device-port"):
        return
    skip = pytest.mark.skip(reason="needs a real macro: pass --device-port PORT")
    for item in items:
        if "device" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def device_port(request):
    """The --device-port value (tests using it are marked 'device')."""
    return request.config.getoption("--device-port")


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real data directory ($RRAM_LSM_DATA, else ../shared/data); skip if absent."""
    candidates = [os.environ.get("RRAM_LSM_DATA"), REPO.parent / "shared" / "data"]
    for c in candidates:
        if c and Path(c).is_dir():
            return Path(c).resolve()
    pytest.skip("real data not available (set RRAM_LSM_DATA)")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own feature cache so tests never see each other's files."""
    monkeypatch.setenv("RRAM_LSM_CACHE", str(tmp_path_factory.mktemp("cache")))
