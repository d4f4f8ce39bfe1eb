"""Benchmark decentralized consensus policy gradient (paper 004, Algorithm 1).

Prints a table and writes ``benchmarks/runs/dcpg.json`` (``--update-reference``: also the committed
``benchmarks/results/dcpg.json``).

* Tabular DCPG with Monte Carlo local gradients (one 100-step episode per agent and iteration, the
  paper's §5.1), 6 tasks on 10x10 grids (``start_top_left``), 1000 iterations, exact metrics on the
  default schedule -- target <= 10 s. The same with exact local gradients, for scale.
* Where the time goes: per iteration, one agent's local gradient (what each rank computes), all
  agents' gradients, the consensus step and one evaluation of the exact metrics.
* The ``torch.distributed`` backend (``torchrun --standalone``, gloo, one rank per task) with 2, 4
  and 8 ranks against the single-process backend on the same layouts, timed in the same run from the
  runs' own ``wall_time`` (launch and imports excluded) -- target: within 2x. On a machine with fewer
  cores than ranks the ranks time-share the cores, and every consensus step waits for the slowest
  neighbour.
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
from common import add_output_args, best_of, report, save_results

from baselines.consensus import DCPGConfig, SingleProcess, TaskSet, Topology, run_dcpg
from baselines.consensus.dcpg import LocalAgents, _make_env, evaluate
from mpg_envs.gridworld import layout_text

#: 10x10 tasks for the rank sweep: Fig. 2(d)'s six and Fig. 2(a)'s four.
TASKS = layout_text("start_top_left") + layout_text("no_conflict")


def _options(iters: int) -> dict:
    return dict(gradient="montecarlo", episodes=1, horizon=100, alpha=1.0, iters=iters)


def _wall(run_dir: Path) -> float:
    rows = np.loadtxt(run_dir / "metrics.csv", delimiter=",", skiprows=1, ndmin=2)
    return float(rows[-1, -1])


def _dist_run(n: int, iters: int, out: Path) -> float:
    """Seconds per iteration of a torchrun launch with n ranks (the run's own wall_time)."""
    layout = [t.replace("\n", "/") for t in TASKS[:n]]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n),
           "-m", "baselines", "dcpg", "--backend", "dist", "--no-progress", "--layout", *layout,
           "--iters", str(iters), "--eval-every", str(iters), "--eval-log", "false",
           "--checkpoint-every", str(iters), "--out", str(out)]  # fmt: skip
    for k, v in _options(iters).items():
        if k != "iters":
            cmd += ["--" + k.replace("_", "-"), str(v)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"torchrun failed:\n{proc.stdout}\n{proc.stderr}")
    (run_dir,) = list(out.iterdir())
    return _wall(run_dir) / iters


def _single_run(n: int, iters: int, out: Path) -> float:
    layout = [t.replace("\n", "/") for t in TASKS[:n]]
    cfg = DCPGConfig(layout=layout, eval_every=iters, eval_log=False, checkpoint_every=iters, out=str(out),
                     **_options(iters))  # fmt: skip
    return _wall(run_dcpg(cfg).run_dir) / iters


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer iterations and ranks (smoke test)")
    add_output_args(ap)
    args = ap.parse_args()
    iters = 200 if args.quick else 1000
    sweep_iters = 60 if args.quick else 300
    ranks = (2,) if args.quick else (2, 4, 8)
    rows, objectives = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for grad in ("montecarlo", "exact"):
            cfg = DCPGConfig(
                layout="start_top_left", out=str(tmp / grad), **{**_options(iters), "gradient": grad}
            )
            t0 = time.perf_counter()
            res = run_dcpg(cfg)
            wall = time.perf_counter() - t0
            target = 10.0 if grad == "montecarlo" else None
            name = f"DCPG {grad}, 6 tasks 10x10, {iters} iterations (whole run, metrics incl.)"
            rows.append((name, wall, "s", None if args.quick else target))
            objectives[grad] = res.metrics[-1]["objective"]

        # where one iteration's time goes (6 tasks)
        cfg = DCPGConfig(layout="start_top_left", **_options(iters))
        env = _make_env(cfg)
        ts = TaskSet.from_env(env)
        thetas = np.random.default_rng(0).normal(size=(6, ts.n_states, ts.n_actions))
        one = LocalAgents(cfg, env.tasks, ts, [0])
        every = LocalAgents(cfg, env.tasks, ts, range(6))
        backend = SingleProcess(Topology.make("ring", 6))
        parts = {
            "  one agent's Monte Carlo gradient (100-step episode)": (lambda: one.gradients(thetas[:1]), 50),
            "  all 6 agents' Monte Carlo gradients (one vectorised rollout)": (
                lambda: every.gradients(thetas),
                50,
            ),
            "  consensus step (W @ theta, 6 x 400)": (lambda: backend.mix(thetas), 200),
            "  exact metrics (objectives, stationarity, success; one evaluation)": (
                lambda: evaluate(ts, thetas, 0.0, 100),
                10,
            ),
        }
        rows += [(name, best_of(fn, reps), "s", None) for name, (fn, reps) in parts.items()]

        # neural policies (paper 004 §5.2): the Table 1 analog's four tasks, MLP 64-64
        from baselines.experiments.zeng2021_nn import TASKS

        nn_iters = 20 if args.quick else 100
        for grad in ("montecarlo", "a2c", "ppo"):
            every = dict(iters=nn_iters, eval_every=nn_iters, eval_log=False, checkpoint_every=nn_iters)
            nn = dict(gamma=0.99, policy="mlp", hidden="64,64", optimizer="adam", alpha=1e-3, lam=0.03)
            cfg = DCPGConfig(layout=TASKS, gradient=grad, out=str(tmp / f"nn-{grad}"), **nn, **every)
            per_it = _wall(run_dcpg(cfg).run_dir) / nn_iters
            rows.append((f"DCPG mlp 64-64, 4 tasks 12x12, {grad}: time per iteration", per_it, "s", None))

        ratios = {}
        for n in ranks:
            single = _single_run(n, sweep_iters, tmp / f"single{n}")
            dist = _dist_run(n, sweep_iters, tmp / f"dist{n}")
            ratios[n] = dist / single
            rows += [
                (f"single process, {n} tasks: time per iteration", single, "s", None),
                (f"torch.distributed, {n} ranks (gloo): time per iteration", dist, "s", None),
                (f"  distributed / single, {n} ranks (target <= 2x)", dist / single, "x", 2.0),
            ]
    cpus = os.cpu_count()
    notes = [
        f"Measured on {cpus} cores: with more ranks than cores the ranks time-share them, and every "
        "consensus step waits for the slowest neighbour, so the 8-rank time is mostly oversubscription. "
        "Per iteration a rank posts the exchange of its 400 float64 logits with its 2 neighbours (gloo, "
        "point-to-point), computes its own task's gradient while they travel (a Python loop over the "
        "episode's steps), then waits and forms the weighted sum; exact metrics are gathered on rank 0 "
        "only at evaluated iterations.",
        "Objective sum_i V_i(rho_i) of the agents' average after the runs above: "
        + ", ".join(f"{k} {v:.3f}" for k, v in objectives.items())
        + " (alpha = 1, lambda = 0, start in the top-left corner: untuned).",
    ]
    out = report(rows)
    print("\n" + notes[0])
    save_results(
        "dcpg",
        args,
        results=out,
        ratios={str(k): v for k, v in ratios.items()},
        notes=notes,
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
