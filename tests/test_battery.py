"""The same battery for every registered environment (a new env in ``mpg_envs.ENV_IDS`` gets it
for free): PettingZoo API, AEC, max_cycles, render, multi-step determinism, simulator vs model,
exact vs Monte Carlo, gradient vs finite differences, Nash gap at a verified equilibrium, bad input.

``SMALL`` gives each env a configuration small enough for brute-force checks; an env missing from
it is tested with its defaults.
"""

from __future__ import annotations

import importlib

import numpy as np
import pettingzoo
import pytest
from helpers import (
    assert_deterministic,
    assert_public_step_matches_model,
    assert_simulator_matches_model,
    mc_returns,
)
from pettingzoo.test import api_test, max_cycles_test, parallel_api_test, render_test

import mpg_envs
from mpg_envs import exact, zerosum

SMALL = {
    "mpg/Congestion-v0": {"n_agents": 3, "slip": 0.3, "gamma": 0.9},
    "mpg/MultiTaskGridWorld-v0": {
        "layout": "chain_slip",
        "chain_p": 0.7,
        "gamma": 0.9,
        "observation": "state",
    },
    "mpg/Distancing-v0": {"n_agents": 3, "gamma": 0.9},
    "mpg/Coordination-v0": {"n_agents": 3, "gamma": 0.9},
    "mpg/TugOfWar-v0": {"n_positions": 4, "slip": 0.2, "gamma": 0.8},
}
IDS = sorted(mpg_envs.ENV_IDS)


def make(env_id: str, **kw):
    return pettingzoo.make("parallel", env_id, **{**SMALL.get(env_id, {}), **kw})


def module(env_id: str):
    return importlib.import_module(mpg_envs.ENV_IDS[env_id])


@pytest.fixture(scope="module", params=IDS)
def env_id(request):
    return request.param


@pytest.fixture(scope="module")
def model(env_id):
    return make(env_id).unwrapped.model()


def test_pettingzoo_api(env_id):
    parallel_api_test(make(env_id), num_cycles=150)
    api_test(pettingzoo.make("aec", env_id, **SMALL.get(env_id, {})), num_cycles=150)
    parallel_api_test(make(env_id, observation="vector"), num_cycles=50)


def test_max_cycles_and_render(env_id):
    max_cycles_test(module(env_id))
    render_test(module(env_id).env)
    env = make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.std() > 0
    env = make(env_id, render_mode="ansi")
    env.reset(seed=0)
    assert isinstance(env.render(), str) and env.render()


def test_determinism(env_id):
    """Same seeds, same 250-step trajectory (PettingZoo's own seed test checks only one step)."""
    assert_deterministic(lambda: make(env_id, max_cycles=40), steps=250)


def test_simulator_matches_model(env_id, model):
    rows = np.random.default_rng(0).choice(model.P.shape[0], size=min(model.P.shape[0], 300), replace=False)
    assert_simulator_matches_model(make(env_id).unwrapped.dynamics, model, rows=rows, seed=1)


def test_public_step_matches_model(env_id, model):
    """Reset to a state and step through the PettingZoo API: frequencies vs P, rewards vs R."""
    assert_public_step_matches_model(make(env_id), model)


def test_exact_values_match_monte_carlo(env_id, model):
    dyn = make(env_id).unwrapped.dynamics
    rng = np.random.default_rng(2)
    pol = exact.random_policy(model, rng)
    horizon = int(np.ceil(np.log(1e-6) / np.log(model.gamma))) if model.gamma < 1 else 500
    G = mc_returns(dyn, pol, model.gamma, n_episodes=10_000, horizon=horizon, rng=rng)
    V = exact.evaluate(model, pol) @ model.mu
    scale = np.abs(model.R).max() / (1 - model.gamma) if model.gamma < 1 else 0.0
    assert np.all(np.abs(G.mean(axis=0) - V) <= 4.5 * G.std(axis=0) / np.sqrt(len(G)) + 1e-6 * scale + 1e-12)


def test_policy_gradient_matches_finite_differences(model):
    rng = np.random.default_rng(3)
    logits = [rng.normal(size=(model.n_states, k)) for k in model.action_sizes]
    grads = exact.policy_gradient(model, exact.softmax_policy(logits))
    value_scale = np.abs(model.R).max() / (1 - model.gamma)
    h = 1e-4  # solve round-off (~1e-14 |V|) / h and truncation (~h^2 |V|) both stay below the bound
    for i in range(model.n_agents):
        idx = [tuple(x) for x in rng.integers(0, [model.n_states, model.action_sizes[i]], size=(12, 2))]
        for s, a in idx:
            vals = []
            for sgn in (1, -1):
                th = [t.copy() for t in logits]
                th[i][s, a] += sgn * h
                vals.append(exact.evaluate(model, exact.softmax_policy(th))[i] @ model.mu)
            fd = (vals[0] - vals[1]) / (2 * h)
            assert grads[i][s, a] == pytest.approx(fd, rel=1e-6, abs=1e-8 * value_scale + 1e-9)


def test_nash_gap_zero_at_best_response_equilibrium(model):
    """A pure equilibrium found by best-response dynamics in the potential games; in a zero-sum
    game (matching pennies has no pure equilibrium, best responses cycle) the minimax policies of
    Shapley's value iteration, verified by the exact Nash gap."""
    rng = np.random.default_rng(4)
    if zerosum.is_zero_sum(model):
        sol = zerosum.shapley(model, tol=1e-11)
        gap = exact.nash_gap(model, sol.policies)
        assert gap.worst <= 1e-9
        np.testing.assert_allclose(exact.evaluate(model, sol.policies)[0], sol.values, atol=1e-9)
        assert exact.nash_gap(model, exact.random_policy(model, rng)).worst > 1e-6
        return
    pol = exact.random_policy(model, rng, deterministic=True)
    for _ in range(100):
        moved = False
        for i in range(model.n_agents):
            br = exact.best_response(model, pol, i)
            if np.any(br.value - exact.evaluate(model, pol)[i] > 1e-10):
                pol[i], moved = br.policy, True
        if not moved:
            break
    else:
        pytest.fail("best-response dynamics did not converge in 100 rounds")
    gap = exact.nash_gap(model, pol)
    assert gap.worst <= 1e-9 and np.all(gap.per_state >= -1e-9)
    assert exact.nash_gap(model, exact.random_policy(model, rng)).worst > 1e-6


def test_observations_come_from_the_dynamics(env_id):
    """Every supported observation mode: the env's spaces are the dynamics' spaces, and over 300
    random steps (with resets) each live agent's observation is its row of
    ``dynamics.observe(state, mode)``, of the same dtype, inside its space; over every model state
    ``observe`` has the documented shapes and dtypes, and for "state"/"own" it is the transpose of
    ``observation_index``."""
    dyn = make(env_id).unwrapped.dynamics
    assert set(dyn.observation_modes) >= {"state", "vector", "onehot"}
    for mode in dyn.observation_modes:
        env = make(env_id, observation=mode, max_cycles=25)
        u = env.unwrapped
        for a in env.possible_agents:
            assert env.observation_space(a) is env.observation_space(a)
            assert env.observation_space(a) == dyn.observation_space(mode)
            assert env.observation_space(a).shape == dyn.observation_shape(mode)
        rng = np.random.default_rng(5)
        obs, _ = env.reset(seed=5)
        seen = set()
        for _ in range(300):
            state = dyn.decode(np.array([u.state_index()]))
            want = dyn.observe(state, mode)[0]
            assert set(obs) <= set(env.possible_agents) and obs
            for a, o in obs.items():
                i = env.possible_agents.index(a)
                assert np.asarray(o).dtype == want.dtype and np.array_equal(o, want[i]), (mode, a, o, want[i])
                assert env.observation_space(a).contains(o), (mode, a, o)
            seen.add(u.state_index())
            if not env.agents:
                obs, _ = env.reset()
                continue
            obs, *_ = env.step({a: int(rng.integers(env.action_space(a).n)) for a in env.agents})
        assert len(seen) > 1
        states = dyn.states()
        S, N = len(states), dyn.n_agents
        all_obs = dyn.observe(states, mode)
        assert all_obs.shape == (S, N, *dyn.observation_shape(mode))
        assert all_obs.dtype == (np.int64 if mode in ("state", "own") else np.float32)
        if mode in ("state", "own"):
            np.testing.assert_array_equal(all_obs, u.observation_index(mode).T)
        if mode == "state":
            np.testing.assert_array_equal(all_obs, np.repeat(np.arange(S)[:, None], N, axis=1))
        if mode == "onehot":
            np.testing.assert_array_equal(
                all_obs, np.broadcast_to(np.eye(S, dtype=np.float32)[:, None], (S, N, S))
            )
        if mode == "vector":
            np.testing.assert_array_equal(all_obs[:, :, :N], np.broadcast_to(np.eye(N), (S, N, N)))
            np.testing.assert_array_equal(
                all_obs[:, :, N:],
                np.broadcast_to(u.state_features(states)[:, None], (S, N, all_obs.shape[2] - N)),
            )
        box = dyn.observation_space(mode)
        assert all(
            box.contains(x)
            for x in all_obs.reshape(S * N, *dyn.observation_shape(mode))[:: max(1, S * N // 500)]
        )
        parallel_api_test(make(env_id, observation=mode), num_cycles=30)


def test_bad_input(env_id):
    env = make(env_id, max_cycles=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({a: 0 for a in env.possible_agents})
    env.reset(seed=0)
    agents = list(env.agents)
    with pytest.raises(ValueError, match="missing"):
        env.step({a: 0 for a in agents[1:]})
    with pytest.raises(ValueError, match="unknown"):
        env.step({**{a: 0 for a in agents}, "intruder": 0})
    with pytest.raises(ValueError, match="must be in"):
        env.step({**{a: 0 for a in agents}, agents[0]: 99})
    with pytest.raises(TypeError, match="integer"):
        env.step({**{a: 0 for a in agents}, agents[0]: float("nan")})
    with pytest.raises(ValueError, match="observation must be one of"):
        make(env_id, observation="pixels")
    with pytest.raises(ValueError, match="render_mode"):
        make(env_id, render_mode="video")
    for _ in range(2):
        if env.agents:
            env.step({a: 0 for a in env.agents})
    assert env.agents == []
    with pytest.raises(RuntimeError, match="episode ended"):
        env.step({a: 0 for a in agents})


def test_versioned_module_is_a_package_attribute_documenting_the_env(env_id):
    """``help(mpg_envs.distancing_v0)`` works after ``import mpg_envs`` and shows the env's docs."""
    mod = module(env_id)
    assert getattr(mpg_envs, mod.__name__.rsplit(".", 1)[1]) is mod
    assert "Version history" in mod.__doc__ and "Arguments" in mod.__doc__


def test_entry_points_follow_pettingzoo_conventions(env_id):
    """``raw_env``: the unwrapped AEC env; ``env``: AEC with order enforcement; ``parallel_env``."""
    from pettingzoo import AECEnv, ParallelEnv
    from pettingzoo.utils import BaseWrapper

    mod = module(env_id)
    kw = SMALL.get(env_id, {})
    raw = mod.raw_env(**kw)
    assert isinstance(raw, AECEnv) and not isinstance(raw, BaseWrapper)
    assert isinstance(mod.env(**kw), BaseWrapper) and isinstance(mod.parallel_env(**kw), ParallelEnv)
    raw.reset(seed=0)
    assert raw.agent_selection == raw.possible_agents[0]
