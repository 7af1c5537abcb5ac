"""Background-activity filter (tonic's ``Denoise``) over a batch of recordings."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def denoise_mask(x, y, t, sample, filter_us, width, height):
    """True for events with a 4-neighbour pixel event within ``filter_us`` before them.

    Same rule as ``tonic.functional.denoise_numpy`` (an event's own pixel is stamped
    before its neighbours are checked), except that no pixel counts as having fired before
    the recording starts: tonic initialises its memory to ``filter_time`` and so keeps
    early isolated events. Events are visited in array order (time order within a sample);
    the memory is cleared whenever ``sample`` changes, so samples must be contiguous.
    """
    n = x.shape[0]
    keep = np.zeros(n, dtype=np.bool_)
    never = np.iinfo(np.int64).min
    memory = np.full((width, height), never, dtype=np.int64)
    current = -1
    for e in range(n):
        if sample[e] != current:
            memory[:, :] = never
            current = sample[e]
        xx = x[e]
        yy = y[e]
        te = t[e]
        memory[xx, yy] = te + filter_us
        keep[e] = ((xx > 0 and memory[xx - 1, yy] > te)
                   or (xx < width - 1 and memory[xx + 1, yy] > te)
                   or (yy > 0 and memory[xx, yy - 1] > te)
                   or (yy < height - 1 and memory[xx, yy + 1] > te))
    return keep
