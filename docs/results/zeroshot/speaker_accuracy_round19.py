"""How often round 19's speaker discriminant names the speaker of an unseen utterance, on
every evaluation split (seed 0's parts), per unseen digit. An analysis of the default's
few-shot metric read after round 19's choice, used for none: it explains which pairs the
centring helps and which it costs (docs/zeroshot.md, round 19's results).

    RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/speaker_accuracy_round19.py

writes speaker_accuracy_round19.json beside it.
"""
from __future__ import annotations

import itertools
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def named_right(data, classes, cfg, seed: int = 0) -> list[dict]:
    """Per split of ``classes`` into 2 unseen and the rest seen (``seed``'s parts): the
    share of pool utterances whose speaker ``cfg``'s discriminant names right, overall
    and per unseen digit (the pool's speakers are read only to score the names)."""
    from projections.protocol import _prepare, _standardizer
    from projections.speakers import predict_speakers

    rows = []
    for unseen in itertools.combinations(classes, 2):
        seen = tuple(c for c in classes if c not in unseen)
        plan = _prepare(data, seen, unseen, cfg, seed, 0.2)
        raw = _standardizer(plan.f_a, plan.sp.audio["train"], cfg.scale_floor)(plan.f_a)
        pool = np.unique(plan.sp.audio["unseen"])
        named = predict_speakers(raw, data.audio_labels, data.audio_speakers,
                                 plan.sp.audio["train"], pool, cfg.fewshot_speaker_centring)
        right = named == data.audio_speakers[pool]
        rows.append({"unseen": list(unseen), "named_right": float(right.mean()),
                     "by_digit": {str(d): float(right[data.audio_labels[pool] == d].mean())
                                  for d in unseen}})
    return rows


def main() -> dict:
    from projections import METHODS
    from projections.protocol import DIGITS
    from rram_lsm.app.features import encode_pair
    from rram_lsm.records import write_record

    cfg = METHODS["default"].fewshot_twin()
    assert cfg.fewshot_speaker_centring == 0.2, "round 19's default moved: pin it"
    data = encode_pair(None, kind=METHODS["default"].encoded_kind, progress=False)
    rows = named_right(data, DIGITS, cfg)
    by_digit = {str(d): float(np.mean([r["by_digit"][str(d)] for r in rows
                                       if d in r["unseen"]])) for d in DIGITS}
    out = {"rows": rows, "mean": float(np.mean([r["named_right"] for r in rows])),
           "by_digit": by_digit, "seed": 0, "shrinkage": cfg.fewshot_speaker_centring}
    for r in sorted(rows, key=lambda r: r["named_right"])[:10]:
        print(r["unseen"], round(r["named_right"], 3),
              {k: round(v, 3) for k, v in r["by_digit"].items()})
    print("mean", round(out["mean"], 3), "by digit",
          {k: round(v, 3) for k, v in by_digit.items()})
    write_record(HERE / "speaker_accuracy_round19.json", out,
                 command="docs/results/zeroshot/speaker_accuracy_round19.py",
                 config={"method_config": cfg}, seeds=[0])
    return out


if __name__ == "__main__":
    main()
