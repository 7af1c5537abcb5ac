"""Killed processes lose nothing (issue 15): ``kill -9`` a real process at random points while
it writes a results JSON or a feature-cache entry, many times; every later read finds the
earlier result or a complete newer one, never part of one. Two processes encoding the same
cache key at once both get correct features.

Bounded: KILLS kills per writer, each loop stopping after LOOP_S seconds (at least
MIN_KILLS kills).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

from lsm import FeatureCache, Features
from rram_lsm.records import read_record, write_record

KILLS = 20
LOOP_S = 10.0
MIN_KILLS = 5  # even on a loaded machine, within LOOP_S

CHILD = textwrap.dedent('''
    import sys
    mode, target = sys.argv[1], sys.argv[2]
    base = int(sys.argv[3]) if mode in ("record", "cache") else 0  # names the writer
    import numpy as np
    if mode == "record":
        from rram_lsm.records import write_record
        i = base
        while True:
            i += 1
            payload = list(range(i, i + 20000))
            write_record(target, {"i": i, "payload": payload, "sum": sum(payload)},
                         command="kill-test", config={"i": i})
            if i == base + 1:
                print("ready", flush=True)  # one complete record: now kill me anywhere
    elif mode == "cache":
        from lsm import FeatureCache, Features
        cache = FeatureCache(target)
        i = base
        while True:
            i += 1
            n = 400 + i % 7
            cache.store("victim", Features(np.full((n, 300), i, np.float32),
                                           np.full(n, i, np.int64), np.zeros(n, bool),
                                           {"i": i, "n": n}))
            if i == base + 1:
                print("ready", flush=True)
    elif mode == "encode":
        import os, time
        from lsm import EncodeOptions, FeatureCache, Reservoir, encode_dataset, preset
        from lsm.data import open_dataset
        from sim import SimMacro
        ds = open_dataset("fsdd", None, progress=False, synthetic_per_class=(2, 1))
        res = Reservoir.setup(SimMacro(0), preset("fsdd"))
        go = sys.argv[4]
        print("ready", flush=True)
        while not os.path.exists(go):
            time.sleep(0.002)
        f = encode_dataset(res, ds, EncodeOptions(progress=False), cache=FeatureCache(target))
        f.save(sys.argv[3])
        print(f.meta["cache"], flush=True)
''')


def _start(*args) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        pytest.fail(f"child did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return proc


def _kill_at_random(proc, rng, max_delay_s) -> None:
    """SIGKILL ``proc`` (which has written once and is writing again, in a loop) after a
    random delay: the kill lands anywhere in serialising, writing, fsync or rename."""
    time.sleep(rng.uniform(0.0, max_delay_s))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    proc.stdout.close()
    proc.stderr.close()


def test_kill_9_while_writing_a_record(tmp_path):
    rng = np.random.default_rng(15)
    path, other = tmp_path / "result.json", tmp_path / "other.json"
    write_record(path, {"i": 0, "payload": [], "sum": 0}, command="kill-test")
    write_record(other, {"accuracy": 0.75}, command="earlier")
    t_end, kills = time.monotonic() + LOOP_S, 0
    for k in range(1, KILLS + 1):
        if time.monotonic() > t_end:
            break
        kills += 1
        base = k * 10**6
        _kill_at_random(_start("record", path, base), rng, 0.08)
        rec = read_record(path)  # never partial: parses, and is one whole record
        assert rec["command"] == "kill-test" and rec["config"]["i"] == rec["i"]
        assert sum(rec["payload"]) == rec["sum"] and len(rec["payload"]) == 20000
        assert rec["i"] > base  # the killed writer's last complete record, not older
        assert read_record(other)["accuracy"] == 0.75  # an earlier result is never lost
    assert kills >= MIN_KILLS
    leftovers = [p.name for p in tmp_path.iterdir() if p.name not in (path.name, other.name)]
    assert all(name.startswith(".tmp-") for name in leftovers), leftovers


def test_kill_9_while_writing_the_feature_cache(tmp_path):
    rng = np.random.default_rng(16)
    cache = FeatureCache(tmp_path)
    keep = Features(np.ones((3, 2), np.float32), np.arange(3), np.zeros(3, bool), {"k": 1})
    cache.store("earlier", keep)
    t_end, kills = time.monotonic() + LOOP_S, 0
    for k in range(1, KILLS + 1):
        if time.monotonic() > t_end:
            break
        kills += 1
        base = k * 10**6
        _kill_at_random(_start("cache", tmp_path, base), rng, 0.08)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a partial entry would warn: fail instead
            got = cache.load("victim")
            earlier = cache.load("earlier")
        np.testing.assert_array_equal(earlier.values, keep.values)
        i, n = got.meta["i"], got.meta["n"]
        assert got.values.shape == (n, 300) and (got.values == i).all()
        assert (got.labels == i).all() and len(got.is_test) == n
        assert i > base  # the killed writer's last complete entry, not an older one
    assert kills >= MIN_KILLS


def test_two_processes_encoding_the_same_key_at_once(tmp_path):
    cache_dir, go = tmp_path / "cache", tmp_path / "go"
    procs = [_start("encode", cache_dir, tmp_path / f"f{k}.npz", go) for k in range(2)]
    go.touch()  # both are set up: they encode and store the same key together
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    a, b = (Features.load(tmp_path / f"f{k}.npz") for k in range(2))
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.labels, b.labels)
    (entry,) = [p for p in cache_dir.iterdir() if not p.name.startswith(".tmp-")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stored = FeatureCache(cache_dir).load(entry.stem)
    np.testing.assert_array_equal(stored.values, a.values)
    assert not [p for p in cache_dir.iterdir() if p.name.startswith(".tmp-")]
