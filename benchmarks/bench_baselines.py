"""Benchmark the training loop against the papers' reported costs.

Prints a table and writes ``benchmarks/results/baselines.json``.

* Exact INPG, 400 iterations, coordination game N = 5 -- paper 003 reports ~200 s per
  400-iteration run (V100 GPU + 32 CPU cores); target <= 0.5 s here.
* One exact and one sampled (T = 20, batch 20) estimate, for scale.

The sampled-INPG-on-distancing and sampler-throughput benchmarks are in ``bench_sampler.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from common import best_of, save_results

from baselines.algorithms import INPG
from baselines.estimators import ExactEstimator
from baselines.sampler import SampledEstimator
from mpg_envs import coordination_v0

OUT = Path(__file__).parent / "results" / "baselines.json"


def main() -> None:
    env = coordination_v0.parallel_env(n_agents=5)
    model = env.model()
    est = ExactEstimator(model)
    alg = INPG(eta=0.1)

    def run400() -> None:
        th = alg.init_params(model.n_states, model.action_sizes, np.random.default_rng(0))
        for _ in range(400):
            th, _ = alg.update(th, est)

    pol = alg.policies(alg.init_params(model.n_states, model.action_sizes, np.random.default_rng(0)))
    sampled = SampledEstimator(env.dynamics, model.gamma, horizon=20, batch=20, rng=np.random.default_rng(0))
    rows = [
        ("exact INPG, 400 iterations, coordination N=5", best_of(run400, 3), 0.5, "paper 003: ~200 s (V100)"),
        ("one exact estimate, coordination N=5", best_of(lambda: est.estimate(pol), 20), None, ""),
        (
            "one sampled estimate (T=20, batch 20), coordination N=5",
            best_of(lambda: sampled.estimate(pol), 20),
            None,
            "",
        ),
    ]
    print(f"{'benchmark':<58} {'time':>10} {'target':>9}  anchor")
    for name, t, target, anchor in rows:
        tgt = "" if target is None else f"{target * 1e3:.0f} ms"
        print(f"{name:<58} {t * 1e3:>7.1f} ms {tgt:>9}  {anchor}")
    save_results(OUT, results=[{"name": n, "seconds": t, "target": g, "anchor": a} for n, t, g, a in rows])


if __name__ == "__main__":
    main()
