"""Benchmark the MiniWorld navigation envs: frames/s per process at 64x64 (default) and 103x103
(the paper's), one Gymnasium env per environment, random actions, resets included.

A frame is one ``step`` (an RGB observation plus the depth map of the reward). Prints a table and
writes ``benchmarks/runs/nav.json``. Needs the ``nav`` extra.

Usage::

    python benchmarks/bench_nav.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import add_output_args, report, save_results

from mpg_envs.nav import ENVIRONMENTS, make_env


def frames_per_second(name: str, resolution: int, n_steps: int, seed: int = 0) -> float:
    """Steps per second of one env over ``n_steps`` random actions (best of two runs)."""
    env = make_env(name, resolution=resolution)
    rng = np.random.default_rng(seed)
    best = 0.0
    for rep in range(2):
        env.reset(seed=seed + rep)
        actions = rng.integers(25, size=n_steps)
        t0 = time.perf_counter()
        for a in actions:
            _, _, term, trunc, _ = env.step(int(a))
            if term or trunc:
                env.reset()
        best = max(best, n_steps / (time.perf_counter() - t0))
    env.close()
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="200 steps per measurement instead of 2000")
    add_output_args(ap)
    args = ap.parse_args(argv)
    n = 200 if args.quick else 2000
    rows = []
    for resolution in (64, 103):
        for name in ENVIRONMENTS:
            rows.append(
                (
                    f"IndoorNav {name} {resolution}x{resolution} frames/s",
                    frames_per_second(name, resolution, n),
                    "frames/s",
                    None,
                )
            )
    notes = [
        f"Random actions, resets included, {n} steps per measurement (best of two), one process; a frame "
        "is one step: an RGB render and the reward's depth read from the same frame (Mesa EGL, CPU)."
    ]
    save_results("nav", args, results=report(rows), steps_per_measurement=n, notes=notes, quick=args.quick)


if __name__ == "__main__":
    main()
