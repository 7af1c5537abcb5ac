"""How often an unseen sample is carried by a feature that never varied in training (the
defect round 14 fixes). A data check, used for no choice.

For every split of 1-9 (seen 7 / unseen 2, seed 0's train part) and every pseudo split of
the validation view (official train files of 1-7), the fraction of unseen samples with at
least one standardised feature of magnitude > 50 (a typical feature is ~1), for the heads'
inputs (counts+input) and few-shot's raw features (counts+input_span, sqrt), with the old
absolute floor (1e-6) and with the default's ``scale_floor``; and, of those samples, the
median share of their squared norm in such features (1: the feature is the whole vector).

    RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/silent_features.py

writes silent_features.json beside it.
"""
from __future__ import annotations

import itertools
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
LIMIT = 50.0


def _check(values, train, unseen, floor):
    from projections.heads import feature_scale

    ref = values[np.unique(train)]
    z = (values[unseen] - ref.mean(0)) / feature_scale(ref.std(0), floor)
    big = np.abs(z) > LIMIT
    hit = big.any(1)
    share = ((z ** 2) * big).sum(1)[hit] / (z ** 2).sum(1)[hit]
    return float(hit.mean()), float(np.median(share)) if hit.any() else 0.0


def main() -> dict:
    from projections import get_method
    from projections.protocol import _prepare
    from projections.selection import validation_view
    from rram_lsm.app.features import SINGLE_DRIVE, encode_pair
    from rram_lsm.records import write_record

    # round 14's default (round 19 added speaker centring to today's)
    d = get_method("default_round14").replace(name="default")
    twin = d.fewshot_twin()
    data = encode_pair(None, cochlea=SINGLE_DRIVE, kind=d.encoded_kind, progress=False)
    views = {"evaluation": (data, tuple(range(1, 10))),
             "validation": (validation_view(data, (1, 2, 3, 4, 5, 6, 7)),
                            (1, 2, 3, 4, 5, 6, 7))}
    out = {"limit": LIMIT, "scale_floor": d.scale_floor}
    for name, (view, classes) in views.items():
        stats: dict = {}
        for unseen in itertools.combinations(classes, 2):
            seen = tuple(c for c in classes if c not in unseen)
            for role, cfg in (("heads", d), ("fewshot", twin)):
                plan = _prepare(view.select_kind(cfg.encoded_kind), seen, unseen, cfg, 0, 0.2)
                values = {"image": plan.x_i if role == "heads" else plan.f_i,
                          "audio": plan.x_a if role == "heads" else plan.f_a}
                for m in ("image", "audio"):
                    part = getattr(plan.sp, m)
                    x = np.asarray(values[m], np.float64)
                    for floor in (0.0, d.scale_floor):
                        frac, share = _check(x, part["train"], part["unseen"], floor)
                        stats.setdefault(f"{role}.{m}.floor{floor:g}", []).append(
                            {"unseen": list(unseen), "fraction": frac, "share": share})
        out[name] = {k: {"mean_fraction": float(np.mean([r["fraction"] for r in v])),
                         "max_fraction": float(np.max([r["fraction"] for r in v])),
                         "per_split": v} for k, v in stats.items()}
        for k, v in out[name].items():
            print(name, k, round(v["mean_fraction"], 4), round(v["max_fraction"], 4))
    write_record(HERE / "silent_features.json", out,
                 command="docs/results/zeroshot/silent_features.py",
                 config={"default": d, "limit": LIMIT}, seeds=[0])
    return out


if __name__ == "__main__":
    main()
