"""Write the four notebooks from the cell sources below and execute them in place.

    python notebooks/build.py            # write + execute all (outputs stored)
    python notebooks/build.py 02         # only the notebooks whose name contains "02"

The notebooks run on small synthetic data (the kernel starts without $RRAM_LSM_DATA) so
they finish in well under a minute each; tests/experiments/test_notebooks.py executes them
again so they cannot rot.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

SETUP = """\
%matplotlib inline
import warnings
warnings.filterwarnings("ignore", message="IProgress not found")  # bars are off here
import numpy as np
import matplotlib
matplotlib.rcParams["figure.dpi"] = 90
from rram_lsm.app.experiments import show"""

NOTEBOOKS = {
    "01_quickstart.ipynb": [
        ("md", """\
# 01 · Quickstart: from a virtual RRAM chip to zero-shot retrieval

The co-design in five steps, on small **synthetic** event digits (set `RRAM_LSM_DATA` or
pass `data_dir=` for real N-MNIST / FSDD). The same steps, full size, are `rram-lsm demo`."""),
        ("code", SETUP),
        ("md", """\
## 1. A virtual chip
A chip is a seed plus a device profile (`macro40nm`: the 40 nm macro's measured forming
statistics; open parameters are documented assumptions)."""),
        ("code", """\
from sim import SimMacro
chip = SimMacro(seed=0)
chip"""),
        ("md", """\
## 2. Form the reservoir tile
`Reservoir.setup` sweeps the forming voltage up from 3.0 V in 0.05 V steps until half
the cells are formed, as on the real chip. The random conductances *are* the weights."""),
        ("code", """\
from lsm import Reservoir, preset
res = Reservoir.setup(chip, preset("nmnist"))
res"""),
        ("md", "## 3. Run event digits through the liquid"),
        ("code", """\
from lsm.data import open_dataset
from rram_lsm.app.experiments.pipeline import pick_samples, subset_rasters
from rram_lsm.app.experiments.demo_figures import plot_reservoir_raster

ds = open_dataset("nmnist", None, progress=False)
idx = pick_samples(ds.labels, 8, seed=0)
x = subset_rasters(ds, idx)
spikes = res.run(x)
print(ds, "->", spikes.shape, "spikes per sample:", spikes.sum(axis=(1, 2)))
plot_reservoir_raster({"nmnist": x}, {"nmnist": spikes}, {"nmnist": ds.labels[idx]},
                      {"nmnist": ds.synthetic})"""),
        ("md", """\
## 4. Encode both modalities and align them
`encode_pair` opens one chip session from the seed, forms each modality's reservoir on a
tile of its own and caches the features. The paper's
recipe trains one FC + GELU head per modality with a CLIP loss on digits 1-7 (selection on
validation pairs only) and retrieves unseen digits 8-9 zero-shot."""),
        ("code", """\
import torch
torch.set_num_threads(1)  # the heads are tiny: one thread beats two on a busy 2-core machine
from projections.protocol import run_protocol
from projections import get_method
from rram_lsm.app.features import encode_pair

data = encode_pair(chip_seed=0, kind="counts", progress=False)
result = run_protocol(data, get_method("paper").replace(epochs=30), seeds=1, shots=(5,),
                      episodes=20, progress=False)
result"""),
        ("md", "## 5. What one inference costs, on the chip and in digital"),
        ("code", """\
from rram_lsm.app.experiments import measure_energy
report = measure_energy(res, x)
report"""),
        ("code", "report.plot()"),
    ],
    "02_device_noise_and_drift.ipynb": [
        ("md", """\
# 02 · Device noise and drift: how good must the device be?

The device model's knobs, checked against their configured statistics, then a small
robustness sweep (accuracy of a cheap readout vs read noise and chip age over several
virtual chips). `rram-lsm sweep` runs the full grid on a Dask cluster."""),
        ("code", SETUP),
        ("code", """\
from sim import SimMacro, load_profile
profile = load_profile("macro40nm")
profile"""),
        ("md", """\
## Read noise has the configured spread
Repeated reads of the same formed cells: the relative standard deviation per cell should
match `read.noise_rel`."""),
        ("code", """\
chip = SimMacro(seed=1, profile=profile)
region = (0, 0, 64, 64)
chip.form(region, 4.2, 1e-6, 100.0)
reads = np.stack([chip.read_conductance(region) for _ in range(50)])
formed = reads.mean(0) > 1.0
rel = (reads.std(0, ddof=1) / reads.mean(0))[formed]
print(f"configured read noise {profile.read.noise_rel:.3f}, measured {rel.mean():.4f} "
      f"(median {np.median(rel):.4f}) over {formed.sum()} formed cells")"""),
        ("md", """\
## Drift follows the power law
`G(t) = G0 (t / t0)^-nu` with a per-cell exponent. Measured on the chip's mean formed
conductance vs the model curves."""),
        ("code", """\
from sim.plots import plot_drift
times = [1.0, 3600.0, 86400.0, 31557600.0, 315576000.0]  # 1 s, 1 h, 1 d, 1 y, 10 y
quiet = SimMacro(seed=2, profile=profile.noise_free())
quiet.form(region, 4.2, 1e-6, 100.0)
g0 = quiet.read_conductance(region)
mask = g0 > 1.0
measured = []
for t in times:
    quiet.advance_time(t - quiet.clock_s())
    measured.append(quiet.read_conductance(region)[mask].mean())
fig = plot_drift(profile, g0_us=g0[mask].mean())
ax = fig.axes[0]
ax.plot(times, measured, "ko", label="chip: mean formed G")
ax.legend(fontsize=8);"""),
        ("md", """\
## A small sweep
Two knobs, three values each, two chips per setting, 5 training and 3 test samples per
class (synthetic N-MNIST), nearest-prototype readout. Same seeds give the same numbers on
`scheduler="serial"` and on any Dask cluster."""),
        ("code", """\
from rram_lsm.app.experiments import SweepSpec, run_sweep
spec = SweepSpec(grid=(("read_noise_rel", (0.0, 0.1, 0.3)),
                       ("chip_age_s", (1.0, 31557600.0, 315576000.0))),  # 1 s, 1 y, 10 y
                 chip_seeds=(0, 1), train_per_class=5, test_per_class=3,
                 metric="prototype")
sweep = run_sweep(spec, scheduler="serial", progress=False)
sweep"""),
        ("code", "sweep.plot()"),
    ],
    "03_zero_shot_alignment.ipynb": [
        ("md", """\
# 03 · Zero-shot alignment of vision and audio reservoirs

Train the projection heads on seen digits 1-7, look at the shared embedding and the
similarity of unseen digits 8-9, and compare with the prototypical-network baseline.
Small synthetic data; `rram-lsm zeroshot` runs the full protocol (many splits x seeds)."""),
        ("code", SETUP),
        ("code", """\
import torch
torch.set_num_threads(1)  # the heads are tiny: one thread beats two on a busy 2-core machine
from projections.protocol import PAPER_SPLIT, evaluate_split
from projections import get_method
from rram_lsm.app.features import encode_pair

data = encode_pair(chip_seed=0, kind="counts", progress=False)
print(data.meta["chip"]["tiles"])"""),
        ("md", "## Train with validation-only selection, keep the model for plots"),
        ("code", """\
seen, unseen = PAPER_SPLIT
method = get_method("paper").replace(epochs=30)
run = evaluate_split(data, seen, unseen, method, seed=0, shots=(1, 5), episodes=20,
                     keep_model=True)   # a SplitResult: metrics, and the model kept
kept = {"parts": run.parts, "embeddings": run.embeddings}   # what the figures read
curves = run.train.curves
import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(curves["val_top1"], label="validation top-1 (seen classes)")
ax.axvline(run.best_epoch - 1, color="k", ls=":", label="epoch kept")
ax.set_xlabel("epoch"); ax.legend(fontsize=8)
print("unseen audio->image top-1:", round(run.unseen["audio_to_image"]["top1"], 3),
      "| 5-shot:", round(run.fewshot["5"]["unseen"]["audio_to_image"]["top1"], 3))"""),
        ("code", """\
from rram_lsm.app.experiments.demo_figures import plot_embedding_map, plot_similarity_matrix
plot_embedding_map(kept, data)"""),
        ("code", "plot_similarity_matrix(kept, data)"),
        ("md", "## Paper recipe vs the prototypical-network baseline (same features, same split)"),
        ("code", """\
from rram_lsm.app.experiments.display import html_table
from IPython.display import HTML
baseline = evaluate_split(data, seen, unseen, get_method("protonet").replace(epochs=30),
                          seed=0, shots=(5,), episodes=20)
rows = [[name, f"{r.unseen['audio_to_image']['top1']:.3f}",
         f"{r.seen_test['audio_to_image']['top1']:.3f}",
         f"{r.fewshot['5']['unseen']['audio_to_image']['top1']:.3f}"]
        for name, r in (("paper", run), ("protonet", baseline))]
HTML(html_table(["method", "zero-shot unseen a->i", "seen test a->i", "5-shot unseen a->i"],
                rows, "Top-1 on the paper split, seed 0 (synthetic data)"))"""),
        ("md", """\
## Few-shot on time-resolved features: windows of the active span
The `span` kinds count spikes (or, `input_span`, input events) in equal parts of each
sample's *active span*, from its first to its last input event, so the same sounds land in
the same window whatever the speaking rate. A recipe's few-shot metric can read such a
kind while its heads keep theirs (`fewshot_features`). The default's does: reservoir spike
counts beside the input envelope in 5 span windows, square-rooted, whitened 0.9, the
queries then classified by EM of a tied-covariance mixture over the episode (issue 17,
chosen on seen-class validation; docs/zeroshot.md: 0.952 5-shot audio->image over all 36
splits x 3 seeds on the real data). Below, on the synthetic digits: the default, round 8's
default (whole-utterance counts and input rates, other heads, no EM) and the ablation that
bypasses the reservoir (the envelope alone). The synthetic digits are easy: few-shot
saturates for every recipe here, and the differences show only on the real data."""),
        ("code", """\
from lsm.plots import plot_span_windows
from rram_lsm.app.features import open_data
from rram_lsm.app.experiments.pipeline import pick_samples, subset_rasters
fsdd = open_data("fsdd", None, progress=False)
pick = pick_samples(fsdd.labels, 3, seed=1)
plot_span_windows(subset_rasters(fsdd, pick),
                  titles=[f"digit {fsdd.labels[i]}" for i in pick]);"""),
        ("code", """\
default = get_method("default").replace(epochs=30)
recipes = {"default": default,
           "round 8 default": get_method("default_round8").replace(epochs=30),
           "envelope alone": default.replace(fewshot_features="input_span")}
both = encode_pair(chip_seed=0, kind=default.encoded_kind, progress=False)
for name, m in recipes.items():
    r = evaluate_split(both, seen, unseen, m, seed=0, shots=(1, 5), episodes=20)
    print(f"{name:16s} zero-shot {r.unseen['audio_to_image']['top1']:.3f}  "
          f"1-shot {r.fewshot['1']['unseen']['audio_to_image']['top1']:.3f}  "
          f"5-shot {r.fewshot['5']['unseen']['audio_to_image']['top1']:.3f}")"""),
    ],
    "04_hardware_in_the_loop.ipynb": [
        ("md", """\
# 04 · Hardware in the loop, with the emulator

`open_emulated` starts a device emulator in its own process behind a pseudo-terminal and
returns the serial driver on it: everything below goes over the documented wire protocol
(docs/protocol.md), exactly as with a real macro on `/dev/ttyUSB0`
(`rram_lsm.app.backends.open_backend("serial:/dev/ttyUSB0")`)."""),
        ("code", SETUP),
        ("code", """\
from hardware import open_emulated
from sim import load_profile
profile = load_profile("macro40nm").noise_free()   # noise off: exact comparison below
device = open_emulated(seed=3, profile=profile, timeout_s=10.0)  # generous on a busy machine
show(device)"""),
        ("md", "## Form the reservoir over the wire and run digits through it"),
        ("code", """\
from lsm import Reservoir, preset
from lsm.data import open_dataset
from rram_lsm.app.experiments.pipeline import pick_samples, subset_rasters

res_hw = Reservoir.setup(device, preset("nmnist"))
ds = open_dataset("nmnist", None, progress=False)
x = subset_rasters(ds, pick_samples(ds.labels, 16, seed=0))
spikes_hw = res_hw.run(x)   # RUN_RESERVOIR: the device's firmware runs the loop
print(res_hw)
print("device capabilities:", device.info().capabilities, "| spikes:", int(spikes_hw.sum()))"""),
        ("md", """\
## The same chip in the simulator gives the same spikes
Same seed and profile -> same conductances, so the fused simulator path must reproduce
the device's spikes exactly (noise off): the device's firmware runs the contract's reference
loop over its own MVMs, the simulator its fused kernel."""),
        ("code", """\
from sim import SimMacro
with SimMacro(seed=3, profile=profile) as chip:
    spikes_sim = Reservoir.setup(chip, preset("nmnist")).run(x)
print("identical spikes:", bool((spikes_sim == spikes_hw).all()))"""),
        ("md", """\
## Calibrate a simulator from the device's own conductances
Read the formed tile back over the wire and fit a device profile to it; compare the
histogram with the fitted model."""),
        ("code", """\
from sim import fit_device_profile
from sim.plots import plot_conductance_histogram
g = device.read_conductance(res_hw.region)
fitted = fit_device_profile(g, forming_voltage_v=res_hw.forming.voltage_v)
print(f"formed mean/std: fitted {fitted.forming.formed_mean_us:.2f}/"
      f"{fitted.forming.formed_std_us:.2f} µS vs profile {profile.forming.formed_mean_us}/"
      f"{profile.forming.formed_std_us} µS")
plot_conductance_histogram(g, fitted);"""),
        ("md", "## Energy per inference of what the device just ran"),
        ("code", """\
from rram_lsm.app.experiments import measure_energy
measure_energy(res_hw, x, spikes=spikes_hw)"""),
        ("code", "device.close()"),
    ],
}


def _notebook(cells):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, src in cells:
        nb.cells.append(nbformat.v4.new_markdown_cell(src) if kind == "md"
                        else nbformat.v4.new_code_cell(src))
    return nb


def execute(nb, timeout_s: int = 300):
    """Run every cell of ``nb`` in a fresh python3 kernel started in notebooks/, without
    $RRAM_LSM_DATA (synthetic data); returns the executed notebook."""
    from nbclient import NotebookClient

    env_data = os.environ.pop("RRAM_LSM_DATA", None)
    try:
        NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                       resources={"metadata": {"path": str(HERE)}}).execute()
    finally:
        if env_data is not None:
            os.environ["RRAM_LSM_DATA"] = env_data
    return nb


def main(argv=None) -> int:
    """Write (and execute) the notebooks whose names contain any of ``argv``."""
    import nbformat

    wanted = list(argv if argv is not None else sys.argv[1:])
    for name, cells in NOTEBOOKS.items():
        if wanted and not any(w in name for w in wanted):
            continue
        nb = execute(_notebook(cells))
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
