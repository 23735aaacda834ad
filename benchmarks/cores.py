"""How many cores does this machine really give? One thread's speed alone and beside busy ones.

The renderer and the encoder run in parallel threads, so a 2-core machine should finish a
video in about half the CPU time it spends. On a VM whose vCPUs share one physical core's
resources (hyper-threads, or a busy host), a thread slows down as soon as its sibling works,
and the parallel gain shrinks. This times a fixed single-thread workload (a bicubic remap,
the renderer's costliest step) alone, then while every other core spins, and prints the
slowdown and the effective number of cores (cores / slowdown). The two conditions alternate
PAIRS times and the median ratio is shown, as a shared machine's speed drifts. Read
``speed.py``'s figures with it.

    python benchmarks/cores.py
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time

import cv2
import numpy as np

SIDE = 512
PAIRS = 7
CALLS = 30
SETTLE_S = 0.2


def workload():
    """A function timing one bicubic remap of a SIDE² RGB picture on one thread, in ms (mean
    of CALLS)."""
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    picture = cv2.GaussianBlur((rng.random((SIDE, SIDE, 3)) * 255).astype(np.uint8), (0, 0), 2)
    grid = np.arange(SIDE, dtype=np.float32)
    map_x, map_y = np.meshgrid(grid * 0.99 + 0.3, grid * 1.01 + 0.7)

    def ms() -> float:
        start = time.perf_counter()
        for _ in range(CALLS):
            cv2.remap(picture, map_x, map_y, cv2.INTER_CUBIC)
        return (time.perf_counter() - start) / CALLS * 1000

    return ms


def _spin(go, stop) -> None:
    x = np.random.default_rng(1).random((256, 256))
    while not stop.is_set():
        if go.wait(0.05):
            x @ x


def main() -> None:
    cores = os.cpu_count() or 1
    ms = workload()
    go, stop = mp.Event(), mp.Event()
    others = [mp.Process(target=_spin, args=(go, stop), daemon=True) for _ in range(cores - 1)]
    for p in others:
        p.start()
    alone, busy = [], []
    for _ in range(PAIRS):
        go.clear()
        time.sleep(SETTLE_S)
        alone.append(ms())
        go.set()
        time.sleep(SETTLE_S)
        busy.append(ms())
    stop.set()
    for p in others:
        p.join()
    slowdown = float(np.median(np.divide(busy, alone)))
    print(f"{'cores':>5} {'alone ms':>9} {'others busy ms':>15} {'slowdown':>9} {'effective cores':>16}")
    print(f"{cores:>5} {np.median(alone):9.2f} {np.median(busy):15.2f} {slowdown:9.2f} "
          f"{cores / slowdown:16.2f}")


if __name__ == "__main__":
    main()
