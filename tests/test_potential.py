"""The potential certificate, measured (DESIGN §3: check, do not assume).

Pinned numbers are what the checks report with ``np.random.default_rng(0)`` and 32 samples; the
env docstring and README quote them.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import random_game

from mpg_envs import congestion_v0, exact


def _certs(env, obs_map=None, n=32):
    m = env.model()
    c = exact.cycle_residual(m, np.random.default_rng(0), n_cycles=n, obs_map=obs_map)
    p = exact.potential_residual(m, np.random.default_rng(0), n_samples=n, obs_map=obs_map)
    return c, p


@pytest.mark.parametrize("kw", [{}, {"slip": 0.3, "load": "vertex"}, {"at_sink": "terminate", "gamma": 1.0}])
def test_two_agent_congestion_is_an_mpg(kw):
    c, p = _certs(congestion_v0.parallel_env(n_agents=2, **kw))
    assert c.max_residual <= 1e-10 and p.max_residual <= 1e-10
    assert c.scale > 1.0  # the values themselves are not tiny


def test_identical_interest_game_is_an_mpg():
    m = random_game(np.random.default_rng(0), n_states=5, action_sizes=(2, 3, 2), gamma=0.9, identical=True)
    c = exact.cycle_residual(m, np.random.default_rng(1))
    p = exact.potential_residual(m, np.random.default_rng(1))
    assert c.max_residual <= 1e-12 and p.max_residual <= 1e-12


def test_random_general_sum_game_fails_both_checks():
    """The checks can fail: a random general-sum game has no potential."""
    m = random_game(np.random.default_rng(0), n_states=3, action_sizes=(2, 2), gamma=0.9)
    assert exact.cycle_residual(m, np.random.default_rng(1)).relative > 1e-2
    m_phi = random_game(np.random.default_rng(0), n_states=3, action_sizes=(2, 2), gamma=0.9, identical=True)
    R = m_phi.R.copy()
    R[1] += np.random.default_rng(2).normal(size=R[1].shape)  # break identical interest
    from mpg_envs.model import TabularModel

    broken = TabularModel(2, (2, 2), m_phi.P, R, m_phi.mu, 0.9, phi=m_phi.phi)
    assert exact.potential_residual(broken, np.random.default_rng(1)).relative > 1e-2


@pytest.mark.parametrize(
    "n_agents, cycle, potential",
    [(3, 49.99747487500624, 24.99873743750316), (4, 49.91372701089401, 33.33164991001587)],
)
def test_global_state_congestion_is_not_an_mpg_for_n_ge_3(n_agents, cycle, potential):
    """Measured: with policies on the global state, 4-cycles sum to ~2/3 of the value scale."""
    c, p = _certs(congestion_v0.parallel_env(n_agents=n_agents))
    assert c.max_residual == pytest.approx(cycle, rel=1e-6)
    assert p.max_residual == pytest.approx(potential, rel=1e-6)
    assert c.relative > 0.5


def test_finite_horizon_three_agents_cycle_sum_is_exactly_two():
    """gamma = 1, terminate: values are sums of 1/load, the worst sampled 4-cycle sums to 2."""
    c, p = _certs(congestion_v0.parallel_env(n_agents=3, at_sink="terminate", gamma=1.0))
    assert c.max_residual == pytest.approx(2.0, abs=1e-12)
    assert p.max_residual == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    "kw", [{"n_agents": 3}, {"n_agents": 5}, {"n_agents": 4, "slip": 0.3, "load": "vertex"}]
)
def test_own_position_policies_make_it_an_mpg(kw):
    """Policies that see only their own vertex: Rosenthal's potential works for every N."""
    env = congestion_v0.parallel_env(**kw)
    c, p = _certs(env, obs_map=env.observation_index("own"))
    assert c.max_residual <= 1e-10 and p.max_residual <= 1e-10


@pytest.mark.parametrize("n_agents, cycle", [(3, 97.52980049999988), (4, 86.36080099274176)])
def test_authors_code_congestion_game_is_not_an_mpg_for_global_state_policies(n_agents, cycle):
    """The game of paper 001's code (graph='ring', one layer, vertex loads) fails like the DAG;
    with own-unit policies it is an MPG."""
    from mpg_envs.congestion.env import AUTHORS_CODE_GAME

    env = congestion_v0.parallel_env(n_agents=n_agents, **AUTHORS_CODE_GAME)
    c, _ = _certs(env)
    assert c.max_residual == pytest.approx(cycle, rel=1e-6) and c.relative > 0.5
    c, p = _certs(env, obs_map=env.observation_index("own"))
    assert c.max_residual <= 1e-10 and p.max_residual <= 1e-10
    c2, p2 = _certs(congestion_v0.parallel_env(n_agents=2, **AUTHORS_CODE_GAME))
    assert c2.max_residual <= 1e-10 and p2.max_residual <= 1e-10  # N = 2: an MPG
