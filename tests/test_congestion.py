"""mpg/Congestion-v0: PettingZoo API, determinism, simulator vs exact model, bad input."""

from __future__ import annotations

import numpy as np
import pettingzoo
import pytest
from helpers import assert_deterministic, assert_simulator_matches_model
from pettingzoo.test import api_test, parallel_api_test

import mpg_envs
from mpg_envs import congestion_v0, exact
from mpg_envs.model import ModelTooLargeError

CONFIGS = [
    {},
    {"observation": "vector", "n_agents": 3},
    {"observation": "own", "load": "vertex", "slip": 0.3},
    {"at_sink": "terminate", "gamma": 1.0, "n_layers": 3, "width": 3, "n_agents": 2},
    {"graph": "ring", "n_layers": 1, "load": "vertex", "n_agents": 4},
    {"graph": "ring", "n_layers": 3, "width": 3, "n_agents": 2, "slip": 0.2, "observation": "own"},
]


def test_registered_and_make():
    assert "mpg/Congestion-v0" in pettingzoo.parallel_registry
    env = pettingzoo.make("parallel", "mpg/Congestion-v0", n_agents=4)
    assert env.metadata["name"] == "congestion_v0"
    obs, infos = env.reset(seed=0)
    assert set(obs) == {f"agent_{i}" for i in range(4)}
    aec = pettingzoo.make("aec", "mpg/Congestion-v0", n_agents=2)
    aec.reset(seed=0)
    assert aec.agent_selection == "agent_0"
    assert mpg_envs.ENV_IDS["mpg/Congestion-v0"] == "mpg_envs.congestion_v0"


@pytest.mark.parametrize("cfg", CONFIGS)
def test_pettingzoo_api(cfg):
    parallel_api_test(congestion_v0.parallel_env(**cfg), num_cycles=200)
    api_test(congestion_v0.env(**cfg), num_cycles=200)


def test_render_outputs():
    env = congestion_v0.parallel_env(n_agents=3, render_mode="rgb_array")
    env.reset(seed=0)
    before = env.render()
    env.step({a: 1 for a in env.agents})
    after = env.render()
    assert before.dtype == np.uint8 and before.ndim == 3 and before.shape[2] == 3
    assert not np.array_equal(before, after)  # agents moved, loads drawn
    txt = congestion_v0.parallel_env(n_agents=3, render_mode="ansi")
    txt.reset(seed=0)
    txt.step({"agent_0": 0, "agent_1": 0, "agent_2": 1})
    out = txt.render()
    assert "load 2" in out and "load 1" in out and "v1.0[0,1]" in out


@pytest.mark.parametrize("cfg", [{"slip": 0.4, "n_agents": 5}, {"slip": 0.2, "observation": "vector"}])
def test_determinism_over_many_steps(cfg):
    assert_deterministic(lambda: congestion_v0.parallel_env(**cfg), steps=300)


def test_state_count_and_indexing():
    for n, layers, width in [(1, 2, 2), (4, 2, 2), (8, 2, 2), (3, 3, 3)]:
        env = congestion_v0.parallel_env(n_agents=n, n_layers=layers, width=width)
        dyn = env.dynamics
        assert dyn.n_states == 2 + layers * width**n
        st = dyn.states()
        assert len(np.unique(st, axis=0)) == dyn.n_states
        np.testing.assert_array_equal(dyn.index(st), np.arange(dyn.n_states))
    assert congestion_v0.parallel_env(n_agents=8).dynamics.n_states == 514
    # states not in lock-step are not states of the model
    dyn = congestion_v0.parallel_env(n_agents=2).dynamics
    assert dyn.index(np.array([[0, 1], [1, 5], [99, 0]])).tolist() == [-1, -1, -1]


def test_model_matches_sampled_dynamics():
    """Empirical next-state frequencies and rewards of the simulator's step vs P and R, all (s, a)."""
    env = congestion_v0.parallel_env(n_agents=3, slip=0.35, load="vertex")
    _, P = assert_simulator_matches_model(env.dynamics, env.model(), n=4000)
    assert (P > 0).sum(axis=1).max() == 8  # slip really makes it stochastic (2^3 outcomes)


def test_ring_state_count_indexing_and_uniform_mu():
    for n, layers, width in [(1, 1, 2), (4, 1, 2), (3, 3, 2), (2, 2, 3)]:
        env = congestion_v0.parallel_env(n_agents=n, n_layers=layers, width=width, graph="ring")
        dyn, m = env.dynamics, env.model()
        assert dyn.n_states == layers * width**n == m.n_states
        st = dyn.states()
        np.testing.assert_array_equal(dyn.index(st), np.arange(dyn.n_states))
        np.testing.assert_allclose(m.mu, 1.0 / dyn.n_states)
        draws = dyn.index(dyn.sample_initial(40_000, np.random.default_rng(0)))
        freq = np.bincount(draws, minlength=dyn.n_states) / len(draws)
        assert np.abs(freq - m.mu).max() < 5 * np.sqrt(m.mu.max() / len(draws))  # 5 sigma


def test_ring_model_matches_sampled_dynamics():
    env = congestion_v0.parallel_env(n_agents=3, n_layers=2, graph="ring", slip=0.3)
    _, P = assert_simulator_matches_model(env.dynamics, env.model(), n=3000)
    assert (P > 0).sum(axis=1).max() == 8


def test_authors_code_game_rewards_and_transitions():
    """The game of npg_routing.py: next state = the units chosen, reward 1 / (agents on my unit)."""
    from mpg_envs.congestion.env import AUTHORS_CODE_GAME

    N = 4
    m = congestion_v0.parallel_env(n_agents=N, **AUTHORS_CODE_GAME).model()
    assert m.n_states == 2**N and m.action_sizes == (2,) * N
    joint = np.array(np.unravel_index(np.arange(2**N), (2,) * N)).T  # (A, N)
    counts = (joint[:, :, None] == joint[:, None, :]).sum(axis=2)  # agents on the same unit
    for s in (0, 5, 15):
        np.testing.assert_allclose(m.R[:, s, :], (1.0 / counts).T)  # independent of the state
        nxt = m.P[s * m.n_joint_actions : (s + 1) * m.n_joint_actions].toarray().argmax(axis=1)
        np.testing.assert_array_equal(m.states[nxt], joint)  # the state is where everybody went
    gap = exact.nash_gap(m, exact.uniform_policy(m))
    assert gap.worst < 1e-9  # uniform play is an exact equilibrium, as in the DAG


def test_reset_to_state_descriptor_and_infos():
    env = congestion_v0.parallel_env(n_agents=2)
    obs, info = env.reset(options={"state": np.array([3, 4])})
    assert info["agent_0"]["vertex"] == 3 and info["agent_1"]["vertex"] == 4
    assert obs["agent_0"] == env.model().state_index([3, 4])
    _, rew, *_, info = env.step({"agent_0": 0, "agent_1": 0})
    assert info["agent_0"]["vertex"] == env.dynamics.sink
    assert info["agent_0"]["load"] == 1 and rew["agent_0"] == 1.0
    assert set(info["agent_0"]) == {"state", "vertex", "load"}


def test_terminate_mode_ends_at_sink():
    env = congestion_v0.parallel_env(n_agents=3, at_sink="terminate", n_layers=2)
    env.reset(seed=0)
    for _t in range(3):
        _, _, term, trunc, _ = env.step({a: 0 for a in env.agents})
    assert all(term.values()) and not any(trunc.values()) and env.agents == []
    assert env.model().terminal.sum() == 1


def test_rewards_closed_form():
    """Everybody on the same edges: each step pays f(N) = 1/N; restart pays restart_reward."""
    env = congestion_v0.parallel_env(n_agents=4, restart_reward=0.25, max_cycles=8)
    env.reset(seed=0)
    got = [env.step({a: 1 for a in env.agents})[1]["agent_2"] for _ in range(8)]
    assert got == [0.25, 0.25, 0.25, 0.25] * 2


def test_custom_reward_and_potential():
    env = congestion_v0.parallel_env(n_agents=3, reward=[3.0, 1.0, -1.0])
    m = env.model()
    s0 = 0
    j = m.joint_index([0, 0, 1])
    assert m.R[:, s0, j].tolist() == [1.0, 1.0, 3.0]
    assert m.phi[s0, j] == (3.0 + 1.0) + 3.0  # Rosenthal: F(2) on one edge + F(1) on the other
    env2 = congestion_v0.parallel_env(n_agents=2, reward=lambda l: 2.0 / l)
    assert env2.model().R[0, 0, 0] == 1.0


# ----------------------------------------------------------------------------------- bad input
def _env(**kw):
    env = congestion_v0.parallel_env(n_agents=2, **kw)
    env.reset(seed=0)
    return env


@pytest.mark.parametrize(
    "actions, exc, match",
    [
        ({"agent_0": 0}, ValueError, r"missing \['agent_1'\]"),
        ({"agent_0": 0, "agent_1": 0, "agent_7": 1}, ValueError, r"unknown \['agent_7'\]"),
        ({"agent_0": 0, "bob": 0}, ValueError, "unknown"),
        ({"agent_0": 2, "agent_1": 0}, ValueError, r"agent_0 must be in \[0, 2\), got 2"),
        ({"agent_0": -1, "agent_1": 0}, ValueError, "agent_0 must be in"),
        ({"agent_0": float("nan"), "agent_1": 0}, TypeError, "agent_0 must be an integer"),
        ({"agent_0": 1.0, "agent_1": 0}, TypeError, "float"),
        ({"agent_0": "1", "agent_1": 0}, TypeError, "str"),
        ({"agent_0": True, "agent_1": 0}, TypeError, "bool"),
        ([0, 1], TypeError, "must be a dict"),
    ],
)
def test_bad_actions(actions, exc, match):
    with pytest.raises(exc, match=match):
        _env().step(actions)


def test_numpy_integer_actions_accepted():
    env = _env()
    env.step({"agent_0": np.int32(1), "agent_1": np.array(0)})


def test_step_after_end_and_before_reset():
    env = congestion_v0.parallel_env(n_agents=2, max_cycles=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"agent_0": 0, "agent_1": 0})
    env.reset(seed=0)
    env.step({"agent_0": 0, "agent_1": 0})
    env.step({"agent_0": 0, "agent_1": 0})
    assert env.agents == []
    with pytest.raises(RuntimeError, match="episode ended"):
        env.step({"agent_0": 0, "agent_1": 0})


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"n_agents": 0}, "n_agents must be a positive integer"),
        ({"n_agents": -2}, "n_agents must be a positive integer"),
        ({"n_agents": 2.5}, "n_agents must be a positive integer"),
        ({"width": 0}, "width"),
        ({"n_layers": 0}, "n_layers"),
        ({"slip": 1.5}, r"slip must be a probability in \[0, 1\]"),
        ({"slip": -0.1}, "slip"),
        ({"slip": float("nan")}, "slip"),
        ({"gamma": 1.0}, "gamma = 1 with graph='dag', at_sink='restart'"),
        ({"gamma": 1.0, "graph": "ring", "at_sink": "restart"}, "gamma = 1 with graph='ring'"),
        ({"graph": "cycle"}, r"graph must be one of \['dag', 'ring'\], got 'cycle'"),
        ({"graph": "ring", "at_sink": "terminate"}, "graph='ring' has no sink"),
        ({"graph": "ring", "restart_reward": 1.0}, "graph='ring' has no sink"),
        ({"width": 10**5, "n_agents": 1}, "10,000,200,001 edges, over the limit"),
        ({"n_layers": 10**7, "n_agents": 1}, "40,000,001 edges, over the limit"),
        ({"gamma": 0.0}, "gamma must be in"),
        ({"load": "node"}, "load must be"),
        ({"at_sink": "loop"}, "at_sink must be"),
        ({"reward": [1.0]}, "reward must give a finite f"),
        ({"reward": "square"}, "reward must be"),
        ({"observation": "pixels"}, "observation must be one of"),
        ({"render_mode": "video"}, "render_mode must be"),
        ({"max_cycles": 0}, "max_cycles"),
    ],
)
def test_bad_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        congestion_v0.parallel_env(**kw)


def test_bad_reset_state():
    env = congestion_v0.parallel_env(n_agents=2)
    with pytest.raises(ValueError, match=r"state index in \[0, 10\)"):
        env.reset(options={"state": 10})
    with pytest.raises(ValueError, match="not a state"):
        env.reset(options={"state": np.array([0, 1])})
    with pytest.raises(ValueError, match="descriptor"):
        env.reset(options={"state": "s"})


def test_model_too_large_is_refused_before_allocation():
    env = congestion_v0.parallel_env(n_agents=14)  # S = 32,770, A = 16,384
    with pytest.raises(ModelTooLargeError, match=r"S=32,770 states x A=16,384 joint actions"):
        env.model()
    small = congestion_v0.parallel_env(n_agents=3).model(max_transitions=10_000)
    assert small.n_states == 18
    with pytest.raises(ModelTooLargeError, match="max_transitions=100"):
        congestion_v0.parallel_env(n_agents=3).model(max_transitions=100)


def test_huge_env_still_simulates():
    """The simulator does not need the model: 30 agents step fine (2 + 2 * 2^30 states)."""
    env = congestion_v0.parallel_env(n_agents=30)
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step({a: 1 for a in env.agents})
    assert 0 < obs["agent_0"] < env.dynamics.n_states
