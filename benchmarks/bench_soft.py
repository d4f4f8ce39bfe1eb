"""Exact soft value iteration (Balancing-Q, ROMMEO) and the minimax oracle: time per sweep and to
convergence.

Games (two agents each): the coordination game (``mpg/Coordination-v0``, N = 2, gamma 0.95), the
congestion game (``mpg/Congestion-v0``, N = 2, gamma 0.99 by default -- many sweeps) and the
tug-of-war zero-sum game (``mpg/TugOfWar-v0``, defaults, gamma 0.9). For each: Balancing-Q
cooperative (beta = beta_opponent = 10), Balancing-Q competitive (beta = 10, beta_opponent = -10)
and ROMMEO (beta = 10), to ``tol = 1e-8``: the time of one operator sweep, the sweeps and the time
to convergence; on the zero-sum game also Shapley's value iteration (one LP per state and sweep)
and, as measured quantities, the distance of the soft values to the minimax value and the Nash
gap of Balancing-Q's marginal policies.

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
from mpg_envs import congestion_v0, coordination_v0, exact, tugofwar_v0, zerosum  # noqa: E402

GAMES = {
    "coordination N=2": lambda: coordination_v0.parallel_env(n_agents=2).model(),
    "congestion N=2": lambda: congestion_v0.parallel_env(n_agents=2).model(),
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
}


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
            for beta in (1.0, 10.0, 100.0):
                sol = prob.balancing_q(model, beta, -beta, mode="competitive", tol=1e-8)
                dist = float(np.abs(sol.values - sh.values).max())
                gap = exact.nash_gap(model, sol.policies).worst
                rows.append((f"{gname}: balancing_q b={beta:g}/-{beta:g}, max |V - V*|", dist, "value", None))
                rows.append(
                    (f"{gname}: balancing_q b={beta:g}/-{beta:g}, Nash gap (worst state)", gap, "value", None)
                )
    out = report(rows)
    save_results("soft", args, results=out, quick=args.quick)


if __name__ == "__main__":
    main()
