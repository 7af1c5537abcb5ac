"""Silicon-cochlea kernel: gammatone filterbank -> hair cell -> leaky integrate-and-fire.

One call handles one signal, channel after channel, and releases the GIL (``nogil``):
callers convert many files at once from a thread pool, which balances uneven file lengths
and pays no per-call parallel-region barrier. Output is deterministic whatever the number
of threads.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def cochlea_spikes(signal, fs_hz, centre_hz, bandwidth_hz, order, exponent, gain_per_s,
                   leak_tau_s, refractory_s, counts, spike_idx):
    """Spike sample indices per channel into ``spike_idx[c, :counts[c]]``.

    Per channel: an ``order``-th order gammatone band-pass realised as a cascade of complex
    one-pole low-pass filters on the signal shifted down by the centre frequency (unity gain
    at the centre), half-wave rectification, power-law compression ``r ** exponent``, and a
    leaky integrate-and-fire neuron: ``v <- v * exp(-dt / leak_tau_s) + gain_per_s * dt * c``,
    spike and reset to 0 at ``v >= 1``, then ``refractory_s`` without integration. A
    spike that would overflow ``spike_idx``'s row is dropped (the caller sizes rows for the
    refractory-limited maximum, so none are).
    """
    n = signal.shape[0]
    n_ch = centre_hz.shape[0]
    cap = spike_idx.shape[1]
    dt = 1.0 / fs_hz
    decay = math.exp(-dt / leak_tau_s)
    drive = gain_per_s * dt
    ref_n = int(round(refractory_s * fs_hz))
    for c in range(n_ch):
        a = math.exp(-2.0 * math.pi * bandwidth_hz[c] * dt)
        w = 2.0 * math.pi * centre_hz[c] * dt
        step = complex(math.cos(w), -math.sin(w))
        rot = complex(1.0, 0.0)
        state = np.zeros(order, dtype=np.complex128)
        v = 0.0
        hold = 0
        k = 0
        for i in range(n):
            z = signal[i] * rot
            for j in range(order):
                state[j] = (1.0 - a) * z + a * state[j]
                z = state[j]
            # back to the band: Re(z * conj(rot)); x2 because a real tone splits its
            # amplitude between +f and -f and only +f passes the shifted low-pass
            y = 2.0 * (z.real * rot.real + z.imag * rot.imag)
            rot *= step
            if (i & 1023) == 0:
                rot /= abs(rot)  # keep the phasor on the unit circle over long signals
            if hold > 0:
                hold -= 1
                continue
            v *= decay
            if y > 0.0:  # half-wave rectification; pow only where it is non-zero
                v += drive * y ** exponent
            if v >= 1.0:
                if k < cap:
                    spike_idx[c, k] = i
                    k += 1
                v = 0.0
                hold = ref_n
        counts[c] = k
