"""The few signal-processing routines the pipeline needs, without SciPy.

Importing ``scipy.signal`` costs 0.6-0.9 s on a laptop CPU (it imports ``scipy.stats``,
``interpolate`` and ``optimize``), ``scipy.ndimage`` 0.2 s, most of the command line's
start-up. These match SciPy's ``butter`` (2nd order), ``sosfilt`` started in steady state,
``sosfiltfilt``, ``savgol_filter`` (polynomial order 2, ``mode="interp"``), ``medfilt``
(kernel 3), ``resample_poly`` (its default Kaiser window), and ``scipy.ndimage``'s
``gaussian_filter1d`` and ``minimum_filter1d`` (``mode="reflect"``): to about 1e-9 of the
signal's scale, the median and minimum exactly (``tests/test_dsp.py`` compares them with
SciPy).

Recursive filters run as FIR filters: the biquad's impulse response, cut where it has decayed
below IMPULSE_TAIL of its peak, applied by FFT convolution.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

IMPULSE_TAIL = 1e-13
MAX_IMPULSE = 1 << 20
KAISER_BETA = 5.0  # scipy.signal.resample_poly's default window
HALF_LEN_PER_RATE = 10  # ... and its filter half-length, per unit of max(up, down)
RESAMPLE_ROWS = 8192  # outputs computed at once (bounds the copy of a strided view)


def butter2(cutoff: float, btype: str = "lowpass") -> np.ndarray:
    """(6,) float64 second-order Butterworth section (b0, b1, b2, 1, a1, a2) by the bilinear
    transform; ``cutoff`` relative to the Nyquist frequency, in (0, 1)."""
    if not 0 < cutoff < 1:
        raise ValueError(f"cutoff must be in (0, 1) of Nyquist, got {cutoff}")
    k = np.tan(np.pi * cutoff / 2)
    norm = 1 / (1 + np.sqrt(2) * k + k * k)
    b0 = k * k * norm if btype == "lowpass" else norm
    b1 = 2 * b0 if btype == "lowpass" else -2 * b0
    return np.array([b0, b1, b0, 1.0, 2 * (k * k - 1) * norm, (1 - np.sqrt(2) * k + k * k) * norm])


@lru_cache(maxsize=16)
def _impulse(section: tuple[float, ...]) -> np.ndarray:
    """(L,) float64 impulse response of a biquad ``section``, until it has decayed."""
    b0, b1, b2, _, a1, a2 = section
    out = [b0, b1 - a1 * b0]
    out.append(b2 - a1 * out[1] - a2 * out[0])
    peak = max(abs(v) for v in out)
    while len(out) < MAX_IMPULSE:
        y = -a1 * out[-1] - a2 * out[-2]
        out.append(y)
        peak = max(peak, abs(y))
        if abs(y) < IMPULSE_TAIL * peak and abs(out[-2]) < IMPULSE_TAIL * peak:
            break
    return np.array(out)


def _fast_len(n: int) -> int:
    """The smallest length >= ``n`` whose only prime factors are 2, 3 and 5 (fast FFTs)."""
    size = n
    while True:
        m = size
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        if m == 1:
            return size
        size += 1


def _fir(h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The first len(x) - len(h) + 1 outputs of the full convolution h * x that see only x
    (``valid``), by FFT."""
    n = len(x) + len(h) - 1
    size = _fast_len(n)
    full = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(h, size), size)
    return full[len(h) - 1:len(x)]


class SteadyFilter:
    """A biquad ``section`` applied to consecutive blocks of one signal, started in steady
    state on its first sample; the output blocks equal one filtering of the whole signal."""

    def __init__(self, section: np.ndarray):
        self.h = _impulse(tuple(float(v) for v in section))
        self.history: np.ndarray | None = None

    def __call__(self, block: np.ndarray) -> np.ndarray:
        """(n,) float samples → (n,) float64 filtered."""
        x = np.asarray(block, np.float64)
        if len(x) == 0:
            return x
        if self.history is None:
            self.history = np.full(len(self.h) - 1, x[0])
        joined = np.concatenate([self.history, x])
        self.history = joined[len(joined) - (len(self.h) - 1):]
        return _fir(self.h, joined)


def filtfilt(section: np.ndarray, x: np.ndarray) -> np.ndarray:
    """(n,) float64 zero-phase filtering, as ``scipy.signal.sosfiltfilt`` with one section:
    odd extension by 9 samples at each end, forward and backward passes in steady state."""
    x = np.asarray(x, np.float64)
    pad = 9
    if len(x) <= pad:
        raise ValueError(f"filtfilt needs more than {pad} samples, got {len(x)}")
    ext = np.concatenate([2 * x[0] - x[pad:0:-1], x, 2 * x[-1] - x[-2:-pad - 2:-1]])
    forward = SteadyFilter(section)(ext)
    return SteadyFilter(section)(forward[::-1])[::-1][pad:-pad]


def savgol2(x: np.ndarray, window: int, axis: int = 0) -> np.ndarray:
    """Savitzky–Golay smoothing with a quadratic over ``window`` (odd) samples along ``axis``,
    as ``scipy.signal.savgol_filter(x, window, 2, axis=axis)``: the centred least-squares fit
    inside, and near each end the fit to the first (last) ``window`` samples."""
    x = np.asarray(x, np.float64)
    half = window // 2
    t = np.arange(-half, half + 1, dtype=np.float64)
    design = np.vander(t, 3, increasing=True)  # (window, 3)
    centre = np.linalg.pinv(design)[0]          # weights giving the fit's value at t = 0
    data = np.moveaxis(x, axis, 0)
    moved = _correlate(np.pad(data, _pad_width(x.ndim, half)), centre)
    edge = np.arange(window, dtype=np.float64)
    fit = np.linalg.pinv(np.vander(edge, 3, increasing=True))  # (3, window)
    at = np.vander(edge[:half], 3, increasing=True)           # (half, 3)
    first = data[:window].reshape(window, -1)
    last = data[-window:].reshape(window, -1)
    moved[:half] = (at @ (fit @ first)).reshape(moved[:half].shape)
    tail = np.vander(edge[window - half:], 3, increasing=True)
    moved[-half:] = (tail @ (fit @ last)).reshape(moved[-half:].shape)
    return np.moveaxis(moved, 0, axis)


def gaussian_filter1d(x: np.ndarray, sigma: float, axis: int = -1) -> np.ndarray:
    """Gaussian smoothing of ``x`` along ``axis`` with ``sigma`` samples, as
    ``scipy.ndimage.gaussian_filter1d`` (kernel cut at 4 sigma, ends mirrored: ``reflect``)."""
    x = np.asarray(x, np.float64)
    radius = int(4.0 * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    padded = _mirrored(np.moveaxis(x, axis, 0), radius)
    return np.moveaxis(_correlate(padded, kernel / kernel.sum()), 0, axis)


def minimum_filter1d(x: np.ndarray, size: int) -> np.ndarray:
    """(n,) minimum over ``size`` samples centred on each (window [i - size // 2, i + (size - 1)
    // 2]), ends mirrored, as ``scipy.ndimage.minimum_filter1d``."""
    x = np.asarray(x)
    padded = _mirrored(x, size // 2)[:len(x) + size - 1]
    return np.lib.stride_tricks.sliding_window_view(padded, size).min(axis=1)


def _mirrored(data: np.ndarray, pad: int) -> np.ndarray:
    """``data`` extended by ``pad`` samples at both ends of axis 0, mirrored about its edges
    (d c b a | a b c d | d c b a), repeatedly when ``pad`` exceeds its length."""
    return np.pad(data, _pad_width(data.ndim, pad), mode="symmetric")


def _pad_width(ndim: int, pad: int) -> list[tuple[int, int]]:
    return [(pad, pad)] + [(0, 0)] * (ndim - 1)


def _correlate(padded: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_k weights[k] · padded[i + k] along axis 0, for i < len(padded) - len(weights) + 1
    (``np.convolve`` per column: a C loop, where a tap-by-tap sum costs ~20 µs a tap)."""
    columns = np.asarray(padded, np.float64).reshape(len(padded), -1)
    out = np.stack([np.convolve(c, weights[::-1], "valid") for c in columns.T], axis=1)
    return out.reshape(len(out), *padded.shape[1:])


def medfilt3(x: np.ndarray) -> np.ndarray:
    """(n,) median of each sample and its two neighbours, zeros beyond the ends (as
    ``scipy.signal.medfilt(x, 3)``)."""
    x = np.asarray(x)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, 1), 3)
    return np.median(windows, axis=1).astype(x.dtype)


@lru_cache(maxsize=8)
def _polyphase(up: int, down: int) -> tuple[np.ndarray, int]:
    """(up, T) float64 polyphase branches of ``resample_poly``'s anti-aliasing filter (gain
    ``up``), the filter's delay removed; and the delay in upsampled samples."""
    rate = max(up, down)
    half = HALF_LEN_PER_RATE * rate
    m = np.arange(2 * half + 1) - half
    h = np.sinc(m / rate) / rate * np.kaiser(2 * half + 1, KAISER_BETA)
    h *= up / h.sum()
    taps = -(-len(h) // up)
    branches = np.zeros(taps * up)
    branches[:len(h)] = h
    return branches.reshape(taps, up).T.copy(), half


def resample_poly(x: np.ndarray, up: int, down: int) -> np.ndarray:
    """(ceil(n · up / down),) float64: (n,) ``x`` upsampled by ``up``, low-passed, downsampled
    by ``down`` (``scipy.signal.resample_poly`` with its defaults; zeros beyond the ends).

    Output k is sum_t branch[p_k, t] · x[b_k - t] with (b_k, p_k) = divmod(k · down + delay,
    up); the outputs k ≡ r (mod up) share one branch and step ``down`` inputs apart, so each
    such group is a strided view of the input times one branch."""
    x = np.asarray(x, np.float64)
    g = np.gcd(up, down)
    up, down = up // g, down // g
    if up == down == 1:
        return x.copy()
    n_out = -(-len(x) * up // down)
    branches, delay = _polyphase(up, down)
    taps = branches.shape[1]
    padded = np.concatenate([np.zeros(taps), x, np.zeros(taps + down + 1)])
    out = np.empty(n_out)
    step = padded.strides[0]
    for r in range(min(up, n_out)):
        base, phase = divmod(r * down + delay, up)
        count = len(range(r, n_out, up))
        start = base + 1  # x[base - taps + 1] sits at padded[base + 1]
        rows = np.lib.stride_tricks.as_strided(padded[start:], (count, taps), (down * step, step),
                                               writeable=False)
        weights = branches[phase, ::-1]
        for lo in range(0, count, RESAMPLE_ROWS):
            out[r + lo * up:r + min(count, lo + RESAMPLE_ROWS) * up:up] = rows[lo:lo + RESAMPLE_ROWS] @ weights
    return out
