"""Benchmark every registered env: PettingZoo step throughput and exact-model costs.

Prints a table and writes ``benchmarks/results/envs.json``. PettingZoo's ``classic/rps-v2``
parallel env is measured in the same run as the throughput reference.

Targets (issue 3): every env >= 50,000 agent-steps/s through the PettingZoo API; distancing
(N = 8) evaluate + nash_gap <= 100 ms; coordination N = 8 model build <= 2 s.

Usage::

    python benchmarks/bench_envs.py [--quick]
"""

from __future__ import annotations

import argparse

import numpy as np
import pettingzoo
from common import add_output_args, best_of, report, save_results, step_throughput

import mpg_envs
from mpg_envs import exact

#: Throughput configurations: (env id, kwargs); the paper-sized default of each env.
STEP_CONFIGS = [
    ("mpg/Congestion-v0", {"n_agents": 8}),
    ("mpg/Distancing-v0", {}),
    ("mpg/Coordination-v0", {"n_agents": 5}),
    ("mpg/Coordination-v0", {"n_agents": 8}),
    ("mpg/MultiTaskGridWorld-v0", {"layout": "no_conflict"}),
    ("mpg/MultiTaskGridWorld-v0", {"layout": "start_top_left", "slip": 0.1}),
]
#: Exact-model configurations: (env id, kwargs, build target s, evaluate + nash_gap target s).
MODEL_CONFIGS = [
    ("mpg/Congestion-v0", {"n_agents": 8}, 1.0, 0.05),
    ("mpg/Distancing-v0", {}, None, 0.1),
    ("mpg/Coordination-v0", {"n_agents": 5}, None, None),
    ("mpg/Coordination-v0", {"n_agents": 8}, 2.0, None),
]


def _label(env_id: str, kw: dict) -> str:
    return env_id.split("/")[1] + "".join(f" {k}={v}" for k, v in kw.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer steps and repetitions (smoke test)")
    add_output_args(ap)
    args = ap.parse_args()
    n_steps, reps = (4_000, 1) if args.quick else (30_000, 3)

    from pettingzoo.classic import rps_v2

    rows = []
    ref = step_throughput(rps_v2.parallel_env(max_cycles=10**9), n_steps)
    rows.append(("step: classic/rps-v2 (reference)", ref, "agent-steps/s", None))
    for env_id, kw in STEP_CONFIGS:
        if env_id not in mpg_envs.ENV_IDS:
            continue
        env = pettingzoo.make("parallel", env_id, max_cycles=10**9, **kw)
        rows.append((f"step: {_label(env_id, kw)}", step_throughput(env, n_steps), "agent-steps/s", 50_000))
    for env_id, kw, t_build, t_gap in MODEL_CONFIGS:
        if env_id not in mpg_envs.ENV_IDS:
            continue
        build = best_of(
            lambda env_id=env_id, kw=kw: pettingzoo.make("parallel", env_id, **kw).unwrapped.model(), reps
        )
        model = pettingzoo.make("parallel", env_id, **kw).unwrapped.model()
        label = f"{_label(env_id, kw)} (S={model.n_states}, A={model.n_joint_actions})"
        rows.append((f"model build: {label}", build, "s", t_build))
        pol = exact.random_policy(model, np.random.default_rng(0))
        t = best_of(
            lambda model=model, pol=pol: (exact.evaluate(model, pol), exact.nash_gap(model, pol)), reps
        )
        rows.append((f"evaluate + nash_gap: {label}", t, "s", t_gap))
        t_adv = best_of(lambda model=model, pol=pol: exact.advantages(model, pol), reps)
        rows.append((f"advantages: {label}", t_adv, "s", None))

    out = report(rows)
    save_results("envs", args, results=out, quick=args.quick)


if __name__ == "__main__":
    main()
