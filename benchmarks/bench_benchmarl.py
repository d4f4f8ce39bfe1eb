"""BenchMARL's MAPPO on the coordination game: training speed through the batched env and through
single envs, against SB3's PPO, and the exact metrics of what it learns.

Runs in the BenchMARL environment (``pip install -e ".[dev,benchmarl]"`` in a venv of its own, see
``baselines/benchmarl_tasks.py``)::

    python benchmarks/bench_benchmarl.py [--quick] [--sb3-python PATH] [--update-reference]

* **Speed** (agent-steps/s, training included): MAPPO on ``mpg/Coordination-v0`` N=2 with SB3's
  PPO settings (rollouts of 2,048 agent-steps from 8 copies, minibatches of 256 agent-steps, 10
  epochs, 64x64 tanh actor and critic, lr 3e-4), collecting through BenchMARL's ``SerialEnv`` of
  single envs (the path before the batched env) and through one batched TorchRL env
  (:func:`baselines.torchrl_envs.make_torchrl_env` with ``num_envs``, when it exists), with 8 and
  64 copies; collection and training time apart. SB3's PPO at the same settings runs in the same
  run when ``--sb3-python`` names the main environment's interpreter (SB3 is not installed here);
  otherwise its number comes from ``benchmarks/results/sb3.json`` (said in the notes).
* **Exact metrics**: the cost of one evaluation of a policy on the default 10x10 MultiTaskGridWorld
  (4 tasks, per-task models on the own cell) through ``exact_metrics``.
* **What MAPPO learns**: 32,768 agent-steps, three seeds, BenchMARL's learning rate and SB3's, the
  trained policy evaluated exactly (welfare, Nash gap, price of anarchy).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarl.experiment.callback import Callback  # noqa: E402
from common import add_output_args, report, save_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
#: SB3's PPO as bench_sb3 / ``baselines.sb3.run_sb3`` trains it (rollouts of 2048 agent-steps from
#: 8 copies x 2 agents, minibatches of 256, SB3's 10 epochs and 64x64 MlpPolicy).
SB3_SCRIPT = """
import json, sys, time
from stable_baselines3 import PPO
from baselines.sb3 import make_vec_env
from baselines.threads import torch_threads
torch_threads()
steps = int(sys.argv[1])
venv = make_vec_env("mpg/Coordination-v0", n_envs=8, seed=0, n_agents=2, observation="vector")
model = PPO("MlpPolicy", venv, n_steps=2048 // venv.num_envs, batch_size=256, seed=0, verbose=0)
t0 = time.perf_counter()
t1 = time.process_time()
model.learn(steps)
wall, cpu = time.perf_counter() - t0, time.process_time() - t1
print(json.dumps({"rate": steps / wall, "cpu_rate": steps / cpu}))
"""


class Timer(Callback):  # module level: BenchMARL pickles its callbacks
    """Collection and training time of each iteration (BenchMARL's hooks)."""

    def __init__(self):
        super().__init__()
        self.collect = self.train = 0.0
        self._t = None

    def on_setup(self):
        self._t = None

    def on_batch_collected(self, batch):
        now = time.perf_counter()
        self.collect += now - (self._t if self._t is not None else self._start)
        self._t = now

    def on_train_end(self, training_td, group):
        now = time.perf_counter()
        self.train += now - self._t
        self._t = now

    def start(self):
        self._start = time.perf_counter()
        self._t = None


def _sb3_reference() -> float | None:
    path = ROOT / "benchmarks" / "results" / "sb3.json"
    try:
        rows = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return None
    for row in rows:
        if row["name"].startswith("PPO Coordination-v0 N=2") and row["name"].endswith("training speed"):
            return float(row["value"])
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs, one seed (smoke test)")
    ap.add_argument(
        "--sb3-python",
        default=None,
        help="an interpreter with SB3 (the main environment's): time SB3's PPO in this run",
    )
    add_output_args(ap)
    args = ap.parse_args()
    import benchmarl
    import torch
    from benchmarl.algorithms import MappoConfig
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig

    from baselines.benchmarl_tasks import MPGTask, batched_env_available, exact_metrics
    from baselines.threads import torch_threads
    from mpg_envs import exact

    threads = torch_threads()  # our policy for small networks (bench_threads.py measures it)
    task = MPGTask.COORDINATION.get_task({"n_agents": 2})
    penv = task.parallel_env()
    N = penv.dynamics.n_agents
    optimum = float(exact.social_optimum(penv.model()).welfare)
    rows, notes = [], []

    def experiment(tmp, *, seed, agent_steps, n_envs, lr, sb3_like, batched, minibatch=256, callbacks=()):
        # TorchRL's SerialEnv.close() raises torch's thread count back towards its count when torchrl
        # was imported (up to one per core): every run after a SerialEnv one would train on more
        # threads than the first; each run starts from our count instead
        torch.set_num_threads(threads)
        cfg = ExperimentConfig.get_from_yaml()
        frames = 2048 // N if sb3_like else 2048  # per batch: 2,048 agent-steps (SB3's rollout)
        cfg.max_n_frames = agent_steps // N
        cfg.on_policy_collected_frames_per_batch = min(frames, cfg.max_n_frames)
        cfg.on_policy_n_envs_per_worker = n_envs
        cfg.on_policy_minibatch_size = minibatch // N if sb3_like else minibatch  # frames (N agents each)
        cfg.on_policy_n_minibatch_iters = 10  # epochs over each batch (BenchMARL's meaning)
        cfg.lr, cfg.gamma = lr, penv.gamma  # the discount the exact metrics use
        cfg.loggers, cfg.evaluation, cfg.render, cfg.checkpoint_at_end = [], False, False, False
        cfg.save_folder = tmp
        model = MlpConfig.get_from_yaml()
        critic = MlpConfig.get_from_yaml()
        if sb3_like:  # SB3's MlpPolicy: separate 64x64 tanh actor and critic
            model.num_cells = critic.num_cells = [64, 64]
        t = MPGTask.COORDINATION.get_task({"n_agents": 2})
        t.use_batched_env = batched
        return Experiment(
            t, MappoConfig.get_from_yaml(), model, seed=seed, config=cfg, critic_model_config=critic,
            callbacks=list(callbacks),
        )  # fmt: skip

    # ------------------------------------------------------------------ speed
    # wall-clock rates, and rates per CPU-second of the process (one torch thread: what the run costs
    # whatever else the machine does; the benchmark machine is shared)
    speed_steps = 8192 if args.quick else 32_768
    paths = [("SerialEnv of single envs", False, 8, 256)]  # (collection, batched, copies, minibatch)
    if batched_env_available():
        paths += [
            ("batched env", True, 8, 256),
            ("batched env", True, 64, 256),
            ("batched env", True, 64, 1024),
        ]
    else:
        notes.append("make_torchrl_env has no num_envs here: only the single-env path was measured.")
    rates, cpu_rates = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, batched, n_envs, minibatch in paths:
            timer = Timer()
            exp = experiment(
                tmp, seed=0, agent_steps=speed_steps, n_envs=n_envs, lr=3e-4, sb3_like=True, batched=batched,
                minibatch=minibatch, callbacks=[timer],
            )  # fmt: skip
            timer.start()
            t0, c0 = time.perf_counter(), time.process_time()
            exp.run()
            secs, cpu = time.perf_counter() - t0, time.process_time() - c0
            settings = (
                "SB3's PPO settings" if minibatch == 256 else f"minibatches of {minibatch:,} agent-steps"
            )
            tag = f"MAPPO coordination N=2, {settings}, {label}, {n_envs} copies"
            key = (label, n_envs, minibatch)
            rates[key], cpu_rates[key] = speed_steps / secs, speed_steps / cpu
            rows += [
                (f"{tag}: training speed", speed_steps / secs, "agent-steps/s", None),
                (f"{tag}: per CPU-second", speed_steps / cpu, "agent-steps/s", None),
                (f"{tag}: collection time share", timer.collect / secs, "value", None),
                (f"{tag}: training time share", timer.train / secs, "value", None),
            ]
    sb3 = sb3_cpu = None
    if args.sb3_python:
        out = subprocess.run(
            [args.sb3_python, "-c", SB3_SCRIPT, str(speed_steps)],
            cwd=ROOT, capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        got = json.loads(out.stdout.strip().splitlines()[-1])
        sb3, sb3_cpu = float(got["rate"]), float(got["cpu_rate"])
        notes.append(f"SB3 PPO measured in this run ({args.sb3_python}), same settings and budget.")
    else:
        sb3 = _sb3_reference()
        notes.append(
            "SB3 is not installed in the BenchMARL environment: SB3's PPO speed is bench_sb3's reference "
            "(benchmarks/results/sb3.json, 'PPO Coordination-v0 N=2, 32,768 agent-steps: training "
            "speed'), not measured in this run; pass --sb3-python to measure it here."
        )
    if sb3 is not None:
        rows.append(
            (
                f"SB3 PPO coordination N=2, {speed_steps:,} agent-steps: training speed",
                sb3,
                "agent-steps/s",
                None,
            )
        )
        if sb3_cpu is not None:
            rows.append(("  SB3 PPO per CPU-second", sb3_cpu, "agent-steps/s", None))
        for minibatch in sorted({k[2] for k in rates}):
            best = max((k for k in rates if k[2] == minibatch), key=rates.get)
            what = "SB3's settings" if minibatch == 256 else f"minibatches of {minibatch:,}"
            rows += [
                (
                    f"MAPPO ({what}), fastest: {best[0]}, {best[1]} copies, vs SB3 PPO",
                    rates[best],
                    "agent-steps/s",
                    sb3,
                ),
                ("  MAPPO / SB3 PPO, wall clock", rates[best] / sb3, "value", None),
            ]
            if sb3_cpu is not None:
                rows.append(("  MAPPO / SB3 PPO, per CPU-second", cpu_rates[best] / sb3_cpu, "value", None))
    if len(rates) > 1:
        key8, serial = ("batched env", 8, 256), ("SerialEnv of single envs", 8, 256)
        name = "MAPPO, batched env / SerialEnv of single envs (8 copies each), wall clock"
        rows += [
            (name, rates[key8] / rates[serial], "value", None),
            ("  the same, per CPU-second", cpu_rates[key8] / cpu_rates[serial], "value", None),
        ]
    # ------------------------------------------------------------------ exact metrics cost
    grid = MPGTask.MULTITASK_GRIDWORLD.get_task()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = ExperimentConfig.get_from_yaml()
        cfg.loggers, cfg.evaluation, cfg.render, cfg.save_folder = [], False, False, tmp
        cfg.on_policy_n_envs_per_worker = 2
        exp = Experiment(
            grid, MappoConfig.get_from_yaml(), MlpConfig.get_from_yaml(), seed=0, config=cfg,
            critic_model_config=MlpConfig.get_from_yaml(),
        )  # fmt: skip
        t0 = time.perf_counter()
        exact_metrics(exp)
        first = time.perf_counter() - t0
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            exact_metrics(exp)
            times.append(time.perf_counter() - t0)
        exp.close()
    rows += [
        (
            "exact metrics of a MAPPO policy, 10x10 MultiTaskGridWorld (4 tasks, own cell), first call",
            first,
            "s",
            None,
        ),
        ("  the same, later calls (models built), best of 5", min(times), "s", None),
    ]
    # ------------------------------------------------------------------ what MAPPO learns
    budget = 8192 if args.quick else 32_768
    default_lr = ExperimentConfig.get_from_yaml().lr
    variants = {"BenchMARL defaults (lr 5e-5)": default_lr, "lr 3e-4 (SB3's PPO default)": 3e-4}
    batched = batched_env_available()
    for label, lr in variants.items():
        for seed in (0,) if args.quick else (0, 1, 2):
            with tempfile.TemporaryDirectory() as tmp:
                exp = experiment(
                    tmp, seed=seed, agent_steps=budget, n_envs=8, lr=lr, sb3_like=False, batched=batched
                )
                t0 = time.perf_counter()
                exp.run()
                secs = time.perf_counter() - t0
            m = exact_metrics(exp)
            tag = f"MAPPO coordination N=2, {label}, {budget:,} agent-steps, seed {seed}"
            rows += [
                (f"{tag}: training speed", budget / secs, "agent-steps/s", None),
                (f"{tag}: exact welfare", m["welfare"], "value", None),
                (f"{tag}: exact Nash gap", m["nash_gap"], "value", None),
                (f"{tag}: price of anarchy", m["poa"], "value", None),
            ]
    out = report(rows)
    notes.insert(
        0,
        f"Coordination N=2 (gamma {penv.gamma}): social optimum's welfare {optimum:.4g}. BenchMARL "
        f"{benchmarl.__version__} (torchrl {__import__('torchrl').__version__}, torch {torch.__version__}, "
        "its own environment), MAPPO with a shared actor and a centralised critic on the state. Speed rows: "
        "SB3's PPO settings (rollouts of 2,048 agent-steps, minibatches of 256 agent-steps, 10 epochs, 64x64 "
        "tanh networks). Learning rows: batches of 2,048 frames (4,096 agent-steps) from 8 copies, 10 epochs "
        f"of minibatches of 256 frames, BenchMARL's 256x256 MLPs, gamma = the env's, "
        f"{'the batched env' if batched else 'single envs in a SerialEnv'}.",
    )
    for n in notes:
        print(n)
    save_results("benchmarl", args, results=out, notes=notes, quick=args.quick)


if __name__ == "__main__":
    main()
