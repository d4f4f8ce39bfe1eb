"""The minimax oracle (mpg_envs.zerosum) and the zero-sum tug-of-war env: closed forms, the
contraction of Shapley's operator, and that neither player gains against the computed policies."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import random_game

import mpg_envs
from mpg_envs import exact, tugofwar_v0, zerosum
from mpg_envs.model import TabularModel


def zero_sum_game(rng, n_states=3, sizes=(2, 3), gamma=0.8) -> TabularModel:
    g = random_game(rng, n_states, sizes, gamma)
    R = np.stack([g.R[0], -g.R[0]])
    return TabularModel(n_agents=2, action_sizes=sizes, P=g.P, R=R, mu=g.mu, gamma=gamma)


def pure_maximin_values(model, sweeps=3000):
    """max_a0 min_a1 value iteration (pure strategies), (S,)."""
    S, (m, n) = model.n_states, model.action_sizes
    v = np.zeros(S)
    for _ in range(sweeps):
        q = (model.R[0] + model.gamma * (model.P @ v).reshape(S, m * n)).reshape(S, m, n)
        v = q.min(axis=2).max(axis=1)
    return v


# ---------------------------------------------------------------------------- matrix games
def test_matching_pennies_value_zero_uniform_strategies():
    sol = zerosum.solve_matrix_game([[1.0, -1.0], [-1.0, 1.0]])
    assert sol.value == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(sol.row, [0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(sol.col, [0.5, 0.5], atol=1e-12)
    assert 0 <= sol.gap <= 1e-12


@pytest.mark.parametrize("h", [2.0, 0.5, 7.0])
def test_two_by_two_mixed_equilibrium_closed_form(h):
    """[[h, -1], [-1, 1]]: both play the first action with probability 2/(h+3), value (h-1)/(h+3)."""
    sol = zerosum.solve_matrix_game(tugofwar_v0.TugOfWarEnv(heads_bonus=h).dynamics.payoff)
    p = 2 / (h + 3)
    assert sol.value == pytest.approx((h - 1) / (h + 3), abs=1e-12)
    np.testing.assert_allclose(sol.row, [p, 1 - p], atol=1e-10)
    np.testing.assert_allclose(sol.col, [p, 1 - p], atol=1e-10)


def test_pure_saddle_point_and_scale_invariance():
    M = np.array([[3.0, 1.0, 4.0], [2.0, 0.5, 1.5], [5.0, 0.0, 9.0]])  # saddle at (0, 1), value 1
    sol = zerosum.solve_matrix_game(M)
    assert sol.value == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(sol.row, [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(sol.col, [0, 1, 0], atol=1e-12)
    big = zerosum.solve_matrix_game(M * 1e200)
    assert big.value == pytest.approx(1e200, rel=1e-12)
    assert zerosum.solve_matrix_game(np.zeros((2, 3))).value == 0.0


def test_random_matrix_games_certificates():
    rng = np.random.default_rng(0)
    for _ in range(20):
        M = rng.normal(size=tuple(rng.integers(1, 6, size=2)))
        sol = zerosum.solve_matrix_game(M)
        assert sol.lower <= sol.value <= sol.upper and sol.gap <= 1e-9
        assert np.all(sol.row >= 0) and sol.row.sum() == pytest.approx(1)
        assert np.all(sol.col >= 0) and sol.col.sum() == pytest.approx(1)
        # no pure deviation gains
        assert (sol.row @ M).min() >= sol.value - 1e-9 and (M @ sol.col).max() <= sol.value + 1e-9


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([[1.0, np.nan]], "nan"),
        ([1.0, 2.0], r"2-D.*shape \(2,\)"),
        (np.zeros((0, 2)), r"non-empty.*\(0, 2\)"),
        ("M", "'M'"),
        ([[1.0, np.inf]], "inf"),
    ],
)
def test_matrix_game_bad_input(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        zerosum.solve_matrix_game(bad)


# ---------------------------------------------------------------------------- Markov games
def test_shapley_operator_is_a_gamma_contraction():
    rng = np.random.default_rng(1)
    model = zero_sum_game(rng)
    for _ in range(10):
        v1, v2 = rng.normal(scale=5, size=(2, model.n_states))
        d = np.abs(zerosum.shapley_operator(model, v1) - zerosum.shapley_operator(model, v2)).max()
        assert d <= model.gamma * np.abs(v1 - v2).max() + 1e-10


@pytest.mark.parametrize("seed", [2, 3])
def test_shapley_no_player_gains_against_the_minimax_policies(seed):
    """Exact best-response values (policy iteration on the model) equal V* to tolerance."""
    model = zero_sum_game(np.random.default_rng(seed), sizes=(3, 2))
    sol = zerosum.shapley(model, tol=1e-10)
    assert sol.converged and sol.error_bound <= 1e-10
    V = exact.evaluate(model, sol.policies)
    np.testing.assert_allclose(V[0], sol.values, atol=1e-8)
    np.testing.assert_allclose(V[1], -sol.values, atol=1e-8)
    br0 = exact.best_response(model, sol.policies, 0).value
    br1 = exact.best_response(model, sol.policies, 1).value
    np.testing.assert_allclose(br0, sol.values, atol=1e-8)  # agent 0 cannot get more than V*
    np.testing.assert_allclose(-br1, sol.values, atol=1e-8)  # agent 1 cannot hold it below V*
    # fixed point: one more application moves nothing
    np.testing.assert_allclose(zerosum.shapley_operator(model, sol.values), sol.values, atol=1e-9)


def test_shapley_one_state_is_the_matrix_game_over_one_minus_gamma():
    M = np.array([[2.0, -1.0], [-1.0, 1.0]])
    R = np.stack([M.ravel(), -M.ravel()])[:, None]
    model = TabularModel(2, (2, 2), P=sp.csr_matrix(np.ones((4, 1))), R=R, mu=[1.0], gamma=0.5)
    sol = zerosum.shapley(model, tol=1e-12)
    assert sol.values[0] == pytest.approx(0.2 / 0.5, abs=1e-11)
    np.testing.assert_allclose(sol.policies[0], [[0.4, 0.6]], atol=1e-9)


def test_tug_of_war_needs_mixing_and_pure_maximin_is_below_the_value():
    model = tugofwar_v0.parallel_env().model()
    sol = zerosum.shapley(model, tol=1e-10)
    assert np.all((sol.policies[0] > 0.4) & (sol.policies[0] < 0.6))  # mixed in every position
    assert np.ptp(sol.policies[0][:, 0]) > 0.02  # and not the stage game's 0.4 everywhere
    assert np.all(np.diff(sol.values) > 0)  # positions towards agent 0's end are worth more to it
    assert np.all(pure_maximin_values(model) < sol.values - 10)
    assert exact.nash_gap(model, sol.policies).worst <= 1e-8


def test_zero_sum_checks_and_bad_input():
    coord = mpg_envs.coordination_v0.parallel_env(n_agents=2).model()
    tug = tugofwar_v0.parallel_env(n_positions=3).model()
    assert zerosum.is_zero_sum(tug) and not zerosum.is_zero_sum(coord)
    assert not zerosum.is_zero_sum(mpg_envs.coordination_v0.parallel_env(n_agents=3).model())
    with pytest.raises(ValueError, match=r"R\[1\] = -R\[0\]\), but \|r_0 \+ r_1\| = 6.0 in state 0"):
        zerosum.shapley(coord)
    with pytest.raises(ValueError, match="N=3 agents"):
        zerosum.shapley(mpg_envs.coordination_v0.parallel_env(n_agents=3).model())
    for kw, match in [
        (dict(tol=0), "tol must be a finite number > 0, got 0"),
        (dict(tol=float("nan")), "tol .* got nan"),
        (dict(max_iter=0), "max_iter must be a positive integer, got 0"),
        (dict(values=[0.0, 1.0]), r"values must have shape \(S,\) = \(3,\), got \(2,\)"),
        (dict(values=[0.0, np.inf, 1.0]), "values"),
    ]:
        with pytest.raises((ValueError, TypeError), match=match):
            zerosum.shapley(tug, **kw)
    with pytest.raises(TypeError, match="TabularModel"):
        zerosum.shapley("mpg/TugOfWar-v0")
    with pytest.warns(RuntimeWarning, match="max_iter=3"):
        assert not zerosum.shapley(tug, max_iter=3).converged


def test_tug_of_war_is_not_a_potential_game():
    """The MPG tools refuse it or find no potential; the Nash gap applies."""
    model = tugofwar_v0.parallel_env(n_positions=3).model()
    assert model.phi is None
    with pytest.raises(ValueError, match="no stage potential"):
        exact.potential_value(model, exact.uniform_policy(model))
    with pytest.raises(ValueError, match="positive optimal welfare"):
        exact.price_of_anarchy(model, exact.uniform_policy(model))
    assert exact.cycle_residual(model, 0, n_cycles=8).relative > 1e-3


def test_tug_of_war_env_arguments():
    d = tugofwar_v0.TugOfWarEnv(n_positions=3, position_reward=0.5).dynamics
    np.testing.assert_allclose(d.position_bonus, [-0.5, 0.0, 0.5])
    model = tugofwar_v0.parallel_env(n_positions=3, slip=0.0).model()
    # from the middle, matching coins go up, mismatching down
    P = model.P.toarray().reshape(3, 4, 3)
    np.testing.assert_array_equal(P[1], [[0, 0, 1], [1, 0, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_allclose(model.R[0, 1], [2, -1, -1, 1])
    for kw, match in [
        (dict(n_positions=1), r"n_positions must be an integer in \[2, 1001\].*got 1"),
        (dict(n_positions=2.0), "n_positions .* got 2.0"),
        (dict(slip=1.5), "slip must be a probability in \\[0, 1\\], got 1.5"),
        (dict(heads_bonus=float("inf")), "heads_bonus must be a finite number, got inf"),
        (dict(position_reward=None), "position_reward .*None"),
        (dict(gamma=1.0), "gamma = 1 gives infinite returns"),
        (dict(observation="own"), "observation must be one of"),
    ]:
        with pytest.raises((ValueError, TypeError), match=match):
            tugofwar_v0.parallel_env(**kw)


def test_shapley_tol_below_round_off_terminates():
    """tol = 1e-300 cannot be met in float64: the iteration stops at the round-off floor (with a
    warning) or at an exact float fixed point, never running to max_iter."""
    import warnings

    model = zero_sum_game(np.random.default_rng(4), n_states=4, sizes=(3, 4), gamma=0.9)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sol = zerosum.shapley(model, tol=1e-300)
    assert sol.iterations < 1000 and sol.error_bound < 1e-11
    assert sol.converged or any("round-off floor" in str(w.message) for w in caught)
