"""These tests run the application layer on the synthetic fallback, also where CI points
$RRAM_LSM_DATA at the real data (real-data runs are the commands in docs/experiments.md).
Module-scoped fixtures (the demo run) get their own feature cache too: the suite's
per-test cache fixture is set up only after them."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module", autouse=True)
def _synthetic_data_only(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RRAM_LSM_DATA", raising=False)
        mp.setenv("RRAM_LSM_CACHE", str(tmp_path_factory.mktemp("module-cache")))
        yield
