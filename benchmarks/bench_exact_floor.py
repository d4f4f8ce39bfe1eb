"""Benchmark exact evaluation and the Nash gap against a plain dense-solve floor, every env.

Prints a table and writes ``benchmarks/runs/exact_floor.json``.

For every registered env with an exact model (a few sizes each), ``mpg_envs.exact.evaluate`` and
``mpg_envs.exact.nash_gap`` are timed beside a plain reference implemented here, in the same run,
interleaved, best of k, on the same model and policy (a random Dirichlet product policy, seed 0;
``--policy peaked`` uses softmax policies of 4 x standard-normal logits, nearly deterministic, as
late in training). The **floor** is what a careful user writes with numpy and scipy alone:

* evaluate: the joint policy (S, A) as products of the agents' tables; ``P_pi`` as one sparse
  product ``Pi @ P`` of the (S, S*A) policy matrix with the model's sparse P, made dense;
  ``r_pi = sum_a pi(a|s) R_i(s, a)``; one ``np.linalg.solve`` of ``(I - gamma P_pi) V = r_pi`` for
  all agents (the non-terminal block when gamma = 1).
* nash_gap: the floor's evaluate, then per agent its induced MDP (``P_i`` (S*|A_i|, S) dense and
  ``r_i`` by one sparse product each with the others' joint weights), policy iteration started
  greedy w.r.t. ``V_i`` with one ``np.linalg.solve`` per round until no action gains more than
  1e-12 * max(1, max|Q|) (the stop rule of ``exact``), and the clipped gain at mu.

Both sides run inside one ``exact.blas_scope(S)`` (one BLAS thread for S <= 1,024, as the training
runs do; BLAS's own threads above). The ratio column is exact / floor (target <= 1.0x); the
largest difference of values and gaps between the two, relative to max(1, max|V|), is printed and
stored as a check. The machine is shared with other work while measuring, so absolute times vary;
the ratios are taken in one run.

Usage::

    python benchmarks/bench_exact_floor.py [--quick] [--policy random|peaked] [--only TEXT]
        [--baseline REV] [--update-reference]

``--baseline REV`` also times ``mpg_envs/exact.py`` as it was at git revision REV (on the current
models and kernel), interleaved with the rest, and prints its ratios to the floor and to now.
"""

from __future__ import annotations

import argparse
import contextlib
import types
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from bench_spine import exact_at
from common import add_output_args, best_of_interleaved, report, save_results

from mpg_envs import congestion_v0, coordination_v0, distancing_v0, exact, multitask_gridworld_v0, tugofwar_v0
from mpg_envs.model import TabularModel

GRID_5X5 = ["S..../...../..#../...../....G", "....G/...../.#.../...../S...."]  # 625 joint states
GRID_3X3 = ["S../.#./..G", "..G/.#./S..", "G../.#./..S"]  # 729
GRID_6X6 = ["S...../....../..#.../....../....../.....G", ".....G/....../.#..../....../....../S....."]  # 1,296

#: (label, model factory, quick) per case; quick cases also run with --quick.
CASES: list[tuple[str, Callable[[], TabularModel], bool]] = [
    ("Congestion-v0 N=4", lambda: congestion_v0.parallel_env().model(), True),
    ("Congestion-v0 N=8", lambda: congestion_v0.parallel_env(n_agents=8).model(), True),
    ("Congestion-v0 N=6 slip=0.2", lambda: congestion_v0.parallel_env(n_agents=6, slip=0.2).model(), False),
    ("Congestion-v0 N=10", lambda: congestion_v0.parallel_env(n_agents=10).model(), False),
    ("Coordination-v0 N=3", lambda: coordination_v0.parallel_env().model(), True),
    ("Coordination-v0 N=5", lambda: coordination_v0.parallel_env(n_agents=5).model(), False),
    ("Coordination-v0 N=8", lambda: coordination_v0.parallel_env(n_agents=8).model(), False),
    ("Distancing-v0 N=4", lambda: distancing_v0.parallel_env(n_agents=4).model(), False),
    ("Distancing-v0 N=8", lambda: distancing_v0.parallel_env().model(), True),
    ("MultiTaskGridWorld-v0 chain_reversed", lambda: _grid("chain_reversed"), True),
    ("MultiTaskGridWorld-v0 chain_slip", lambda: _grid("chain_slip"), False),
    ("MultiTaskGridWorld-v0 two 5x5 tasks", lambda: _grid(GRID_5X5), True),
    ("MultiTaskGridWorld-v0 three 3x3 tasks", lambda: _grid(GRID_3X3), False),
    ("MultiTaskGridWorld-v0 two 6x6 tasks, slip=0.1", lambda: _grid(GRID_6X6, slip=0.1), False),
    ("TugOfWar-v0 K=5", lambda: tugofwar_v0.parallel_env().model(), True),
    ("TugOfWar-v0 K=101", lambda: tugofwar_v0.parallel_env(n_positions=101).model(), False),
    ("TugOfWar-v0 K=1001", lambda: tugofwar_v0.parallel_env(n_positions=1001).model(), True),
]


def _grid(layout: str | list[str], slip: float = 0.0) -> TabularModel:
    return multitask_gridworld_v0.parallel_env(layout=layout, slip=slip).model()


# ---------------------------------------------------------------------------- the floor
def _joint(pol: list[np.ndarray]) -> np.ndarray:
    """Joint policy (S, A), agent 0 most significant."""
    out = pol[0]
    for p in pol[1:]:
        out = (out[:, :, None] * p[:, None, :]).reshape(out.shape[0], -1)
    return out


def _rows(S: int, width: int, weights: np.ndarray, rows: np.ndarray) -> sp.csr_matrix:
    """Sparse (S*width, S*A) matrix summing the joint rows (s, a) of P with ``weights`` (S, A)
    into rows ``rows`` (S, A)."""
    A = weights.shape[1]
    cols = np.arange(S * A)
    return sp.csr_matrix((weights.ravel(), (rows.ravel(), cols)), shape=(S * width, S * A))


def _solve(model: TabularModel, P_pi: np.ndarray, r: np.ndarray) -> np.ndarray:
    """x with (I - gamma P_pi) x = r, r (S,) or (S, k); the non-terminal block when gamma = 1."""
    S, g = model.n_states, model.gamma
    if g < 1.0:
        return np.linalg.solve(np.eye(S) - g * P_pi, r)
    keep = np.flatnonzero(~model.terminal)
    x = np.zeros(r.shape)
    x[keep] = np.linalg.solve(np.eye(keep.size) - P_pi[np.ix_(keep, keep)], r[keep])
    return x


def floor_evaluate(model: TabularModel, pol: list[np.ndarray]) -> np.ndarray:
    """V (N, S) by one dense solve (see the module docstring)."""
    S = model.n_states
    pij = _joint(pol)
    Pi = _rows(S, 1, pij, np.repeat(np.arange(S)[:, None], pij.shape[1], axis=1))
    P_pi = (Pi @ model.P).toarray()
    r_pi = np.einsum("nsa,sa->sn", model.R, pij)
    return _solve(model, P_pi, r_pi).T


def floor_nash_gap(model: TabularModel, pol: list[np.ndarray]) -> np.ndarray:
    """Per-agent gap at mu (N,) by dense policy iteration (see the module docstring)."""
    S, g = model.n_states, model.gamma
    V = floor_evaluate(model, pol)
    own = model.joint_actions  # (A, N): each agent's action in each joint action
    gaps = np.zeros(model.n_agents)
    states = np.arange(S)
    for i, k in enumerate(model.action_sizes):
        w = _joint([np.ones((S, k)) if j == i else p for j, p in enumerate(pol)])
        M = _rows(S, k, w, states[:, None] * k + own[None, :, i])
        Pi = (M @ model.P).toarray()  # (S*k, S)
        ri = (M @ model.R[i].ravel()).reshape(S, k)
        act = (ri + g * (Pi @ V[i]).reshape(S, k)).argmax(axis=1)
        P3 = Pi.reshape(S, k, S)
        for _ in range(10_000):
            v = _solve(model, P3[states, act], ri[states, act])
            Q = ri + g * (Pi @ v).reshape(S, k)
            best = Q.argmax(axis=1)
            gain = Q[states, best] - Q[states, act]
            improve = gain > 1e-12 * max(1.0, float(np.abs(Q).max()))
            if g == 1.0:
                improve &= ~model.terminal
            if not improve.any():
                break
            act = np.where(improve, best, act)
        gaps[i] = max(0.0, float((v - V[i]) @ model.mu))
    return gaps


# ---------------------------------------------------------------------------- timing
def _policy(model: TabularModel, kind: str) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    if kind == "random":
        return exact.random_policy(model, rng)
    return exact.softmax_policy([4.0 * rng.standard_normal((model.n_states, k)) for k in model.action_sizes])


def measure(
    label: str, model: TabularModel, kind: str, repeats: int, baseline: types.ModuleType | None = None
) -> tuple[list, dict]:
    """Rows and a record for one case (with ``baseline``: also that exact module's times)."""
    pol = _policy(model, kind)
    size = f"S={model.n_states:,}, A={model.n_joint_actions:,}"
    scopes = contextlib.ExitStack()
    for mod in (exact, baseline) if baseline is not None else (exact,):
        scopes.enter_context(mod.blas_scope(model.n_states))  # each module skips its own switch
    with scopes:
        V, Vf = exact.evaluate(model, pol), floor_evaluate(model, pol)
        gap, gf = exact.nash_gap(model, pol).at_mu, floor_nash_gap(model, pol)
        fns = [
            lambda: exact.evaluate(model, pol),
            lambda: floor_evaluate(model, pol),
            lambda: exact.nash_gap(model, pol),
            lambda: floor_nash_gap(model, pol),
        ]
        if baseline is not None:
            fns += [lambda: baseline.evaluate(model, pol), lambda: baseline.nash_gap(model, pol)]
        slow = model.n_states > 1024 or model.P.nnz > 10**6
        times = best_of_interleaved(fns, max(2, repeats // 3) if slow else repeats)
        t_ev, f_ev, t_ng, f_ng = times[:4]
    scale = max(1.0, float(np.abs(Vf).max()))
    diff = max(float(np.abs(V - Vf).max()), float(np.abs(gap - gf).max())) / scale
    rows = [
        (f"evaluate / floor: {label} ({size})", t_ev / f_ev, "x", 1.0),
        (f"nash_gap / floor: {label}", t_ng / f_ng, "x", 1.0),
    ]
    rec = {
        "case": label,
        "n_states": model.n_states,
        "n_joint_actions": model.n_joint_actions,
        "evaluate_s": t_ev,
        "evaluate_floor_s": f_ev,
        "nash_gap_s": t_ng,
        "nash_gap_floor_s": f_ng,
        "max_rel_diff": diff,
    }
    print(
        f"{label:<48} {size:<24} evaluate {t_ev * 1e3:9.3f} ms / floor {f_ev * 1e3:9.3f} ms = "
        f"{t_ev / f_ev:5.2f}x   nash_gap {t_ng * 1e3:9.3f} ms / floor {f_ng * 1e3:9.3f} ms = "
        f"{t_ng / f_ng:5.2f}x   |diff| {diff:.1e}",
        flush=True,
    )
    if baseline is not None:
        b_ev, b_ng = times[4:]
        rec.update(baseline_evaluate_s=b_ev, baseline_nash_gap_s=b_ng)
        print(
            f"{'':<48} {'baseline':<24} evaluate {b_ev * 1e3:9.3f} ms = {b_ev / f_ev:5.2f}x floor, "
            f"{b_ev / t_ev:5.2f}x now;  nash_gap {b_ng * 1e3:9.3f} ms = {b_ng / f_ng:5.2f}x floor, "
            f"{b_ng / t_ng:5.2f}x now",
            flush=True,
        )
    return rows, rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer cases and repetitions (smoke test)")
    ap.add_argument("--policy", choices=("random", "peaked"), default="random", help="the policy timed")
    ap.add_argument("--only", metavar="TEXT", help="only the cases whose label contains TEXT")
    ap.add_argument(
        "--baseline",
        metavar="REV",
        help="also time mpg_envs/exact.py at this git revision (interleaved) and print its ratios",
    )
    add_output_args(ap)
    args = ap.parse_args()
    if args.update_reference and (args.quick or args.only or args.policy != "random" or args.baseline):
        raise SystemExit(
            "error: --update-reference needs a full run with the random policy, no --quick, --only or "
            "--baseline"
        )
    if args.only and not any(args.only in label for label, _, _ in CASES):
        raise SystemExit(f"error: --only {args.only!r} matches no case; cases: {[c[0] for c in CASES]}")
    baseline = exact_at(args.baseline) if args.baseline else None
    repeats = 3 if args.quick else 9
    rows, records = [], []
    for label, make, quick in CASES:
        if (args.quick and not quick) or (args.only and args.only not in label):
            continue
        r, rec = measure(label, make(), args.policy, repeats, baseline)
        rows += r
        records.append(rec)
    out = report(rows)
    worst = max(records, key=lambda r: r["max_rel_diff"])
    print(
        "\nlargest |exact - floor| / max(1, |V|) over values and gaps: "
        f"{worst['max_rel_diff']:.1e} ({worst['case']})"
    )
    notes = [
        "Ratios of `mpg_envs.exact` to a plain dense-solve floor (sparse `Pi @ P`, `np.linalg.solve`, "
        "dense policy iteration for the Nash gap), same run, interleaved, best of k, a random policy; "
        "lower is better. The machine was shared with other work while measuring."
    ]
    save_results(
        "exact_floor",
        args,
        results=out,
        cases=records,
        policy=args.policy,
        baseline=args.baseline,
        quick=args.quick,
        notes=notes,
    )


if __name__ == "__main__":
    main()
