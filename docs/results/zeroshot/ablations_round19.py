"""Few-shot ablations of round 19's default (speaker-centred features, the cochlea at 875
and 1,750) over all 36 splits x 3 seeds, written as ablation19_*.json.

    RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/ablations_round19.py [STEM ...]

As ablations_round17.py (whose runner this is): each ablation is the default's untrained
twin with one part changed; the twin itself reproduces default_round19_36x3.json's
few-shot rows bit for bit (checked). The default without speaker centring is round 17's,
ablation17_span.json.
"""
from __future__ import annotations

from ablations_round17 import main as run


def ablations():
    from projections import METHODS

    twin = METHODS["default"].fewshot_twin()
    assert twin.fewshot_speaker_centring == 0.2, "round 19's default moved: pin it"
    return {
        # the default's few-shot metric: its figures bit for bit
        "ablation19_span": twin.replace(name="speakers_counts+input_span_sqrt_em"),
        # the reservoir bypassed: the cochlea envelopes alone, speaker-centred
        "ablation19_input_span": twin.replace(name="speakers_input_span_sqrt_em",
                                              features="input_span"),
        # the reservoir's counts alone (no envelope), speaker-centred
        "ablation19_counts": twin.replace(name="speakers_counts_sqrt_em",
                                          features="counts"),
    }


if __name__ == "__main__":
    import sys

    run(sys.argv[1:], ablations(), reference="ablation19_span",
        default_record="default_round19_36x3.json",
        command="docs/results/zeroshot/ablations_round19.py")
