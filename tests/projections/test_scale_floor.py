"""Standardisation floor (round 14): a feature that never varied in training cannot make
an unseen sample's vector."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from projections import METHODS, PairedFeatures, run_protocol
from projections.heads import ProjectionHead, feature_scale
from projections.train import MethodConfig
from rram_lsm.errors import ConfigError


def test_floor_zero_is_the_old_absolute_floor():
    std = np.array([0.0, 1e-9, 0.5, 2.0], np.float32)
    out = feature_scale(std, 0.0)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.maximum(std, np.float32(1e-6)))


def test_floor_lifts_small_stds_to_a_fraction_of_the_median_only():
    std = np.array([0.0, 0.001, 1.0, 2.0, 3.0])   # median of the positive stds: 1.5
    np.testing.assert_allclose(feature_scale(std, 0.1), [0.15, 0.15, 1.0, 2.0, 3.0])
    # no positive std at all: the floor is relative to 1
    np.testing.assert_allclose(feature_scale(np.zeros(3), 0.3), [0.3, 0.3, 0.3])


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.0])
def test_floor_outside_unit_interval_is_refused(bad):
    with pytest.raises(ConfigError, match="scale_floor"):
        feature_scale(np.ones(3), bad)
    with pytest.raises(ConfigError, match="scale_floor"):
        METHODS["default"].replace(scale_floor=bad)


def test_head_standardisation_bounds_a_feature_silent_in_training():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)).astype(np.float32)
    x[:, 2] = 0.0                                   # a neuron silent for every training row
    head = ProjectionHead(6, 4, "linear", generator=torch.Generator().manual_seed(0))
    head.set_standardisation(torch.as_tensor(x), scale_floor=0.1)
    new = torch.zeros(1, 6)
    new[0, 2] = 1.0                                 # ... that fires for a new sample
    z = (new - head.mean) / head.std
    typical = float(np.median(x.std(0, ddof=1)[x.std(0) > 0]))
    assert float(z[0, 2]) == pytest.approx(1.0 / (0.1 * typical), rel=1e-5)
    head.set_standardisation(torch.as_tensor(x))    # the old floor: a million-fold blow-up
    assert float(((new - head.mean) / head.std)[0, 2]) == pytest.approx(1e6, rel=1e-5)


def _with_dead_column(data: PairedFeatures, unseen, seed=0) -> PairedFeatures:
    """Column 0 zero on every seen sample, 1 on a random half of the unseen samples (of
    both classes alike): it says nothing about the class, and it never varied in
    training."""
    rng = np.random.default_rng(seed)
    parts = {}
    for m in ("image", "audio"):
        x = getattr(data, f"{m}_values").copy()
        labels = getattr(data, f"{m}_labels")
        x[:, 0] = 0.0
        pool = np.flatnonzero(np.isin(labels, unseen))
        x[rng.choice(pool, len(pool) // 2, replace=False), 0] = 1.0
        parts[m] = (x, labels, getattr(data, f"{m}_is_test"))
    return PairedFeatures(*parts["image"], *parts["audio"], meta=data.meta)


def test_floor_keeps_few_shot_from_collapsing_onto_a_dead_feature(synthetic):
    unseen = (3, 8)
    dead = _with_dead_column(synthetic, unseen)

    def fewshot(data, floor):
        method = METHODS["raw"].replace(fewshot_sources="own", scale_floor=floor)
        res = run_protocol(data, method, unseen=unseen, seeds=1, shots=(2,), episodes=20,
                           progress=False).to_dict()
        return res["fewshot"]["unseen"]["audio_to_image"]["top1"]["mean"]

    clean, old = fewshot(synthetic, 0.3), fewshot(dead, 0.0)
    # with the old floor half the queries are the dead feature alone: they all look alike
    assert old < clean - 0.2
    # the floor bounds it (at 1 / 0.3 typical stds it is one feature among 20 again)
    assert fewshot(dead, 0.1) > old + 0.1
    assert fewshot(dead, 0.3) >= clean - 0.02


def test_both_engines_train_heads_with_the_recipes_floor(synthetic):
    from projections import train_heads
    from projections.batched import TrainJob, train_heads_batched
    from projections.splits import split_cross_modal

    x = {m: getattr(synthetic, f"{m}_values").copy() for m in ("image", "audio")}
    for v in x.values():
        v[:, 0] = 0.0                               # silent on every sample
    sp = split_cross_modal(synthetic.image_labels, synthetic.image_is_test,
                           synthetic.audio_labels, synthetic.audio_is_test,
                           seen=(1, 2, 3, 4, 5, 6, 7), unseen=(8, 9), seed=0)
    job = TrainJob(sp.pairs("train", synthetic.image_labels, synthetic.audio_labels),
                   sp.pairs("val", synthetic.image_labels, synthetic.audio_labels), 0)
    cfg = METHODS["default"].replace(features="counts", epochs=1, batch_size=50)
    per_run = train_heads(cfg, x["image"], x["audio"], job.train_pairs, job.val_pairs,
                          synthetic.image_labels, synthetic.audio_labels, seed=0).model
    batched = train_heads_batched(cfg, x["image"], x["audio"], [job],
                                  synthetic.image_labels, synthetic.audio_labels)[0].model
    for model in (per_run, batched):
        for m in ("image", "audio"):
            std = getattr(model, m).std.numpy()
            typical = np.median(std[1:])            # the live features keep their std
            assert std[0] == pytest.approx(cfg.scale_floor * typical, rel=1e-5)


def test_only_the_defaults_from_round_14_on_carry_a_floor():
    from projections.recipes import _round14, _round15, _round18, _round19, candidates

    d = METHODS["default"]
    assert d.scale_floor == 0.3 and d.fewshot_twin().scale_floor == 0.3
    # rounds 18 and 19 ran twins of round 17's default, whose floor is round 14's
    floored = {c.name for c in _round14() + _round15() + _round18() + _round19()} | \
        {"default", "default_round14", "default_round17"}
    for c in candidates():
        if c.name not in floored:
            assert c.scale_floor == 0.0, c.name


@pytest.mark.parametrize("name, record", [
    ("default_round13", "default_round13_36x3.json"),
    ("default_round14", "selection_round15.json")])
def test_earlier_defaults_by_name_are_the_recipes_their_records_ran(name, record):
    """A default that is changed later must leave the recipes of the records alone."""
    import dataclasses
    import json
    from pathlib import Path

    from projections import get_method

    path = Path(__file__).resolve().parents[2] / "docs/results/zeroshot" / record
    config = json.loads(path.read_text())["config"]
    ran = config.get("method_config") or config["adopted"]
    got = dataclasses.asdict(get_method(name))
    # fields added after the record take their defaults (none changes what it ran)
    ran = dataclasses.asdict(MethodConfig(**ran))
    assert {k: v for k, v in got.items() if k != "name"} == \
        {k: v for k, v in ran.items() if k != "name"}


def test_analog_head_studies_rerun_by_the_name_the_docs_give():
    """docs/analog-heads.md reruns its studies with ``--method default_round6``: their
    recorded method configs must be that recipe, field for field."""
    import dataclasses
    import json
    from pathlib import Path

    from projections import get_method

    want = dataclasses.asdict(get_method("default_round6"))
    folder = Path(__file__).resolve().parents[2] / "docs" / "results" / "analog_heads"
    studies = sorted(folder.glob("study*.json"))
    assert len(studies) == 4
    for path in studies:
        recorded = json.loads(path.read_text())["config"]["method_config"]
        assert {k: want[k] for k in recorded if k != "name"} == \
            {k: v for k, v in recorded.items() if k != "name"}, path.name
