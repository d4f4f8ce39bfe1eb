"""Stable-Baselines3 through ``baselines.sb3``: speed of the vector env and of PPO, and what PPO
learns, measured exactly.

* Agent-steps/s of random play through the raw parallel env, through the helper's vector env
  (8 copies, parameter sharing) and of PPO training through it (rollouts + updates).
* PPO with parameter sharing (SB3 defaults but one rollout = 2048 agent-steps) on the coordination
  game, N = 2, 32,768 agent-steps, and on congestion, N = 4, 262,144 agent-steps, seeds 0-2: the exact
  welfare sum_i V_i(mu), Nash gap and price of anarchy of the final policy (``ExactMetricsCallback``),
  against the uniform policy's and the social optimum's welfare.

Run: ``python benchmarks/bench_sb3.py [--quick] [--update-reference]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_output_args, report, save_results, step_throughput  # noqa: E402

RUNS = [  # (env id, kwargs, agent-steps, eval every)
    ("mpg/Coordination-v0", {"n_agents": 2}, 32_768, 8192),
    ("mpg/Congestion-v0", {"n_agents": 4}, 262_144, 65_536),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short runs, one seed (smoke test)")
    add_output_args(ap)
    args = ap.parse_args()
    import pettingzoo

    import mpg_envs  # noqa: F401
    from baselines.sb3 import make_vec_env, run_sb3
    from baselines.threads import torch_threads
    from mpg_envs import exact

    torch_threads()  # our policy for small networks (bench_threads.py measures it)
    rows, notes = [], []
    seeds = (0,) if args.quick else (0, 1, 2)
    # ---------------------------------------------------------------- speed
    raw = pettingzoo.make("parallel", "mpg/Coordination-v0", n_agents=2, observation="vector")
    rate = step_throughput(raw, 20_000)
    rows.append(("raw parallel env, coordination N=2, random actions", rate, "agent-steps/s", None))
    venv = make_vec_env("mpg/Coordination-v0", n_envs=8, seed=0, n_agents=2, observation="vector")
    venv.reset()
    acts = np.random.default_rng(0).integers(0, 2, (1000, venv.num_envs))
    t0 = time.perf_counter()
    for a in acts:
        venv.step(a)
    rate = acts.size / (time.perf_counter() - t0)
    rows.append(
        ("baselines.sb3 vector env (8 copies x 2 agents), random actions", rate, "agent-steps/s", None)
    )
    # the same through a plain SuperSuit pipeline (the field's usual route; it works here because
    # no agent of the coordination game finishes early), and PPO through both, same budget
    import supersuit as ss
    from stable_baselines3 import PPO

    pipe = ss.pettingzoo_env_to_vec_env_v1(
        pettingzoo.make("parallel", "mpg/Coordination-v0", n_agents=2, observation="vector")
    )
    pipe = ss.concat_vec_envs_v1(pipe, 8, num_cpus=0, base_class="stable_baselines3")
    pipe.reset()
    t0 = time.perf_counter()
    for a in acts:
        pipe.step(a)
    rate = acts.size / (time.perf_counter() - t0)
    rows.append(("SuperSuit pipeline (8 copies x 2 agents), random actions", rate, "agent-steps/s", None))
    budget = 4096 if args.quick else 16_384
    ppo = {}
    for label, env in (("baselines.sb3", venv), ("SuperSuit", pipe)):
        # SB3's seed= fails on SuperSuit's vec env ("'ConcatVecEnv' object has no attribute 'seed'"):
        # both unseeded here, for speed only
        model = PPO("MlpPolicy", env, n_steps=128, batch_size=256, verbose=0)
        t0 = time.perf_counter()
        model.learn(budget)
        ppo[label] = budget / (time.perf_counter() - t0)
        name = f"SB3 PPO through {label}, coordination N=2, {budget:,} agent-steps"
        rows.append((name, ppo[label], "agent-steps/s", None))
    rows.append(
        ("  PPO speed, baselines.sb3 / SuperSuit", ppo["baselines.sb3"] / ppo["SuperSuit"], "value", None)
    )
    with tempfile.TemporaryDirectory() as tmp:
        for env_id, kw, steps, every in RUNS:
            steps = min(steps, 8192) if args.quick else steps
            name = env_id.split("/")[-1]
            one = pettingzoo.make("parallel", env_id, observation="vector", **kw).unwrapped
            m = one.model()
            N = m.n_agents
            uniform = [np.full((m.n_states, k), 1.0 / k) for k in m.action_sizes]
            opt = exact.social_optimum(m)
            welfare_uniform = float((exact.evaluate(m, uniform) @ m.mu).sum())
            finals, secs = [], []
            for s in seeds:
                t0 = time.perf_counter()
                run = run_sb3(env_id, kw, "ppo", steps, 8, s, every, tmp, progress=False)
                secs.append(time.perf_counter() - t0)
                last = np.genfromtxt(run / "exact.csv", delimiter=",", names=True)[-1]
                finals.append(last)
            tag = f"PPO {name} N={N}, {steps:,} agent-steps"
            rows.append((f"{tag}: training speed", steps * len(seeds) / sum(secs), "agent-steps/s", None))
            labels = (
                ("welfare", "exact welfare"),
                ("nash_gap", "exact Nash gap"),
                ("poa", "price of anarchy"),
            )
            for key, label in labels:
                vals = [float(f[key]) for f in finals]
                for s, v in zip(seeds, vals):
                    rows.append((f"{tag}: {label}, seed {s}", v, "value", None))
            notes.append(
                f"{name} N={N}: uniform policy's welfare {welfare_uniform:.4g}, social optimum's "
                f"{float(opt.welfare):.4g} (exact, gamma = {m.gamma:g}); final welfare "
                + " / ".join(f"{float(f['welfare']):.4g}" for f in finals)
                + f" over seeds {', '.join(map(str, seeds))}."
            )
    out = report(rows)
    for n in notes:
        print(n)
    save_results("sb3", args, results=out, notes=notes, quick=args.quick)


if __name__ == "__main__":
    main()
