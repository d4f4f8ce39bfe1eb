"""RLlib PPO (new API stack) with one shared policy on our envs, measured exactly.

Needs the optional ``rllib`` extra in its own environment (RLlib pins gymnasium 1.2.2); see
``baselines/rllib_envs.py``. PPO on the coordination game, N = 2 (observation "vector"), until
32,768 agent-steps are sampled; then the shared RLModule is tabulated on every state's observation
(``baselines.rllib_envs.module_probs``) and the exact welfare, Nash gap and price of anarchy are
computed (``baselines.evaluation.ExactMetrics``) -- as ``bench_sb3.py`` does for SB3.

Run: ``python benchmarks/bench_rllib.py [--quick] [--update-reference]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_output_args, report, save_results  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="one short run")
    add_output_args(ap)
    args = ap.parse_args()
    from baselines.evaluation import ExactMetrics
    from baselines.rllib_envs import module_probs, register, shared_ppo_config
    from baselines.threads import torch_threads
    from mpg_envs import exact

    torch_threads()  # our policy for small networks (bench_threads.py measures it)
    kw = {"n_agents": 2, "observation": "vector"}
    name = register("mpg/Coordination-v0", **kw)
    em = ExactMetrics("mpg/Coordination-v0", **kw)
    m = em.model
    opt = exact.social_optimum(m)
    budget = 4096 if args.quick else 32_768
    rows, notes = [], []
    for seed in (0,) if args.quick else (0, 1, 2):
        config = shared_ppo_config(name, seed, train_batch_size=2048, minibatch_size=256, num_epochs=10)
        algo = config.build_algo()
        t0 = time.perf_counter()
        steps = 0
        while steps < budget:
            res = algo.train()
            # env steps x N agents (every agent acts at every step of this game)
            steps = int(res["env_runners"]["num_env_steps_sampled_lifetime"]) * m.n_agents
        secs = time.perf_counter() - t0
        metrics = em(module_probs(algo.get_module("shared"), em.observations))
        algo.stop()
        tag = f"RLlib PPO coordination N=2, {steps:,} agent-steps, seed {seed}"
        rows += [
            (f"{tag}: training speed", steps / secs, "agent-steps/s", None),
            (f"{tag}: exact welfare", metrics["welfare"], "value", None),
            (f"{tag}: exact Nash gap", metrics["nash_gap"], "value", None),
            (f"{tag}: price of anarchy", metrics["poa"], "value", None),
        ]
    notes.append(
        f"Coordination N=2: social optimum's welfare {float(opt.welfare):.4g}; "
        f"RLlib {__import__('ray').__version__} "
        "(gymnasium 1.2.2, its own environment), PPO train_batch_size 2048, minibatch 256, 10 epochs, "
        "one shared policy; compare bench_sb3's PPO."
    )
    out = report(rows)
    print(notes[0])
    save_results("rllib", args, results=out, notes=notes, quick=args.quick)


if __name__ == "__main__":
    main()
