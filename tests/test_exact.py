"""Exact analysis against independent oracles: closed forms, Monte Carlo, finite differences,
brute force over deterministic policies, and equilibria found by best-response dynamics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import mc_returns, random_game, value_by_iteration

from mpg_envs import congestion_v0, exact
from mpg_envs.model import TabularModel


def _congestion(**kw):
    env = congestion_v0.parallel_env(**kw)
    return env, env.model()


# ----------------------------------------------------------------------------- evaluation
def test_evaluate_closed_forms():
    """N = 1: reward f(1) = 1 on the three DAG edges, then the restart edge: a 4-step cycle."""
    g = 0.95
    _, m = _congestion(n_agents=1, gamma=g, restart_reward=0.5)
    rng = np.random.default_rng(0)
    V = exact.evaluate(m, exact.random_policy(m, rng))
    expect_s = (1 + g + g**2 + 0.5 * g**3) / (1 - g**4)
    assert V[0, 0] == pytest.approx(expect_s, rel=1e-12)
    # N = 3 all on the same edges: 1/3 per step
    _, m3 = _congestion(n_agents=3, gamma=g)
    same = [np.eye(2)[np.zeros(m3.n_states, int)]] * 3
    assert exact.evaluate(m3, same)[:, 0] == pytest.approx([(1 + g + g**2) / 3 / (1 - g**4)] * 3, rel=1e-12)
    # finite horizon, gamma = 1: 3 steps then terminal
    _, mt = _congestion(n_agents=3, at_sink="terminate", gamma=1.0)
    V = exact.evaluate(mt, same)
    assert V[:, 0] == pytest.approx([1.0, 1.0, 1.0], rel=1e-12)
    assert np.all(V[:, mt.terminal] == 0)


@pytest.mark.parametrize("seed", [0, 1])
def test_evaluate_matches_iterative_evaluation(seed):
    rng = np.random.default_rng(seed)
    m = random_game(rng, n_states=5, action_sizes=(2, 3, 2), gamma=0.9)
    pol = exact.random_policy(m, rng)
    np.testing.assert_allclose(exact.evaluate(m, pol), value_by_iteration(m, pol), atol=1e-10)


def test_evaluate_matches_monte_carlo_discounted():
    env, m = _congestion(n_agents=3, slip=0.3, gamma=0.9)
    rng = np.random.default_rng(2)
    pol = exact.random_policy(m, rng)
    G = mc_returns(env.dynamics, pol, m.gamma, n_episodes=20_000, horizon=300, rng=rng)
    V = exact.evaluate(m, pol) @ m.mu
    se = G.std(axis=0) / np.sqrt(len(G))
    assert np.all(np.abs(G.mean(axis=0) - V) <= 4.5 * se + 1e-6)  # 0.9^300 truncation ~ 2e-14


def test_evaluate_matches_monte_carlo_through_pettingzoo():
    """gamma = 1, terminate at t: exact returns vs episodes played through the public API."""
    env, m = _congestion(n_agents=3, slip=0.25, at_sink="terminate", gamma=1.0, load="vertex")
    rng = np.random.default_rng(3)
    pol = exact.random_policy(m, rng)
    env.reset(seed=11)
    n = 3000
    G = np.zeros((n, 3))
    for k in range(n):
        obs, _ = env.reset()
        while env.agents:
            s = int(obs["agent_0"])
            act = {f"agent_{i}": int(rng.choice(2, p=pol[i][s])) for i in range(3)}
            obs, rew, *_ = env.step(act)
            G[k] += [rew[f"agent_{i}"] for i in range(3)]
    V = exact.evaluate(m, pol) @ m.mu
    se = G.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(G.mean(axis=0) - V) <= 4.5 * se)


def test_q_advantage_visitation_consistency():
    rng = np.random.default_rng(4)
    m = random_game(rng, n_states=6, action_sizes=(3, 2), gamma=0.8)
    pol = exact.random_policy(m, rng)
    V = exact.evaluate(m, pol)
    Q = exact.marginal_q(m, pol)
    A = exact.advantages(m, pol)
    for i in range(2):
        np.testing.assert_allclose((pol[i] * Q[i]).sum(axis=1), V[i], atol=1e-12)
        np.testing.assert_allclose((pol[i] * A[i]).sum(axis=1), 0, atol=1e-12)
    d = exact.visitation(m, pol)
    assert d.sum() == pytest.approx(1.0) and d.min() >= 0
    # d_mu = (1-g) sum_t g^t mu P^t, by direct power series
    P = exact.transition_matrix(m, pol).toarray()
    x, acc = m.mu.copy(), np.zeros(m.n_states)
    for t in range(400):
        acc += (1 - m.gamma) * m.gamma**t * x
        x = x @ P
    np.testing.assert_allclose(d, acc, atol=1e-12)
    # V(mu) = <d, r_pi> / (1 - g)
    r_pi = np.einsum("nsa,sa->ns", m.R, exact.joint_policy(m, pol))
    np.testing.assert_allclose(r_pi @ d / (1 - m.gamma), V @ m.mu, rtol=1e-10)


# ----------------------------------------------------------------------------- gradients
def _fd_grad(m, logits, i, h=1e-6):
    g = np.zeros_like(logits[i])
    for idx in np.ndindex(g.shape):
        for sign in (1, -1):
            th = [t.copy() for t in logits]
            th[i][idx] += sign * h
            g[idx] += sign * (exact.evaluate(m, exact.softmax_policy(th))[i] @ m.mu) / (2 * h)
    return g


@pytest.mark.parametrize(
    "kw", [{"n_agents": 3, "slip": 0.2, "gamma": 0.9}, {"n_agents": 2, "at_sink": "terminate", "gamma": 1.0}]
)
def test_policy_gradient_matches_finite_differences(kw):
    _, m = _congestion(**kw)
    rng = np.random.default_rng(5)
    logits = [rng.normal(size=(m.n_states, k)) for k in m.action_sizes]
    grads = exact.policy_gradient(m, exact.softmax_policy(logits))
    for i in range(m.n_agents):
        np.testing.assert_allclose(grads[i], _fd_grad(m, logits, i), atol=1e-7)


def test_policy_gradient_random_game():
    rng = np.random.default_rng(6)
    m = random_game(rng, n_states=4, action_sizes=(3, 2), gamma=0.85)
    logits = [rng.normal(size=(4, k)) for k in m.action_sizes]
    grads = exact.policy_gradient(m, exact.softmax_policy(logits))
    for i in range(2):
        np.testing.assert_allclose(grads[i], _fd_grad(m, logits, i), atol=1e-7)


# ----------------------------------------------------------------------------- best responses
def _all_deterministic_values(m, pol, i):
    """Brute force: V_i(s) for every deterministic policy of agent i, shape (K^S, S)."""
    k = m.action_sizes[i]
    vals = []
    for acts in itertools.product(range(k), repeat=m.n_states):
        p = list(pol)
        p[i] = np.eye(k)[list(acts)]
        vals.append(exact.evaluate(m, p)[i])
    return np.array(vals)


def test_best_response_matches_brute_force():
    rng = np.random.default_rng(7)
    m = random_game(rng, n_states=4, action_sizes=(3, 2), gamma=0.9)
    pol = exact.random_policy(m, rng)
    for i in range(2):
        br = exact.best_response(m, pol, i)
        brute = _all_deterministic_values(m, pol, i)
        np.testing.assert_allclose(br.value, brute.max(axis=0), atol=1e-10)  # optimal in every state
        p = list(pol)
        p[i] = br.policy
        np.testing.assert_allclose(exact.evaluate(m, p)[i], br.value, atol=1e-10)


def test_best_response_gamma_one_terminal():
    _, m = _congestion(n_agents=2, at_sink="terminate", gamma=1.0, reward=[1.0, 0.2])
    rng = np.random.default_rng(8)
    pol = exact.random_policy(m, rng)
    br = exact.best_response(m, pol, 0)
    brute = _all_deterministic_values(m, pol, 0)
    np.testing.assert_allclose(br.value, brute.max(axis=0), atol=1e-10)


def _best_response_dynamics(m, pol, max_rounds=200):
    pol = list(pol)
    for _ in range(max_rounds):
        moved = False
        for i in range(m.n_agents):
            br = exact.best_response(m, pol, i)
            if np.any(br.value - exact.evaluate(m, pol)[i] > 1e-10):
                pol[i] = br.policy
                moved = True
        if not moved:
            return pol
    raise AssertionError("best-response dynamics did not converge")


@pytest.mark.parametrize("n_agents, slip", [(2, 0.0), (4, 0.0), (3, 0.3)])
def test_nash_gap_zero_at_equilibrium_positive_elsewhere(n_agents, slip):
    _, m = _congestion(n_agents=n_agents, slip=slip)
    rng = np.random.default_rng(9)
    eq = _best_response_dynamics(m, exact.random_policy(m, rng, deterministic=True))
    gap = exact.nash_gap(m, eq)
    assert abs(gap.gap) <= 1e-9 and gap.worst <= 1e-9
    assert np.all(np.abs(gap.per_state) <= 1e-9)
    # a random interior policy is not an equilibrium
    other = exact.nash_gap(m, exact.random_policy(m, rng))
    assert other.gap > 1e-3 and np.all(other.per_state >= -1e-9)


def test_nash_gap_reuses_given_values():
    """values=evaluate(...) gives the same gap without evaluating again; bad values are refused."""
    _, m = _congestion(n_agents=3)
    pol = exact.random_policy(m, np.random.default_rng(4))
    V = exact.evaluate(m, pol)
    a, b = exact.nash_gap(m, pol), exact.nash_gap(m, pol, values=V)
    np.testing.assert_array_equal(a.per_state, b.per_state)
    assert [br.iterations for br in a.best_responses] == [br.iterations for br in b.best_responses]
    with pytest.raises(ValueError, match=r"values must have shape \(N, S\)"):
        exact.nash_gap(m, pol, values=V[:, :-1])
    with pytest.raises(TypeError, match="values"):
        exact.nash_gap(m, pol, values="V")


def test_policy_iteration_stops_at_round_off_ties(monkeypatch):
    """Two actions lead to two mirror states of equal value; solves off by 1e-11 in the unchosen
    one would make policy iteration switch between them forever. It stops after a switch that raises
    no value and returns optimal values."""
    S = 4  # 0 -> {1 or 2} -> 3 -> 0; states 1 and 2 are mirror images
    P = np.zeros((S, 2, S))
    P[0, 0, 1] = P[0, 1, 2] = 1
    P[1, :, 3] = P[2, :, 3] = P[3, :, 0] = 1
    R = np.ones((1, S, 2))
    m = TabularModel(n_agents=1, action_sizes=(2,), P=P.reshape(S * 2, S), R=R, mu=np.ones(S) / S, gamma=0.9)
    real = exact._Solver.solve

    def noisy(self, rhs, transpose=False):  # round-off that always favours the mirror state not chosen
        x = real(self, rhs, transpose)
        other = 2 if self.P[0, 1] == 1 else 1
        x[other] *= 1 + 1e-11
        return x

    monkeypatch.setattr(exact._Solver, "solve", noisy)
    br = exact.best_response(m, [np.eye(2)[[0, 0, 0, 0]]], 0)
    np.testing.assert_allclose(br.value, np.full(S, 1 / (1 - 0.9)), rtol=1e-9)
    assert br.iterations < 5


def test_uniform_policy_is_an_equilibrium_of_symmetric_graph():
    """Measured: on the symmetric layered DAG, uniform play is a Nash equilibrium (gap ~ 1e-13)."""
    _, m = _congestion(n_agents=4)
    assert exact.nash_gap(m, exact.uniform_policy(m)).worst <= 1e-9


def test_social_optimum_and_poa_brute_force():
    rng = np.random.default_rng(10)
    m = random_game(rng, n_states=3, action_sizes=(2, 2), gamma=0.9)
    R = np.abs(m.R) + 0.1  # positive welfare
    m = TabularModel(n_agents=2, action_sizes=(2, 2), P=m.P, R=R, mu=m.mu, gamma=0.9)
    opt = exact.social_optimum(m)
    best = -np.inf
    for joint in itertools.product(range(4), repeat=m.n_states):
        acts = m.joint_actions[list(joint)]
        p = [np.eye(2)[acts[:, 0]], np.eye(2)[acts[:, 1]]]
        best = max(best, exact.evaluate(m, p).sum(axis=0) @ m.mu)
    assert opt.welfare == pytest.approx(best, rel=1e-12)
    assert exact.evaluate(m, opt.policies).sum(axis=0) @ m.mu == pytest.approx(best, rel=1e-12)
    pol = exact.random_policy(m, rng)
    poa = exact.price_of_anarchy(m, pol, optimum=opt)
    assert poa == pytest.approx(exact.evaluate(m, pol).sum(axis=0) @ m.mu / best)
    assert 0 < poa <= 1
    assert exact.price_of_anarchy(m, opt.policies) == pytest.approx(1.0)


def test_congestion_poa_closed_form():
    """Spreading out is optimal: with N = 2 the optimum pays 1 per agent per edge step."""
    g = 0.99
    _, m = _congestion(n_agents=2, gamma=g)
    opt = exact.social_optimum(m)
    assert opt.welfare == pytest.approx(2 * (1 + g + g**2) / (1 - g**4), rel=1e-12)
    same = [np.eye(2)[np.zeros(m.n_states, int)]] * 2
    assert exact.price_of_anarchy(m, same) == pytest.approx(0.5, rel=1e-12)


def test_l1_distance():
    a = [np.array([[1.0, 0.0], [0.5, 0.5]])] * 2
    b = [np.array([[0.0, 1.0], [0.5, 0.5]])] * 2
    assert exact.l1_distance(a, b) == pytest.approx(2.0)
    assert exact.l1_distance(a, a) == 0.0
    with pytest.raises(ValueError, match="numbers of agents"):
        exact.l1_distance(a, b[:1])


# ----------------------------------------------------------------------------- bad input
@pytest.fixture
def small():
    return _congestion(n_agents=2)[1]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda m: exact.uniform_policy(m)[:1], r"one policy per agent \(2\)"),
        (lambda m: np.full((m.n_states, 2), 0.5), "a sequence of 2 arrays"),
        (lambda m: [np.full((m.n_states, 3), 1 / 3)] * 2, r"shape \(S, \|A_i\|\) = \(10, 2\)"),
        (lambda m: [np.full((m.n_states - 1, 2), 0.5)] * 2, "shape"),
        (lambda m: [np.full((m.n_states, 2), 0.6)] * 2, "not row-stochastic"),
        (lambda m: [np.full((m.n_states, 2), np.nan)] * 2, "NaN"),
        (lambda m: [np.tile([1.5, -0.5], (m.n_states, 1))] * 2, "negative"),
    ],
)
def test_bad_policies(small, make, match):
    for fn in (exact.evaluate, exact.nash_gap, exact.advantages, exact.policy_gradient):
        with pytest.raises(ValueError, match=match):
            fn(small, make(small))


def test_bad_agent_and_certificate_args(small):
    with pytest.raises(ValueError, match="agent must be in"):
        exact.best_response(small, exact.uniform_policy(small), 2)
    with pytest.raises(ValueError, match="obs_map"):
        exact.cycle_residual(small, np.random.default_rng(0), obs_map=np.zeros((2, 3), int))
    one = _congestion(n_agents=1)[1]
    with pytest.raises(ValueError, match="at least 2 agents"):
        exact.cycle_residual(one, np.random.default_rng(0))
    nophi = TabularModel(
        n_agents=1, action_sizes=(1,), P=sp.eye(1), R=np.zeros((1, 1, 1)), mu=[1.0], gamma=0.5
    )
    with pytest.raises(ValueError, match="no stage potential"):
        exact.potential_value(nophi, [np.ones((1, 1))])
    with pytest.raises(ValueError, match="positive optimal welfare"):
        exact.price_of_anarchy(nophi, [np.ones((1, 1))])


def test_potential_value_closed_form():
    """All three agents on the same edges: phi = F(3) = 1 + 1/2 + 1/3 on each DAG step, 0 at t."""
    g = 0.9
    _, m = _congestion(n_agents=3, gamma=g)
    same = [np.eye(2)[np.zeros(m.n_states, int)]] * 3
    F3 = 1 + 1 / 2 + 1 / 3
    assert exact.potential_value(m, same)[0] == pytest.approx(F3 * (1 + g + g**2) / (1 - g**4), rel=1e-12)
    # spread over two edges at s (agents 0, 1 on edge 0; agent 2 on edge 1): F(2) + F(1) at s
    split = [np.eye(2)[np.zeros(m.n_states, int)]] * 2 + [np.eye(2)[np.ones(m.n_states, int)]]
    phi_s = m.phi[0, m.joint_index([0, 0, 1])]
    assert phi_s == pytest.approx((1 + 1 / 2) + 1)
    V_phi = exact.potential_value(m, split)
    nxt = m.state_index([1, 1, 2])
    assert V_phi[0] == pytest.approx(phi_s + g * V_phi[nxt], rel=1e-12)


@pytest.mark.parametrize(
    "kw", [{"n_agents": 3, "slip": 0.3}, {"n_agents": 3, "at_sink": "terminate", "gamma": 1.0}]
)
def test_dense_and_sparse_solvers_agree(monkeypatch, kw):
    """Both factorisation paths (dense LU, SuperLU incl. transposed solves) give the same numbers."""
    _, m = _congestion(**kw)
    pol = exact.random_policy(m, np.random.default_rng(12))
    out = {}
    monkeypatch.setattr(exact, "_DENSE_LU_MIN", 0)
    for name, density in (("dense", -1.0), ("sparse", 2.0)):
        monkeypatch.setattr(exact, "_SPARSE_DENSITY", density)
        out[name] = (
            exact.evaluate(m, pol),
            exact.occupancy(m, pol),
            exact.nash_gap(m, pol).per_state,
            np.concatenate(exact.policy_gradient(m, pol)),
        )
    for a, b in zip(out["dense"], out["sparse"]):
        np.testing.assert_allclose(a, b, atol=1e-10)


def test_blas_scope_sets_the_thread_limit_once_for_many_exact_calls(monkeypatch):
    """Inside ``blas_scope`` the exact calls skip their own BLAS-thread switch (one switch for a
    whole run); outside it every call switches; the results are the same."""
    import pettingzoo

    threadpoolctl = pytest.importorskip("threadpoolctl")
    calls = []
    original = threadpoolctl.ThreadpoolController.limit

    def limit(self, *args, **kwargs):
        calls.append(kwargs.get("limits"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(threadpoolctl.ThreadpoolController, "limit", limit)
    m = pettingzoo.make("parallel", "mpg/Coordination-v0", n_agents=2).unwrapped.model()
    pol = exact.random_policy(m, np.random.default_rng(0))
    outside = [exact.values_q_occupancy(m, pol)[0] for _ in range(5)]
    assert len(calls) == 5
    calls.clear()
    with exact.blas_scope(m.n_states):
        inside = [exact.values_q_occupancy(m, pol)[0] for _ in range(5)]
        exact.nash_gap(m, pol)
    assert calls == [1]
    np.testing.assert_array_equal(outside[0], inside[0])
    with pytest.raises(ValueError, match="n_states"):
        exact.blas_scope(-1)
