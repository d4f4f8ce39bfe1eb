"""Torch threads for small networks: torch's default count against one thread (our policy).

Two workloads a newcomer runs, each timed as a whole process (start-up included: what the user
waits for), once with torch's default intra-op thread count (``MPG_TORCH_THREADS=default``) and once
with our policy (:func:`baselines.torch_threads`: one thread) before and after it, in this run:

* the README's Stable-Baselines3 example: ``make_vec_env`` (8 copies of the coordination game,
  N = 2), ``ExactMetricsCallback`` every 8,192 steps, PPO ``n_steps=128, batch_size=256``,
  32,768 agent-steps;
* ``python -m baselines train --algo nn_pg`` with its defaults (congestion N = 4, 1000 iterations,
  paper 003's network on the one-hot state, exact gradients).

``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` are removed from the children's environment, so
"default" is torch's own start-up count. The ratio depends on how busy the machine is: the load
average before and after is recorded with the results. Run it when the machine is as busy as it
is when you use it.

Run: ``python benchmarks/bench_threads.py [--quick] [--update-reference]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_output_args, report, save_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SB3_SNIPPET = """
from stable_baselines3 import PPO
import pettingzoo, mpg_envs
from baselines.sb3 import ExactMetricsCallback, make_vec_env

venv = make_vec_env("mpg/Coordination-v0", n_envs=8, seed=0, n_agents=2, observation="vector")
env = pettingzoo.make("parallel", "mpg/Coordination-v0", n_agents=2, observation="vector")
cb = ExactMetricsCallback(env, every=8192, csv_path="exact.csv")
PPO("MlpPolicy", venv, n_steps=128, batch_size=256, seed=0).learn(STEPS, callback=cb)
import torch
print("threads", torch.get_num_threads())
"""

TRAIN = """
import sys, torch
from baselines.cli import main
status = main(["train", "--algo", "nn_pg", "--no-progress", "--out", "runs", *sys.argv[1:]])
print("threads", torch.get_num_threads())
sys.exit(status)
"""


def _time(code: str, args: list[str], threads: str | None) -> tuple[float, int]:
    """Wall time of ``python -c code args`` in a scratch folder, and torch's thread count there."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env.pop("MPG_TORCH_THREADS", None)
    if threads is not None:
        env["MPG_TORCH_THREADS"] = threads
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
        )
        secs = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"error: the workload failed:\n{out.stderr[-3000:]}")
    n = int(next(ln for ln in out.stdout.splitlines() if ln.startswith("threads ")).split()[1])
    return secs, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short workloads (smoke test)")
    add_output_args(ap)
    args = ap.parse_args()
    steps = 4096 if args.quick else 32_768
    iters = 100 if args.quick else 1000
    work = [
        (
            f"README SB3 example (PPO, coordination N=2, {steps:,} agent-steps)",
            SB3_SNIPPET.replace("STEPS", str(steps)),
            [],
        ),
        (
            f"train --algo nn_pg (congestion N=4, {iters} iterations)",
            TRAIN,
            [] if not args.quick else ["--iters", str(iters)],
        ),
    ]
    load0 = os.getloadavg()
    rows, notes = [], []
    for label, code, extra in work:
        # one thread before and after the default: the machine's load drifts during the long run
        before, n_ours = _time(code, extra, None)
        default, n_default = _time(code, extra, "default")
        after, _ = _time(code, extra, None)
        ours = (before + after) / 2
        rows.append((f"{label}: torch's default ({n_default} threads)", default, "s", None))
        rows.append((f"{label}: one thread (baselines.torch_threads; mean of 2)", ours, "s", None))
        short = label.split(" (")[0]
        rows.append((f"  time with the default / with one thread ({short})", default / ours, "x", None))
        notes.append(f"{short}: one thread {before:.1f} s before the default's run, {after:.1f} s after it.")
        if n_ours != 1:
            notes.append(f"{label}: the policy gave {n_ours} threads, not 1")
    load1 = os.getloadavg()
    out = report(rows)
    notes.append(
        f"Each workload timed as a whole process (start-up included): one thread, torch's default, one "
        f"thread again, in one run on {os.cpu_count()} CPUs shared with other work; load average (1 min) "
        f"{load0[0]:.1f} before, {load1[0]:.1f} after. Torch's threads pay off only for large operations; "
        f"with as many threads as cores and other work on the machine they wait for each other."
    )
    for n in notes:
        print(n)
    save_results("threads", args, results=out, notes=notes, quick=args.quick, load=[load0, load1])


if __name__ == "__main__":
    main()
