"""Probabilistic fictitious play (baselines.probabilistic.pfp, report 002 §1.3 / App. A.5): its
reductions to ROMMEO and Balancing-Q, where it differs from Balancing-Q (eq. 25's nesting), its
fixed point on the coordination, congestion and tug-of-war games, the zero-sum limit against the
minimax oracle, and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_game

from baselines import probabilistic as prob
from mpg_envs import congestion_v0, coordination_v0, exact, tugofwar_v0, zerosum


@pytest.fixture(scope="module")
def coord():
    return coordination_v0.parallel_env(n_agents=2).model()


@pytest.fixture(scope="module")
def tug():
    return tugofwar_v0.parallel_env().model()


def pure_minmax_values(model, sweeps=3000):
    """The pure-strategy min-max (upper) value: V(s) = min_{a_1} max_{a_0} q(s, a_0, a_1)."""
    S, (m, n) = model.n_states, model.action_sizes
    v = np.zeros(S)
    for _ in range(sweeps):
        q = (model.R[0] + model.gamma * (model.P @ v).reshape(S, m * n)).reshape(S, m, n)
        v = q.max(axis=1).min(axis=1)
    return v


@pytest.mark.parametrize("beta, beta_opp", [(2.0, 2.0), (3.0, -1.5), (0.5, 4.0), (-2.0, 1.0)])
def test_pfp_operator_is_a_gamma_contraction_for_any_signs(beta, beta_opp):
    model = random_game(np.random.default_rng(1), 4, (2, 3), 0.85)
    rng = np.random.default_rng(2)
    for _ in range(20):
        q1, q2 = rng.normal(size=(2, 4, 2, 3)) * rng.uniform(0.1, 10)
        t1 = prob.pfp_operator(model, q1, beta, beta_opp)
        t2 = prob.pfp_operator(model, q2, beta, beta_opp)
        assert np.abs(t1 - t2).max() <= model.gamma * np.abs(q1 - q2).max() * (1 + 1e-12)


def test_pfp_with_equal_temperatures_is_rommeo():
    """beta_opponent = beta: the same operator, conditional policy and opponent model as ROMMEO,
    also with a conditional prior and for agent 1."""
    model = random_game(np.random.default_rng(3), 3, (2, 3), 0.8)
    rng = np.random.default_rng(4)
    cond_prior = rng.dirichlet(np.ones(3), size=(3, 2))  # agent 1's prior given a_0: (S, A_0, A_1)
    kw = dict(agent=1, prior=cond_prior, prior_opponent=[0.3, 0.7], tol=1e-12)
    a, b = prob.pfp(model, 1.7, 1.7, **kw), prob.rommeo(model, 1.7, **kw)
    for name in ("q", "values", "conditional", "opponent", "joint"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-10, err_msg=name)
    for p, r in zip(a.policies, b.policies):
        np.testing.assert_allclose(p, r, atol=1e-12)


def test_pfp_with_equal_temperatures_and_independent_priors_is_balancing_q(coord):
    for beta in (0.5, 8.0):
        a, b = prob.pfp(coord, beta, beta, tol=1e-11), prob.balancing_q(coord, beta, beta, tol=1e-11)
        np.testing.assert_allclose(a.q, b.q, atol=1e-9)
        for p, r in zip(a.policies, b.policies):
            np.testing.assert_allclose(p, r, atol=1e-10)


@pytest.mark.parametrize("beta, beta_opp", [(3.0, -2.0), (4.0, 1.0), (1.0, 4.0), (2.0, -6.0)])
def test_pfp_is_balancing_q_with_the_nesting_reversed(beta, beta_opp):
    """PFP's V on any q is Balancing-Q's opponent nesting (eq. 25's V^-i / beta^-i) on that q; its
    opponent model has Balancing-Q's formula; and the fixed points are ordered by the mixed-mean
    inequality: q_BQ <= q_PFP iff beta >= beta_opponent (eq. 25's equality fails both ways)."""
    model = random_game(np.random.default_rng(6), 4, (3, 2), 0.8)
    a = prob.pfp(model, beta, beta_opp, tol=1e-11)
    op = prob._Balancing(prob._Game(model, 0), beta, beta_opp, None, None, None)
    np.testing.assert_allclose(op.opponent_value(a.q), a.values, atol=1e-10)
    rho_bq = prob.balancing_q_policies(model, a.q, beta, beta_opp)[1]
    np.testing.assert_allclose(rho_bq, a.policies[1], atol=1e-12)
    full = prob.balancing_q(model, beta, beta_opp, tol=1e-11)
    diff = a.q - full.q
    if beta > beta_opp:
        assert diff.min() > 1e-3
    else:
        assert diff.max() < -1e-3


@pytest.mark.parametrize(
    "make",
    [
        lambda: coordination_v0.parallel_env(n_agents=2).model(),
        lambda: congestion_v0.parallel_env(n_agents=2).model(),
        lambda: tugofwar_v0.parallel_env().model(),
    ],
    ids=["coordination", "congestion", "tugofwar"],
)
@pytest.mark.parametrize("beta, beta_opp", [(5.0, 5.0), (5.0, -5.0), (5.0, 2.0)])
def test_pfp_fixed_point_on_the_three_games_is_the_soft_value_of_its_policies(make, beta, beta_opp):
    """Converges (contraction ratio <= gamma) to a q that is the soft Q of the policies it plays
    (eq. 49), unlike Balancing-Q; the Gibbs identity of eq. 49 holds pointwise."""
    model = make()
    sol = prob.pfp(model, beta, beta_opp, tol=1e-9)
    assert sol.converged and sol.error_bound <= 1e-9
    assert sol.contraction <= model.gamma + 1e-6
    q_pol = prob.pfp_soft_q(model, sol.conditional, sol.opponent, beta, beta_opp)
    np.testing.assert_allclose(q_pol, sol.q, atol=1e-7)
    # eq. 49 in reward units: V(s) = q - log(pi / p) / beta - log(rho / p) / beta_opp for every a
    S, (a0, a1) = model.n_states, model.action_sizes
    pi = sol.conditional.transpose(0, 2, 1)  # (S, A_0, A_1)
    v = sol.q - np.log(pi * a0) / beta - np.log(sol.opponent * a1)[:, None, :] / beta_opp
    np.testing.assert_allclose(v, np.broadcast_to(sol.values[:, None, None], (S, a0, a1)), atol=1e-8)
    exact.check_policy(model, sol.policies)
    np.testing.assert_allclose(sol.joint.sum(axis=1), sol.policies[1], atol=1e-12)


def test_pfp_competitive_tends_to_the_pure_minmax_value_above_the_minimax_value(tug):
    """beta_opponent = -beta -> inf: the opponent leads and the agent answers having seen its
    action, so V tends to the pure min-max (upper) value, above Shapley's V* (and Balancing-Q's
    pure max-min below it): V_BQ < V* < V_PFP. The marginal policies are exploitable."""
    vstar = zerosum.shapley(tug, tol=1e-9).values
    upper = pure_minmax_values(tug)
    g = tug.gamma
    for beta in (10.0, 100.0, 1000.0):
        sol = prob.pfp(tug, beta, -beta, mode="competitive")
        bq = prob.balancing_q(tug, beta, -beta, mode="competitive")
        assert np.abs(sol.values - upper).max() <= np.log(2) / (beta * (1 - g)) + 1e-8
        assert np.all(bq.values < vstar - 10) and np.all(sol.values > vstar + 10)
    assert exact.nash_gap(tug, sol.policies).worst > 10


def test_pfp_small_beta_policies_tend_to_the_prior(tug):
    prior = [0.3, 0.7]
    sol = prob.pfp(tug, 1e-6, -1e-6, prior=prior, prior_opponent=[0.6, 0.4])
    np.testing.assert_allclose(sol.policies[0], np.broadcast_to(prior, (5, 2)), atol=1e-4)
    np.testing.assert_allclose(sol.policies[1], np.broadcast_to([0.6, 0.4], (5, 2)), atol=1e-4)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: prob.pfp(m, 1.0, 1.0, mode="competitive"), "beta_opponent must be < 0.*got 1.0"),
        (lambda m: prob.pfp(m, 1.0, -1.0, mode="cooperative"), "beta_opponent must be > 0.*got -1.0"),
        (lambda m: prob.pfp(m, 0.0, 1.0), "beta must be a finite non-zero number"),
        (lambda m: prob.pfp(m, 1.0, float("nan")), "beta_opponent must be .*nan"),
        (lambda m: prob.pfp(m, 1.0, 1.0, prior=[0.5, 0.6]), "prior .*sums to 1.1"),
        (lambda m: prob.pfp(m, 1.0, 1.0, prior_opponent=[1.5, -0.5]), "prior_opponent must be non-neg"),
        (lambda m: prob.pfp(m, 1.0, 1.0, mode="zero-sum"), "mode must be one of"),
        (lambda m: prob.pfp(m, 1.0, 1.0, agent=-1), "agent must be 0 or 1"),
        (lambda m: prob.pfp_operator(m, np.zeros((4, 3)), 1.0, 1.0), r"q must be .*got shape \(4, 3\)"),
        (lambda m: prob.pfp_soft_q(m, np.ones((4, 2, 2)), np.ones((4, 2)) / 2, 1.0, 1.0), "sums to 2"),
    ],
)
def test_pfp_bad_input_is_refused_naming_the_value(coord, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(coord)


def test_pfp_refuses_more_than_two_agents():
    three = coordination_v0.parallel_env(n_agents=3).model()
    with pytest.raises(ValueError, match="pfp supports exactly 2 agents.*N=3"):
        prob.pfp(three, 1.0, 1.0)


def test_huge_temperatures_give_the_pure_limits_without_overflow_warnings(tug):
    """|beta| = 1e308: beta * (x - m) overflows to -inf, whose Gibbs weight is exactly 0 -- no
    RuntimeWarning, and the values are the pure min-max (PFP) and max-min (Balancing-Q) values."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        upper = prob.pfp(tug, 1e308, -1e308)
        lower = prob.balancing_q(tug, 1e308, -1e308)
        prob.rommeo(tug, 1e308)
    np.testing.assert_allclose(upper.values, pure_minmax_values(tug), atol=1e-8)
    assert np.all(lower.values < upper.values - 10)


@pytest.mark.parametrize("game, beta_opp", [("tug", -1.0), ("coord", 1.0)])
def test_rounds_with_the_latest_opponent_as_prior_reach_the_unregularised_opponent_limit(
    game, beta_opp, tug, coord
):
    """§1.3's other reading (eq. 46's prior := the latest opponent model) is no new fixed point:
    the rounds converge to pfp's |beta_opponent| -> inf limit (measured: 8e-4 after 10 rounds on the
    tug of war, 0.015 on the coordination game; 0 to 4 decimals after 50)."""
    model = tug if game == "tug" else coord
    limit = prob.pfp(model, 2.0, beta_opp * 1e6).values
    rho, errs = None, []
    for _ in range(30):
        sol = prob.pfp(model, 2.0, beta_opp, prior_opponent=rho)
        rho = sol.opponent
        errs.append(float(np.abs(sol.values - limit).max()))
    assert errs[0] > 1.0 and errs[-1] < 1e-4
    one_round = prob.pfp(model, 2.0, beta_opp).values
    assert np.abs(one_round - limit).max() > 1.0  # the fixed-prior reading is a different point
