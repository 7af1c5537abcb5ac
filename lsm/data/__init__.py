"""Datasets, splits and pairing for event data."""
from .pairing import PARTS, CrossModalSplit, pair_by_class, split_cross_modal

__all__ = ["PARTS", "CrossModalSplit", "split_cross_modal", "pair_by_class"]
