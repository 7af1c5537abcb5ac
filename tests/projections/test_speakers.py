"""Speaker-centred few-shot features: predicted speakers, per-speaker centring, and the
protocol reading both only where the data name their speakers."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from projections import PairedFeatures, run_protocol
from projections.data import load_npz, save_npz
from projections.selection import validation_view
from projections.speakers import (centre_by_group, predict_speakers, speaker_centred,
                                  speakers_to_name)
from projections.train import MethodConfig
from rram_lsm.errors import ConfigError, ShapeError

SPEAKERS = np.array(["ann", "bob", "cid", "dee"])


def _spoken(n_per_cell=12, digits=range(5), dim=16, speaker_scale=3.0, digit_scale=1.0,
            noise=0.6, seed=0):
    """Utterances = speaker offset + digit mean + noise; every speaker says every digit
    ``n_per_cell`` times. With ``speaker_scale`` above ``digit_scale`` the speakers are
    the pool's largest clusters, as in FSDD."""
    rng = np.random.default_rng(seed)
    offsets = speaker_scale * rng.normal(size=(len(SPEAKERS), dim))
    means = digit_scale * rng.normal(size=(len(list(digits)), dim))
    rows = [(d, s) for d in digits for s in range(len(SPEAKERS)) for _ in range(n_per_cell)]
    labels = np.array([d for d, _ in rows])
    who = np.array([s for _, s in rows])
    values = offsets[who] + means[labels] + noise * rng.normal(size=(len(rows), dim))
    return values.astype(np.float32), labels, SPEAKERS[who]


def test_predicted_speakers_transfer_to_unheard_digits_without_reading_the_pools():
    values, labels, speakers = _spoken()
    train = np.flatnonzero(labels < 3)
    pool = np.flatnonzero(labels >= 3)
    guess = predict_speakers(values, labels, speakers, train, pool)
    assert np.mean(guess == speakers[pool]) > 0.95
    blind = speakers.copy()
    blind[pool] = "?"          # the pool's own labels are never read
    assert np.array_equal(predict_speakers(values, labels, blind, train, pool), guess)


def test_centring_takes_each_groups_mean_off_its_rows_only():
    values, labels, speakers = _spoken()
    rows = np.flatnonzero(labels == 4)
    out = centre_by_group(values, rows, speakers[rows])
    for s in SPEAKERS:
        mine = rows[speakers[rows] == s]
        np.testing.assert_allclose(out[mine].mean(0), 0.0, atol=1e-5)
    others = np.setdiff1d(np.arange(len(values)), rows)
    assert np.array_equal(out[others], values[others])
    with pytest.raises(ShapeError):
        centre_by_group(values, rows, speakers[:3])


def test_centring_removes_the_speaker_spread_of_the_pool():
    values, labels, speakers = _spoken()
    train, pool = np.flatnonzero(labels < 3), np.flatnonzero(labels >= 3)
    centred, guess = speaker_centred(values, labels, speakers, train, pool)
    assert guess.shape == pool.shape

    def speaker_share(x):
        x = x[pool] - x[pool].mean(0)
        between = sum((speakers[pool] == s).sum() * (x[speakers[pool] == s].mean(0) ** 2
                                                      ).sum() for s in SPEAKERS)
        return between / (x ** 2).sum()

    assert speaker_share(values) > 0.7 and speaker_share(centred) < 0.05


def test_speaker_prediction_rejects_what_it_cannot_fit():
    values, labels, speakers = _spoken()
    train, pool = np.flatnonzero(labels < 3), np.flatnonzero(labels >= 3)
    with pytest.raises(ConfigError, match="2 speakers"):
        predict_speakers(values, labels, np.full(len(labels), "solo"), train, pool)
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match="shrinkage"):
            predict_speakers(values, labels, speakers, train, pool, bad)
        with pytest.raises(ConfigError, match="fewshot_speaker_centring"):
            MethodConfig(fewshot_speaker_centring=bad)


def test_a_speaker_with_one_training_row_is_left_out_not_fatal():
    values, labels, speakers = _spoken()
    train, pool = np.flatnonzero(labels < 3), np.flatnonzero(labels >= 3)
    rare = speakers.copy()
    rare[train[0]] = "eve"                       # one training utterance of her
    assert "eve" not in speakers_to_name(rare, train)
    guess = predict_speakers(values, labels, rare, train, pool)
    assert "eve" not in guess and np.mean(guess == speakers[pool]) > 0.95
    # the protocol centres only where two speakers can be named: one plus a lone
    # utterance of another is nothing to centre (and no error mid-run)
    from types import SimpleNamespace

    from projections.protocol import _speakers_known

    data = _paired()
    parts = SimpleNamespace(audio={"train": np.flatnonzero(data.audio_labels < 4)})
    lone = np.full(len(data.audio_labels), "solo")
    lone[parts.audio["train"][0]] = "eve"
    assert not _speakers_known(dataclasses.replace(data, audio_speakers=lone), parts)
    assert _speakers_known(data, parts)


def _paired(seed=0):
    """Images are clean digit clusters; the audio is :func:`_spoken`'s, official test
    files marked per cell."""
    values, labels, speakers = _spoken(digits=range(6), seed=seed)
    rng = np.random.default_rng(seed + 1)
    image = (rng.normal(size=(6, 16))[labels] + 0.3 * rng.normal(size=values.shape))
    is_test = np.tile(np.r_[np.zeros(9, bool), np.ones(3, bool)], len(labels) // 12)
    return PairedFeatures(image.astype(np.float32), labels, is_test, values, labels,
                          is_test, {"synthetic": True}, audio_speakers=speakers)


def _fewshot(data, cfg):
    res = run_protocol(data, cfg, seen=(0, 1, 2, 3), unseen=(4, 5), seeds=1, shots=(1,),
                       episodes=30, progress=False, engine="per-run")
    return res.aggregate()["fewshot"]["1"]["unseen"]["audio_to_image"]["top1"]["mean"]


def test_protocol_centres_the_audio_pool_when_the_data_name_speakers():
    data = _paired()
    plain = MethodConfig(name="plain", trained=False, fewshot_sources="own",
                         fewshot_raw_weight=1.0, standardize=True)
    centred = plain.replace(name="centred", fewshot_speaker_centring=0.2)
    assert plain.fewshot_twin().fewshot_speaker_centring is None
    assert centred.fewshot_twin().fewshot_speaker_centring == 0.2
    # 1-shot prototypes sit on their speaker's offset until the offset is taken off
    assert _fewshot(data, centred) > _fewshot(data, plain) + 0.15
    anonymous = dataclasses.replace(data, audio_speakers=None)
    assert _fewshot(anonymous, centred) == _fewshot(anonymous, plain)


def test_speakers_survive_the_validation_view_kinds_and_npz(tmp_path):
    data = _paired()
    view = validation_view(data, seen=(0, 1, 2, 3))
    keep = np.isin(data.audio_labels, (0, 1, 2, 3)) & ~data.audio_is_test
    assert np.array_equal(view.audio_speakers, data.audio_speakers[keep])
    save_npz(data, tmp_path / "f.npz")
    assert np.array_equal(load_npz(tmp_path / "f.npz").audio_speakers, data.audio_speakers)
    with pytest.raises(ConfigError, match="audio_speakers"):
        dataclasses.replace(data, audio_speakers=data.audio_speakers[:5])


def test_the_batched_engine_centres_as_the_per_run_loop_does():
    data = _paired()
    cfg = MethodConfig(name="trained", standardize=True, epochs=2, batch_size=32,
                       fewshot_sources="own", fewshot_raw_weight=1.0,
                       fewshot_speaker_centring=0.2)
    runs = {engine: run_protocol(data, cfg, seen=(0, 1, 2, 3), unseen=(4, 5), seeds=2,
                                 shots=(1,), episodes=10, progress=False, engine=engine)
            for engine in ("per-run", "batched")}
    rows = {k: [r.to_dict() for r in v.runs] for k, v in runs.items()}
    for a, b in zip(rows["per-run"], rows["batched"]):
        a.pop("train_wall_s"), b.pop("train_wall_s")
        assert a == b
    off = run_protocol(data, cfg.replace(fewshot_speaker_centring=None), seen=(0, 1, 2, 3),
                       unseen=(4, 5), seeds=2, shots=(1,), episodes=10, progress=False,
                       engine="batched")
    assert [r.fewshot for r in off.runs] != [r.fewshot for r in runs["batched"].runs]


def test_features_name_speakers_only_for_a_closed_speaker_set():
    from types import SimpleNamespace

    from rram_lsm.app.features import _speakers_of

    labels = np.array([0, 0, 1, 1])
    is_test = np.array([False, True, False, True])
    feats = SimpleNamespace(labels=labels, is_test=is_test)

    def listing(names, lab=labels, test=is_test):
        return SimpleNamespace(name="fsdd", labels=lab, is_test=test,
                               meta=[{"speaker": n} for n in names])

    assert _speakers_of(listing(["ann", "ann", "bob", "bob"]), feats).tolist() == \
        ["ann", "ann", "bob", "bob"]
    # a test speaker the training files lack (TIDIGITS), or an unnamed one: none named
    assert _speakers_of(listing(["ann", "cid", "bob", "bob"]), feats) is None
    assert _speakers_of(listing(["ann", "", "bob", "bob"]), feats) is None
    with pytest.raises(RuntimeError, match="one order"):
        _speakers_of(listing(["ann"] * 4, test=is_test[::-1]), feats)


def test_the_cli_says_whether_it_centred():
    from rram_lsm.app.commands.zeroshot import _provenance, _speaker_line

    def named(data):
        return _provenance(data)["n_audio_speakers"]

    data = _paired()
    on = MethodConfig(fewshot_raw_weight=1.0, fewshot_speaker_centring=0.2)
    assert "on (discriminant shrinkage 0.2, 4 speakers named" in _speaker_line(
        on, named(data))
    assert "the data name no speakers" in _speaker_line(
        on, named(dataclasses.replace(data, audio_speakers=None)))
    assert "off (the recipe's" in _speaker_line(
        on.replace(fewshot_speaker_centring=None), named(data))
