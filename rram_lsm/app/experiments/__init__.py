"""The application layer: the demo, robustness sweeps, the energy model, experiment files.

It stitches the other packages together through their public APIs only (``sim``, ``lsm``,
``projections``, ``rram_lsm.app.backends``) and is what ``rram-lsm demo / run / rerun / sweep /
energy`` call.
"""
from .demo import DemoOptions, DemoResult, run_demo
from .display import show
from .energy import (EnergyParams, EnergyReport, OpCounts, count_operations, estimate_energy,
                     load_energy_params, measure_energy, sum_passes)
from .pipeline import energy_reports, reservoir_on_chip
from .runfile import compare_records, load_experiment, rerun_record, run_experiment
from .sweep import AXES, DEFAULT_GRID, SweepResult, SweepSpec, SweepTask, evaluate_task, run_sweep

__all__ = [
    "DemoOptions", "DemoResult", "run_demo",
    "SweepSpec", "SweepTask", "SweepResult", "run_sweep", "evaluate_task", "AXES",
    "DEFAULT_GRID",
    "EnergyParams", "OpCounts", "EnergyReport", "load_energy_params", "count_operations",
    "sum_passes", "estimate_energy", "measure_energy", "energy_reports", "reservoir_on_chip",
    "load_experiment", "run_experiment", "rerun_record", "compare_records",
    "show",
]
