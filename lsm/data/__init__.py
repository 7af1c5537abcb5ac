"""Datasets, splits and pairing for event data."""
from .datasets import EventDataset, open_dataset
from .pairing import PARTS, CrossModalSplit, pair_by_class, split_cross_modal

__all__ = ["EventDataset", "open_dataset", "PARTS", "CrossModalSplit", "split_cross_modal",
           "pair_by_class"]
