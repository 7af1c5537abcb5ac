"""Summarise the zero-/few-shot records in this folder (issue 17's figures).

    python docs/results/zeroshot/summarize.py   # reads default_36x3.json, paper_36x3.json,
                                                # default_round13_36x3.json,
                                                # default_round12_36x3.json and
                                                # default_round8_36x3.json (paired against
                                                # the defaults it replaced) and any
                                                # ablation_*.json; writes summary.json
    python docs/results/zeroshot/summarize.py ablation_span.json summary_span.json
                                                # the same figures of another record
    python docs/results/zeroshot/summarize.py default_round19_36x3.json \
        summary_round19.json paper_round17_36x3.json default_round17_36x3.json \
        --ablations=ablation19_*.json       # round 19's, paired with round 17's and
                                            # with its own ablations
    python docs/results/zeroshot/summarize.py default_round17_36x3.json \
        summary_round17.json paper_round17_36x3.json default_36x3.json
                                                # round 17's default against the paper
                                                # recipe on its features and paired with
                                                # round 14's default (default_36x3.json)

Every run of a protocol is one (split, seed) and does not depend on which other splits are
evaluated with it, so the 10 seeded splits of any split seed are a subset of the 36 x 3
records: their figures are read off here instead of being re-run.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from projections import make_splits
from projections.evaluate import paired_difference, summarize
from rram_lsm.records import read_record, write_record

HERE = Path(__file__).resolve().parent
FS5 = "fewshot.5.unseen.audio_to_image.top1"
FS1 = "fewshot.1.unseen.audio_to_image.top1"
FS5_I2A = "fewshot.5.unseen.image_to_audio.top1"
ZS = "unseen.audio_to_image.top1"
SEEN = ("seen_test.audio_to_image.top1", "seen_test.image_to_audio.top1")
# earlier defaults the default is paired against: round 13's (replaced by round 14),
# round 12's (replaced by round 13) and round 8's (replaced by rounds 11-12)
PREVIOUS = {"minus_round13": "default_round13_36x3.json",
            "minus_round12": "default_round12_36x3.json",
            "minus_round8": "default_round8_36x3.json"}
SPLIT_SEEDS = range(10)


def _subset(rows, key, unseen_sets):
    want = {tuple(u) for u in unseen_sets}
    vals, groups = [], []
    for g, r in enumerate(rows):
        if tuple(r["unseen"]) in want:
            vals += r[key]
            groups += [g] * len(r[key])
    return summarize(vals, groups, (0.0, 1.0))


def main(argv=()) -> dict:
    # --ablations=GLOB: which ablation records to summarise (default round 14's)
    pattern = next((a.split("=", 1)[1] for a in argv if a.startswith("--ablations=")),
                   "ablation_*.json")
    argv = [a for a in argv if not a.startswith("--ablations=")]
    default = read_record(HERE / argv[0] if argv else HERE / "default_36x3.json")
    paper_name = argv[2] if len(argv) > 2 else "paper_36x3.json"
    paper = read_record(HERE / paper_name)
    previous = ({f"minus_{Path(a).stem}": a for a in argv[3:]} if len(argv) > 3
                else {} if argv else PREVIOUS)
    rows_d, rows_p = default["per_split"], paper["per_split"]
    out: dict = {"all_36": {}, "by_split_seed": {}, "per_split": []}
    every = [tuple(r["unseen"]) for r in rows_d]
    zs = ZS in rows_d[0]  # an untrained twin's record has few-shot figures only
    for name, key in (("fewshot5_a2i", FS5), ("fewshot1_a2i", FS1), ("fewshot5_i2a", FS5_I2A),
                      ("zeroshot_a2i", ZS)):
        if key in rows_d[0]:
            out["all_36"][name] = _subset(rows_d, key, every)
    out["all_36"]["zeroshot_a2i_paper"] = _subset(rows_p, ZS, every)
    if zs:
        out["all_36"]["zeroshot_a2i_minus_paper"] = paired_difference(rows_d, rows_p, ZS)
    for s in SPLIT_SEEDS:
        sets = [u for _, u in make_splits(10, s)]
        out["by_split_seed"][str(s)] = {
            "unseen_sets": [list(u) for u in sets],
            "fewshot5_a2i": _subset(rows_d, FS5, sets),
            "fewshot1_a2i": _subset(rows_d, FS1, sets),
            "zeroshot_a2i_paper": _subset(rows_p, ZS, sets)}
        if zs:
            out["by_split_seed"][str(s)]["zeroshot_a2i"] = _subset(rows_d, ZS, sets)
            out["by_split_seed"][str(s)]["zeroshot_a2i_minus_paper"] = {
                k: v for k, v in paired_difference(rows_d, rows_p, ZS, sets).items()
                if k != "per_split"}
    for rd, rp in zip(rows_d, rows_p):
        out["per_split"].append({
            "unseen": rd["unseen"], **{k: float(np.mean(rd[k])) for k in (FS5, FS1, FS5_I2A, ZS)
                                       if k in rd},
            "paper." + ZS: float(np.mean(rp[ZS])), "paper." + FS5: float(np.mean(rp[FS5]))})
    ablations = {}
    for path in sorted(HERE.glob(pattern)):
        rec = read_record(path)
        ablations[path.stem] = {
            "method": rec.get("method"), "feature_kind": rec.get("data", {}).get("feature_kind"),
            "n_splits": rec.get("n_splits"),
            "fewshot5_a2i": _subset(rec["per_split"], FS5, every),
            "fewshot1_a2i": _subset(rec["per_split"], FS1, every),
            "splits_below_0.80": [r["unseen"] for r in rec["per_split"]
                                  if np.mean(r[FS5]) < 0.80]}
        if [r["unseen"] for r in rec["per_split"]] == [r["unseen"] for r in rows_d]:
            ablations[path.stem]["default_minus"] = {
                name: {k: v for k, v in paired_difference(rows_d, rec["per_split"],
                                                          key).items() if k != "per_split"}
                for name, key in (("fewshot5_a2i", FS5), ("fewshot1_a2i", FS1))}
        if ZS in rec["per_split"][0]:
            ablations[path.stem]["zeroshot_a2i"] = _subset(rec["per_split"], ZS, every)
    out["ablations"] = ablations
    for label, stem in previous.items():
        if zs and (HERE / stem).exists():
            rows_prev = read_record(HERE / stem)["per_split"]
            out[label] = {
                name: {k: v for k, v in paired_difference(rows_d, rows_prev, key).items()
                       if k != "per_split"}
                for name, key in (("fewshot5_a2i", FS5), ("fewshot1_a2i", FS1),
                                  ("fewshot5_i2a", FS5_I2A), ("zeroshot_a2i", ZS),
                                  ("seen_test_a2i", SEEN[0]), ("seen_test_i2a", SEEN[1]))}
    out["paper_all_36"] = {"fewshot5_a2i": _subset(rows_p, FS5, every),
                           "fewshot1_a2i": _subset(rows_p, FS1, every)}
    write_record(HERE / (argv[1] if len(argv) > 1 else "summary.json"), out,
                 command="summarize",
                 config={"default": argv[0] if argv else "default_36x3.json",
                         "paper": paper_name, "paired_with": list(previous.values()),
                         "ablations": pattern})
    a = out["all_36"]
    print(f"all 36 x 3: 5-shot a2i {a['fewshot5_a2i']['mean']:.3f} {a['fewshot5_a2i']['ci95']}, "
          f"1-shot {a['fewshot1_a2i']['mean']:.3f} {a['fewshot1_a2i']['ci95']}")
    if zs:
        d = a["zeroshot_a2i_minus_paper"]
        print(f"zero-shot a2i {a['zeroshot_a2i']['mean']:.3f} - paper "
              f"{a['zeroshot_a2i_paper']['mean']:.3f} = {d['mean']:+.3f} {d['ci95']}")
    for label in previous:
        for name, d in out.get(label, {}).items():
            print(f"default {label.replace('_', ' ')}'s default, {name}: {d['mean']:+.3f} "
                  f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")
    for s, v in out["by_split_seed"].items():
        line = (f"split seed {s}: 5-shot {v['fewshot5_a2i']['mean']:.3f} "
                f"{v['fewshot5_a2i']['ci95']}, 1-shot {v['fewshot1_a2i']['mean']:.3f}")
        if zs:
            d = v["zeroshot_a2i_minus_paper"]
            line += (f", zero-shot {v['zeroshot_a2i']['mean']:.3f} vs paper "
                     f"{v['zeroshot_a2i_paper']['mean']:.3f}: {d['mean']:+.3f} "
                     f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]")
        print(line)
    print("| unseen | 5-shot a2i | 1-shot a2i | 5-shot i2a | zero-shot a2i | paper zero-shot |")
    print("|---|---|---|---|---|---|")
    for r in sorted(out["per_split"], key=lambda r: r[FS5]):
        print(f"| {r['unseen'][0]} vs {r['unseen'][1]} | {r[FS5]:.3f} | {r[FS1]:.3f} | "
              f"{r[FS5_I2A]:.3f} | {r.get(ZS, float('nan')):.3f} | {r['paper.' + ZS]:.3f} |")
    for name, v in ablations.items():
        print(name, {k: round(x["mean"], 3) for k, x in v.items()
                     if isinstance(x, dict) and "mean" in x})
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
