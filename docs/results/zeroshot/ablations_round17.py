"""Few-shot ablations of round 17's default (the cochlea read at 875 and 1,750 side by
side) over all 36 splits x 3 seeds, written as ablation17_*.json.

    RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/ablations_round17.py [STEM ...]

As ablations.py, on the two-drive features ``encode_pair`` gives by default: each
ablation of the few-shot metric is the default's untrained twin with one part changed
(its zero-shot rows are the default's heads', in default_round17_36x3.json). The twin
itself must reproduce the default's few-shot figures bit for bit (checked here).
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
KEY = "fewshot.5.unseen.audio_to_image.top1"


def ablations():
    from projections import get_method

    # round 17's default (round 19 added speaker centring to today's)
    twin = get_method("default_round17").fewshot_twin("default_fewshot_twin")
    return {
        # the default's few-shot metric on both drives: its figures bit for bit
        "ablation17_span": twin.replace(name="two_drives_counts+input_span_sqrt_em"),
        # the reservoir bypassed: both drives' cochlea envelopes alone
        "ablation17_input_span": twin.replace(name="two_drives_input_span_sqrt_em",
                                              features="input_span"),
        # the reservoir's counts of both drives alone (no envelope)
        "ablation17_counts": twin.replace(name="two_drives_counts_sqrt_em",
                                          features="counts"),
        # the default's metric without EM (rounds 11-12's)
        "ablation17_span_no_em": twin.replace(name="two_drives_counts+input_span_sqrt",
                                              fewshot_em_steps=0),
    }


def main(stems=(), cases=None, reference="ablation17_span",
         default_record="default_round17_36x3.json",
         command="docs/results/zeroshot/ablations_round17.py") -> None:
    """Run ``cases`` (stem -> twin; default :func:`ablations`), or those of ``stems``;
    the ``reference`` stem must reproduce ``default_record``'s few-shot rows."""
    import torch

    from projections import METHODS, run_protocol
    from rram_lsm.app.features import encode_pair
    from rram_lsm.records import read_record, write_record

    torch.set_num_threads(1)
    data = encode_pair(None, kind=METHODS["default"].encoded_kind, progress=False)
    drives = [c["gain_per_s"] for c in data.meta["cochlea"]]
    default = read_record(HERE / default_record)["per_split"]
    for stem, cfg in (cases or ablations()).items():
        if stems and stem not in stems:
            continue
        res = run_protocol(data, cfg, splits="all", seeds=3, shots=(1, 5), progress=False,
                           workers=2)
        rec = res.to_dict()
        rec["data"] = {"feature_kind": cfg.features, "cochlea_drives_per_s": drives}
        if stem == reference:
            rec["equals_default_fewshot"] = all(
                r[k] == d[k] for r, d in zip(rec["per_split"], default)
                for k in r if k.startswith("fewshot."))
            if not rec["equals_default_fewshot"]:
                raise RuntimeError("the twin does not reproduce the default's few-shot rows")
        write_record(HERE / f"{stem}.json", rec,
                     command=command,
                     config={"method_config": cfg, "cochlea_drives_per_s": drives},
                     seeds=[0, 1, 2])
        fs = rec["fewshot_by_shots"]
        print(f"{stem}: 5-shot a2i {fs['5']['unseen']['audio_to_image']['top1']['mean']:.3f}, "
              f"1-shot {fs['1']['unseen']['audio_to_image']['top1']['mean']:.3f}", flush=True)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])   # stems to run (default: all)
