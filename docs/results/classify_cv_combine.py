"""Join per-dataset ``rram-lsm classify --cv`` records into docs/results/classify_cv.json and
draw the accuracy-vs-size figures with the command's own plot function (issue 12).

    rram-lsm classify --cv 5 --dataset nmnist --inputs crop full --sizes 200 500 1000 2000 \\
        --no-noise --json nmnist.json
    rram-lsm classify --cv 5 --dataset fsdd --sizes 200 500 1000 2000 --no-noise --json fsdd.json
    python docs/results/classify_cv_combine.py nmnist.json fsdd.json --levers levers*.json

The ensemble grid (read noise on, chips 0/1/2, each size also as an ensemble of 4
reservoirs on their own tiles):

    rram-lsm classify --cv 5 --dataset nmnist --inputs full --sizes 500 1000 \
        --scales 0.15 0.2 0.3 --ensemble 4 --chip-seed C --json nmnist_ens_chipC.json
    rram-lsm classify --cv 5 --dataset fsdd --sizes 500 1000 --scales 0.15 0.2 0.3 \
        --ensemble 4 --chip-seed C --json fsdd_ens_chipC.json
    python docs/results/classify_cv_combine.py nmnist_ens_chip*.json fsdd_ens_chip*.json \
        --name classify_cv_ensemble --tables

The read-noise grid (the default chip: read noise on) goes to its own file:

    rram-lsm classify --cv 5 --dataset nmnist --inputs full --sizes 500 1000 2000 \
        --scales 0.15 0.2 0.3 --json nmnist_noise.json
    rram-lsm classify --cv 5 --dataset fsdd --sizes 500 1000 2000 --scales 0.15 0.2 0.3 \
        --json fsdd_noise.json
    python docs/results/classify_cv_combine.py nmnist_noise.json fsdd_noise.json \
        --name classify_cv_noise --tables

Runs are concatenated unchanged; each source command's config is kept under
``config.records``. When the records span several chips, the per-chip markdown tables of
docs/many-tiles.md are printed (``--tables``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from rram_lsm.app.experiments.classify import plot_cv
from rram_lsm.records import read_record, write_record

HERE = Path(__file__).resolve().parent


def _cell(a: dict) -> str:
    return f"{100 * a['accuracy']:.1f}% [{100 * a['ci95'][0]:.1f}%, {100 * a['ci95'][1]:.1f}%]"


def chip_tables(runs: list) -> str:
    """Markdown per dataset: every reservoir's windowed accuracy on each chip with the
    chips' means, then each chip's picks and paired difference against the raw input."""
    out = []
    for key in dict.fromkeys((r["dataset"], r["input"]) for r in runs):
        group = [r for r in runs if (r["dataset"], r["input"]) == key]
        out += [f"#### {key[0]} {key[1]}", "",
                "| reservoir | tiles | " + " | ".join(f"chip {r['chip_seed']} `windowed`"
                                                      for r in group)
                + " | mean `windowed` | mean `counts` |",
                "|---|---|" + "---|" * len(group) + "---|---|"]
        for name, res in group[0]["reservoirs"].items():
            w = [r["candidates"][f"{name}-windowed"]["accuracy"] for r in group]
            c = [r["candidates"][f"{name}-counts"]["accuracy"] for r in group]
            what = (f"ensemble {res['members']} x {res['member_neurons']:,} neurons"
                    if res.get("members", 1) > 1 else f"{res['n_neurons']:,} neurons")
            out.append(f"| {what}, scale {res['weight_scale']} | "
                       f"{res['tiles']} | " + " | ".join(f"{100 * x:.1f}%" for x in w)
                       + f" | {100 * np.mean(w):.1f}% | {100 * np.mean(c):.1f}% |")
        out += ["", "| chip | reservoir (picked on the training folds) | picks | raw input "
                "(picked) | reservoir - raw (paired, points) |", "|---|---|---|---|---|"]
        for r in group:
            fam, d = r["families"], r["reservoir_minus_raw"]
            out.append(f"| {r['chip_seed']} | {_cell(fam['reservoir'])} | "
                       f"{', '.join(sorted(set(fam['reservoir']['picks'])))} | "
                       f"{_cell(fam['raw_input'])} "
                       f"({', '.join(sorted(set(fam['raw_input']['picks'])))}) | "
                       f"**{100 * d['difference']:+.2f} [{100 * d['ci95'][0]:+.2f}, "
                       f"{100 * d['ci95'][1]:+.2f}]** |")
        mean = np.mean([r["reservoir_minus_raw"]["difference"] for r in group])
        out += ["", f"Mean over the {len(group)} chips: {100 * mean:+.2f} points", ""]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("grid", nargs="+", help="records of the size grid")
    ap.add_argument("--levers", nargs="*", default=[], help="records of the lever runs")
    ap.add_argument("--name", default="classify_cv",
                    help="output stem: NAME.json, NAME.png (and NAME_levers.png)")
    ap.add_argument("--tables", action="store_true",
                    help="print the per-chip markdown tables instead of the summary")
    args = ap.parse_args()
    runs, levers, sources = [], [], []
    for role, paths, into in (("grid", args.grid, runs), ("levers", args.levers, levers)):
        for p in paths:
            rec = read_record(p)
            into += rec["runs"]
            sources.append({"role": role, "config": rec["config"],
                            "environment": rec["environment"]})
    summary = {}
    for r, tag in [(r, "") for r in runs] + [(r, "-levers") for r in levers]:
        fam = r["families"]
        chip = f"-chip{r['chip_seed']}" if r["chip_seed"] else ""
        summary[f"{r['dataset']}-{r['input']}{chip}{tag}"] = {
            "best_reservoir": fam["reservoir"]["accuracy"],
            "best_reservoir_ci95": fam["reservoir"]["ci95"],
            "picks": fam["reservoir"]["picks"],
            "raw_input": fam["raw_input"]["accuracy"],
            "raw_input_ci95": fam["raw_input"]["ci95"],
            "raw_picks": fam["raw_input"]["picks"],
            "reservoir_minus_raw": r["reservoir_minus_raw"]}
    chips = sorted({r["chip_seed"] for r in runs + levers})
    write_record(HERE / f"{args.name}.json",
                 {"summary": summary, "runs": runs, "lever_runs": levers,
                  "combined_from": "one record per `rram-lsm classify --cv` command below "
                                   "(config), runs concatenated unchanged"},
                 command="classify --cv", config={"records": sources},
                 seeds={"fold_seed": 0, "chip_seed": chips[0] if len(chips) == 1 else chips})
    plot_cv(runs).savefig(HERE / f"{args.name}.png", dpi=120)
    if levers:
        plot_cv(levers).savefig(HERE / f"{args.name}_levers.png", dpi=120)
    print(chip_tables(runs) if args.tables else json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
