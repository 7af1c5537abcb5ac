"""Where the cochlea's drive moves the spoken pairs: each feature block of the default's
few-shot metric on its own, at the two calibrations. An analysis on the validation view
only (official train files of 1-7, 21 pseudo splits x 3 seeds), used for no choice.

The default's untrained twin (its few-shot half, bit for bit) scores pseudo 5-shot
audio->image on ``counts+input_span`` (what the default reads), on the reservoir's spike
counts alone and on the cochlea channels' envelope alone (``input_span``: the reservoir
bypassed), at ``gain_per_s`` 875 and 1,750 (selection_round16.py: validation keeps 875).

    RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/gain_blocks_validation.py

writes gain_blocks_validation.json beside it.
"""
from __future__ import annotations

import pathlib

from selection_round11 import FS5, SEEDS, SEEN, _protocol

HERE = pathlib.Path(__file__).resolve().parent
GAINS = (875.0, 1750.0)
BLOCKS = ("counts+input_span", "counts", "input_span")


def main() -> dict:
    from threadpoolctl import threadpool_limits

    from projections import get_method
    from projections.selection import validation_view
    from rram_lsm.app.features import cochlea_for, encode_pair
    from rram_lsm.app.threads import torch_threads
    from rram_lsm.records import write_record

    # round 14's default, the default then (round 19 added speaker centring)
    twin = get_method("default_round14").replace(name="default").fewshot_twin()
    out = {"method": twin.name, "gains": {}}
    with torch_threads(1), threadpool_limits(1):
        for gain in GAINS:
            data = encode_pair(None, kind=twin.encoded_kind, progress=False,
                               cochlea=cochlea_for(gain))
            view = validation_view(data, SEEN)
            entry = out["gains"][f"{gain:g}"] = {}
            for block in BLOCKS:
                cfg = twin.replace(name=f"{twin.name}_on_{block}", fewshot_features=block)
                rec = _protocol(view, cfg, (5,))
                per = {f"{r['unseen'][0]} vs {r['unseen'][1]}": sum(r[FS5]) / len(r[FS5])
                       for r in rec["per_split"]}
                entry[block] = {"mean": sum(per.values()) / len(per), "per_split": per}
                print(f"gain {gain:g} {block}: {entry[block]['mean']:.3f}; " + ", ".join(
                    f"{k} {per[k]:.3f}" for k in ("2 vs 3", "2 vs 7", "3 vs 6", "6 vs 7")),
                    flush=True)
    out["view"] = "official train files of seen classes 1-7, 20 % as pseudo-test"
    write_record(HERE / "gain_blocks_validation.json", out,
                 command="docs/results/zeroshot/gain_blocks_validation.py",
                 config={"twin": twin, "gains_per_s": list(GAINS), "blocks": list(BLOCKS)},
                 seeds=list(range(SEEDS)))
    return out


if __name__ == "__main__":
    main()
