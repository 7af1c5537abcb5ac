"""Few-shot ablations over all 36 splits x 3 seeds (issue 17), written as ablation_*.json.

    RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/ablations.py [STEM ...]

The default's few-shot figures come from raw features (``fewshot_raw_weight`` 1), not from
its heads, so each ablation of the few-shot metric is its untrained twin: the same
prototypes, the same episodes, bit for bit (its zero-shot rows are the default's heads',
in default_36x3.json). Features: ``encode_pair`` on the simulator, chip seed 0, cached.
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def ablations():
    from projections import get_method

    # round 14's default (round 19 added speaker centring to today's)
    d = get_method("default_round14").replace(name="default")
    # the default's few-shot metric as an untrained twin (rounds 11-13): counts beside the
    # cochlea channels' envelope in 5 windows of the active span, sqrt, whitened 0.9,
    # soft k-means, then EM of a tied-covariance mixture (round 13), standardisation floor
    # 0.3 x the median std (round 14)
    twin = d.fewshot_twin()
    # rounds 11-12's metric: the same without EM
    no_em = twin.replace(fewshot_em_steps=0)
    # round 8's metric (the default of rounds 8-10): whole-utterance counts+input, 0.7,
    # standardised as it was then (the floor of round 14 is the current metric's)
    round8 = no_em.replace(features="counts+input", feature_transform="none",
                           fewshot_whiten=0.7, scale_floor=0.0)
    return {
        # the few-shot metric of the default before issue 17 (round 5)
        "ablation_old_default": round8.replace(name="old_default_fewshot", fewshot_whiten=0.5,
                                               fewshot_transductive=0),
        # round 8's metric without the transductive refinement
        "ablation_inductive": round8.replace(name="default_inductive",
                                             fewshot_transductive=0),
        # the reservoir bypassed: the input rates only, round 8's metric
        "ablation_input_only": round8.replace(name="input_only", features="input"),
        # time-resolved reservoir features alone: spikes per neuron in 5 time windows
        "ablation_windowed": round8.replace(name="windowed", features="windowed"),
        # the default's metric (round 9's features, adopted in round 11, EM of round 13);
        # its figures are the default's few-shot figures bit for bit
        "ablation_span": twin.replace(name="counts+input_span_sqrt_em"),
        # rounds 11-12's metric: the default's without EM
        "ablation_span_no_em": no_em.replace(name="counts+input_span_sqrt"),
        # the default's metric with neither the transductive refinement nor EM
        "ablation_span_inductive": no_em.replace(name="counts+input_span_sqrt_inductive",
                                                 fewshot_transductive=0),
        # the same envelope alone (reservoir bypassed), the default's metric
        "ablation_input_span": twin.replace(name="input_span_sqrt_em", features="input_span"),
        # the envelope alone, rounds 11-12's metric
        "ablation_input_span_no_em": no_em.replace(name="input_span_sqrt",
                                                   features="input_span"),
    }


def main(stems=()) -> None:
    import torch

    from projections import run_protocol
    from rram_lsm.app.features import SINGLE_DRIVE, encode_pair
    from rram_lsm.records import write_record

    torch.set_num_threads(1)
    cache = {}
    for stem, cfg in ablations().items():
        if stems and stem not in stems:
            continue
        kind = "counts+input" if cfg.features in ("counts", "input", "counts+input") \
            else cfg.encoded_kind
        if kind not in cache:
            cache[kind] = encode_pair(None, cochlea=SINGLE_DRIVE, kind=kind, progress=False)
        res = run_protocol(cache[kind], cfg, splits="all", seeds=3, shots=(1, 5),
                           progress=False)
        rec = res.to_dict()
        rec["data"] = {"feature_kind": cfg.features}
        write_record(HERE / f"{stem}.json", rec, command="docs/results/zeroshot/ablations.py",
                     config={"method_config": cfg}, seeds=[0, 1, 2])
        fs = rec["fewshot_by_shots"]
        print(f"{stem}: 5-shot a2i {fs['5']['unseen']['audio_to_image']['top1']['mean']:.3f}, "
              f"1-shot {fs['1']['unseen']['audio_to_image']['top1']['mean']:.3f}", flush=True)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])   # stems to run (default: all)
