"""Contrastive projection heads on frozen LSM features, and the zero-/few-shot protocol.

It takes feature arrays and class splits, nothing else: encoding them on a chip is the app
layer's ``rram_lsm.app.features.encode_pair``. Typical use::

    from rram_lsm.app.features import encode_pair
    from projections import run_protocol
    data = encode_pair("../shared/data")                  # LSM features of both modalities
    result = run_protocol(data, "default", splits=10, seeds=3, shots=(1, 5))
    result.to_dict()["unseen"]["audio_to_image"]["top1"]  # {mean, std, ci95, n}
"""
from .data import load_npz, save_npz
from .heads import DualEncoder, ProjectionHead
from .protocol import PAPER_SPLIT, PairedFeatures, ZeroShotResult, make_splits, run_protocol
from .protocol import ENGINES, SplitResult, evaluate_split
from .batched import TrainJob, train_heads_batched
from .selection import select_method
from .splits import CrossModalSplit, split_cross_modal
from .recipes import get_method
from .train import METHODS, MethodConfig, TrainResult, train_heads

__all__ = [
    "PairedFeatures", "load_npz", "save_npz", "CrossModalSplit", "split_cross_modal",
    "ProjectionHead", "DualEncoder",
    "MethodConfig", "METHODS", "get_method", "TrainResult", "train_heads",
    "TrainJob", "train_heads_batched",
    "PAPER_SPLIT", "make_splits", "evaluate_split", "SplitResult", "run_protocol",
    "ENGINES", "ZeroShotResult",
    "select_method",
]
