"""Benchmark DCPG over the navigation envs (paper 004 §5.2): CNN policies trained from the camera.

Prints a table and writes ``benchmarks/runs/dcpg_env.json`` (``--update-reference``: also the
committed ``benchmarks/results/dcpg_env.json`` and the README's table). Needs the ``nav`` extra.

* Training throughput in one process, four agents (one per environment), PEDRA's C3F2 network,
  64x64 frames (the default) and 103x103 (the paper's): agent-steps per second of the local steps
  (episodes of at most 100 steps, rendering, acting, the gradient and Adam), for REINFORCE, A2C and
  PPO (4 epochs); beside it, the envs alone with random actions in the same run (the rendering floor).
* The ``torch.distributed`` backend with 4 ranks (``torchrun --standalone``, one rank per
  environment, each rendering its own world) against one process on the same config: agent-steps
  per second of the whole run between its first and last evaluation (the runs' own ``wall_time``;
  launch and imports excluded). Both backends produce the same iterates, hence the same episodes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import add_output_args, report, save_results

from baselines.consensus.envtasks import EnvAgents, EnvDCPGConfig, run_dcpg_env
from mpg_envs import task_env_makers


def _training_rate(resolution: int, gradient: str, iters: int) -> tuple[float, float]:
    """(agent-steps/s of the local steps of 4 agents, mean episode length)."""
    cfg = EnvDCPGConfig(
        env_kwargs={"resolution": resolution, "max_cycles": 100}, gradient=gradient
    ).normalized()
    local = EnvAgents(cfg, task_env_makers(cfg.env, **cfg.env_kwargs), range(4))
    th = np.repeat(local.initial()[None], 4, axis=0)
    th = th + local.step(th, cfg.alpha)  # warm-up (first renders, allocations)
    local.window[:] = 0.0
    t0 = time.perf_counter()
    for _ in range(iters):
        th = th + local.step(th, cfg.alpha)
    dt = time.perf_counter() - t0
    steps = local.window[:, 2].sum()
    local.close()
    return steps / dt, steps / local.window[:, 3].sum()


def _env_rate(resolution: int, n_steps: int) -> float:
    """Random-action steps/s over the four envs (one process, resets included)."""
    envs = [m() for m in task_env_makers("mpg/IndoorNav-v0", resolution=resolution, max_cycles=100)]
    rng = np.random.default_rng(0)
    for e in envs:
        e.reset(seed=0)
    t0 = time.perf_counter()
    for k in range(n_steps):
        e = envs[k % 4]
        _, _, term, trunc, _ = e.step(int(rng.integers(25)))
        if term or trunc:
            e.reset()
    dt = time.perf_counter() - t0
    for e in envs:
        e.close()
    return n_steps / dt


OPTIONS = dict(gradient="reinforce", eval_episodes=2, checkpoint_every=1000)


def _steps_per_second(run_dir: Path) -> float:
    """Training agent-steps per second between a run's first and last evaluation."""
    import csv

    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    first, last = rows[0], rows[-1]
    iters = int(float(last["iteration"])) - int(float(first["iteration"]))
    lengths = [float(v) for k, v in last.items() if k.startswith("train_length_agent_")]
    return sum(lengths) * iters / (float(last["wall_time"]) - float(first["wall_time"]))


def _dist_rate(iters: int, out: Path) -> float:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
           "-m", "baselines", "dcpg", "--backend", "dist", "--no-progress", "--env", "mpg/IndoorNav-v0",
           "--env-kwargs", "resolution=64", "max_cycles=100", "--iters", str(iters), "--eval-every",
           str(iters), "--out", str(out)]  # fmt: skip
    for k, v in OPTIONS.items():
        cmd += ["--" + k.replace("_", "-"), str(v)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"torchrun failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    (run,) = list(out.iterdir())
    return _steps_per_second(run)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke test)")
    add_output_args(ap)
    args = ap.parse_args()
    iters = 3 if args.quick else 15
    rows = []
    lengths = {}
    for resolution in (64, 103):
        rows.append((f"4 envs alone, random actions, {resolution}x{resolution}: steps/s",
                     _env_rate(resolution, 200 if args.quick else 2000), "agent-steps/s", None))  # fmt: skip
        for grad in ("reinforce", "a2c", "ppo") if resolution == 64 else ("reinforce",):
            rate, length = _training_rate(resolution, grad, iters)
            lengths[f"{grad} {resolution}"] = length
            rows.append((f"DCPG C3F2 {resolution}x{resolution}, {grad}, 4 agents, one process: local steps",
                         rate, "agent-steps/s", None))  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        d_iters = 4 if args.quick else 20
        kw = {"resolution": 64, "max_cycles": 100}
        cfg = EnvDCPGConfig(
            env_kwargs=kw, iters=d_iters, eval_every=d_iters, out=str(tmp / "single"), **OPTIONS
        )
        single = _steps_per_second(run_dcpg_env(cfg).run_dir)
        dist = _dist_rate(d_iters, tmp / "dist")
    rows += [
        ("whole run, REINFORCE 64x64, one process (4 agents)", single, "agent-steps/s", None),
        ("whole run, REINFORCE 64x64, torch.distributed 4 ranks (gloo)", dist, "agent-steps/s", None),
        ("  4 ranks / one process (agent-steps/s ratio)", dist / single, "x", None),
    ]
    cpus = os.cpu_count()
    notes = [
        f"Measured on {cpus} cores shared with other work. Untrained policies crash early: mean training "
        "episode length "
        + ", ".join(f"{k}: {v:.0f} steps" for k, v in lengths.items())
        + " (of 100); a step "
        "is one render, one forward pass to act, and per episode one forward/backward over its frames.",
        "With 4 ranks on 2 cores the ranks time-share the cores; each rank renders its own world with "
        "its own EGL context and trains its own network, so on 4 free cores the ranks run side by side.",
    ]
    save_results("dcpg_env", args, results=report(rows), notes=notes, quick=args.quick)


if __name__ == "__main__":
    main()
