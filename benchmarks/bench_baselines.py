"""Benchmark the training loop against the papers' reported costs and the authors' loop structure.

Prints a table and writes ``benchmarks/runs/baselines.json`` (``--update-reference``: also the
committed ``benchmarks/results/baselines.json``).

* Exact INPG, 400 iterations, coordination game N = 5 -- paper 003 reports ~200 s per
  400-iteration run (V100 GPU + 32 CPU cores); target <= 0.5 s here.
* One exact and one sampled (T = 20, batch 20) estimate, for scale.
* Paper 001's estimator (:class:`~baselines.sampler.ForcedActionEstimator`, visit-sum values, 10
  samples, T = 20) on the authors' congestion game, N = 4 and N = 8, against a plain-Python loop
  with the structure of the authors' scripts (one ``np.random.choice`` per agent and step, a Python
  loop over samples, layers, states, steps, agents and actions), timed in the same run. The loop is
  our re-implementation for timing, written from the scripts' structure; the ratio is what
  vectorising buys.
* A whole run of the authors' INPG protocol (N = 4, until their stop rule), for scale: the paper
  reports ~50 iterations.

The sampled-INPG-on-distancing and sampler-throughput benchmarks are in ``bench_sampler.py``.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from common import add_output_args, best_of, report, save_results

from baselines.algorithms import INPG
from baselines.estimators import ExactEstimator
from baselines.sampler import ForcedActionEstimator, SampledEstimator
from baselines.train import TrainConfig, train
from mpg_envs import congestion_v0, coordination_v0, distancing_v0, exact
from mpg_envs.congestion.env import AUTHORS_CODE_GAME


def python_loop_iteration(
    n_agents: int, policy: np.ndarray, samples: int = 10, T: int = 20, gamma=0.99
) -> None:
    """One iteration of the authors' congestion estimator, written as plain Python loops.

    Args:
        n_agents: N; the game has 2 units and 2^N states.
        policy: Shape (S, N, 2).
        samples, T, gamma: As in their scripts (10, 20, 0.99).
    """
    S, N, M = 2**n_agents, n_agents, 2
    rng = np.random.default_rng(0)

    def pick(p):
        return rng.choice(M, p=p)

    def reward(acts):
        return [1.0 / acts.count(a) for a in acts]

    def to_state(acts):
        return sum(a * M**i for i, a in enumerate(acts))

    value: dict[tuple[int, int], float] = {}
    for _ in range(samples):
        for layer in range(2):
            for s0 in range(S):
                s = s0
                for t in range(T - layer):
                    acts = [pick(policy[s, i]) for i in range(N)]
                    r = reward(acts)
                    for i in range(N):
                        value[s, i] = value.get((s, i), 0.0) + gamma**t * r[i]
                    s = to_state(acts)
    for key in value:
        value[key] /= samples
    adv = np.zeros((S, N, M))
    for s in range(S):
        for i in range(N):
            for a in range(M):
                tot = 0.0
                for _ in range(samples):
                    acts = [pick(policy[s, j]) for j in range(N)]
                    acts[i] = a
                    tot += reward(acts)[i] + gamma * value.get((to_state(acts), i), 0.0)
                adv[s, i, a] = tot / samples - value.get((s, i), 0.0)


def _train_seconds(cfg: TrainConfig) -> float:
    t0 = time.perf_counter()
    train(cfg, progress=False, plot=False)
    return time.perf_counter() - t0


def neural_rows(reps: int, quick: bool) -> list[tuple]:
    """Exact NN-PG runs (paper 003: ~30 / 50 / 200 s per 400-iteration run on a V100 + 32 cores),
    the tabulation bridge, and sampled neural PG (REINFORCE) throughput."""

    from baselines.algorithms import make_algorithm
    from baselines.policies.neural import TorchSoftmaxPolicy
    from baselines.threads import torch_threads

    torch_threads()  # our policy for small networks (bench_threads.py measures it)
    rows = []
    paper = {2: 30, 3: 50, 5: 200}
    for n in (5,) if quick else (2, 3, 5):
        with tempfile.TemporaryDirectory() as tmp:  # training only: evaluated at the first and last iteration
            cfg = TrainConfig(
                env="mpg/Coordination-v0",
                env_kwargs={"n_agents": n},
                algo="nn_pg",
                algo_kwargs={"lr": 0.1},
                iters=400,
                eval_every=400,
                eval_log=False,
                out=tmp,
            )
            t = min(_train_seconds(cfg) for _ in range(reps))
        rows.append(
            (
                f"exact NN-PG, 400 iterations, coordination N={n} (paper 003: ~{paper[n]} s, V100)",
                t,
                "s",
                2.0 if n == 5 else None,
            )
        )
    for env, mode in (
        (coordination_v0.parallel_env(n_agents=5), "onehot"),
        (congestion_v0.parallel_env(n_agents=8), "vector"),
    ):
        pol = TorchSoftmaxPolicy.mlp(env.dynamics, mode, hidden="64,64", rng=np.random.default_rng(0))
        dyn = env.dynamics
        t = best_of(lambda pol=pol, dyn=dyn: pol.table(dyn), 20)
        rows.append(
            (f"tabulate a 64-64 network ({mode}): {env.metadata['name']} S={dyn.n_states}", t, "s", None)
        )
    dist = distancing_v0.parallel_env()
    pol = TorchSoftmaxPolicy.mlp(dist.dynamics, "vector", hidden="64,64", rng=np.random.default_rng(0))
    est = SampledEstimator(dist.dynamics, 0.99, horizon=20, batch=256, rng=0)
    rein = make_algorithm("reinforce", lr=0.01, hidden="64,64")
    rein._make_optimizer(pol)
    t = best_of(lambda: rein.update(pol, est), reps * 3)
    rows.append(
        (
            "REINFORCE update, distancing N=8, 256 episodes x 20 steps (agent-steps/s)",
            256 * 20 * 8 / t,
            "agent-steps/s",
            None,
        )
    )
    return rows


def evaluation_rows(quick: bool) -> list[tuple]:
    """A default sampled run (distancing N = 8, 1000 iterations) with the default evaluation schedule
    and with evaluation only at the first and last iteration; target: on <= 2x off."""
    iters = 200 if quick else 1000
    times = {}
    for label, kw in (("on", {}), ("off", {"eval_every": iters, "eval_log": False})):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(
                env="mpg/Distancing-v0",
                algo="inpg",
                algo_kwargs={"eta": 1e-4},
                estimator="sampled",
                iters=iters,
                out=tmp,
                **kw,
            )
            times[label] = _train_seconds(cfg)
    return [
        (
            f"sampled INPG run, distancing N=8, {iters} iterations, evaluation: default schedule",
            times["on"],
            "s",
            None,
        ),
        ("same, evaluation at the first and last iteration only", times["off"], "s", None),
        ("ratio evaluation on / off (target <= 2)", times["on"] / times["off"], "x", 2.0),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick", action="store_true", help="fewer repetitions, no N = 8 Python loop (smoke test)"
    )
    add_output_args(ap)
    args = ap.parse_args()
    reps = 1 if args.quick else 3

    env = coordination_v0.parallel_env(n_agents=5)
    model = env.model()
    est = ExactEstimator(model)
    sampled = SampledEstimator(env.dynamics, model.gamma, rng=0)
    pol = exact.random_policy(model, np.random.default_rng(0))

    def run400() -> None:
        alg = INPG(eta=0.1 * (1 - model.gamma))
        policy = alg.make_policy(env.dynamics, model.n_states, np.random.default_rng(0), "normal", "state")
        for _ in range(400):
            alg.update(policy, est)

    rows = [
        (
            "exact INPG, 400 iterations, coordination N=5 (paper 003: ~200 s, V100)",
            best_of(run400, reps),
            "s",
            0.5,
        ),
        ("one exact estimate, coordination N=5", best_of(lambda: est.estimate(pol), 20), "s", None),
        (
            "one sampled estimate (T=20, batch 20), coordination N=5",
            best_of(lambda: sampled.estimate(pol), 20),
            "s",
            None,
        ),
    ]
    ratios = {}
    for n in (4,) if args.quick else (4, 8):
        ring = congestion_v0.parallel_env(n_agents=n, **AUTHORS_CODE_GAME)
        forced = ForcedActionEstimator(ring.dynamics, 0.99, samples=10, rng=0, value="visit_sum")
        rpol = exact.random_policy(ring.model(), np.random.default_rng(0))
        ours = best_of(lambda forced=forced, rpol=rpol: forced.estimate(rpol), 10)
        rows.append(
            (f"paper 001's estimator (visit sum, 10 samples), authors' game N={n}: ours", ours, "s", None)
        )
        table = np.stack(rpol, axis=1)  # (S, N, 2)
        loop = best_of(lambda n=n, table=table: python_loop_iteration(n, table), 1)
        rows.append((f"same, plain-Python loop of the authors' structure, N={n}", loop, "s", None))
        ratios[f"N={n}"] = loop / ours
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(
            env="mpg/Congestion-v0",
            env_kwargs={"n_agents": 4, **AUTHORS_CODE_GAME},
            algo="inpg",
            algo_kwargs={"eta": 1e-4},
            estimator="forced_visit_sum",
            estimator_kwargs={"samples": 10},
            init="uniform",
            iters=500,
            stop_l1=1e-5,
            stop_rule="fox2022-npg",
            eval_every=500,
            eval_log=False,
            out=tmp,
        )
        t0 = time.perf_counter()
        res = train(cfg, progress=False, plot=False)
        whole = time.perf_counter() - t0
    rows.append(
        (
            f"authors' INPG protocol N=4, whole run "
            f"({int(res.metrics[-1]['iteration'])} iterations to their stop)",
            whole,
            "s",
            None,
        )
    )
    rows += neural_rows(reps, args.quick)
    rows += evaluation_rows(args.quick)
    out = report(rows)
    notes = [
        f"Plain-Python loop / ours, same run: {', '.join(f'{k}: {v:,.0f}x' for k, v in ratios.items())}."
    ]
    print("\n" + notes[0])
    save_results("baselines", args, results=out, ratios=ratios, notes=notes, quick=args.quick)


if __name__ == "__main__":
    main()
