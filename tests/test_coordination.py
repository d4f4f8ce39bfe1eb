"""mpg/Coordination-v0 (paper 003 §5, App. G): API, determinism, model vs simulator, exact analysis,
reward table, potential certificate, INPG, bad input."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
from helpers import assert_deterministic, assert_simulator_matches_model, mc_returns, value_by_iteration
from pettingzoo.test import api_test, parallel_api_test

from mpg_envs import coordination_v0, exact
from mpg_envs.coordination.dynamics import reward_table
from mpg_envs.core import build_model
from mpg_envs.model import ModelTooLargeError

# Algorithm 1 of paper 003 (App. G.1), worked out by hand for every count c0 of agents in local
# state 0 (c1 = N - c0; bound b = 1 for N in {2, 3}, b = 2 otherwise):
#   N = 2, b = 1: c0=0 (|0-2|=2 > 1, c1 > c0) -> 2; c0=1 (|1-1|=0 <= 1, c0 >= c1) -> 0;
#                 c0=2 (|2-0|=2 > 1, c0 > c1) -> 3.
#   N = 3, b = 1: c0=0 (3 > 1, c1 > c0) -> 2; c0=1 (|1-2|=1 <= 1, c0 < c1) -> 1;
#                 c0=2 (|2-1|=1 <= 1, c0 >= c1) -> 0; c0=3 (3 > 1, c0 > c1) -> 3.
#   N = 5, b = 2: c0=0 (5 > 2, c1 > c0) -> 2; c0=1 (|1-4|=3 > 2, c1 > c0) -> 2;
#                 c0=2 (|2-3|=1 <= 2, c0 < c1) -> 1; c0=3 (|3-2|=1 <= 2, c0 >= c1) -> 0;
#                 c0=4 (|4-1|=3 > 2, c0 > c1) -> 3; c0=5 (5 > 2, c0 > c1) -> 3.
# For odd N the differences |c0 - c1| are odd, so b = 1 and b = 2 give the same table; the bound
# only matters for even N >= 4, hence also:
#   N = 4, b = 2: c0=0 (4 > 2) -> 2; c0=1 (|1-3|=2 <= 2, c0 < c1) -> 1; c0=2 (0 <= 2, c0 >= c1) -> 0;
#                 c0=3 (|3-1|=2 <= 2, c0 >= c1) -> 0; c0=4 (4 > 2, c0 > c1) -> 3.
#   N = 8, b = 2: c0=0,1,2 (|c0-c1| = 8, 6, 4 > 2, c1 > c0) -> 2; c0=3 (|3-5|=2, c0 < c1) -> 1;
#                 c0=4 (0, c0 >= c1) -> 0; c0=5 (|5-3|=2, c0 >= c1) -> 0; c0=6,7,8 (4, 6, 8 > 2) -> 3.
HAND_REWARDS = {
    2: [2.0, 0.0, 3.0],
    3: [2.0, 1.0, 0.0, 3.0],
    4: [2.0, 1.0, 0.0, 0.0, 3.0],
    5: [2.0, 2.0, 1.0, 0.0, 3.0, 3.0],
    8: [2.0, 2.0, 2.0, 1.0, 0.0, 0.0, 3.0, 3.0, 3.0],
}

CONFIGS = [
    {},
    {"observation": "vector", "n_agents": 5},
    {"observation": "own", "eps": 0.3, "n_agents": 2},
    {"eps": 0.0, "n_agents": 4, "max_cycles": 7},
]


def _model(n_agents: int = 3, **kw):
    return coordination_v0.parallel_env(n_agents=n_agents, **kw).model()


# ----------------------------------------------------------------------------------- PettingZoo API
@pytest.mark.parametrize("cfg", CONFIGS)
def test_pettingzoo_api(cfg):
    parallel_api_test(coordination_v0.parallel_env(**cfg), num_cycles=200)
    api_test(coordination_v0.env(**cfg), num_cycles=200)


def test_metadata_and_spaces():
    env = coordination_v0.parallel_env(n_agents=4)
    assert env.metadata["name"] == "coordination_v0" and env.metadata["is_parallelizable"]
    assert env.possible_agents == ["agent_0", "agent_1", "agent_2", "agent_3"]
    assert env.observation_space("agent_1").n == 16 and env.action_space("agent_1").n == 2
    assert env.observation_space("agent_1") is env.observation_space("agent_1")  # cached
    assert env.state_space.shape == (4,)
    assert coordination_v0.parallel_env(observation="vector").observation_space("agent_0").shape == (6,)
    assert coordination_v0.parallel_env(observation="own").observation_space("agent_0").n == 2
    assert env.max_cycles == 100 and env.gamma == 0.95


def test_render_outputs():
    env = coordination_v0.parallel_env(n_agents=3, render_mode="rgb_array")
    env.reset(options={"state": 0b101})
    before = env.render()
    env.step({a: 0 for a in env.agents})
    after = env.render()
    assert before.dtype == np.uint8 and before.ndim == 3 and before.shape[2] == 3
    assert not np.array_equal(before, after)
    txt = coordination_v0.parallel_env(n_agents=3, render_mode="ansi")
    txt.reset(options={"state": 0b101})
    out = txt.render()
    assert "state 5 = 101" in out and "#0 = 1  #1 = 2" in out and "r(s) = 1" in out
    txt.step({"agent_0": 0, "agent_1": 1, "agent_2": 0})
    out = txt.render()
    assert "last actions  0:0 1:1 2:0  last reward 1" in out


# ----------------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("cfg", [{"n_agents": 5, "max_cycles": 37}, {"eps": 0.4, "observation": "vector"}])
def test_determinism_over_many_steps(cfg):
    assert_deterministic(lambda: coordination_v0.parallel_env(**cfg), steps=300)


# ----------------------------------------------------------------------------------- states, obs, infos
def test_state_indexing_agent_0_most_significant():
    for n in (2, 3, 5, 8):
        dyn = coordination_v0.parallel_env(n_agents=n).dynamics
        st = dyn.states()
        assert st.shape == (2**n, n)
        np.testing.assert_array_equal(dyn.index(st), np.arange(2**n))
        np.testing.assert_array_equal(dyn.index(st), np.ravel_multi_index(tuple(st.T), (2,) * n))
    dyn = coordination_v0.parallel_env(n_agents=3).dynamics
    idx = dyn.index(np.array([[1, 0, 1], [0, 0, 1], [1, 0, 0], [2, 0, 0], [0, -1, 0]]))
    assert idx.tolist() == [5, 1, 4, -1, -1]
    m = _model(3)
    assert m.state_index([1, 0, 0]) == 4
    assert m.joint_index([1, 0, 0]) == 4


def test_observation_modes_and_infos():
    env = coordination_v0.parallel_env(n_agents=3, observation="vector")
    obs, info = env.reset(options={"state": np.array([1, 0, 1])})
    np.testing.assert_array_equal(obs["agent_1"], np.array([0, 1, 0, 1, 0, 1], np.float32))
    assert obs["agent_1"].dtype == np.float32
    np.testing.assert_array_equal(env.state(), np.array([1, 0, 1], np.float32))
    assert info["agent_0"] == {"state": 5, "local_state": 1, "n_zeros": 1, "team_reward": 0.0}
    assert info["agent_1"]["local_state"] == 0
    own = coordination_v0.parallel_env(n_agents=3, observation="own")
    obs, _ = own.reset(options={"state": 5})
    assert [int(obs[a]) for a in own.agents] == [1, 0, 1]
    np.testing.assert_array_equal(own.observation_index("own"), own.dynamics.states().T)
    np.testing.assert_array_equal(own.observation_index("state")[2], np.arange(8))


def test_reward_is_paid_for_the_state_the_agents_act_in():
    """eps = 0: actions set the next state exactly; the step pays r(current state)."""
    env = coordination_v0.parallel_env(n_agents=3, eps=0.0)
    env.reset(options={"state": 0b000})  # c0 = 3 -> 3
    _, rew, _, _, info = env.step({"agent_0": 1, "agent_1": 1, "agent_2": 0})
    assert rew == {"agent_0": 3.0, "agent_1": 3.0, "agent_2": 3.0}
    assert info["agent_2"] == {"state": 0b110, "local_state": 0, "n_zeros": 1, "team_reward": 3.0}
    _, rew, *_ = env.step({"agent_0": 1, "agent_1": 1, "agent_2": 1})  # paid for 110: c0 = 1 -> 1
    assert rew["agent_0"] == 1.0 and env.state_index() == 0b111
    _, rew, *_ = env.step({a: 0 for a in env.agents})  # paid for 111: c0 = 0 -> 2
    assert rew["agent_1"] == 2.0 and env.state_index() == 0


def test_eps_one_flips_every_action():
    env = coordination_v0.parallel_env(n_agents=4, eps=1.0)
    env.reset(seed=0)
    env.step({"agent_0": 0, "agent_1": 1, "agent_2": 1, "agent_3": 0})
    assert env.dynamics.states()[env.state_index()].tolist() == [1, 0, 0, 1]


# ----------------------------------------------------------------------------------- reward table
@pytest.mark.parametrize("n_agents", sorted(HAND_REWARDS))
def test_reward_table_pinned_by_hand(n_agents):
    table = HAND_REWARDS[n_agents]
    assert reward_table(n_agents).tolist() == table
    if n_agents == 8:  # the model is large; check the simulator's step on every state instead
        dyn = coordination_v0.parallel_env(n_agents=8).dynamics
        st = dyn.states()
        _, rew = dyn.step(st, st, np.zeros_like(st))
        np.testing.assert_array_equal(rew, np.array(table)[8 - st.sum(axis=1)][:, None].repeat(8, axis=1))
        return
    m = _model(n_agents)
    zeros = n_agents - m.states.sum(axis=1)
    expected = np.array(table)[zeros]  # (S,)
    for i in range(n_agents):
        np.testing.assert_array_equal(m.R[i], np.broadcast_to(expected[:, None], m.R[i].shape))
    np.testing.assert_array_equal(m.phi, m.R[0])
    # and through the public step, from every state
    env = coordination_v0.parallel_env(n_agents=n_agents)
    env.reset(seed=0)
    for s in range(m.n_states):
        env.reset(options={"state": s})
        _, rew, *_ = env.step({a: 0 for a in env.agents})
        assert set(rew.values()) == {table[zeros[s]]}


# ----------------------------------------------------------------------------------- model vs simulator
def test_model_matches_sampled_dynamics():
    """Every (state, joint action) for N = 3: empirical next-state frequencies vs P, rewards vs R."""
    env = coordination_v0.parallel_env(n_agents=3, eps=0.25)
    model, dyn = env.model(), env.dynamics
    S, A = model.n_states, model.n_joint_actions
    _, P = assert_simulator_matches_model(dyn, model, n=4000)
    assert (P > 0).sum(axis=1).min() == 8  # every next state reachable
    # closed form: P(s' | s, a) = prod_i (1 - eps if s'_i == a_i else eps), the same for every s
    ja, ns = model.joint_actions, dyn.states()
    closed = np.prod(np.where(ja[:, None, :] == ns[None, :, :], 0.75, 0.25), axis=2)  # (A, S)
    np.testing.assert_allclose(P.reshape(S, A, S), np.broadcast_to(closed, (S, A, S)), rtol=0, atol=1e-15)


@pytest.mark.parametrize("n_agents", [2, 3, 4])
@pytest.mark.parametrize("eps", [0.1, 0.37, 0.0, 1.0])
def test_product_model_equals_build_model(n_agents, eps):
    """The Kronecker-structured model equals the generic enumeration of ``step``."""
    dyn = coordination_v0.parallel_env(n_agents=n_agents, eps=eps).dynamics
    fast, slow = dyn.exact_model(0.95, name="x"), build_model(dyn, 0.95, name="x")
    assert fast.P.shape == slow.P.shape and fast.P.has_canonical_format
    for attr in ("indptr", "indices", "data"):  # bit-identical CSR arrays
        np.testing.assert_array_equal(getattr(fast.P, attr), getattr(slow.P, attr))
    np.testing.assert_array_equal(fast.mu, slow.mu)
    np.testing.assert_array_equal(fast.phi, slow.phi)
    np.testing.assert_array_equal(fast.terminal, slow.terminal)
    np.testing.assert_array_equal(fast.states, slow.states)
    assert (fast.n_agents, fast.action_sizes, fast.gamma) == (slow.n_agents, slow.action_sizes, slow.gamma)
    # build_model averages r(s) over the 2^N noise outcomes, whose probabilities sum to 1 only up
    # to round-off; the product model stores r(s) itself (= phi, exact integers).
    np.testing.assert_allclose(fast.R, slow.R, rtol=0, atol=1e-14)
    np.testing.assert_array_equal(fast.R, np.broadcast_to(fast.phi, fast.R.shape))
    if eps in (0.0, 1.0):
        assert fast.P.nnz == 4**n_agents  # deterministic: one next state per (s, a), no zeros stored


def test_model_size_limit_is_honoured():
    env = coordination_v0.parallel_env(n_agents=4)
    with pytest.raises(ModelTooLargeError, match=r"S=16 states x A=16 joint actions x 16 noise outcomes"):
        env.model(max_transitions=1000)
    assert coordination_v0.parallel_env(n_agents=8).dynamics.n_states == 256


# ----------------------------------------------------------------------------------- exact analysis
def _constant_policy(model, action: int) -> list[np.ndarray]:
    return [np.eye(2)[np.full(model.n_states, action)] for _ in range(model.n_agents)]


@pytest.mark.parametrize("n_agents", [2, 3, 5])
def test_constant_policies_closed_form(n_agents):
    """Everybody always plays a: the next state is independent of s, so
    V(s) = r(s) + gamma/(1-gamma) * E[r(s')] with c0(s') ~ Binomial(N, 1-eps) (a = 0) or (N, eps)."""
    m = _model(n_agents)
    g, eps, table = m.gamma, 0.1, np.array(HAND_REWARDS[n_agents])
    r_s = table[n_agents - m.states.sum(axis=1)]
    for a, p0 in ((0, 1 - eps), (1, eps)):
        e_next = sum(
            comb(n_agents, c) * p0**c * (1 - p0) ** (n_agents - c) * table[c] for c in range(n_agents + 1)
        )
        V = exact.evaluate(m, _constant_policy(m, a))
        np.testing.assert_allclose(V, np.broadcast_to(r_s + g / (1 - g) * e_next, V.shape), rtol=1e-12)
    opt = exact.social_optimum(m)
    e0 = sum(comb(n_agents, c) * 0.9**c * 0.1 ** (n_agents - c) * table[c] for c in range(n_agents + 1))
    assert opt.welfare == pytest.approx(n_agents * (r_s.mean() + g / (1 - g) * e0), rel=1e-12)


def test_all_ones_is_a_suboptimal_equilibrium_n3():
    """N = 3: always-1 is a Nash equilibrium with POA (1 + 19*1.704) / (1 + 19*2.216) < 1."""
    m = _model(3)
    ones, zeros = _constant_policy(m, 1), _constant_policy(m, 0)
    assert exact.nash_gap(m, ones).worst <= 1e-9
    assert exact.nash_gap(m, zeros).worst <= 1e-9
    assert exact.price_of_anarchy(m, zeros) == pytest.approx(1.0, rel=1e-12)
    # E_mu r = (2 + 3*1 + 3*0 + 3) / 8 = 1; E r(s') = .729*2 + .243*1 + .027*0 + .001*3 = 1.704
    # under always-1 and .729*3 + .243*0 + .027*1 + .001*2 = 2.216 under always-0.
    assert exact.price_of_anarchy(m, ones) == pytest.approx((1 + 19 * 1.704) / (1 + 19 * 2.216), rel=1e-12)


@pytest.mark.parametrize("n_agents, poa", [(2, 0.6820), (5, 0.6985)])
def test_all_ones_equilibrium_other_n(n_agents, poa):
    m = _model(n_agents)
    ones = _constant_policy(m, 1)
    assert exact.nash_gap(m, ones).worst <= 1e-9
    assert exact.nash_gap(m, exact.social_optimum(m).policies).worst <= 1e-9
    assert exact.price_of_anarchy(m, ones) == pytest.approx(poa, abs=1e-4)


def test_evaluate_matches_monte_carlo_and_iteration():
    env = coordination_v0.parallel_env(n_agents=3)
    m = env.model()
    rng = np.random.default_rng(0)
    pol = exact.random_policy(m, rng)
    V = exact.evaluate(m, pol)
    np.testing.assert_allclose(V, value_by_iteration(m, pol, sweeps=1000), rtol=0, atol=1e-9)
    np.testing.assert_allclose(V[0], V[1], rtol=0, atol=1e-12)  # identical interest
    G = mc_returns(env.dynamics, pol, m.gamma, n_episodes=20_000, horizon=400, rng=rng)
    se = G.std(axis=0) / np.sqrt(len(G))
    assert np.all(np.abs(G.mean(axis=0) - V @ m.mu) <= 5 * se)
    m2 = _model(2, eps=0.3)
    pol2 = exact.random_policy(m2, rng)
    np.testing.assert_allclose(exact.evaluate(m2, pol2), value_by_iteration(m2, pol2, sweeps=1000), atol=1e-9)


def test_policy_gradient_matches_finite_differences():
    m = _model(3)
    rng = np.random.default_rng(1)
    theta = [rng.standard_normal((m.n_states, 2)) for _ in range(3)]
    grads = exact.policy_gradient(m, exact.softmax_policy(theta))
    h = 1e-6
    for i in range(3):
        fd = np.zeros_like(theta[i])
        for idx in np.ndindex(*theta[i].shape):
            vals = []
            for sign in (1, -1):
                th = [t.copy() for t in theta]
                th[i][idx] += sign * h
                vals.append(exact.evaluate(m, exact.softmax_policy(th))[i] @ m.mu)
            fd[idx] = (vals[0] - vals[1]) / (2 * h)
        np.testing.assert_allclose(grads[i], fd, rtol=0, atol=1e-7)
    assert max(np.abs(g).max() for g in grads) > 1e-2  # the gradient is not trivially zero


def test_nash_gap_zero_at_best_response_equilibrium_and_positive_elsewhere():
    m = _model(3)
    rng = np.random.default_rng(2)
    interior = exact.random_policy(m, rng)
    assert exact.nash_gap(m, interior).gap > 1e-2
    pol = exact.random_policy(m, rng, deterministic=True)
    for _ in range(100):  # best-response dynamics; identical interest -> the team value increases
        g = exact.nash_gap(m, pol)
        if g.worst <= 1e-10:
            break
        i = int(g.worst_state.argmax())
        pol[i] = g.best_responses[i].policy
    g = exact.nash_gap(m, pol)
    assert g.gap <= 1e-9 and g.worst <= 1e-9


# ----------------------------------------------------------------------------------- potential certificate
@pytest.mark.parametrize("n_agents", [2, 3, 5])
@pytest.mark.parametrize("policy_class", ["state", "own"])
def test_potential_certificate(n_agents, policy_class):
    """Identical interest: both checks ~0 for global-state and own-state policies (measured <= 7.1e-15)."""
    env = coordination_v0.parallel_env(n_agents=n_agents)
    m = env.model()
    om = env.observation_index(policy_class)
    c = exact.cycle_residual(m, np.random.default_rng(0), obs_map=om)
    p = exact.potential_residual(m, np.random.default_rng(0), obs_map=om)
    assert c.max_residual <= 1e-12 and p.max_residual <= 1e-12
    assert c.scale > 10.0 and p.scale > 10.0  # the values themselves are not tiny


def test_inpg_reaches_nash_n3():
    """INPG (theta += eta/(1-gamma) * A, eta = 0.1) from N(0, 1) logits: Nash gap < 1e-3 quickly."""
    m = _model(3)
    rng = np.random.default_rng(0)
    theta = [rng.standard_normal((m.n_states, 2)) for _ in range(3)]
    opt = exact.social_optimum(m)
    first = None
    for it in range(1, 301):
        adv = exact.advantages(m, exact.softmax_policy(theta))
        theta = [t + 0.1 / (1 - m.gamma) * a for t, a in zip(theta, adv)]
        if exact.nash_gap(m, exact.softmax_policy(theta)).gap < 1e-3:
            first = it
            break
    assert first is not None, "INPG did not reach Nash gap 1e-3 in 300 iterations"
    poa = exact.price_of_anarchy(m, exact.softmax_policy(theta), opt)
    assert 0.5 < poa <= 1.0 + 1e-12  # measured: 10 iterations, POA 0.774 (the always-1 equilibrium)


# ----------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kw, match",
    [
        ({"n_agents": 0}, r"n_agents must be an integer in \[2, 8\].*got 0"),
        ({"n_agents": -3}, r"n_agents must be an integer in \[2, 8\].*got -3"),
        ({"n_agents": 1}, r"at least 2 agents.*got 1"),
        ({"n_agents": 9}, r"n_agents must be an integer in \[2, 8\].*got 9"),
        ({"n_agents": 2.0}, r"n_agents must be an integer.*got 2\.0"),
        ({"n_agents": "3"}, r"n_agents must be an integer.*got '3'"),
        ({"n_agents": True}, r"n_agents must be an integer.*got True"),
        ({"eps": 1.5}, r"eps must be a probability in \[0, 1\], got 1\.5"),
        ({"eps": -0.1}, r"eps must be a probability in \[0, 1\], got -0\.1"),
        ({"eps": float("nan")}, r"eps must be a probability in \[0, 1\], got nan"),
        ({"eps": "0.1"}, r"eps must be a probability in \[0, 1\], got '0\.1'"),
        ({"gamma": 0.0}, r"gamma must be in \(0, 1\), got 0\.0"),
        ({"gamma": 1.5}, r"gamma must be in \(0, 1\), got 1\.5"),
        ({"gamma": float("nan")}, r"gamma must be in \(0, 1\), got nan"),
        ({"gamma": 1.0}, "gamma = 1 gives infinite returns"),
        (
            {"observation": "pixels"},
            r"observation must be one of \['state', 'vector', 'own', 'onehot'\], got 'pixels'",
        ),
        ({"render_mode": "video"}, "render_mode must be"),
        ({"max_cycles": 0}, "max_cycles must be a positive integer"),
    ],
)
def test_bad_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        coordination_v0.parallel_env(**kw)


def test_bad_actions_and_reset_state():
    env = coordination_v0.parallel_env(n_agents=2)
    with pytest.raises(RuntimeError, match="reset"):
        env.step({"agent_0": 0, "agent_1": 0})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"agent_0 must be in \[0, 2\), got 2"):
        env.step({"agent_0": 2, "agent_1": 0})
    with pytest.raises(ValueError, match=r"missing \['agent_1'\]"):
        env.step({"agent_0": 0})
    with pytest.raises(TypeError, match="agent_1 must be an integer"):
        env.step({"agent_0": 0, "agent_1": 0.5})
    with pytest.raises(ValueError, match=r"state index in \[0, 4\)"):
        env.reset(options={"state": 4})
    with pytest.raises(ValueError, match="not a state"):
        env.reset(options={"state": np.array([0, 2])})
