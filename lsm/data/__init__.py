"""Datasets of event data: N-MNIST, FSDD through the cochlea, N-TIDIGITS, synthetic digits."""
from .datasets import EventDataset, open_dataset

__all__ = ["EventDataset", "open_dataset"]
