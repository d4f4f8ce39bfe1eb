"""The fast exact analysis against a plain reference implementation written here independently.

The reference builds everything explicitly with loops over joint actions: the joint policy, dense
P(s'|s, a), each agent's induced MDP, values by a dense linear solve and best responses by value
iteration polished with policy iteration. It compares evaluate, marginal_q, occupancy,
potential_value and nash_gap (per state, at mu, worst state, best-response values and
optimality of the returned best-response policies in every state) on random games with several
action-size patterns and transition structures (dense, sparse, state-independent, deterministic,
terminal states with gamma = 1) and on every registered env in small configurations, through
every solver path (dense LU, Krylov, Krylov falling back to LU).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import random_game

from mpg_envs import (
    _kernel,
    _krylov,
    congestion_v0,
    coordination_v0,
    distancing_v0,
    exact,
    multitask_gridworld_v0,
    tugofwar_v0,
)
from mpg_envs.model import TabularModel

REL = 1e-9


# ---------------------------------------------------------------------------- reference implementation
def ref_weights(model: TabularModel, pol: list[np.ndarray], skip: int | None = None) -> np.ndarray:
    """prod_{j != skip} pi_j(a_j | s) for every joint action, (S, A), by a loop over joint actions."""
    S, A = model.n_states, model.n_joint_actions
    w = np.ones((S, A))
    for a in range(A):
        for j, digit in enumerate(model.joint_actions[a]):
            if j != skip:
                w[:, a] *= pol[j][:, digit]
    return w


def ref_dense_P(model: TabularModel) -> np.ndarray:
    return model.P.toarray().reshape(model.n_states, model.n_joint_actions, model.n_states)


def ref_solve(model: TabularModel, P_pi: np.ndarray, r: np.ndarray) -> np.ndarray:
    """x = (I - gamma P_pi)^-1 r on the non-terminal states (0 on terminal ones when gamma = 1)."""
    keep = np.arange(model.n_states) if model.gamma < 1 else np.flatnonzero(~model.terminal)
    x = np.zeros(r.shape)
    M = np.eye(keep.size) - model.gamma * P_pi[np.ix_(keep, keep)]
    x[keep] = np.linalg.solve(M, r[keep])
    return x


def ref_values(model: TabularModel, pol: list[np.ndarray], rewards: np.ndarray | None = None) -> np.ndarray:
    rewards = model.R if rewards is None else rewards
    pi = ref_weights(model, pol)
    P_pi = np.einsum("sa,sat->st", pi, ref_dense_P(model))
    return ref_solve(model, P_pi, np.einsum("sa,nsa->sn", pi, rewards)).T


def ref_induced(model: TabularModel, pol: list[np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
    """Agent i's MDP against the others: P_i (S, K, S) and r_i (S, K), by a loop over joint actions."""
    S, k = model.n_states, model.action_sizes[i]
    w = ref_weights(model, pol, skip=i)
    P3 = ref_dense_P(model)
    P_i, r_i = np.zeros((S, k, S)), np.zeros((S, k))
    for a in range(model.n_joint_actions):
        c = model.joint_actions[a][i]
        P_i[:, c] += w[:, a, None] * P3[:, a]
        r_i[:, c] += w[:, a] * model.R[i][:, a]
    return P_i, r_i


def ref_best_value(model: TabularModel, P_i: np.ndarray, r_i: np.ndarray) -> np.ndarray:
    """Optimal values of the MDP (P_i, r_i): value iteration, then policy iteration from its greedy
    policy until no action improves by more than round-off."""
    S = r_i.shape[0]
    V = np.zeros(S)
    for _ in range(100_000):
        new = (r_i + model.gamma * P_i @ V).max(axis=1)
        if np.abs(new - V).max() <= 1e-12 * max(1.0, np.abs(new).max()):
            V = new
            break
        V = new
    act = (r_i + model.gamma * P_i @ V).argmax(axis=1)
    for _ in range(100):
        V = ref_solve(model, P_i[np.arange(S), act], r_i[np.arange(S), act])
        Q = r_i + model.gamma * P_i @ V
        better = Q.max(axis=1) > Q[np.arange(S), act] + 1e-12 * max(1.0, np.abs(Q).max())
        if model.gamma == 1:
            better &= ~model.terminal
        if not better.any():
            return V
        act = np.where(better, Q.argmax(axis=1), act)
    raise AssertionError("reference policy iteration did not converge")


def assert_matches_reference(model: TabularModel, pol: list[np.ndarray]) -> None:
    V = ref_values(model, pol)
    V_br = np.stack([ref_best_value(model, *ref_induced(model, pol, i)) for i in range(model.n_agents)])
    scale = max(1.0, np.abs(V).max(), np.abs(V_br).max())
    tol = REL * scale

    np.testing.assert_allclose(exact.evaluate(model, pol), V, rtol=0, atol=tol)
    gain = np.maximum(V_br - V, 0.0)
    for ng in (exact.nash_gap(model, pol), exact.nash_gap(model, pol, values=exact.evaluate(model, pol))):
        assert np.all(ng.per_state >= 0)
        np.testing.assert_allclose(ng.per_state, gain, rtol=0, atol=tol)
        np.testing.assert_allclose(ng.at_mu, gain @ model.mu, rtol=0, atol=tol)
        np.testing.assert_allclose(ng.worst_state, gain.max(axis=1), rtol=0, atol=tol)
        for i, br in enumerate(ng.best_responses):
            np.testing.assert_allclose(br.value, V_br[i], rtol=0, atol=tol)
            assert br.policy.shape == (model.n_states, model.action_sizes[i])
            assert np.all(br.policy.sum(axis=1) == 1) and np.all((br.policy == 0) | (br.policy == 1))
            # the returned policy is optimal in every state, not just on average under mu
            dev = list(pol)
            dev[i] = br.policy
            np.testing.assert_allclose(ref_values(model, dev)[i], V_br[i], rtol=0, atol=tol)
            one = exact.best_response(model, pol, i)
            np.testing.assert_allclose(one.value, V_br[i], rtol=0, atol=tol)

    # marginal Q, occupancy and the potential go through the same kernels
    P3 = ref_dense_P(model)
    Q = model.R + model.gamma * np.einsum("sat,nt->nsa", P3, V)
    for i, q in enumerate(exact.marginal_q(model, pol)):
        w = ref_weights(model, pol, skip=i)
        ref_q = np.zeros((model.n_states, model.action_sizes[i]))
        for a in range(model.n_joint_actions):
            ref_q[:, model.joint_actions[a][i]] += w[:, a] * Q[i][:, a]
        np.testing.assert_allclose(q, ref_q, rtol=0, atol=tol)
    pi = ref_weights(model, pol)
    P_pi = np.einsum("sa,sat->st", pi, P3)
    keep = np.arange(model.n_states) if model.gamma < 1 else np.flatnonzero(~model.terminal)
    occ = np.zeros(model.n_states)
    M = np.eye(keep.size) - model.gamma * P_pi[np.ix_(keep, keep)]
    occ[keep] = np.linalg.solve(M.T, model.mu[keep])
    np.testing.assert_allclose(exact.occupancy(model, pol), occ, rtol=0, atol=REL * max(1.0, occ.max()))
    if model.phi is not None:
        Phi = ref_values(model, pol, rewards=model.phi[None])[0]
        np.testing.assert_allclose(
            exact.potential_value(model, pol), Phi, rtol=0, atol=REL * max(1.0, np.abs(Phi).max())
        )


# ---------------------------------------------------------------------------- games
def terminal_game(rng: np.random.Generator, n_states: int, action_sizes: tuple[int, ...]) -> TabularModel:
    """gamma = 1 with two absorbing zero-reward states reached with probability >= 0.2 per step."""
    N, A = len(action_sizes), int(np.prod(action_sizes))
    S = n_states
    term = np.zeros(S, bool)
    term[-2:] = True
    P = rng.dirichlet(np.ones(S) * 0.5, size=(S, A)) * 0.8
    P[:, :, -2] += 0.1
    P[:, :, -1] += 0.1
    P[term] = 0
    P[-2, :, -2] = P[-1, :, -1] = 1
    R = rng.normal(size=(N, S, A))
    R[:, term] = 0
    return TabularModel(
        n_agents=N,
        action_sizes=action_sizes,
        P=sp.csr_matrix(P.reshape(S * A, S)),
        R=R,
        mu=rng.dirichlet(np.ones(S)),
        gamma=1.0,
        terminal=term,
    )


def stateless_game(rng: np.random.Generator, n_states: int, action_sizes: tuple[int, ...]) -> TabularModel:
    """P(. | s, a) independent of s (the coordination game's structure), random otherwise."""
    N, A = len(action_sizes), int(np.prod(action_sizes))
    Pa = rng.dirichlet(np.ones(n_states) * 0.3, size=A)
    R = rng.normal(size=(N, n_states, A))
    return TabularModel(
        n_agents=N,
        action_sizes=action_sizes,
        P=sp.csr_matrix(np.tile(Pa, (n_states, 1))),
        R=R,
        mu=rng.dirichlet(np.ones(n_states)),
        gamma=0.95,
    )


def sparse_game(
    rng: np.random.Generator,
    n_states: int,
    action_sizes: tuple[int, ...],
    per_row: int,
    gamma: float,
    one: float = 1.0,
) -> TabularModel:
    """per_row random next states per (s, a) (1: deterministic transitions, with probability ``one``,
    which the model accepts within 1e-9 of 1)."""
    N, A = len(action_sizes), int(np.prod(action_sizes))
    S = n_states
    rows = np.repeat(np.arange(S * A), per_row)
    cols = rng.integers(S, size=S * A * per_row)
    vals = (rng.dirichlet(np.ones(per_row), size=S * A).ravel() if per_row > 1 else np.ones(S * A)) * one
    P = sp.csr_matrix((vals, (rows, cols)), shape=(S * A, S))
    R = rng.normal(size=(N, S, A))
    return TabularModel(
        n_agents=N,
        action_sizes=action_sizes,
        P=P,
        R=R,
        mu=rng.dirichlet(np.ones(S)),
        gamma=gamma,
        phi=R[0].copy(),
    )


def policies(model: TabularModel, seed: int) -> list[list[np.ndarray]]:
    """A Dirichlet policy, a pure one and a mixture with exact ties (uniform rows)."""
    rng = np.random.default_rng(seed)
    mixed = exact.random_policy(model, rng)
    pure = exact.random_policy(model, rng, deterministic=True)
    uni = exact.uniform_policy(model)
    ties = [np.where((np.arange(model.n_states) % 2 == 0)[:, None], u, p) for u, p in zip(uni, mixed)]
    return [mixed, pure, ties]


RANDOM_GAMES = {
    "dense (2, 3)": lambda rng: random_game(rng, 5, (2, 3), 0.9),
    "dense (3,) single agent": lambda rng: random_game(rng, 6, (3,), 0.99),
    "dense (2, 2, 2) identical": lambda rng: random_game(rng, 4, (2, 2, 2), 0.95, identical=True),
    "dense (1, 4, 2) one-action agent": lambda rng: random_game(rng, 4, (1, 4, 2), 0.9),
    "dense (3, 1)": lambda rng: random_game(rng, 7, (3, 1), 0.99),
    "terminal gamma=1 (2, 3)": lambda rng: terminal_game(rng, 7, (2, 3)),
    "terminal gamma=1 (2, 2, 2)": lambda rng: terminal_game(rng, 5, (2, 2, 2)),
    "stateless (2, 2, 2)": lambda rng: stateless_game(rng, 8, (2, 2, 2)),
    "stateless (3, 2)": lambda rng: stateless_game(rng, 5, (3, 2)),
    "sparse deterministic (2, 2)": lambda rng: sparse_game(rng, 150, (2, 2), 1, 0.9),
    "sparse deterministic (2, 1, 3), P = 1 - 1e-12": lambda rng: sparse_game(
        rng, 120, (2, 1, 3), 1, 0.99, 1 - 1e-12
    ),
    "sparse 3 per row (2, 3)": lambda rng: sparse_game(rng, 120, (2, 3), 3, 0.9),
}


@pytest.mark.parametrize("name", sorted(RANDOM_GAMES))
def test_random_games_match_reference(name):
    rng = np.random.default_rng(sum(map(ord, name)))
    model = RANDOM_GAMES[name](rng)
    for pol in policies(model, 1):
        assert_matches_reference(model, pol)


def test_random_games_cover_every_kernel_kind():
    """The games above reach each storage of P (so every product path is compared)."""
    rng = np.random.default_rng(0)
    kinds = {name: _kernel.kernel(make(rng)).kind for name, make in RANDOM_GAMES.items()}
    assert kinds["stateless (2, 2, 2)"] == "stateless"
    assert kinds["dense (2, 3)"] == "dense"
    assert kinds["sparse deterministic (2, 2)"] == "sparse"
    assert _kernel.kernel(RANDOM_GAMES["sparse deterministic (2, 2)"](rng)).unit
    inexact = _kernel.kernel(RANDOM_GAMES["sparse deterministic (2, 1, 3), P = 1 - 1e-12"](rng))
    assert inexact.kind == "sparse" and not inexact.unit
    assert kinds["sparse 3 per row (2, 3)"] == "sparse"


SOLVER_PATHS = {  # _PROBE False: GMRES is tried wherever the sizes allow (no per-model plan vetoes it)
    "direct LU": {},
    "Krylov": {"_DIRECT_MAX": 0, "_PROBE": False},
    "Krylov falling back to dense LU": {
        "_DIRECT_MAX": 0,
        "_KRYLOV_STEPS": 1,
        "_SPARSE_DENSITY": -1.0,
        "_PROBE": False,
    },
    "Krylov falling back to sparse LU": {
        "_PROBE": False,
        "_DIRECT_MAX": 0,
        "_KRYLOV_STEPS": 1,
        "_SPARSE_DENSITY": 2.0,
        "_DENSE_LU_MIN": 0,
    },
}


@pytest.mark.parametrize("name", ["sparse deterministic (2, 2)", "sparse 3 per row (2, 3)"])
def test_sparse_state_matrices_match_reference(monkeypatch, name):
    """Above DENSE_STATES_MAX states P_pi and deterministic-policy rows are CSR matrices (with
    repeated columns before summing); lower the threshold to compare that path on small games."""
    monkeypatch.setattr(_kernel, "DENSE_STATES_MAX", 8)
    monkeypatch.setattr(exact, "_PROBE", False)
    rng = np.random.default_rng(sum(map(ord, name)))
    model = RANDOM_GAMES[name](rng)
    assert _kernel.kernel(model).kind == "sparse"
    for direct in (0, 10_000):  # Krylov on CSR, then LU
        monkeypatch.setattr(exact, "_DIRECT_MAX", direct)
        for pol in policies(model, 5):
            assert_matches_reference(model, pol)


@pytest.mark.parametrize("path", list(SOLVER_PATHS))
@pytest.mark.parametrize(
    "name", ["dense (2, 3)", "terminal gamma=1 (2, 2, 2)", "stateless (3, 2)", "sparse 3 per row (2, 3)"]
)
def test_every_solver_path_matches_reference(monkeypatch, path, name):
    for attr, value in SOLVER_PATHS[path].items():
        monkeypatch.setattr(exact, attr, value)
    rng = np.random.default_rng(sum(map(ord, name)))
    model = RANDOM_GAMES[name](rng)
    for pol in policies(model, 2):
        assert_matches_reference(model, pol)


def test_krylov_solves_congestion_without_factorising(monkeypatch):
    """On the congestion game's layered chain the Krylov space closes: no LU is ever needed."""
    model = congestion_v0.parallel_env(n_agents=5).model()  # 66 states
    monkeypatch.setattr(exact, "_DIRECT_MAX", 0)
    monkeypatch.setattr(exact, "_PROBE", False)  # at 66 states the plan would rather factor

    def no_factor(self):
        raise AssertionError("factorised although the Krylov solve should have succeeded")

    monkeypatch.setattr(exact._Solver, "_factor", no_factor)
    pol = exact.random_policy(model, 3)
    assert_matches_reference(model, pol)


@pytest.mark.parametrize("name", ["dense (2, 3)", "terminal gamma=1 (2, 3)", "sparse 3 per row (2, 3)"])
@pytest.mark.parametrize("lu", ["dense", "sparse"])
def test_solve_with_changed_rows_matches_a_fresh_solve(monkeypatch, name, lu):
    """Policy iteration's low-rank update (Woodbury with the old factors) against a direct solve."""
    if lu == "sparse":
        monkeypatch.setattr(exact, "_DENSE_LU_MIN", 0)
        monkeypatch.setattr(exact, "_SPARSE_DENSITY", 2.0)
    rng = np.random.default_rng(sum(map(ord, name)))
    model = RANDOM_GAMES[name](rng)
    S = model.n_states
    mdp = _kernel.kernel(model).team_mdp()
    r = model.R.sum(axis=0)
    act = rng.integers(model.n_joint_actions, size=S)
    base = exact._Solver(model, mdp.rows(act))
    assert base.sparse == (lu == "sparse")
    live = np.flatnonzero(~model.terminal)
    for n_changed in (1, 2, len(live) // 3):
        new = act.copy()
        changed = rng.choice(live, size=n_changed, replace=False)
        new[changed] = (act[changed] + 1) % model.n_joint_actions
        rows = mdp.rows(new)
        rows = rows.toarray() if sp.issparse(rows) else rows
        got = base.solve_with_rows(changed, rows[changed], r[np.arange(S), new])
        want = ref_solve(model, rows, r[np.arange(S), new])
        assert got is not None
        np.testing.assert_allclose(got, want, rtol=0, atol=REL * max(1.0, np.abs(want).max()))


def test_policy_iteration_updates_factorisations(monkeypatch):
    """On the coordination game later policy-iteration rounds reuse the factors (and stay exact)."""
    model = coordination_v0.parallel_env(n_agents=6).model()  # 64 states
    used = []
    real = exact._Solver.solve_with_rows

    def spy(self, *args):
        out = real(self, *args)
        used.append(out is not None)
        return out

    monkeypatch.setattr(exact._Solver, "solve_with_rows", spy)
    for pol in policies(model, 6):
        assert_matches_reference(model, pol)
    assert any(used)


ENVS = {
    "congestion N=3": lambda: congestion_v0.parallel_env(n_agents=3).model(),
    "congestion N=3 slip": lambda: congestion_v0.parallel_env(n_agents=3, slip=0.3).model(),
    "congestion N=3 terminate gamma=1": lambda: congestion_v0.parallel_env(
        n_agents=3, at_sink="terminate", gamma=1.0
    ).model(),
    "congestion N=3 ring": lambda: congestion_v0.parallel_env(n_agents=3, graph="ring").model(),
    "distancing N=3": lambda: distancing_v0.parallel_env(n_agents=3).model(),
    "coordination N=3": lambda: coordination_v0.parallel_env(n_agents=3).model(),
    "coordination N=4": lambda: coordination_v0.parallel_env(n_agents=4).model(),
    "gridworld chain (joint)": lambda: multitask_gridworld_v0.parallel_env(
        layout="chain_reversed"
    ).unwrapped.model(),
    "gridworld task": lambda: multitask_gridworld_v0.parallel_env(
        layout="no_conflict"
    ).unwrapped.task_models()[0],
}


@pytest.mark.parametrize("name", list(ENVS))
def test_registered_envs_match_reference(name):
    model = ENVS[name]()
    for pol in policies(model, 4):
        assert_matches_reference(model, pol)


# ---------------------------------------------------------------------------- the per-model solve plan
GRID_5X5 = ["S..../...../..#../...../....G", "....G/...../.#.../...../S...."]  # 625 joint states


def grid_5x5() -> TabularModel:
    return multitask_gridworld_v0.parallel_env(layout=GRID_5X5).model()


def tug_501() -> TabularModel:
    return tugofwar_v0.parallel_env(n_positions=501).model()


def dense_values(model: TabularModel, pol: list[np.ndarray]) -> np.ndarray:
    """V (N, S) by one dense solve of the plain P_pi."""
    P_pi = exact.transition_matrix(model, pol).toarray()
    pij = exact.joint_policy(model, pol)
    return ref_solve(model, P_pi, np.einsum("nsa,sa->sn", model.R, pij)).T


def spy_gmres(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = _krylov.gmres

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_krylov, "gmres", spy)
    return calls


@pytest.mark.parametrize("make", [grid_5x5, tug_501], ids=["grid 5x5 two tasks", "tug of war K=501"])
def test_plan_factors_at_once_where_gmres_does_not_close(monkeypatch, make):
    """Value evaluation on grids and random walks: the Krylov space does not close within the budget,
    so after the model's one probe no solve tries GMRES (each failed attempt cost more than the LU)."""
    model = make()
    pol = exact.random_policy(model, 0)
    first = exact.evaluate(model, pol)  # probes the model's plan (values, then the occupancy's transpose)
    first_occ = exact.occupancy(model, pol)
    calls = spy_gmres(monkeypatch)
    V = exact.evaluate(model, pol)
    occ = exact.occupancy(model, pol)
    np.testing.assert_array_equal(occ, first_occ)
    v, q, occ2 = exact.values_q_occupancy(model, pol)
    assert calls == []
    np.testing.assert_array_equal(V, first)
    np.testing.assert_array_equal(v, V)
    np.testing.assert_array_equal(occ2, occ)
    want = dense_values(model, pol)
    np.testing.assert_allclose(V, want, rtol=0, atol=REL * max(1.0, np.abs(want).max()))


def test_plan_factors_random_walks_sparsely(monkeypatch):
    """The tug of war's tridiagonal P_pi: SuperLU (its factors stay sparse), never a dense LU, and
    P_pi built as CSR (no dense (S, S) array to convert)."""
    model = tug_501()
    pol = exact.random_policy(model, 1)
    want = dense_values(model, pol)

    def no_dense_lu(*args, **kwargs):
        raise AssertionError("dense LU of a tridiagonal system")

    monkeypatch.setattr(exact.scipy.linalg, "lu_factor", no_dense_lu)
    assert sp.issparse(exact._p_pi(model, exact.joint_policy(model, pol)))
    V = exact.evaluate(model, pol)
    np.testing.assert_allclose(V, want, rtol=0, atol=REL * max(1.0, np.abs(want).max()))
    gap = exact.nash_gap(model, pol, values=V)
    assert gap.gap > 0


def test_plan_keeps_gmres_where_it_closes(monkeypatch):
    """The congestion game (514 states): every solve closes by GMRES, nothing is factored."""
    model = congestion_v0.parallel_env(n_agents=8).model()
    pol = exact.random_policy(model, 2)
    with monkeypatch.context() as m:
        m.setattr(exact, "_DIRECT_MAX", 10_000)  # LU everywhere, for the expected values
        want_v, want_gap = exact.evaluate(model, pol), exact.nash_gap(model, pol).per_state

    def no_factor(self):
        raise AssertionError("factorised although the Krylov solve should have succeeded")

    monkeypatch.setattr(exact._Solver, "_factor", no_factor)
    fresh = congestion_v0.parallel_env(n_agents=8).model()  # its own plan, probed here
    V = exact.evaluate(fresh, pol)
    gap = exact.nash_gap(fresh, pol).per_state
    scale = max(1.0, np.abs(want_v).max())
    np.testing.assert_allclose(V, want_v, rtol=0, atol=REL * scale)
    np.testing.assert_allclose(gap, want_gap, rtol=0, atol=REL * scale)


@pytest.mark.parametrize("make", [grid_5x5, tug_501], ids=["grid 5x5 two tasks", "tug of war K=501"])
def test_plan_does_not_depend_on_earlier_calls(make):
    """The plan is a function of the model: the same policy gives bit-identical results whatever
    was computed on the model before (training runs resume bit for bit in a fresh process)."""
    a, b = make(), make()
    pol = exact.random_policy(a, 3)
    other = exact.random_policy(a, 4)
    exact.nash_gap(a, other)
    exact.occupancy(a, other)
    np.testing.assert_array_equal(exact.evaluate(a, pol), exact.evaluate(b, pol))
    np.testing.assert_array_equal(exact.nash_gap(a, pol).per_state, exact.nash_gap(b, pol).per_state)
