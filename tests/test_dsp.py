"""talkinghead.audio.dsp against scipy.signal and scipy.ndimage, which it replaces at run time
(SciPy's imports cost most of the command line's start-up); the tests may import them."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage, signal

from talkinghead.audio import dsp

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("cutoff, btype", [(60 / 8000, "highpass"), (0.02, "lowpass"),
                                           (0.004, "lowpass"), (0.95, "lowpass")])
def test_butterworth_sections_match_scipy(cutoff, btype):
    np.testing.assert_allclose(dsp.butter2(cutoff, btype),
                               signal.butter(2, cutoff, btype=btype, output="sos")[0],
                               rtol=1e-10, atol=1e-14)


def test_a_filter_run_block_by_block_matches_sosfilt_started_in_steady_state():
    sos = signal.butter(2, 60 / 8000, btype="highpass", output="sos")
    x = RNG.standard_normal(40000) * 0.3 + 0.5  # a DC offset, as a recording may have
    want = signal.sosfilt(sos, x, zi=signal.sosfilt_zi(sos) * x[0])[0]
    run = dsp.SteadyFilter(dsp.butter2(60 / 8000, "highpass"))
    got = np.concatenate([run(block) for block in np.split(x, [5000, 5001, 23000])])
    np.testing.assert_allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("cutoff", [0.95, 0.04, 0.004])
def test_zero_phase_filtering_matches_sosfiltfilt(cutoff):
    x = RNG.standard_normal(700)
    want = signal.sosfiltfilt(signal.butter(2, cutoff, output="sos"), x)
    np.testing.assert_allclose(dsp.filtfilt(dsp.butter2(cutoff), x), want, atol=1e-9)


@pytest.mark.parametrize("window, shape", [(5, (40, 6)), (13, (90, 6)), (13, (13, 2)), (5, (30,)),
                                           (3, (4, 6))])
def test_savitzky_golay_matches_scipy_with_its_polynomial_fit_at_the_ends(window, shape):
    x = np.cumsum(RNG.standard_normal(shape), axis=0)
    np.testing.assert_allclose(dsp.savgol2(x, window, axis=0),
                               signal.savgol_filter(x, window, 2, axis=0), atol=1e-9)


def test_three_point_median_matches_medfilt_exactly():
    x = (RNG.standard_normal(501) * 20 - 60).astype(np.float32)
    np.testing.assert_array_equal(dsp.medfilt3(x), signal.medfilt(x, 3))


@pytest.mark.parametrize("rate", [44100, 48000, 22050, 24000, 11025, 8000, 32000])
@pytest.mark.parametrize("seconds", [1 / 3, 1e-4])
def test_resampling_to_16k_matches_resample_poly(rate, seconds):
    x = RNG.standard_normal(int(rate * seconds) + 1).astype(np.float32) * 0.5
    g = np.gcd(rate, 16000)
    want = signal.resample_poly(x.astype(np.float64), 16000 // g, rate // g)
    got = dsp.resample_poly(x, 16000 // g, rate // g)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("sigma, n", [(0.8, 50), (2.0, 7), (7.5, 200), (12.0, 5)])
def test_gaussian_smoothing_matches_scipy_ndimage(sigma, n):
    x = RNG.standard_normal(n)
    np.testing.assert_allclose(dsp.gaussian_filter1d(x, sigma), ndimage.gaussian_filter1d(x, sigma),
                               atol=1e-12)
    grid = RNG.standard_normal((n, 3))
    np.testing.assert_allclose(dsp.gaussian_filter1d(grid, sigma, axis=0),
                               ndimage.gaussian_filter1d(grid, sigma, axis=0), atol=1e-12)


@pytest.mark.parametrize("size, n", [(1, 10), (4, 30), (5, 30), (12, 7), (13, 100)])
def test_running_minimum_matches_scipy_ndimage(size, n):
    x = RNG.standard_normal(n)
    np.testing.assert_array_equal(dsp.minimum_filter1d(x, size), ndimage.minimum_filter1d(x, size))


def test_the_pipeline_and_the_command_line_do_not_import_scipy():
    code = ("import sys\nimport talkinghead.cli, talkinghead.pipeline, talkinghead.stream\n"
            "import talkinghead.face.tracking, talkinghead.motion.pose\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
