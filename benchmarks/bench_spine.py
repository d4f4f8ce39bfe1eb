"""Benchmark the spine: PettingZoo step throughput, model build, evaluate + Nash gap.

Prints a table and writes ``benchmarks/results/spine.json``. Every ratio is taken within one run
(PettingZoo's own ``classic/rps-v2`` parallel env is measured beside ours as the reference).

Targets (issue 2): >= 50,000 agent-steps/s through the PettingZoo API for N = 8; model build
<= 1 s and one evaluate + nash_gap <= 50 ms for N = 8 (514 states, 256 joint actions).

Usage::

    python benchmarks/bench_spine.py [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
from common import add_output_args, best_of, report, save_results, step_throughput

from mpg_envs import congestion_v0, exact


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    add_output_args(ap)
    args = ap.parse_args()
    n_steps = 5_000 if args.quick else 40_000
    reps = 2 if args.quick else 5

    from pettingzoo.classic import rps_v2

    rows = []
    ref = step_throughput(rps_v2.parallel_env(max_cycles=10**9), n_steps)
    rows.append(("step: classic/rps-v2 (reference, N=2)", ref, "agent-steps/s", None))
    for n, kw in [(8, {}), (8, {"slip": 0.2}), (8, {"observation": "vector"}), (4, {})]:
        env = congestion_v0.parallel_env(n_agents=n, max_cycles=10**9, **kw)
        label = f"step: Congestion-v0 N={n}" + "".join(f" {k}={v}" for k, v in kw.items())
        rows.append((label, step_throughput(env, n_steps), "agent-steps/s", 50_000 if n == 8 else None))

    env = congestion_v0.parallel_env(n_agents=8)
    build = best_of(lambda: congestion_v0.parallel_env(n_agents=8).model(), reps)
    model = env.model()
    rows.append((f"model build N=8 (S={model.n_states}, A={model.n_joint_actions})", build, "s", 1.0))
    slip_build = best_of(lambda: congestion_v0.parallel_env(n_agents=6, slip=0.2).model(), max(1, reps // 2))
    rows.append(("model build N=6 slip=0.2 (64 noise outcomes)", slip_build, "s", None))
    rng = np.random.default_rng(0)
    pol = exact.random_policy(model, rng)
    uni = exact.uniform_policy(model)
    rows.append(("evaluate N=8", best_of(lambda: exact.evaluate(model, pol), reps * 4), "s", None))
    t_eg = best_of(lambda: (exact.evaluate(model, pol), exact.nash_gap(model, pol)), reps)
    rows.append(("evaluate + nash_gap N=8 (random policy)", t_eg, "s", 0.05))
    t_eu = best_of(lambda: (exact.evaluate(model, uni), exact.nash_gap(model, uni)), reps)
    rows.append(("evaluate + nash_gap N=8 (uniform policy)", t_eu, "s", 0.05))
    rows.append(
        ("policy_gradient N=8", best_of(lambda: exact.policy_gradient(model, pol), reps * 4), "s", None)
    )
    rows.append(
        ("cycle_residual N=8 (32 cycles)", best_of(lambda: exact.cycle_residual(model, rng), 1), "s", None)
    )

    out = report(rows, width=56)
    ratio = rows[1][1] / ref
    print(f"\nCongestion-v0 N=8 / rps-v2 agent-step throughput ratio (same run): {ratio:.2f}")
    save_results("spine", args, results=out, ratio_congestion8_over_rps=ratio, quick=args.quick)


if __name__ == "__main__":
    main()
