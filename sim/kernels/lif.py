"""The fused, event-driven reservoir kernel behind ``SimMacro.run_reservoir``.

It reproduces ``rram_lsm.reservoir.run_reference`` exactly: the membrane update has the
reference's float64 operation order (:func:`_neuron_update`, ``lif_step``), and the column
sums follow the macro contract (active rows ascending, from 0.0, then x V_read), the ADC and
the differential subtraction, so with read noise off the spikes and the final membranes are
bit-identical.

Tile layout (``sim.reservoir`` builds it): the tile's columns are *split*, not interleaved:
columns ``0..n-1`` hold G+ of neurons ``0..n-1`` and ``n..2n-1`` their G-, so that the
per-neuron work of a step reads both sides contiguously and vectorises. Integer tiles
(grid codes) may carry one *pair row* per two inputs after the neuron rows: the code sum of
inputs ``2q`` and ``2q + 1``, added once where both are active (the same integer sum).

Multi-tile layouts (a reservoir split over tiles by ``rram_lsm.mapping``) run as one tile
with *row blocks*: each block's rows are summed and digitised on their own and the blocks'
results added in ascending order, as ``rram_lsm.mapping.tiled_mvm`` says, with the tiles'
column read noise drawn as their own ``mvm`` calls draw it (docs/kernels.md).

Exactness in brief (docs/lsm.md, "Two paths, one answer"): integer code sums are exact in
any grouping and equal the contract's ascending float64 sum divided by the grid step;
``(sum * step) * V_read`` equals ``sum * (step * V_read)`` because ``step`` is a power of
two (:func:`sv_is_exact`); float64 tiles add in the contract's order; the membrane update
is ``lif_step``'s expression.
"""
from __future__ import annotations

import math
import sys
from typing import NamedTuple

import numpy as np
from numba import njit, prange, set_parallel_chunksize, types
from numba.extending import overload
from numba.cpython.unsafe.numbers import trailing_zeros

# One definition of the ADC and of splitmix64. Numba's on-disk cache is keyed on this file's
# source only: after changing them there, edit this file too (or clear
# sim/kernels/__pycache__) or the cached kernel keeps the old code.
from .read import adc, adc_code
from .rng import ZIG_RATIO, ZIG_X, splitmix64, ziggurat_pair

# splitmix64's state increment: the stream's n-th number is splitmix64(seed + n * _GOLDEN)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_LITTLE_ENDIAN = sys.byteorder == "little"

RESET_ZERO = 0
RESET_SUBTRACT = 1

# Positions in the packed parameter arrays the compiled kernels take (few arguments: numba's
# dispatch costs about 0.1 µs per argument, which is felt at batch 1).
_F_STEP, _F_VREAD, _F_LSB, _F_FACTOR, _F_DECAY, _F_THRESHOLD, _F_SV, _F_TILE_NOISE = range(8)
_I_ADC_BITS, _I_RESET, _I_REFRACTORY, _I_NOISE, _I_BLOCKS = range(5)


@njit(cache=True, inline="always")
def _neuron_update(v, s_prev, ref, drive, decay, threshold, reset_mode, refractory_steps):
    """One neuron, one step -> (v, s, ref); ``s_prev`` and ``s`` are 0.0 or 1.0.

    The same float64 expressions, in the same order, as ``rram_lsm.reservoir.lif_step``:
    ``(decay * v) * (1 - s_prev) + drive`` (reset to zero) or
    ``((decay * v) + drive) - threshold * s_prev`` (subtract). Written without
    data-dependent branches so that the compiler can vectorise loops over neurons.
    """
    if reset_mode == RESET_ZERO:
        v = decay * v * (1.0 - s_prev) + drive
    else:
        v = decay * v + drive - threshold * s_prev
    fire = (v > threshold) & (ref == 0)
    s = 1.0 if fire else 0.0
    ref = refractory_steps if fire else max(ref - 1, 0)
    return v, s, ref


@njit(cache=True, inline="always")
def _normal_pair(state):
    # Box-Muller on two 53-bit uniforms; u1 in (0, 1] so the log is finite.
    a = splitmix64(state)
    b = splitmix64(state + _GOLDEN)
    state = state + _GOLDEN + _GOLDEN
    u1 = ((a >> np.uint64(11)) + np.uint64(1)) * (1.0 / 9007199254740992.0)
    u2 = (b >> np.uint64(11)) * (1.0 / 9007199254740992.0)
    r = np.sqrt(-2.0 * np.log(u1))
    return state, r * np.cos(2.0 * np.pi * u2), r * np.sin(2.0 * np.pi * u2)


# -- column sums ---------------------------------------------------------------------------
# Rows are indexed as src[i, c], never taken as row views: a view costs a reference-count
# increment and decrement (atomic, out of line) each time.

@njit(cache=True, inline="always")
def _accumulate(dst, src, rows, start, n_active, first):
    """``dst[c] (+)= sum of src[rows[start + k], c]`` over k ascending (``first``: from the
    first row, no zeroing; else continuing the sum in ``dst``).

    For float64 tiles (and the read-noise variances): rows are added eight (then four) at a
    time with the parentheses of one-by-one addition, so the result is that of the
    sequential sum while ``dst`` is loaded and stored up to 8x less often.
    """
    n2 = dst.shape[0]
    k = start
    n_active += start
    if first:
        i0 = rows[k]
        for c in range(n2):
            dst[c] = src[i0, c]
        k += 1
    while k + 8 <= n_active:
        i1 = rows[k]
        i2 = rows[k + 1]
        i3 = rows[k + 2]
        i4 = rows[k + 3]
        i5 = rows[k + 4]
        i6 = rows[k + 5]
        i7 = rows[k + 6]
        i8 = rows[k + 7]
        for c in range(n2):
            dst[c] = (((((((dst[c] + src[i1, c]) + src[i2, c]) + src[i3, c]) + src[i4, c])
                        + src[i5, c]) + src[i6, c]) + src[i7, c]) + src[i8, c]
        k += 8
    while k + 4 <= n_active:
        i1 = rows[k]
        i2 = rows[k + 1]
        i3 = rows[k + 2]
        i4 = rows[k + 3]
        for c in range(n2):
            dst[c] = (((dst[c] + src[i1, c]) + src[i2, c]) + src[i3, c]) + src[i4, c]
        k += 4
    while k < n_active:
        i1 = rows[k]
        for c in range(n2):
            dst[c] += src[i1, c]
        k += 1


@njit(cache=True, inline="always")
def _codes8(dst, src, rows, k, first):
    """Rows ``rows[k:k + 8]`` into ``dst`` (int32 tree sum; ``first``: store, else add)."""
    i0 = rows[k]
    i1 = rows[k + 1]
    i2 = rows[k + 2]
    i3 = rows[k + 3]
    i4 = rows[k + 4]
    i5 = rows[k + 5]
    i6 = rows[k + 6]
    i7 = rows[k + 7]
    for c in range(dst.shape[0]):
        x = (((np.int32(src[i0, c]) + np.int32(src[i1, c]))
              + (np.int32(src[i2, c]) + np.int32(src[i3, c])))
             + ((np.int32(src[i4, c]) + np.int32(src[i5, c]))
                + (np.int32(src[i6, c]) + np.int32(src[i7, c]))))
        if first:
            dst[c] = x
        else:
            dst[c] += x


@njit(cache=True, inline="always")
def _codes4(dst, src, rows, k, first):
    i0 = rows[k]
    i1 = rows[k + 1]
    i2 = rows[k + 2]
    i3 = rows[k + 3]
    for c in range(dst.shape[0]):
        x = ((np.int32(src[i0, c]) + np.int32(src[i1, c]))
             + (np.int32(src[i2, c]) + np.int32(src[i3, c])))
        if first:
            dst[c] = x
        else:
            dst[c] += x


@njit(cache=True, inline="always")
def _codes2(dst, src, rows, k, first):
    i0 = rows[k]
    i1 = rows[k + 1]
    for c in range(dst.shape[0]):
        x = np.int32(src[i0, c]) + np.int32(src[i1, c])
        if first:
            dst[c] = x
        else:
            dst[c] += x


@njit(cache=True, inline="always")
def _codes1(dst, src, rows, k, first):
    i0 = rows[k]
    for c in range(dst.shape[0]):
        x = np.int32(src[i0, c])
        if first:
            dst[c] = x
        else:
            dst[c] += x


@njit(cache=True, inline="always")
def _accumulate_codes(dst, src, rows, start, n_active, first):
    """``dst[c] (+)= sum of src[rows[start + k], c]`` (int32) for integer grid codes
    (``n_active >= 1``; ``first``: store, else add to ``dst``).

    Integer addition is exact and associative, so the rows are added in any grouping:
    eight per pass as a tree (then one pass each of 4, 2, 1 for the rest); the first pass
    stores instead of adding, so ``dst`` needs no zeroing. Wrap-around cannot occur: the
    layout only hands the kernel tiles whose column code sums stay below 2**31.
    """
    k = start
    n_active += start
    while k + 8 <= n_active:
        _codes8(dst, src, rows, k, first)
        first = False
        k += 8
    if k + 4 <= n_active:
        _codes4(dst, src, rows, k, first)
        first = False
        k += 4
    if k + 2 <= n_active:
        _codes2(dst, src, rows, k, first)
        first = False
        k += 2
    if k < n_active:
        _codes1(dst, src, rows, k, first)


def _new_accumulator(g, n2):
    """Zeroed column accumulator for tile ``g``: int32 for integer codes, else float64."""
    raise NotImplementedError  # compiled only (see the overload below)


@overload(_new_accumulator)
def _new_accumulator_impl(g, n2):
    if isinstance(g.dtype, types.Integer):
        return lambda g, n2: np.zeros(n2, np.int32)
    return lambda g, n2: np.zeros(n2, np.float64)


def _sum_rows(dst, src, rows, start, n_active, first):
    """The column sums of the active rows ``rows[start:start + n_active]``:
    :func:`_accumulate_codes` for integer codes, :func:`_accumulate` (the contract's order)
    for float64 tiles."""
    raise NotImplementedError  # compiled only (see the overload below)


@overload(_sum_rows)
def _sum_rows_impl(dst, src, rows, start, n_active, first):
    if isinstance(src.dtype, types.Integer):
        return lambda dst, src, rows, start, n_active, first: _accumulate_codes(
            dst, src, rows, start, n_active, first)
    return lambda dst, src, rows, start, n_active, first: _accumulate(
        dst, src, rows, start, n_active, first)


# -- the neurons ---------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _step_neurons(acc, v, s_prev, ref, out, t, sv, adc_bits, lsb, factor, decay, threshold,
                  reset_mode, refractory_steps, use_refractory):
    """Drive and update of every neuron of one sample for step ``t``, in one pass.

    ``acc``: column sums (G+ block then G- block) in units of ``step`` µS. The drive is the
    macro's differential read, ``(adc(I+) - adc(I-)) * factor`` with ``I = (acc * step) *
    V_read``, computed as ``acc * sv`` with ``sv = step * V_read`` (the same double: see
    :func:`sv_is_exact`), and the update is :func:`_neuron_update`; the spikes go to
    ``out[t]`` (uint8) and ``s_prev`` (0.0 / 1.0). The mode arguments are compile-time
    constants at every call site (see :func:`_step_dispatch`), so this loop has no branches
    and vectorises.
    """
    n = v.shape[0]
    top = float((1 << max(adc_bits, 0)) - 1)
    for j in range(n):
        i_pos = acc[j] * sv
        i_neg = acc[n + j] * sv
        if adc_bits <= 0:
            drive = (i_pos - i_neg) * factor
        else:
            drive = (adc_code(i_pos, lsb, top) * lsb - adc_code(i_neg, lsb, top) * lsb) * factor
        sp = s_prev[j]
        if reset_mode == RESET_ZERO:
            vj = decay * v[j] * (1.0 - sp) + drive
        else:
            vj = decay * v[j] + drive - threshold * sp
        if use_refractory:
            r = ref[j]
            fire = (vj > threshold) & (r == 0)
            ref[j] = refractory_steps if fire else max(r - 1, 0)
        else:
            fire = vj > threshold
        v[j] = vj
        s_prev[j] = 1.0 if fire else 0.0
        out[t, j] = np.uint8(1) if fire else np.uint8(0)


@njit(cache=True, inline="always")
def _step_dispatch(acc, v, s_prev, ref, out, t, sv, adc_bits, lsb, factor, decay, threshold,
                   reset_mode, refractory_steps):
    """:func:`_step_neurons` with the ADC, reset and refractory modes as constants."""
    if adc_bits <= 0:
        if reset_mode == RESET_ZERO:
            if refractory_steps == 0:
                _step_neurons(acc, v, s_prev, ref, out, t, sv, 0, lsb, factor, decay,
                              threshold, RESET_ZERO, 0, False)
            else:
                _step_neurons(acc, v, s_prev, ref, out, t, sv, 0, lsb, factor, decay,
                              threshold, RESET_ZERO, refractory_steps, True)
        else:
            if refractory_steps == 0:
                _step_neurons(acc, v, s_prev, ref, out, t, sv, 0, lsb, factor, decay,
                              threshold, RESET_SUBTRACT, 0, False)
            else:
                _step_neurons(acc, v, s_prev, ref, out, t, sv, 0, lsb, factor, decay,
                              threshold, RESET_SUBTRACT, refractory_steps, True)
    else:
        if reset_mode == RESET_ZERO:
            if refractory_steps == 0:
                _step_neurons(acc, v, s_prev, ref, out, t, sv, adc_bits, lsb, factor, decay,
                              threshold, RESET_ZERO, 0, False)
            else:
                _step_neurons(acc, v, s_prev, ref, out, t, sv, adc_bits, lsb, factor, decay,
                              threshold, RESET_ZERO, refractory_steps, True)
        else:
            if refractory_steps == 0:
                _step_neurons(acc, v, s_prev, ref, out, t, sv, adc_bits, lsb, factor, decay,
                              threshold, RESET_SUBTRACT, 0, False)
            else:
                _step_neurons(acc, v, s_prev, ref, out, t, sv, adc_bits, lsb, factor, decay,
                              threshold, RESET_SUBTRACT, refractory_steps, True)


@njit(cache=True, inline="always")
def _noisy_drive(acc, var, drive, step, v_read, adc_bits, lsb, factor, state):
    """Differential drive with read noise: ``N(0, V_read^2 sum var)`` on each side before
    the ADC, one normal pair per neuron (G+ then G-) from the sample's stream."""
    n = drive.shape[0]
    for j in range(n):
        state, z0, z1 = _normal_pair(state)
        i_pos = (acc[j] * step) * v_read + np.sqrt(var[j]) * v_read * z0
        i_neg = (acc[n + j] * step) * v_read + np.sqrt(var[n + j]) * v_read * z1
        drive[j] = (adc(i_pos, adc_bits, lsb) - adc(i_neg, adc_bits, lsb)) * factor
    return state


@njit(cache=True, inline="always")
def _update_all(v, s_prev, ref, drive, out, t, decay, threshold, reset_mode,
                refractory_steps):
    """:func:`_neuron_update` for every neuron of one sample; spikes to ``out[t]``."""
    for j in range(v.shape[0]):
        vj, sj, rj = _neuron_update(v[j], s_prev[j], ref[j], drive[j], decay, threshold,
                                    reset_mode, refractory_steps)
        v[j] = vj
        ref[j] = rj
        s_prev[j] = sj
        out[t, j] = np.uint8(sj)


# -- active rows ---------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _words(a):
    """The rows of a C-contiguous uint8 matrix as uint64 words; no words (every byte is then
    visited) when a row is not a whole number of words or the machine is big-endian."""
    if a.shape[1] % 8 == 0 and _LITTLE_ENDIAN:
        return a.view(np.uint64)
    return np.empty((a.shape[0], 0), np.uint64)


@njit(cache=True, inline="always")
def _append_nonzero(x, t, rows, n, offset):
    """Append ``offset + i`` for every non-zero ``x[t, i]`` (ascending) to ``rows[n:]``;
    return the new count (byte by byte, without branches: rows whose length is not a whole
    number of uint64 words)."""
    for i in range(x.shape[1]):
        rows[n] = offset + i
        n += x[t, i] != 0
    return n


_BYTE_ONES = np.uint64(0x0101010101010101)
# (flags * _GATHER) >> 56 moves the low bit of byte i of ``flags`` to bit i (all partial
# products land on distinct bits, so there are no carries)
_GATHER = np.uint64(0x0102040810204080)


@njit(cache=True, inline="always")
def _byte_flags(word):
    """One bit per byte of ``word``: bit ``i`` set iff byte ``i`` is non-zero (branch-free:
    OR each byte into its low bit, then one multiply gathers the eight low bits)."""
    f = word | (word >> np.uint64(4))
    f |= f >> np.uint64(2)
    f |= f >> np.uint64(1)
    return ((f & _BYTE_ONES) * _GATHER) >> np.uint64(56)


@njit(cache=True, inline="always")
def _flags(word, binary):
    """:func:`_byte_flags` of ``word``; ``binary`` (a compile-time constant at every call
    site): every byte is 0 or 1, so the multiply alone gathers them (their low bits are
    the bytes themselves)."""
    if binary:
        return (word * _GATHER) >> np.uint64(56)
    return _byte_flags(word)


@njit(cache=True, inline="always")
def _is_binary(x):
    """Whether every byte of the uint8 matrix ``x`` is 0 or 1 (one vectorised OR pass)."""
    acc = np.uint8(0)
    for t in range(x.shape[0]):
        for i in range(x.shape[1]):
            acc |= x[t, i]
    return acc <= 1


@njit(cache=True, inline="always")
def _flag_words(words, t, bits, binary):
    """``bits[k]``: the non-zero flags of bytes ``64k .. 64k + 63`` of row ``t`` of
    ``words`` (bit ``i`` for byte ``64k + i``); ``bits`` has ``ceil(words.shape[1] / 8)``
    words. ``binary``: every byte is known to be 0 or 1 (:func:`_flags`).

    Each 64-bit mask is assembled in registers and stored whole, so that the bit loops
    that read it back are not stalled by a failed store-to-load forwarding, and all masks
    are ready before the first (mispredicting) bit loop starts.
    """
    nw = words.shape[1]
    full = nw // 8
    for k in range(full):
        w = 8 * k
        bits[k] = (_flags(words[t, w], binary)
                   | (_flags(words[t, w + 1], binary) << np.uint64(8))
                   | (_flags(words[t, w + 2], binary) << np.uint64(16))
                   | (_flags(words[t, w + 3], binary) << np.uint64(24))
                   | (_flags(words[t, w + 4], binary) << np.uint64(32))
                   | (_flags(words[t, w + 5], binary) << np.uint64(40))
                   | (_flags(words[t, w + 6], binary) << np.uint64(48))
                   | (_flags(words[t, w + 7], binary) << np.uint64(56)))
    if 8 * full < nw:
        m = np.uint64(0)
        for j in range(nw - 8 * full):
            m |= _flags(words[t, 8 * full + j], binary) << np.uint64(8 * j)
        bits[full] = m


@njit(cache=True, inline="always")
def _append_bits(m, rows, n, base):
    """Append ``base + i`` for every set bit ``i`` of ``m`` (lowest first) to ``rows[n:]``."""
    while m != 0:
        rows[n] = base + trailing_zeros(m)
        n += 1
        m &= m - np.uint64(1)
    return n


@njit(cache=True, inline="always")
def _append_active(x, words, t, bits, rows, n, offset, binary):
    """Append ``offset + i`` for every non-zero ``x[t, i]`` (ascending) to ``rows[n:]``;
    return the new count. ``words``: ``x`` as uint64 (:func:`_words`; when it has no
    columns, every byte is visited); ``bits``: uint64 scratch of ``ceil(words.shape[1] /
    8)`` words; ``binary``: ``x`` holds only 0 and 1 (a compile-time constant).

    First the non-zero flags of every 64 bytes are gathered into one uint64
    (:func:`_flag_words`, no branches), then its set bits are visited lowest first: a branch
    is mispredicted about once per 64 inputs or neurons instead of once per eight.
    """
    if words.shape[1] == 0:
        return _append_nonzero(x, t, rows, n, offset)
    _flag_words(words, t, bits, binary)
    for k in range(bits.shape[0]):
        n = _append_bits(bits[k], rows, n, offset + 64 * k)
    return n


@njit(cache=True)
def _input_rows(raster, pairs, pair_base, in_rows, in_starts):
    """The active input rows of every step of one sample, found before the time loop (they
    do not depend on the dynamics): step ``t``'s rows are ``in_rows[in_starts[t]:
    in_starts[t + 1]]``. Returns the pair rows used.

    Pair rows: where both inputs ``2q`` and ``2q + 1`` are active and ``pairs`` allows it
    (bit ``2q`` of its words; empty: no pairs), the single row ``pair_base + q`` (their
    code sum, see ``sim.reservoir``) stands for the two. Rows come ascending without pairs;
    with pairs, per 64 inputs the singles and then the pairs (integer sums do not depend on
    the order).
    """
    words = _words(raster)
    bits = np.zeros((words.shape[1] + 7) // 8, np.uint64)
    use_pairs = pairs.shape[0] > 0 and words.shape[1] > 0
    in_starts[0] = 0
    # binary rasters (the contract's; check_rasters makes them so) gather their flags with
    # one multiply per word; anything else non-zero still counts, the longer way
    if words.shape[1] > 0 and _is_binary(raster):
        return _scan_steps(raster, words, bits, pairs, pair_base, in_rows, in_starts,
                           use_pairs, True)
    return _scan_steps(raster, words, bits, pairs, pair_base, in_rows, in_starts, use_pairs,
                       False)


@njit(cache=True, inline="always")
def _scan_steps(raster, words, bits, pairs, pair_base, in_rows, in_starts, use_pairs,
                binary):
    """The time loop of :func:`_input_rows` (``binary``: a compile-time constant)."""
    n = 0
    n_pairs = 0
    for t in range(raster.shape[0]):
        if not use_pairs:
            n = _append_active(raster, words, t, bits, in_rows, n, 0, binary)
        else:
            _flag_words(words, t, bits, binary)
            for k in range(bits.shape[0]):
                m = bits[k]
                both = m & (m >> np.uint64(1)) & pairs[k]
                n = _append_bits(m & ~(both | (both << np.uint64(1))), in_rows, n, 64 * k)
                base = pair_base + 32 * k
                while both != 0:  # pair q sits at bit 2q
                    in_rows[n] = base + (trailing_zeros(both) >> 1)
                    n += 1
                    n_pairs += 1
                    both &= both - np.uint64(1)
        in_starts[t + 1] = n
    return n_pairs


# -- one sample ----------------------------------------------------------------------------

@njit(cache=True, inline="always")
def _scratch(g, n_steps, n_inputs, noise, n_blocks, tiled):
    """Working arrays of one sample, allocated once per batch task and reused (fresh large
    allocations per sample would page-fault), carved from four buffers (each allocation
    costs about as much as a short step at batch 1). With ``n_blocks`` row blocks
    (a multi-tile layout) the accumulator holds one column-sum vector per block, and
    ``blk_rows`` / ``blk_starts`` receive each step's active rows grouped by block
    (``tiled``: the tiles' own read noise, one block or more)."""
    n2 = g.shape[1]
    n = n2 // 2
    n_var = n2 if noise else (n_blocks * n2 if tiled else 0)
    tiled = tiled or n_blocks > 1
    n_drive = n if (noise or tiled) else 0
    # np.empty, not zeros: every part is written before it is read (v, s_prev and the
    # refractory counts are reset per sample), and zeroing the ~100 kB of row lists cost
    # about 2.5 µs a call, felt at batch 1
    f = np.empty(2 * n + n_var + n_drive)
    n_rows = n_inputs + n
    n_in_rows = n_steps * n_inputs
    n_bits = (n + 63) // 64
    n_blk = n_rows + n_blocks + 1 if tiled else 0
    i = np.empty(n + n_rows + n_in_rows + n_steps + 1 + n_bits + n_blk, np.int64)
    o = n + n_rows + n_in_rows + n_steps + 1
    o2 = o + n_bits
    return (_new_accumulator(g, n_blocks * n2), f[:n], i[:n], f[n:2 * n],
            f[2 * n:2 * n + n_var], f[2 * n + n_var:], i[n:n + n_rows],
            i[n + n_rows:n + n_rows + n_in_rows], i[n + n_rows + n_in_rows:o],
            i[o:o2].view(np.uint64), i[o2:o2 + n_rows], i[o2 + n_rows:])


@njit(cache=True, inline="always")
def _group_rows(rows, n_active, blocks, n_blocks, out, starts):
    """``rows[:n_active]`` grouped by row block (``blocks[row]``), each group keeping the
    rows' order (a stable counting sort): block ``b``'s rows are ``out[starts[b]:
    starts[b + 1]]``."""
    for b in range(n_blocks + 1):
        starts[b] = 0
    for k in range(n_active):
        starts[blocks[rows[k]] + 1] += 1
    for b in range(n_blocks):
        starts[b + 1] += starts[b]
    for k in range(n_active):
        b = blocks[rows[k]]
        out[starts[b]] = rows[k]
        starts[b] += 1
    for b in range(n_blocks, 0, -1):  # starts[b] now ends block b: shift back by one
        starts[b] = starts[b - 1]
    starts[0] = 0


@njit(cache=True, inline="always")
def _block_drive(acc, n_blocks, drive, sv, adc_bits, lsb, factor):
    """The drive of a multi-tile layout: per row block (one tile's rows) its column sums
    read through that tile's ADC and subtracted (G+ - G-), the blocks' partial results
    added in ascending block order starting from block 0's value, then x ``factor``:
    ``rram_lsm.mapping.tiled_mvm`` followed by the reference's ``diff * factor``."""
    n = drive.shape[0]
    n2 = 2 * n
    top = float((1 << max(adc_bits, 0)) - 1)
    for b in range(n_blocks):
        o = b * n2
        for j in range(n):
            i_pos = acc[o + j] * sv
            i_neg = acc[o + n + j] * sv
            if adc_bits <= 0:
                d = i_pos - i_neg
            else:
                d = adc_code(i_pos, lsb, top) * lsb - adc_code(i_neg, lsb, top) * lsb
            if b == 0:
                drive[j] = d
            else:
                drive[j] += d
    for j in range(n):
        drive[j] *= factor


@njit(cache=True, inline="always")
def _tiles_noisy_drive(acc, var, blk_starts, parts, keys_t, sample, drive, step, v_read,
                       adc_bits, lsb, factor, noise_rel):
    """The drive of a multi-tile layout with each tile's own read noise, exactly as
    ``sim.kernels.read.mvm_column_noise`` draws it in every part's ``mvm`` of
    ``rram_lsm.mapping.tiled_mvm``: per part (``parts`` rows: row block, first neuron,
    neurons; in the tile map's order) and column ``I = adc((sum G + noise_rel * sqrt(sum
    G^2) * z) * V_read)`` with ``z`` from the ziggurat seeded by ``(keys_t[part],
    sample)`` over the part's own interleaved columns; G+ - G- per part; parts of a
    column block added in ascending row-block order; then x ``factor``. A part whose
    rows are all silent reads exactly 0 (its normals are not drawn: ``0 + 0 * z`` is 0)."""
    n = drive.shape[0]
    n2 = 2 * n
    for p in range(parts.shape[0]):
        rb = parts[p, 0]
        k0 = parts[p, 1]
        o = rb * n2
        silent = blk_starts[rb + 1] == blk_starts[rb]
        state = splitmix64(keys_t[p] ^ splitmix64(np.uint64(sample)))
        for c in range(parts[p, 2]):
            k = k0 + c
            if silent:
                d = 0.0  # adc(0) on both columns: the same code, difference 0
            else:
                z0, z1, state = ziggurat_pair(state, ZIG_X, ZIG_RATIO)
                t_pos = acc[o + k] * step + noise_rel * math.sqrt(var[o + k]) * z0
                t_neg = acc[o + n + k] * step + noise_rel * math.sqrt(var[o + n + k]) * z1
                d = adc(t_pos * v_read, adc_bits, lsb) - adc(t_neg * v_read, adc_bits, lsb)
            if rb == 0:
                drive[k] = d
            else:
                drive[k] += d
    for j in range(n):
        drive[j] *= factor


@njit(cache=True, inline="always")
def _blocks_step(g, g_var, blocks, n_blocks, rows, n_active, acc, var, blk_rows, blk_starts,
                 drive, v, s_prev, ref, out, t, sv, adc_bits, lsb, factor, decay, threshold,
                 reset_mode, refractory_steps, parts, keys, sample, step, v_read, noise_rel):
    """One step of a multi-tile layout: each row block's column sums over its own active
    rows (zero where it has none), :func:`_block_drive` (or, with ``noise_rel`` > 0,
    :func:`_tiles_noisy_drive` with the sums of squares ``g_var`` too), then every
    neuron's update."""
    n2 = g.shape[1]
    _group_rows(rows, n_active, blocks, n_blocks, blk_rows, blk_starts)
    for b in range(n_blocks):
        start = blk_starts[b]
        count = blk_starts[b + 1] - start
        dst = acc[b * n2:(b + 1) * n2]
        if count == 0:
            dst[:] = 0
        else:
            _sum_rows(dst, g, blk_rows, start, count, True)
            if noise_rel > 0:
                _accumulate(var[b * n2:(b + 1) * n2], g_var, blk_rows, start, count, True)
    if noise_rel > 0:
        _tiles_noisy_drive(acc, var, blk_starts, parts, keys[t], sample, drive, step,
                           v_read, adc_bits, lsb, factor, noise_rel)
    else:
        _block_drive(acc, n_blocks, drive, sv, adc_bits, lsb, factor)
    if reset_mode == RESET_ZERO:
        _update_all(v, s_prev, ref, drive, out, t, decay, threshold, RESET_ZERO,
                    refractory_steps)
    else:
        _update_all(v, s_prev, ref, drive, out, t, decay, threshold, RESET_SUBTRACT,
                    refractory_steps)


@njit(cache=True)
def _run_one(g, g_var, pairs, blocks, parts, keys, raster, spikes_out, v_out, fp, ip, seed,
             scratch):
    """The whole reservoir for one sample; returns its synaptic events (active input and
    recurrent rows summed over the steps, a pair row counting as its two). ``blocks``:
    the row block of every tile row (multi-tile layouts; unread for one tile); ``parts``,
    ``keys``: the tiles and their read keys per step (tiled read noise only; ``seed`` is
    then the sample's index in the batch)."""
    n_steps, n_inputs = raster.shape
    n = g.shape[1] // 2
    step = fp[_F_STEP]
    v_read = fp[_F_VREAD]
    lsb = fp[_F_LSB]
    factor = fp[_F_FACTOR]
    decay = fp[_F_DECAY]
    threshold = fp[_F_THRESHOLD]
    sv = fp[_F_SV]
    adc_bits = ip[_I_ADC_BITS]
    reset_mode = ip[_I_RESET]
    refractory_steps = ip[_I_REFRACTORY]
    noise = ip[_I_NOISE] != 0
    n_blocks = ip[_I_BLOCKS]
    tile_noise = fp[_F_TILE_NOISE]
    (acc, v, ref, s_prev, var, drive, rows, in_rows, in_starts, spike_bits, blk_rows,
     blk_starts) = scratch
    v[:] = 0.0
    ref[:] = 0
    s_prev[:] = 0.0
    # Active rows of a step: its input events (all steps' found before the time loop), then
    # the recurrent rows of the neurons that spiked at the previous step.
    synaptic_events = _input_rows(raster, pairs, n_inputs + n, in_rows, in_starts)
    spike_words = _words(spikes_out)
    state = np.uint64(seed)
    for t in range(n_steps):
        first = in_starts[t]
        n_active = in_starts[t + 1] - first
        for k in range(n_active):
            rows[k] = in_rows[first + k]
        if t > 0:
            n_active = _append_active(spikes_out, spike_words, t - 1, spike_bits, rows,
                                      n_active, n_inputs, True)  # spikes are 0 / 1
        synaptic_events += n_active
        if n_blocks > 1 or tile_noise > 0:  # several tiles, or the tiles' own noise
            _blocks_step(g, g_var, blocks, n_blocks, rows, n_active, acc, var, blk_rows,
                         blk_starts, drive, v, s_prev, ref, spikes_out, t, sv, adc_bits, lsb,
                         factor, decay, threshold, reset_mode, refractory_steps, parts, keys,
                         seed, step, v_read, tile_noise)
            continue
        if n_active == 0:
            acc[:] = 0
            if noise:
                var[:] = 0.0
        else:
            _sum_rows(acc, g, rows, 0, n_active, True)
        if noise:
            if n_active:
                _accumulate(var, g_var, rows, 0, n_active, True)
            state = _noisy_drive(acc, var, drive, step, v_read, adc_bits, lsb, factor, state)
            if reset_mode == RESET_ZERO:
                _update_all(v, s_prev, ref, drive, spikes_out, t, decay, threshold,
                            RESET_ZERO, refractory_steps)
            else:
                _update_all(v, s_prev, ref, drive, spikes_out, t, decay, threshold,
                            RESET_SUBTRACT, refractory_steps)
        else:
            _step_dispatch(acc, v, s_prev, ref, spikes_out, t, sv, adc_bits, lsb, factor,
                           decay, threshold, reset_mode, refractory_steps)
    v_out[:] = v
    return synaptic_events


# -- batches -------------------------------------------------------------------------------

@njit(cache=True, parallel=True)
def _run_parallel(g, g_var, pairs, blocks, parts, keys, rasters, spikes, v_final, events, fp,
                  ip, seeds):
    batch, n_steps, n_inputs = rasters.shape
    noise = ip[_I_NOISE] != 0
    # a few samples per task: scratch is allocated once per task; run with a parallel chunk
    # size of 1 (see run_parallel) so that tasks are handed out one at a time, and a thread
    # that other processes slow down takes fewer of them instead of holding up the end
    n_tasks = min(batch, 32)
    for c in prange(n_tasks):
        scratch = _scratch(g, n_steps, n_inputs, noise, ip[_I_BLOCKS], fp[_F_TILE_NOISE] > 0)
        for b in range(c * batch // n_tasks, (c + 1) * batch // n_tasks):
            events[b] = _run_one(g, g_var, pairs, blocks, parts, keys, rasters[b], spikes[b],
                                 v_final[b], fp, ip, seeds[b], scratch)


@njit(cache=True)
def _run_serial(g, g_var, pairs, blocks, parts, keys, rasters, spikes, v_final, events, fp,
                ip, seeds):
    batch, n_steps, n_inputs = rasters.shape
    scratch = _scratch(g, n_steps, n_inputs, ip[_I_NOISE] != 0, ip[_I_BLOCKS],
                       fp[_F_TILE_NOISE] > 0)
    for b in range(batch):
        events[b] = _run_one(g, g_var, pairs, blocks, parts, keys, rasters[b], spikes[b],
                             v_final[b], fp, ip, seeds[b], scratch)


def accumulator_zero(g):
    """The zero of the column accumulator for tile ``g``: float64, or int32 for integer codes
    (a uint16 tile is summed in int32)."""
    return np.int32(0) if g.dtype.kind in "iu" else 0.0


def sv_is_exact(step: float, v_read: float) -> bool:
    """Whether ``acc * (step * v_read) == (acc * step) * v_read`` for every accumulator value
    ``acc`` (an int32 code sum, or a float64 sum with ``step`` 1.0).

    True for ``step`` 1.0 (``acc * 1.0`` is ``acc``), and when ``step`` is a power of two
    in [2**-1022, 1] and ``step * v_read`` is a normal, finite double: then ``acc * step``
    (an integer times ``step`` is 0 or at least ``step`` in magnitude) and ``step *
    v_read`` are exact, so both sides are the same real number ``acc * step * v_read``
    rounded once. Saves a multiply per column and step.
    """
    if step == 1.0:
        return True  # acc * 1.0 is acc, and 1.0 * v_read is v_read
    mant, _ = math.frexp(step)
    sv = step * v_read
    return (mant == 0.5 and sys.float_info.min <= step <= 1.0 and math.isfinite(sv)
            and abs(sv) >= sys.float_info.min)


class FusedParams(NamedTuple):
    """Everything of a fused run that is fixed for a tile (after the conductances)."""

    step_us: float
    """µS per unit of the tile's values (1.0 for a float64 tile)."""
    acc_zero: object
    """Zero of the column accumulator (:func:`accumulator_zero`)."""
    v_read: float
    """Read voltage (V)."""
    adc_bits: int
    """ADC resolution; <= 0 means ideal."""
    adc_lsb_ua: float
    """Current of one ADC code (µA)."""
    factor: float
    """µA of differential current -> membrane units."""
    decay: float
    """Membrane decay per step."""
    threshold: float
    """Spike threshold."""
    reset_mode: int
    """RESET_ZERO or RESET_SUBTRACT."""
    refractory_steps: int
    """Silent steps after a spike."""
    noise: bool
    """Whether to add read noise from ``g_var``."""
    n_blocks: int = 1
    """Row blocks of a multi-tile layout (each its own tile and ADC; 1: one tile). More
    than one only without ``noise``."""
    tile_noise_rel: float = 0.0
    """Relative read noise of the tiles of a multi-tile layout drawn as each tile's own
    ``mvm`` draws it (> 0: ``g_var`` holds G^2, the kernel takes per-step keys; not with
    ``noise``)."""

    def packed(self) -> tuple[np.ndarray, np.ndarray]:
        """``(fp, ip)``: the float64 and int64 parameter arrays the compiled kernel takes."""
        if not sv_is_exact(self.step_us, self.v_read):
            raise ValueError(f"step {self.step_us!r} x V_read {self.v_read!r} is not exact: "
                             "use a float64 tile (step 1.0)")
        fp = np.empty(8)
        fp[[_F_STEP, _F_VREAD, _F_LSB, _F_FACTOR, _F_DECAY, _F_THRESHOLD, _F_SV,
            _F_TILE_NOISE]] = (
            self.step_us, self.v_read, self.adc_lsb_ua, self.factor, self.decay,
            self.threshold, self.step_us * self.v_read, self.tile_noise_rel)
        if self.n_blocks < 1 or (self.n_blocks > 1 and self.noise):
            raise ValueError(f"{self.n_blocks} row blocks: need >= 1, and 1 with read noise")
        if self.tile_noise_rel and (self.noise or not self.tile_noise_rel > 0):
            raise ValueError("tile_noise_rel must be > 0, and not with noise")
        ip = np.empty(5, np.int64)
        ip[[_I_ADC_BITS, _I_RESET, _I_REFRACTORY, _I_NOISE, _I_BLOCKS]] = (
            self.adc_bits, self.reset_mode, self.refractory_steps, int(self.noise),
            self.n_blocks)
        return fp, ip


class FusedOutputs(NamedTuple):
    """Preallocated outputs of a fused run of ``batch`` samples."""

    spikes: np.ndarray
    """uint8 (batch, T, n): every element is written."""
    v_final: np.ndarray
    """float64 (batch, n): the membrane after the last step."""
    events: np.ndarray
    """int64 (batch,): synaptic events per sample: active input and recurrent rows summed
    over the steps (the contract's row additions; a pair row counts as its two)."""

    @classmethod
    def empty(cls, batch: int, n_steps: int, n: int) -> "FusedOutputs":
        """Outputs for ``batch`` samples of ``n_steps`` steps and ``n`` neurons."""
        return cls(np.empty((batch, n_steps, n), np.uint8), np.empty((batch, n)),
                   np.empty(batch, np.int64))


def split_columns(tile: np.ndarray) -> np.ndarray:
    """The kernel's column order of a tile given with interleaved differential pairs
    (column ``2k`` G+, ``2k+1`` G- of neuron ``k``): all G+ columns, then all G- columns."""
    return np.ascontiguousarray(np.concatenate([tile[:, 0::2], tile[:, 1::2]], axis=1))


def run_fused(g, g_var, rasters, out: FusedOutputs, params: FusedParams, seeds,
              parallel: bool = True, pairs=None, blocks=None) -> None:
    """Run the whole reservoir for a batch into ``out``.

    ``g`` (n_inputs + n [+ n_inputs / 2 pair rows], 2n) noise-free tile conductances in the
    kernel's column order (:func:`split_columns`: G+ of every neuron, then G-; rows =
    inputs, then neurons, then the pair rows ``pairs`` allows, see
    ``sim.reservoir.ReservoirRunner``): float64 µS with ``params.step_us`` 1.0, or uint16 /
    int32 grid codes of ``step_us`` µS each (exact only while no column's codes sum past
    int32, see ``sim.kernels.read.CONDUCTANCE_STEP_US``); ``g_var`` float64 of the tile's
    shape and order: per-cell read-noise variance (µS², only read when ``params.noise``);
    ``rasters`` uint8 (batch, T, n_inputs); ``seeds`` uint64 (batch,) seed each sample's
    noise stream; ``pairs`` uint64 words (bit ``2q``: pair row ``q`` may be used; None or
    empty: no pair rows); ``blocks`` int64 (rows of ``g``,): the row block of every row
    for a multi-tile layout with ``params.n_blocks`` blocks (None: one block).
    """
    pairs = np.zeros(0, np.uint64) if pairs is None else np.ascontiguousarray(pairs, np.uint64)
    blocks = (np.zeros(0, np.int64) if blocks is None
              else np.ascontiguousarray(blocks, np.int64))
    if params.n_blocks > 1 and (blocks.shape != (g.shape[0],) or blocks.min() < 0
                                or blocks.max() >= params.n_blocks):
        raise ValueError(f"blocks must give each of the {g.shape[0]} rows a block in "
                         f"[0, {params.n_blocks})")
    fused_kernel(parallel)(g, g_var, pairs, blocks, _NO_PARTS, _NO_KEYS, rasters, *out,
                           *params.packed(), seeds)


_NO_PARTS = np.zeros((0, 3), np.int64)
_NO_KEYS = np.zeros((0, 0), np.uint64)


def run_parallel(*args) -> None:
    """The parallel kernel with dynamic scheduling (numba's chunk size 1 for the call)."""
    previous = set_parallel_chunksize(1)
    try:
        _run_parallel(*args)
    finally:
        set_parallel_chunksize(previous)


def fused_kernel(parallel: bool):
    """The compiled kernel behind :func:`run_fused`, for callers that stream one sample at a
    time and want no Python layer in between: arguments ``(g, g_var, pairs, blocks, parts,
    keys, rasters, spikes, v_final, events, fp, ip, seeds)`` with ``(fp, ip) =
    params.packed()`` (``parts`` int64 (tiles, 3) and ``keys`` uint64 (T, tiles): tiled
    read noise only, else empty)."""
    return run_parallel if parallel else _run_serial
