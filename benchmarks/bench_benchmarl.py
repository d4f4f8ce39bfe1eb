"""BenchMARL's MAPPO on the coordination game, with the exact Nash gap of the trained policy.

Runs in the BenchMARL environment (``pip install -e ".[dev,benchmarl]"`` in a venv of its own, see
``baselines/benchmarl_tasks.py``): ``python benchmarks/bench_benchmarl.py [--quick] [--update-reference]``.

MAPPO (shared actor on "vector" observations, centralised critic on the global state) on
``mpg/Coordination-v0`` N=2 with the budget of bench_sb3's PPO run (32,768 agent-steps), three seeds,
at BenchMARL's defaults and at SB3's PPO learning rate; the trained policy is tabulated on every
state (``policy_tables``) and evaluated exactly (welfare, Nash gap, price of anarchy).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_output_args, report, save_results  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="one seed, 2,048 agent-steps (smoke test)")
    add_output_args(ap)
    args = ap.parse_args()
    import benchmarl
    from benchmarl.algorithms import MappoConfig
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    from baselines.benchmarl_tasks import MPGTask, exact_metrics
    from baselines.threads import torch_threads
    from mpg_envs import exact

    torch_threads()  # our policy for small networks (bench_threads.py measures it)
    task = MPGTask.COORDINATION.get_task({"n_agents": 2})
    penv = task.parallel_env()
    N = penv.dynamics.n_agents
    optimum = float(exact.social_optimum(penv.model()).welfare)
    budget = 2048 if args.quick else 32_768  # agent-steps (BenchMARL counts env frames: / N)
    default_lr = ExperimentConfig.get_from_yaml().lr
    variants = {"BenchMARL defaults (lr 5e-5)": default_lr, "lr 3e-4 (SB3's PPO default)": 3e-4}
    rows, finals = [], {}
    for label, lr in variants.items():
        for seed in (0,) if args.quick else (0, 1, 2):
            cfg = ExperimentConfig.get_from_yaml()
            cfg.max_n_frames = budget // N
            cfg.on_policy_collected_frames_per_batch = min(2048, budget // N)
            cfg.on_policy_n_envs_per_worker = 8
            cfg.on_policy_minibatch_size = 256
            epochs = 10
            cfg.on_policy_n_minibatch_iters = epochs * cfg.on_policy_collected_frames_per_batch // 256
            cfg.lr, cfg.gamma = lr, penv.gamma  # the discount the exact metrics use
            cfg.loggers, cfg.evaluation, cfg.render, cfg.checkpoint_at_end = [], False, False, False
            with tempfile.TemporaryDirectory() as tmp:
                cfg.save_folder = tmp
                exp = Experiment(
                    task, MappoConfig.get_from_yaml(), MlpConfig.get_from_yaml(), seed=seed, config=cfg,
                    critic_model_config=MlpConfig.get_from_yaml(),
                )  # fmt: skip
                t0 = time.perf_counter()
                exp.run()
                secs = time.perf_counter() - t0
            m = exact_metrics(exp)
            finals.setdefault(label, []).append(m)
            tag = f"MAPPO coordination N=2, {label}, {budget:,} agent-steps, seed {seed}"
            rows += [
                (f"{tag}: training speed", budget / secs, "agent-steps/s", None),
                (f"{tag}: exact welfare", m["welfare"], "value", None),
                (f"{tag}: exact Nash gap", m["nash_gap"], "value", None),
                (f"{tag}: price of anarchy", m["poa"], "value", None),
            ]
    out = report(rows)
    notes = [
        f"Coordination N=2 (gamma {penv.gamma}): social optimum's welfare {optimum:.4g}. BenchMARL "
        f"{benchmarl.__version__} (torchrl {__import__('torchrl').__version__}, its own environment), MAPPO "
        "with a shared actor and a centralised critic on the state, frames per batch 2048 (8 copies), "
        "10 epochs of minibatches of 256, gamma = the env's; other settings BenchMARL's defaults. "
        "Compare bench_sb3's PPO at the same budget."
    ]
    print(notes[0])
    save_results("benchmarl", args, results=out, notes=notes, quick=args.quick)


if __name__ == "__main__":
    main()
