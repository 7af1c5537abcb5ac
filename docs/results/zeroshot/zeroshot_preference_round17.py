"""Which recipe seen-class validation prefers for zero-shot on round 17's features (the
cochlea at 875 and 1,750 side by side): the default against the paper recipe, pseudo
unseen zero-shot audio->image on the validation view (official train files of 1-7, 21
pseudo splits x 3 seeds, as rounds 11-17). Issue 17's zero-shot goal accepts the
default's zero-shot rows if they come from the recipe validation prefers for zero-shot;
round 11 asked this on one drive (the default's heads: 0.486 against 0.476). An analysis
for that goal, used for no choice.

    RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/zeroshot_preference_round17.py

writes zeroshot_preference_round17.json beside it.
"""
from __future__ import annotations

import pathlib

from selection_round11 import SEEDS, SEEN, SEEN_TEST, ZS, _mean, _paired, _protocol

HERE = pathlib.Path(__file__).resolve().parent


def main() -> dict:
    from threadpoolctl import threadpool_limits

    from projections import METHODS
    from projections.selection import validation_view
    from rram_lsm.app.features import encode_pair
    from rram_lsm.app.threads import torch_threads
    from rram_lsm.records import write_record

    scores, records = {}, {}
    with torch_threads(1), threadpool_limits(1):
        data = encode_pair(None, kind="counts+input+input_span", progress=False)
        view = validation_view(data, SEEN)
        for name in ("default", "paper"):
            rec = records[name] = _protocol(view, METHODS[name], ())
            scores[name] = {"zeroshot_top1": _mean(rec, ZS),
                            "seen_test_top1": _mean(rec, SEEN_TEST)}
        scores["default_minus_paper"] = {
            "zeroshot": _paired(records["default"], records["paper"], ZS),
            "seen_test": _paired(records["default"], records["paper"], SEEN_TEST)}
    preferred = max(("default", "paper"), key=lambda n: scores[n]["zeroshot_top1"])
    print(scores, "validation prefers", preferred, flush=True)
    out = {"scores": scores, "prefers_for_zeroshot": preferred,
           "cochlea_drives_per_s": [c["gain_per_s"] for c in data.meta["cochlea"]],
           "n_pseudo_splits": 21, "seeds": SEEDS,
           "view": "official train files of seen classes 1-7, 20 % as pseudo-test"}
    write_record(HERE / "zeroshot_preference_round17.json", out,
                 command="docs/results/zeroshot/zeroshot_preference_round17.py",
                 config={"methods": {n: METHODS[n] for n in ("default", "paper")}},
                 seeds=list(range(SEEDS)))
    return out


if __name__ == "__main__":
    main()
