"""Exact soft value iteration (Balancing-Q, ROMMEO, probabilistic fictitious play), the minimax
oracle and sampled soft Q-learning: time per sweep and to convergence.

Games (two agents each): the coordination game (``mpg/Coordination-v0``, N = 2, gamma 0.95), the
congestion game (``mpg/Congestion-v0``, N = 2, gamma 0.99 by default -- many sweeps), the
distancing game (``mpg/Distancing-v0``, N = 2, gamma 0.99) and the tug-of-war zero-sum game
(``mpg/TugOfWar-v0``, defaults, gamma 0.9). For each: Balancing-Q
cooperative (beta = beta_opponent = 10), Balancing-Q competitive (beta = 10, beta_opponent = -10)
ROMMEO (beta = 10) and probabilistic fictitious play competitive (beta = 10, beta_opponent = -10),
to ``tol = 1e-8``: the time of one operator sweep, the sweeps and the time to convergence; on the
zero-sum game also Shapley's value iteration (one LP per state and sweep) and, as measured
quantities, the distance of the soft values to the minimax value (Balancing-Q from below, PFP from
above) and the Nash gap of their marginal policies.

Sampled (:mod:`baselines.soft_q_learning`, batches of 32 episodes x 20 steps, seed 0): the time and
batches until ``max |q - q*| <= tol`` against the exact fixed point, on the coordination game N = 2
(tol 0.5) and the tug of war with K = 3 (tol 0.1), beta = 2 (Balancing-Q (2, 1) / (2, -2), ROMMEO,
PFP (2, -2)) -- the settings of ``tests/test_soft_q_learning.py``.

Run: ``python benchmarks/bench_soft.py [--quick] [--update-reference]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_output_args, best_of, report, save_results  # noqa: E402

from baselines import probabilistic as prob  # noqa: E402
from baselines.soft_q_learning import soft_q_learning  # noqa: E402
from mpg_envs import congestion_v0, coordination_v0, distancing_v0, exact, tugofwar_v0, zerosum  # noqa: E402

GAMES = {
    "coordination N=2": lambda: coordination_v0.parallel_env(n_agents=2).model(),
    "congestion N=2": lambda: congestion_v0.parallel_env(n_agents=2).model(),
    "distancing N=2": lambda: distancing_v0.parallel_env(n_agents=2).model(),
    "tug of war": lambda: tugofwar_v0.parallel_env().model(),
}
ALGOS = {
    "balancing_q coop b=10": (
        prob.balancing_q,
        prob.balancing_q_operator,
        dict(beta=10.0, beta_opponent=10.0),
    ),
    "balancing_q comp b=10": (
        prob.balancing_q,
        prob.balancing_q_operator,
        dict(beta=10.0, beta_opponent=-10.0),
    ),
    "rommeo b=10": (prob.rommeo, prob.rommeo_operator, dict(beta=10.0)),
    "pfp comp b=10": (prob.pfp, prob.pfp_operator, dict(beta=10.0, beta_opponent=-10.0)),
}
SAMPLED = [  # (game, env, algo, temperatures, tol)
    ("coordination N=2", lambda: coordination_v0.parallel_env(n_agents=2), "balancing_q", (2.0, 1.0), 0.5),
    ("coordination N=2", lambda: coordination_v0.parallel_env(n_agents=2), "rommeo", (2.0,), 0.5),
    ("tug of war K=3", lambda: tugofwar_v0.parallel_env(n_positions=3), "balancing_q", (2.0, -2.0), 0.1),
    ("tug of war K=3", lambda: tugofwar_v0.parallel_env(n_positions=3), "rommeo", (2.0,), 0.1),
    ("tug of war K=3", lambda: tugofwar_v0.parallel_env(n_positions=3), "pfp", (2.0, -2.0), 0.1),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    add_output_args(ap)
    args = ap.parse_args()
    reps = 2 if args.quick else 5
    rows: list[tuple[str, float, str, float | None]] = []
    for gname, make in GAMES.items():
        model = make()
        q = model.R[0].copy()
        for aname, (solve, op, kw) in ALGOS.items():
            sweep = best_of(lambda op=op, kw=kw, m=model, q=q: op(m, q, **kw), reps * 4)
            t0 = time.perf_counter()
            sol = solve(model, tol=1e-8, **kw)
            total = time.perf_counter() - t0
            rows.append(
                (
                    f"{gname}: {aname}, one sweep (S={model.n_states}, A={model.n_joint_actions})",
                    sweep,
                    "s",
                    None,
                )
            )
            rows.append((f"{gname}: {aname}, to tol 1e-8 ({sol.iterations} sweeps)", total, "s", None))
        if zerosum.is_zero_sum(model):
            sweep = best_of(lambda m=model: zerosum.shapley_operator(m, np.zeros(m.n_states)), reps)
            t0 = time.perf_counter()
            sh = zerosum.shapley(model, tol=1e-8)
            total = time.perf_counter() - t0
            rows.append((f"{gname}: shapley, one sweep ({model.n_states} LPs)", sweep, "s", None))
            rows.append((f"{gname}: shapley, to tol 1e-8 ({sh.iterations} sweeps)", total, "s", None))
            for name, solve in (("balancing_q", prob.balancing_q), ("pfp", prob.pfp)):
                for beta in (1.0, 10.0, 100.0):
                    sol = solve(model, beta, -beta, mode="competitive", tol=1e-8)
                    dist = float(np.abs(sol.values - sh.values).max())
                    gap = exact.nash_gap(model, sol.policies).worst
                    rows.append((f"{gname}: {name} b={beta:g}/-{beta:g}, max |V - V*|", dist, "value", None))
                    rows.append(
                        (f"{gname}: {name} b={beta:g}/-{beta:g}, Nash gap (worst state)", gap, "value", None)
                    )
    for gname, make, algo, temps, tol in SAMPLED:
        env = make()
        kw = dict(beta=temps[0]) if len(temps) == 1 else dict(beta=temps[0], beta_opponent=temps[1])
        target = getattr(prob, algo)(env.model(), tol=1e-10, **kw).q
        t0 = time.perf_counter()
        sol = soft_q_learning(env, algo, iterations=5000, episodes=32, rng=0, target=target, tol=tol, **kw)
        total = time.perf_counter() - t0
        what = "/".join(f"{t:g}" for t in temps)
        status = f"{sol.iterations} batches" if sol.converged else f"NOT reached in {sol.iterations} batches"
        rows.append(
            (f"{gname}: sampled {algo} b={what}, to max |q - q*| <= {tol:g} ({status})", total, "s", None)
        )
    out = report(rows)
    save_results("soft", args, results=out, quick=args.quick)


if __name__ == "__main__":
    main()
