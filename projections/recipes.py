"""Every recipe the selection rounds compared, by name (docs/zeroshot.md has the rounds).

``candidates()`` lists them, earlier defaults included (``default_round8``,
``default_round12``, ...), and :func:`get_method` finds any of them or a recipe of
:data:`~projections.train.METHODS` by name, so that every recorded figure can be re-run
from its method's name. The recipes are data: nothing here trains or evaluates.
"""
from __future__ import annotations

from rram_lsm.errors import ConfigError

from .train import METHODS, MethodConfig

__all__ = ["candidates", "get_method", "find_recipe"]


def get_method(name: str) -> MethodConfig:
    """The named recipe from :data:`METHODS`, or one of the selection rounds' candidates
    (:func:`candidates`, e.g. ``default_round8``, an earlier default)
    so that every recorded figure can be re-run by name; unknown names raise ConfigError."""
    if name in METHODS:
        return METHODS[name]
    for method in candidates():
        if method.name == name:
            return method
    raise ConfigError(f"unknown method {name!r}; expected one of {sorted(METHODS)} or a "
                      f"candidate of projections.recipes.candidates() (e.g. default_round8)")


def find_recipe(fields: dict, prefer: str | None = None) -> MethodConfig | None:
    """The recipe by name whose fields, name aside, are ``fields`` (a recorded
    ``MethodConfig`` as a dict; fields added since take their defaults): ``prefer``'s if
    it has them, else the first of :data:`METHODS` and :func:`candidates`; None if no
    named recipe has them (or a field is unknown). A record written under ``default``
    thus reruns as the recipe it ran, after the default has moved on."""
    try:
        wanted = MethodConfig(**{**fields, "name": "_"})
    except (TypeError, ConfigError):
        return None
    first = []
    if prefer is not None:
        try:
            first = [get_method(prefer)]
        except ConfigError:
            pass
    # earlier defaults by the name of the round that chose them (the earliest of equal
    # ones) before the candidates they were
    every = candidates()
    named = [m for m in every if m.name.startswith("default_round")] + \
        [m for m in every if not m.name.startswith("default_round")]
    for method in (*first, *METHODS.values(), *named):
        if method.replace(name="_") == wanted:
            return method
    return None


def candidates() -> list[MethodConfig]:
    """The recipes compared when the default was chosen (docs/zeroshot.md has the scores)."""
    p = METHODS["paper"]
    s = p.replace(standardize=True, temperature=0.1, fewshot_sources="both")
    sup = s.replace(clip_weight=0.0, supcon_weight=1.0)
    joint = s.replace(clip_weight=0.0, joint_weight=1.0)
    return [
        METHODS["raw"], p, METHODS["protonet"],
        p.replace(name="paper_both", fewshot_sources="both"),
        s.replace(name="clip_std_t0.1"),
        s.replace(name="clip_structure", structure_weight=1.0),
        s.replace(name="cwcl", clip_weight=0.0, cwcl_weight=1.0),
        sup.replace(name="supcon"),
        sup.replace(name="supcon_mlp", head="mlp"),
        sup.replace(name="supcon_raw0.5", fewshot_raw_weight=0.5),
        sup.replace(name="supcon_align_uniform", align_weight=1.0, uniform_weight=1.0),
        sup.replace(name="supcon_structure", structure_weight=1.0),
        sup.replace(name="supcon_structure_raw0.5", structure_weight=1.0,
                    fewshot_raw_weight=0.5),
        sup.replace(name="supcon_structure_audio", structure_weight=1.0,
                    fewshot_sources="audio"),
        sup.replace(name="supcon_structure_own", structure_weight=1.0,
                    fewshot_sources="own"),
        sup.replace(name="supcon_structure_own_raw0.3", structure_weight=1.0,
                    fewshot_sources="own", fewshot_raw_weight=0.3),
        sup.replace(name="supcon_structure_own_raw0.5", structure_weight=1.0,
                    fewshot_sources="own", fewshot_raw_weight=0.5),
        sup.replace(name="supcon_structure_mlp", structure_weight=1.0, head="mlp"),
        sup.replace(name="supcon_structure3", structure_weight=3.0),
        joint.replace(name="joint"),
        joint.replace(name="joint_raw0.5", fewshot_raw_weight=0.5),
        joint.replace(name="joint_supcon", supcon_weight=1.0),
        joint.replace(name="joint_supcon_raw0.3", supcon_weight=1.0, fewshot_raw_weight=0.3),
        joint.replace(name="joint_mlp", head="mlp"),
        joint.replace(name="joint_structure", structure_weight=1.0),
        joint.replace(name="joint_audio", fewshot_sources="audio"),
    ] + _round3() + _round4() + _round5() + _round6() + _round8() + _round9() + \
        _round10() + _round12() + _round13() + _round14() + _round15() + _round18() + \
        _round19() + [_default_of_round12(), _default_of_round13(), _default_of_round14(),
                      _default_of_round17(), METHODS["default"]]


def _default_before_round4() -> MethodConfig:
    """The default rounds 1-3 chose (rounds 3's variants are built on it)."""
    return _default_of_round5().replace(name="default_round3", features="counts",
                                        fewshot_raw_weight=0.3, fewshot_whiten=None)


def _default_of_round4() -> MethodConfig:
    """Round 4's centre: counts, whitened raw mix 0.7 (the default between rounds 4 and 5)."""
    return _default_of_round5().replace(name="default_round4", features="counts",
                                        fewshot_raw_weight=0.7)


def _default_of_round5() -> MethodConfig:
    """The default round 5 chose (whitening 0.5, inductive): the default before issue 17."""
    return _default_of_round6().replace(name="default_round5", fewshot_whiten=0.5,
                                      fewshot_transductive=0)


def _round3() -> list[MethodConfig]:
    """Round 3: feature kind and power transform, seed ensembles, SupCon temperature."""
    d, r = _default_before_round4(), METHODS["raw"]
    return [
        r.replace(name="raw_sqrt", feature_transform="sqrt"),
        r.replace(name="raw_windowed", features="windowed"),
        r.replace(name="raw_windowed_sqrt", features="windowed", feature_transform="sqrt"),
        r.replace(name="raw_counts+windowed_sqrt", features="counts+windowed",
                  feature_transform="sqrt"),
        d.replace(name="default_sqrt", feature_transform="sqrt"),
        d.replace(name="default_windowed", features="windowed"),
        d.replace(name="default_windowed_sqrt", features="windowed", feature_transform="sqrt"),
        d.replace(name="default_counts+windowed_sqrt", features="counts+windowed",
                  feature_transform="sqrt"),
        d.replace(name="default_ens3", ensemble=3),
        d.replace(name="default_ens3_raw0.5", ensemble=3, fewshot_raw_weight=0.5),
        d.replace(name="default_t0.2", temperature=0.2),
        d.replace(name="default_t0.05", temperature=0.05),
    ]


def _round4() -> list[MethodConfig]:
    """Round 4: within-class whitening of the few-shot metric (shrinkage, raw weight),
    around round 3's winner (raw weight 0.3, no whitening; the default before)."""
    d, r = _default_of_round4(), METHODS["raw"]
    return [_default_before_round4(), d] + [r.replace(name=f"raw_whiten{s}", fewshot_whiten=s)
                                            for s in (0.2, 0.5, 0.8)] + [
        d.replace(name=f"default_whiten{s}_raw{w}", fewshot_whiten=s, fewshot_raw_weight=w)
        for s, w in ((0.5, 0.3), (0.5, 0.5), (0.5, 0.8), (0.5, 0.9), (0.2, 0.7),
                     (0.8, 0.7))]


def _round5() -> list[MethodConfig]:
    """Round 5: a readout that sees the reservoir's input next to its spike counts
    (``counts+input``, the direct input-to-readout connections of echo-state networks).
    Input rates alone are an ablation (``--feature-kind input``), never a candidate: a
    method of an LSM tool must use the reservoir."""
    d, r = _default_of_round4(), METHODS["raw"]
    return [r.replace(name="raw_whiten0.5_counts+input", features="counts+input",
                      fewshot_whiten=0.5),
            d.replace(name="default_counts+input", features="counts+input"),
            d.replace(name="default_counts+input_raw0.5", features="counts+input",
                      fewshot_raw_weight=0.5),
            d.replace(name="default_raw1.0", fewshot_raw_weight=1.0),
            _default_of_round5()]


def _round6() -> list[MethodConfig]:
    """Round 6 (issue 17): the few-shot metric of the default, scored through untrained
    twins (with ``fewshot_raw_weight`` 1 a trained recipe's few-shot figures are its
    twin's, bit for bit; its zero-shot figures are its heads'): shrinkage, and
    transductive refinement with the episode's unlabelled queries (steps, temperature).
    The time-resolved reservoir features were compared in an exploration on the same
    validation view (docs/zeroshot.md) and lost there."""
    r = METHODS["raw"].replace(features="counts+input", fewshot_sources="own")
    out = [r.replace(name="raw_whiten0.7_counts+input", fewshot_whiten=0.7)]
    for s, steps, t in ((0.5, 3, 0.05), (0.7, 1, 0.05), (0.7, 3, 0.05), (0.7, 10, 0.05),
                        (0.7, 3, 0.1)):
        out.append(r.replace(name=f"raw_whiten{s}_counts+input_trans{steps}_t{t}",
                             fewshot_whiten=s, fewshot_transductive=steps,
                             fewshot_transductive_temperature=t))
    return out + [_default_of_round6()]


def _default_of_round8() -> MethodConfig:
    """The default rounds 8-10 kept: supervised contrast + structure at T = 0.1, few-shot
    on counts+input whitened 0.7 (round 11 added the CLIP term at T = 0.2 and moved
    few-shot to counts+input_span)."""
    return _default_of_round12().replace(name="default_round8", temperature=0.1,
                                         clip_weight=0.0, fewshot_features=None,
                                         fewshot_transform=None, fewshot_whiten=0.7)


def _default_of_round6() -> MethodConfig:
    """The default rounds 6 and 7 kept: round 8's, its heads trained all 100 epochs."""
    return _default_of_round8().replace(name="default_round6", patience=None)


def _round8() -> list[MethodConfig]:
    """Round 8 (issues 14 and 17): early stopping of the default's heads, for speed; the
    rule and the scores are in ``docs/results/zeroshot/selection_round8.py``/``.json``."""
    d = _default_of_round6()
    return [d.replace(name=f"default_patience{p}", patience=p) for p in (30, 20)] + \
        [_default_of_round8()]


def _round9() -> list[MethodConfig]:
    """Round 9 (issue 17): few-shot on counts in windows of each utterance's active span
    (``span``, ``input_span``), with a signed square root; untrained twins of the default.
    The rule and the scores: ``docs/results/zeroshot/selection_round9.py``/``.json`` (the
    best, counts+input_span sqrt whitened 0.9, was 0.003 ahead: below the rule's 0.005,
    so the default kept its metric)."""
    twin = METHODS["raw"].replace(fewshot_sources="own", fewshot_transductive=3,
                                  fewshot_transductive_temperature=0.05)
    grid = [("counts+input", "sqrt", 0.7), ("counts+input_span", "none", 0.7),
            ("counts+input_span", "sqrt", 0.5), ("counts+input_span", "sqrt", 0.7),
            ("counts+input_span", "sqrt", 0.9), ("counts+input+input_span", "sqrt", 0.7),
            ("span+input", "sqrt", 0.7), ("span+input_span", "sqrt", 0.7),
            ("counts+span+input_span", "sqrt", 0.7)]
    return [twin.replace(name=f"raw_{k}_{t}_w{w}_trans3", features=k, feature_transform=t,
                         fewshot_whiten=w) for k, t, w in grid]


def _round10() -> list[MethodConfig]:
    """Round 10 (issue 17): the paper's CLIP term added to the default's loss, for its
    zero-shot half (``docs/results/zeroshot/selection_round10.py``/``.json``; none
    adopted: every zero-shot interval spans 0)."""
    d = _default_of_round8()
    return [d.replace(name=f"default_clip{w:g}_T{t:g}", clip_weight=w, temperature=t)
            for w, t in ((0.5, 0.1), (1.0, 0.1), (2.0, 0.1), (1.0, 0.2))]


def _round12() -> list[MethodConfig]:
    """Round 12 (issue 17): round 11's few-shot metric (counts+input_span, sqrt) with
    whitening 0.8-1.0, 3 or 6 transductive steps, T 0.05 or 0.1; none beat it by the
    rule's 0.005 (``docs/results/zeroshot/selection_round12.py``/``.json``). Round 11
    re-scored rounds 9 and 10 on all 21 pseudo splits and lists no recipe of its own."""
    twin = METHODS["raw"].replace(fewshot_sources="own", features="counts+input_span",
                                  feature_transform="sqrt")
    return [twin.replace(name=f"raw_counts+input_span_sqrt_w{w:g}_trans{k}_T{t:g}",
                         fewshot_whiten=w, fewshot_transductive=k,
                         fewshot_transductive_temperature=t)
            for w in (0.8, 0.9, 0.95, 1.0) for k in (3, 6) for t in (0.05, 0.1)
            if (w, k, t) != (0.9, 3, 0.05)]  # round 9's candidate


def _default_of_round12() -> MethodConfig:
    """The default of rounds 11-12: round 13's, its few-shot without the EM step."""
    return _default_of_round13().replace(name="default_round12", fewshot_em_steps=0)


def _round13() -> list[MethodConfig]:
    """Round 13 (issue 17): EM of a tied-covariance mixture over each episode after the
    prototypes, in the unseen pool's top principal directions; untrained twins of the
    default's metric (``docs/results/zeroshot/selection_round13.py``/``.json``; 10 steps,
    16 directions, shrinkage 0.2 adopted)."""
    twin = _default_of_round12().fewshot_twin()
    return [twin.replace(name=f"raw_counts+input_span_sqrt_w0.9_trans3_T0.05_em{k}_d{d}"
                              f"_s{s:g}", fewshot_em_steps=k, fewshot_em_dims=d,
                         fewshot_em_shrinkage=s)
            for k in (3, 10) for d in (8, 16, 32, 64) for s in (0.2, 0.5, 0.8)]


def _default_of_round13() -> MethodConfig:
    """The default of round 13: today's standardised with the absolute floor 1e-6 and
    without round 19's speaker centring (derived from ``METHODS["default"]``: a later
    default that changes another field must pin this one;
    ``tests/projections/test_scale_floor.py`` checks it against its record)."""
    return METHODS["default"].replace(name="default_round13", scale_floor=0.0,
                                      fewshot_speaker_centring=None)


def _round14() -> list[MethodConfig]:
    """Round 14 (issue 17, a defect): the standardisation floor relative to the median
    feature std (``MethodConfig.scale_floor``), heads and few-shot alike, on round 13's
    default (``docs/results/zeroshot/selection_round14.py``/``.json``)."""
    d = _default_of_round13()
    return [d.replace(name=f"default_floor{f:g}", scale_floor=f) for f in (0.01, 0.03, 0.1, 0.3)]


def _default_of_round14() -> MethodConfig:
    """The default round 14 chose: round 13's with the standardisation floor 0.3 (round 15
    kept it)."""
    return _default_of_round13().replace(name="default_round14", scale_floor=0.3)


def _round15() -> list[MethodConfig]:
    """Round 15 (issue 17): round 14's floor beyond its grid's edge (0.5, 0.7, 0.9), on
    round 14's default (``docs/results/zeroshot/selection_round15.py``/``.json``; none
    beat 0.3 by the rule's margin)."""
    return [_default_of_round14().replace(name=f"default_floor{f:g}", scale_floor=f)
            for f in (0.5, 0.7, 0.9)]


def _default_of_round17() -> MethodConfig:
    """The default rounds 14-18 kept (round 17 changed the features it reads, not the
    recipe): round 14's, without the speaker centring round 19 added."""
    return _default_of_round14().replace(name="default_round17")


def _round18() -> list[MethodConfig]:
    """Round 18 (issue 17): the default's whitening shrinkage and EM directions re-chosen
    for the two-drive features, as untrained twins (none beat the default's 0.9 / 16 by
    the rule's 0.005: ``docs/results/zeroshot/selection_round18.py``/``.json``). Derived
    from round 17's default, the default then."""
    twin = _default_of_round17().fewshot_twin("default_fewshot_twin")
    return [twin.replace(name=f"{twin.name}_w{w:g}_d{d}", fewshot_whiten=w,
                         fewshot_em_dims=d)
            for w in (0.8, 0.9, 0.95) for d in (16, 24, 32) if (w, d) != (0.9, 16)]


def _round19() -> list[MethodConfig]:
    """Round 19 (issue 17): speaker-centred few-shot features, as untrained twins of
    round 17's default (``docs/results/zeroshot/selection_round19.py``/``.json``;
    shrinkage 0.2 won and became the default's)."""
    twin = _default_of_round17().fewshot_twin("default_fewshot_twin")
    return [twin.replace(name=f"default_fewshot_twin_speakers{s:g}",
                         fewshot_speaker_centring=s) for s in (0.2, 0.5)]
