"""What holds the weak spoken pairs back: the speaker. An analysis on the validation view
only (official train files of 1-7, 21 pseudo splits x 3 seeds), used for no choice.

For the default's few-shot metric (its untrained twin) on each pseudo split it reports:
* the share of the unseen pool's variance (whitened unit vectors, as few-shot scores
  them) between speakers, between the two digits, and between speaker-digit cells;
* pseudo 5-shot audio->image of the twin as it is, and with each speaker's mean over the
  unseen pool subtracted from that speaker's pool utterances (an *oracle*: it reads the
  speakers of the queries, which no method here may; FSDD has 6 speakers, each saying
  every digit equally often), i.e. what removing the speaker offset would be worth;
* the same with the top k speaker directions of the seen classes' training utterances
  projected out (speaker labels of the seen training files only: a legitimate method,
  nuisance attribute projection), k = 3 and 10.

    RRAM_LSM_DATA=../shared/data python docs/results/zeroshot/speaker_validation.py

writes speaker_validation.json beside it.
"""
from __future__ import annotations

import itertools
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
SEEN, SEEDS, SHOTS, EPISODES, NAP_DIMS = (1, 2, 3, 4, 5, 6, 7), 3, (1, 5), 50, (3, 10)


def _fewshot5(view, plan, twin, raw_a, raw_i):
    """The twin's pseudo 5-shot audio->image on these standardised features (episodes
    drawn as the protocol draws them: 1-shot first, then 5-shot, from one generator)."""
    from projections.evaluate import fewshot_accuracies, fewshot_episodes
    from projections.metric import within_class_whitener

    sp = plan.sp
    wi = within_class_whitener(raw_i, view.image_labels, sp.image["train"],
                               twin.fewshot_whiten)(raw_i)
    wa = within_class_whitener(raw_a, view.audio_labels, sp.audio["train"],
                               twin.fewshot_whiten)(raw_a)
    rng = np.random.default_rng([plan.seed, 7])
    for k in SHOTS:
        eps = list(fewshot_episodes(view.image_labels, sp.image["unseen"], view.audio_labels,
                                    sp.audio["unseen"], k, EPISODES, rng))
    r = fewshot_accuracies(eps, wi, wa, view.image_labels, view.audio_labels,
                           sources=twin.fewshot_sources, raw_image=wi, raw_audio=wa,
                           raw_weight=1.0, transductive=twin.fewshot_transductive,
                           transductive_temperature=twin.fewshot_transductive_temperature,
                           em_dims=twin.fewshot_em_dims, em_steps=twin.fewshot_em_steps,
                           em_shrinkage=twin.fewshot_em_shrinkage)
    return float(np.mean(r["audio_to_image"]["top1"])), wa


def _shares(units, groups):
    """Fraction of the variance of ``units`` between the groups of each labelling."""
    centred = units - units.mean(0)
    total = float((centred ** 2).sum())
    out = {}
    for name, g in groups.items():
        between = sum(float((g == v).sum() * ((units[g == v].mean(0) - units.mean(0)) ** 2)
                            .sum()) for v in np.unique(g))
        out[name] = between / total
    return out


def _speaker_directions(raw, labels, speakers, rows, k):
    """Top ``k`` directions of the speaker-in-class means of ``rows`` (class means off)."""
    cells = []
    for c in np.unique(labels[rows]):
        in_c = rows[labels[rows] == c]
        for s in np.unique(speakers[in_c]):
            cell = in_c[speakers[in_c] == s]
            cells.append((raw[cell].mean(0) - raw[in_c].mean(0)) * np.sqrt(len(cell)))
    return np.linalg.svd(np.array(cells), full_matrices=False)[2][:k]


def main() -> dict:
    from projections import get_method
    from projections.protocol import _prepare, _standardizer
    from projections.selection import validation_view
    from rram_lsm.app.features import SINGLE_DRIVE, encode_pair, open_data
    from rram_lsm.records import write_record

    # round 14's default, the default then (round 19 added speaker centring)
    twin = get_method("default_round14").replace(name="default").fewshot_twin()
    data = encode_pair(None, cochlea=SINGLE_DRIVE, kind=twin.encoded_kind, progress=False)
    meta = open_data("fsdd", None, progress=False).meta
    if [m["digit"] for m in meta] != data.audio_labels.tolist():
        raise RuntimeError("the FSDD listing and the encoded audio are not in one order")
    keep = np.flatnonzero(np.isin(data.audio_labels, SEEN) & ~data.audio_is_test)
    speakers = np.array([m["speaker"] for m in meta])[keep]   # validation_view's rows
    view = validation_view(data, SEEN)
    labels = view.audio_labels
    rows = []
    for unseen in itertools.combinations(SEEN, 2):
        seen = tuple(c for c in SEEN if c not in unseen)
        per_seed = []
        for seed in range(SEEDS):
            plan = _prepare(view, seen, unseen, twin, seed, 0.2)
            raw_i = _standardizer(plan.f_i, plan.sp.image["train"], twin.scale_floor)(plan.f_i)
            raw_a = _standardizer(plan.f_a, plan.sp.audio["train"], twin.scale_floor)(plan.f_a)
            pool, train = plan.sp.audio["unseen"], plan.sp.audio["train"]
            base, wa = _fewshot5(view, plan, twin, raw_a, raw_i)
            units = wa[pool] / np.linalg.norm(wa[pool], axis=1, keepdims=True)
            cell = np.char.add(speakers[pool], labels[pool].astype(str))
            v = {"twin": base, **{f"share_{k}": x for k, x in _shares(
                units, {"speaker": speakers[pool], "digit": labels[pool],
                        "speaker_digit": cell}).items()}}
            centred = raw_a.copy()
            for s in np.unique(speakers[pool]):
                mine = pool[speakers[pool] == s]
                centred[mine] -= centred[mine].mean(0)
            v["oracle_speaker_centred"] = _fewshot5(view, plan, twin, centred, raw_i)[0]
            for k in NAP_DIMS:
                basis = _speaker_directions(raw_a, labels, speakers, train, k)
                v[f"nap{k}"] = _fewshot5(view, plan, twin,
                                         raw_a - (raw_a @ basis.T) @ basis, raw_i)[0]
            per_seed.append(v)
        row = {"unseen": list(unseen), **{k: float(np.mean([v[k] for v in per_seed]))
                                          for k in per_seed[0]}}
        rows.append(row)
        print({k: round(x, 3) if isinstance(x, float) else x for k, x in row.items()},
              flush=True)
    mean = {k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "unseen"}
    print("mean", {k: round(x, 3) for k, x in mean.items()})
    out = {"rows": rows, "mean": mean, "seeds": SEEDS, "method": twin.name,
           "view": "official train files of seen classes 1-7, 20 % as pseudo-test"}
    write_record(HERE / "speaker_validation.json", out,
                 command="docs/results/zeroshot/speaker_validation.py",
                 config={"twin": twin, "nap_dims": list(NAP_DIMS)},
                 seeds=list(range(SEEDS)))
    return out


if __name__ == "__main__":
    main()
