"""Per-hop prosody descriptors of speech: loudness, activity, pitch, onsets.

Everything runs at 16 kHz, 100 hops per second (10 ms). Hop ``i`` describes the interval
``[i / 100, (i + 1) / 100)`` seconds and is measured with a window centred on its middle. The
audio is processed in blocks, so time and memory grow linearly with its length.
"""
from __future__ import annotations

from math import gcd
from typing import Iterator

import numpy as np

from talkinghead.types import AudioFeatures, Phone, Waveform

from . import dsp

SAMPLE_RATE = 16000
"""Analysis sample rate in Hz."""
HOP = 160
"""Samples per hop at 16 kHz (10 ms)."""
RATE = SAMPLE_RATE / HOP
"""Hops per second (100)."""
LOUD_WIN = 400
"""Loudness window in samples (25 ms)."""
PITCH_MIN_HZ = 70.0
"""Lowest F0 searched, Hz."""
PITCH_MAX_HZ = 400.0
"""Highest F0 searched, Hz."""
_YIN_WIN = 400
"""YIN integration window in samples (25 ms: over 1.75 periods at 70 Hz)."""
_YIN_SEG = 640
"""Samples per pitch segment: the window plus the largest lag (<= 240)."""
_YIN_THRESHOLD = 0.3
"""YIN aperiodicity below which a dip counts as a period."""
_FLOOR_DB = -100.0
"""Loudness of digital silence, dBFS."""
_BLOCK_SECONDS = 20.0
"""Seconds of audio resampled and analysed at a time."""
_GATE_DB = -65.0
"""Speech level (dBFS) under which the whole signal counts as silence."""


def iter_16k(wave: Waveform, block_seconds: float = _BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Yield the waveform resampled to 16 kHz as consecutive float32 blocks.

    Blocks hold about ``block_seconds`` of audio each ((n,) float32, same scale as the input);
    concatenated they equal one resampling of the whole signal (up to rounding). Only one block
    of the input and of the output is alive at a time (read with ``Waveform.read``), so a
    recording kept in a file is never loaded whole. NaN and infinite samples become 0 and +-1.
    """
    n = wave.num_samples
    sr = int(wave.sample_rate)
    if sr == SAMPLE_RATE:
        step = int(block_seconds * SAMPLE_RATE)
        for start in range(0, n, step):
            yield _finite(wave.read(start, start + step))
        return
    g = gcd(sr, SAMPLE_RATE)
    up, down = SAMPLE_RATE // g, sr // g
    pad = down * int(np.ceil(12.0 * max(up, down) / up / down + 1))
    step = down * max(1, int(block_seconds * sr) // down)
    n_out = -(-n * up // down)
    for start in range(0, n, step):
        lo, hi = max(0, start - pad), min(n, start + step + pad)
        y = dsp.resample_poly(_finite(wave.read(lo, hi)), up, down).astype(np.float32)
        skip = (start - lo) * up // down
        take = min(step * up // down, n_out - start * up // down)
        yield y[skip:skip + take]


def _finite(x: np.ndarray) -> np.ndarray:
    """(n,) float32 copy of ``x`` with NaN → 0 and ±inf → ±1."""
    return np.nan_to_num(x.astype(np.float32, copy=False), posinf=1.0, neginf=-1.0)


def _highpass() -> np.ndarray:
    """The (6,) second-order section of a 60 Hz Butterworth high-pass at 16 kHz."""
    return dsp.butter2(60.0 / (SAMPLE_RATE / 2), "highpass")


def _frame_matrix(buf: np.ndarray, count: int, length: int) -> np.ndarray:
    """Read-only view of rows ``buf[k*HOP : k*HOP + length]`` for ``k < count``: (count, length)."""
    view = np.lib.stride_tricks.sliding_window_view(buf[:(count - 1) * HOP + length], length)
    return view[::HOP]


def _loudness_db(segments: np.ndarray) -> np.ndarray:
    """RMS level in dBFS of the centred 25 ms windows of pitch segments (F, 640) -> (F,)."""
    lo = (_YIN_SEG - LOUD_WIN) // 2
    win = segments[:, lo:lo + LOUD_WIN].astype(np.float64)
    power = np.einsum("ij,ij->i", win, win) / LOUD_WIN
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-30)), _FLOOR_DB).astype(np.float32)


def _yin(segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate F0 per segment (F, 640) at 16 kHz -> (f0 in Hz, aperiodicity in 0..~1), (F,) each.

    f0 is 0 where no dip of the cumulative-mean-normalised difference falls below the threshold.
    """
    n = segments.shape[0]
    tau_min = int(SAMPLE_RATE / PITCH_MAX_HZ)
    tau_max = int(np.ceil(SAMPLE_RATE / PITCH_MIN_HZ))
    lags = tau_max + 2
    seg = segments.astype(np.float32)
    spec_a = np.fft.rfft(seg[:, :_YIN_WIN], n=1024, axis=1)
    spec_b = np.fft.rfft(seg, n=1024, axis=1)
    corr = np.fft.irfft(np.conj(spec_a) * spec_b, n=1024, axis=1)[:, :lags].astype(np.float64)
    csum = np.concatenate([np.zeros((n, 1)), np.cumsum(seg.astype(np.float64) ** 2, axis=1)], axis=1)
    energy = csum[:, _YIN_WIN:_YIN_WIN + lags] - csum[:, :lags]
    diff = np.maximum(corr[:, :1] + energy - 2.0 * corr, 0.0)
    running = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] * np.arange(1, lags) / np.maximum(running, 1e-12)
    mid = cmnd[:, tau_min:tau_max + 1]
    left, right = cmnd[:, tau_min - 1:tau_max], cmnd[:, tau_min + 1:tau_max + 2]
    dips = (mid < _YIN_THRESHOLD) & (mid <= left) & (mid <= right)
    has = dips.any(axis=1)
    k = np.argmax(dips, axis=1)
    rows = np.arange(n)
    y0, y1, y2 = left[rows, k], mid[rows, k], right[rows, k]
    denom = y0 - 2.0 * y1 + y2
    shift = np.where(np.abs(denom) > 1e-12, 0.5 * (y0 - y2) / np.where(denom == 0, 1, denom), 0.0)
    tau = tau_min + k + np.clip(shift, -1.0, 1.0)
    f0 = np.where(has, SAMPLE_RATE / tau, 0.0)
    aper = np.where(has, y1, mid.min(axis=1))
    return f0.astype(np.float32), aper.astype(np.float32)


def _filtered_blocks(wave: Waveform) -> Iterator[np.ndarray]:
    """Yield 16 kHz float32 blocks high-passed at 60 Hz, the filter started in steady state on the
    first sample (so a DC offset is gone from the start)."""
    highpass = dsp.SteadyFilter(_highpass())
    for block in iter_16k(wave):
        if len(block) == 0:
            continue
        yield highpass(block).astype(np.float32)


def _raw_tracks(wave: Waveform) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stream the audio once -> (loudness dBFS, raw f0 Hz, aperiodicity), each (F,) float32.

    F = ceil(16 kHz samples / 160). Hop i is analysed on the 640 samples centred on
    ``i * 160 + 80`` (zeros outside the signal); only one block plus a segment is buffered.
    """
    lead = _YIN_SEG // 2 - HOP // 2
    buf = np.zeros(lead, dtype=np.float32)
    origin = 0
    total = 0
    parts: list[tuple[np.ndarray, ...]] = []
    for block in _filtered_blocks(wave):
        total += len(block)
        buf = np.concatenate([buf, block])
        buf, origin = _consume(buf, origin, (len(buf) + origin - _YIN_SEG) // HOP + 1, parts)
    frames = -(-total // HOP)
    buf = np.concatenate([buf, np.zeros(_YIN_SEG, dtype=np.float32)])
    _consume(buf, origin, frames, parts)
    if not parts:
        empty = np.zeros(0, dtype=np.float32)
        return empty, empty, empty
    loud, f0, aper = (np.concatenate([p[i] for p in parts])[:frames] for i in range(3))
    return loud, f0, aper


def _consume(buf: np.ndarray, origin: int, upto: int,
             parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, int]:
    """Analyse hops ``origin // HOP .. upto - 1`` of a buffer starting at padded sample ``origin``.

    Appends (loudness, f0, aperiodicity) to ``parts``; returns the buffer without the consumed
    samples and its new origin.
    """
    first = origin // HOP
    count = upto - first
    if count <= 0:
        return buf, origin
    segments = _frame_matrix(buf, count, _YIN_SEG)
    for lo in range(0, count, 2000):
        seg = segments[lo:lo + 2000]
        f0, aper = _yin(seg)
        parts.append((_loudness_db(seg), f0, aper))
    return buf[count * HOP:], origin + count * HOP


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average over ``width`` hops, edges replicated: (F,) -> (F,) float32."""
    if len(x) == 0 or width <= 1:
        return x.astype(np.float32)
    padded = np.pad(x.astype(np.float64), (width // 2, width - 1 - width // 2), mode="edge")
    csum = np.concatenate([[0.0], np.cumsum(padded)])
    return ((csum[width:] - csum[:-width]) / width).astype(np.float32)


def _levels(loud_db: np.ndarray) -> tuple[float, float] | None:
    """Robust (noise floor, speech level) in dBFS of a loudness track (F,), or None if silent.

    The noise floor is the 10th percentile; the speech level the 90th percentile of hops more than
    10 dB above it. The floor is kept 25..50 dB below the speech level.
    """
    if len(loud_db) == 0:
        return None
    noise = float(np.percentile(loud_db, 10))
    loud = loud_db[loud_db > noise + 10.0]
    if len(loud) < 6:
        loud = loud_db
    speech = float(np.percentile(loud, 90))
    if speech < _GATE_DB:
        return None
    return float(np.clip(noise, speech - 50.0, speech - 25.0)), speech


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encoding of a boolean (F,) -> (starts, lengths, values), each (R,)."""
    change = np.flatnonzero(np.diff(mask.astype(np.int8))) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [len(mask)]]))
    return starts, lengths, mask[starts]


def _drop_short(mask: np.ndarray, value: bool, min_len: int, keep_edges: bool) -> np.ndarray:
    """Flip runs equal to ``value`` shorter than ``min_len`` hops; edge runs kept if asked."""
    if len(mask) == 0:
        return mask
    starts, lengths, values = _runs(mask)
    flip = (values == value) & (lengths < min_len)
    if keep_edges:
        flip[[0, -1]] = False
    return np.repeat(np.where(flip, not value, values), lengths)


def _hysteresis(x: np.ndarray, low: float, high: float) -> np.ndarray:
    """On above ``high``, off below ``low``, otherwise keep the last decided state: (F,) bool."""
    decided = (x >= high) | (x < low)
    idx = np.where(decided, np.arange(len(x)), -1)
    last = np.maximum.accumulate(idx) if len(x) else idx
    return np.where(last >= 0, x[np.maximum(last, 0)] >= high, False)


def speech_activity(loud_db: np.ndarray) -> np.ndarray:
    """Speech presence (F,) float32 in [0, 1] from a loudness track (F,) in dBFS at 100 Hz.

    Adaptive hysteresis between the noise floor and the speech level (invariant to gain), gaps
    under 150 ms filled, blips under 60 ms dropped, then 30 ms ramps at the edges.
    """
    levels = _levels(loud_db)
    if levels is None:
        return np.zeros(len(loud_db), dtype=np.float32)
    noise, speech = levels
    span = speech - noise
    smooth = dsp.medfilt3(loud_db) if len(loud_db) >= 3 else loud_db
    mask = _hysteresis(smooth, noise + 0.3 * span, noise + 0.45 * span)
    mask = _drop_short(mask, False, 15, keep_edges=True)
    mask = _drop_short(mask, True, 6, keep_edges=False)
    return np.clip(_smooth(mask.astype(np.float32), 3), 0.0, 1.0)


def _clean_pitch(f0: np.ndarray, aper: np.ndarray, loud_db: np.ndarray,
                 activity: np.ndarray) -> np.ndarray:
    """Gate raw F0 (F,) to voiced, loud-enough, active hops; drop voiced runs < 30 ms; median-3."""
    levels = _levels(loud_db)
    if levels is None:
        return np.zeros_like(f0)
    noise, speech = levels
    voiced = (f0 > 0) & (loud_db > noise + 0.3 * (speech - noise)) & (activity > 0.0)
    voiced &= aper < _YIN_THRESHOLD
    voiced = _drop_short(voiced, True, 3, keep_edges=False)
    out = np.where(voiced, f0, 0.0).astype(np.float32)
    if len(out) >= 3:
        stacked = np.stack([np.roll(out, 1), out, np.roll(out, -1)])
        med = np.median(stacked, axis=0)
        inner = voiced & np.roll(voiced, 1) & np.roll(voiced, -1)
        inner[[0, -1]] = False
        out = np.where(inner, med, out).astype(np.float32)
    return out


def onset_strength(loud_db: np.ndarray) -> np.ndarray:
    """Onset strength (F,) float32 in [0, 1]: positive 20 ms rise of smoothed loudness.

    Loudness is floored at the noise floor, so background fluctuations give no onsets; a rise of
    20 dB within 20 ms maps to 1.
    """
    levels = _levels(loud_db)
    if levels is None or len(loud_db) < 3:
        return np.zeros(len(loud_db), dtype=np.float32)
    noise, _ = levels
    smooth = _smooth(np.maximum(loud_db, noise), 3)
    flux = np.zeros_like(smooth)
    flux[2:] = smooth[2:] - smooth[:-2]
    return np.clip(flux / 20.0, 0.0, 1.0).astype(np.float32)


def compute_features(wave: Waveform, phones: tuple[Phone, ...]) -> AudioFeatures:
    """Describe ``wave`` at 100 hops per second; ``phones`` are passed through unchanged.

    Returns loudness (dBFS, -100 floor, DC removed), activity (0..1), pitch (Hz, 0 unvoiced,
    70..400 Hz) and onsets (0..1), each (F,) float32 with F = ceil(duration * 100).
    """
    loud, f0, aper = _raw_tracks(wave)
    activity = speech_activity(loud)
    pitch = _clean_pitch(f0, aper, loud, activity)
    return AudioFeatures(
        rate=RATE,
        loudness=loud.astype(np.float32),
        activity=activity,
        pitch=pitch,
        onsets=onset_strength(loud),
        phones=tuple(phones),
        duration=float(wave.duration),
    )


def frame_values(values: np.ndarray, rate: float, fps: float, num_frames: int) -> np.ndarray:
    """Resample per-hop ``values`` (F, ...) at ``rate`` Hz to ``num_frames`` video frames at ``fps``.

    Frame k gets the time-weighted mean of the hops overlapping ``[k / fps, (k + 1) / fps)``;
    past the last hop the last value holds (zeros if there are no hops). Returns
    (num_frames, ...) float32. Averaging mixes in zeros, so pitch gives a voiced-weighted mean.
    """
    vals = np.asarray(values, dtype=np.float64)
    shape = (num_frames,) + vals.shape[1:]
    if num_frames <= 0:
        return np.zeros(shape, dtype=np.float32)
    if vals.shape[0] == 0:
        return np.zeros(shape, dtype=np.float32)
    flat = vals.reshape(vals.shape[0], -1)
    edges = np.arange(num_frames + 1) / float(fps) * float(rate)
    n = flat.shape[0]
    extra = max(0, int(np.ceil(edges[-1])) - n + 1)
    flat = np.concatenate([flat, np.repeat(flat[-1:], extra, axis=0)])
    integral = np.concatenate([np.zeros((1, flat.shape[1])), np.cumsum(flat, axis=0)])
    grid = np.arange(integral.shape[0], dtype=np.float64)
    at = np.stack([np.interp(edges, grid, integral[:, j]) for j in range(flat.shape[1])], axis=1)
    width = np.diff(edges)[:, None]
    return (np.diff(at, axis=0) / width).reshape(shape).astype(np.float32)
