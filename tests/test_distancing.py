"""mpg/Distancing-v0: PettingZoo API, determinism, closed forms, model vs simulator, exact
analysis oracles, the measured potential certificate, equilibria, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_deterministic, mc_returns, value_by_iteration
from pettingzoo.test import api_test, parallel_api_test

from mpg_envs import distancing_v0, exact
from mpg_envs.core import sample_step
from mpg_envs.model import ModelTooLargeError, TabularModel

SAFE, DIST = 0, 1

CONFIGS = [
    {},
    {"observation": "vector", "n_agents": 5},
    {"n_agents": 3, "weights": (3.0, 1.0), "penalty": 5.0, "mu": (1.0, 0.0)},
    {"n_agents": 6, "safe_threshold": 2, "distancing_threshold": 2.5, "max_cycles": 7},
]


@pytest.fixture(scope="module")
def model8() -> TabularModel:
    return distancing_v0.parallel_env().model()


# ------------------------------------------------------------------------------ PettingZoo API
@pytest.mark.parametrize("cfg", CONFIGS)
def test_pettingzoo_api(cfg):
    parallel_api_test(distancing_v0.parallel_env(**cfg), num_cycles=200)
    api_test(distancing_v0.env(**cfg), num_cycles=200)


def test_metadata_spaces_and_observations():
    env = distancing_v0.parallel_env(observation="vector", n_agents=4)
    assert env.metadata["name"] == "distancing_v0" and env.metadata["is_parallelizable"]
    assert env.observation_space("agent_1") is env.observation_space("agent_1")
    assert env.action_space("agent_0").n == 4
    obs, _ = env.reset(options={"state": 1})
    np.testing.assert_array_equal(obs["agent_1"], [0, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(env.state(), [0, 1])
    obs, *_ = env.step({"agent_0": 0, "agent_1": 1, "agent_2": 2, "agent_3": 3})  # spread: safe
    np.testing.assert_array_equal(obs["agent_2"], [0, 0, 1, 0, 1, 0])
    tab = distancing_v0.parallel_env()
    assert tab.observation_space("agent_0").n == 2
    np.testing.assert_array_equal(tab.observation_index(), np.tile([0, 1], (8, 1)))


def test_render_outputs():
    env = distancing_v0.parallel_env(render_mode="rgb_array")
    env.reset(options={"state": 0})
    before = env.render()
    env.step({f"agent_{i}": 3 if i < 5 else 0 for i in range(8)})
    after = env.render()
    assert before.dtype == np.uint8 and before.ndim == 3 and before.shape[2] == 3
    assert not np.array_equal(before, after)
    # the banner is green in the safe state and red in distancing
    assert tuple(before[5, 5]) == (46, 150, 70) and tuple(after[5, 5]) == (200, 45, 45)
    txt = distancing_v0.parallel_env(render_mode="ansi")
    txt.reset(options={"state": 0})
    assert "no moves yet" in txt.render()
    txt.step({f"agent_{i}": 3 if i < 5 else 0 for i in range(8)})
    out = txt.render()
    assert "state DISTANCING (1)" in out and "last step in SAFE: max 5 > 4 -> DISTANCING" in out
    assert "D (w=6): 5 [0,1,2,3,4]  reward 30 each" in out and "A (w=1): 3 [5,6,7]" in out
    wide = distancing_v0.parallel_env(n_agents=30, weights=[1.0] * 30, render_mode="rgb_array")
    wide.reset(seed=0)
    wide.step({a: i for i, a in enumerate(wide.agents)})
    assert wide.render().shape[1] > 30 * 90


def test_infos_and_rewards_through_public_step():
    env = distancing_v0.parallel_env()
    _, info = env.reset(options={"state": np.array([0])})
    assert info["agent_3"] == {"state": 0, "facility": -1, "count": 0}
    acts = [0, 2, 2, 3, 3, 3, 3, 3]
    _, rew, term, trunc, info = env.step({f"agent_{i}": a for i, a in enumerate(acts)})
    assert [rew[f"agent_{i}"] for i in range(8)] == [1.0, 8.0, 8.0] + [30.0] * 5
    assert info["agent_1"] == {"state": 1, "facility": 2, "count": 2}  # 5 at D > 4: distancing next
    assert info["agent_7"] == {"state": 1, "facility": 3, "count": 5}
    assert not any(term.values()) and not any(trunc.values())
    _, rew, *_, info = env.step({f"agent_{i}": i % 4 for i in range(8)})  # (2, 2, 2, 2)
    assert [rew[f"agent_{i}"] for i in range(4)] == [2.0 - 100, 4.0 - 100, 8.0 - 100, 12.0 - 100]
    assert info["agent_0"]["state"] == 0 and env.state_index() == 0


# ------------------------------------------------------------------------------ determinism
@pytest.mark.parametrize("cfg", [{}, {"observation": "vector", "n_agents": 4, "max_cycles": 9}])
def test_determinism_over_many_steps(cfg):
    assert_deterministic(lambda: distancing_v0.parallel_env(**cfg), steps=300)


def test_initial_state_follows_mu():
    env = distancing_v0.parallel_env(mu=(0.2, 0.8))
    env.reset(seed=0)
    starts = []
    for _ in range(2000):
        env.reset()
        starts.append(env.state_index())
    assert abs(np.mean(starts) - 0.8) < 5 * np.sqrt(0.8 * 0.2 / 2000)
    env = distancing_v0.parallel_env(mu=(1, 0))
    assert {env.reset(seed=s)[0]["agent_0"] for s in range(20)} == {0}


# ------------------------------------------------------------------------------ closed forms
def _dyn(**kw):
    return distancing_v0.parallel_env(**kw).dynamics


@pytest.mark.parametrize(
    "actions, phi_safe",
    [
        ([3] * 8, 6 * 36.0),  # (0, 0, 0, 8): 6 * (1 + ... + 8)
        ([0, 1, 2, 3] * 2, (1 + 2 + 4 + 6) * 3.0),  # (2, 2, 2, 2)
        ([2] * 4 + [3] * 4, 4 * 10.0 + 6 * 10.0),  # (0, 0, 4, 4)
        ([0, 2, 2, 3, 3, 3, 3, 3], 1 + 4 * 3 + 6 * 15.0),  # (1, 0, 2, 5)
    ],
)
def test_potential_closed_form(actions, phi_safe):
    dyn = _dyn()
    st = np.array([[SAFE], [DIST]])
    phi = dyn.potential(st, np.array([actions, actions]))
    assert phi.tolist() == [phi_safe, phi_safe - 100.0]


def test_rewards_closed_form_both_states():
    dyn = _dyn()
    acts = np.array([[0, 2, 2, 3, 3, 3, 3, 3]] * 2)
    _, r = dyn.step(np.array([[SAFE], [DIST]]), acts, np.zeros((2, 0), np.int64))
    assert r[0].tolist() == [1.0, 8.0, 8.0, 30.0, 30.0, 30.0, 30.0, 30.0]
    assert r[1].tolist() == [-99.0, -92.0, -92.0, -70.0, -70.0, -70.0, -70.0, -70.0]
    dyn = _dyn(n_agents=3, weights=(2.5, -1.0), penalty=-7.0)  # any finite numbers
    _, r = dyn.step(np.array([[DIST]]), np.array([[0, 1, 0]]), np.zeros((1, 0), np.int64))
    assert r[0].tolist() == [12.0, 6.0, 12.0]


@pytest.mark.parametrize(
    "state, actions, nxt",
    [
        (SAFE, [0, 1, 2, 2, 3, 3, 3, 3], SAFE),  # 4 = N/2 at D: not more than N/2
        (SAFE, [0, 1, 2, 3, 3, 3, 3, 3], DIST),  # 5 = N/2 + 1
        (SAFE, [0, 0, 0, 0, 3, 3, 3, 3], SAFE),
        (DIST, [0, 1, 2, 3, 0, 1, 2, 3], SAFE),  # (2, 2, 2, 2): exactly N/4 everywhere
        (DIST, [0, 1, 2, 3, 3, 1, 2, 3], DIST),  # 3 > N/4 at D
        (DIST, [0, 0, 0, 3, 3, 3, 3, 3], DIST),
        (DIST, [0, 0, 1, 1, 2, 2, 2, 3], DIST),  # 3 at C
    ],
)
def test_transitions_at_the_thresholds(state, actions, nxt):
    dyn = _dyn()
    out, _ = dyn.step(np.array([[state]]), np.array([actions]), np.zeros((1, 0), np.int64))
    assert out.tolist() == [[nxt]]


def test_custom_and_fractional_thresholds():
    dyn = _dyn(n_agents=3, safe_threshold=2, distancing_threshold=1)
    st = np.array([[SAFE], [SAFE], [DIST], [DIST]])
    acts = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 2], [0, 0, 1]])
    assert dyn.step(st, acts, np.zeros((4, 0), np.int64))[0].ravel().tolist() == [0, 1, 0, 1]
    # defaults for N = 3 are 1.5 and 0.75: any two together trigger distancing, which never ends
    dyn = _dyn(n_agents=3)
    assert (dyn.safe_threshold, dyn.distancing_threshold) == (1.5, 0.75)
    m = distancing_v0.parallel_env(n_agents=3).model()
    A = m.n_joint_actions
    assert np.all(m.P[A:].toarray()[:, DIST] == 1.0)  # distancing is absorbing
    assert m.P[:A].toarray()[:, DIST].sum() == A - 24  # safe survives only the 4*3*2 injective choices


def test_phi_is_an_exact_potential_of_every_stage_game():
    """r_i(s, b, a_-i) - r_i(s, a) == phi(s, b, a_-i) - phi(s, a) for every s, a, i, b."""
    m = distancing_v0.parallel_env(n_agents=4, weights=(1.0, 2.5, -3.0), penalty=40.0).model()
    ja = m.joint_actions
    for i in range(m.n_agents):
        for b in range(m.action_sizes[i]):
            dev = ja.copy()
            dev[:, i] = b
            j = m.joint_index(dev)
            np.testing.assert_allclose(m.R[i][:, j] - m.R[i], m.phi[:, j] - m.phi, atol=1e-12)


# ------------------------------------------------------------------------------ model vs simulator
@pytest.mark.parametrize(
    "kw",
    [{"n_agents": 4}, {"n_agents": 3, "weights": (1, 5, 2), "penalty": 7, "distancing_threshold": 1}],
)
def test_model_matches_simulator_for_every_state_and_joint_action(kw):
    env = distancing_v0.parallel_env(**kw)
    model, dyn = env.model(), env.dynamics
    S, A = model.n_states, model.n_joint_actions
    states = dyn.states()[np.repeat(np.arange(S), A)]
    actions = np.tile(model.joint_actions, (S, 1))
    nxt, rew = sample_step(dyn, states, actions, np.random.default_rng(0))
    P = model.P.toarray()
    assert np.all((P == 0) | (P == 1))  # deterministic
    np.testing.assert_array_equal(P.argmax(axis=1), dyn.index(nxt))
    np.testing.assert_array_equal(rew.T, model.R.reshape(model.n_agents, -1))
    # brute force with Python loops, from the rules in the docstring
    w, c, N = np.asarray(dyn.weights), dyn.penalty, dyn.n_agents
    for s in range(S):
        for j in range(0, A, 7):
            a = model.joint_actions[j]
            n = np.bincount(a, minlength=len(w))
            r = [w[a[i]] * n[a[i]] - (c if s == DIST else 0.0) for i in range(N)]
            np.testing.assert_array_equal(model.R[:, s, j], r)
            thr = dyn.safe_threshold if s == SAFE else dyn.distancing_threshold
            assert P[s * A + j, int(n.max() > thr)] == 1.0
    np.testing.assert_array_equal(model.mu, dyn.mu)


def test_default_model_size_and_phi(model8):
    assert model8.n_states == 2 and model8.n_joint_actions == 4**8
    assert model8.P.nnz == 2 * 4**8
    j = model8.joint_index([2, 2, 2, 2, 3, 3, 3, 3])
    assert model8.phi[:, j].tolist() == [100.0, 0.0]
    assert model8.R[:, 0, j].tolist() == [16.0] * 4 + [24.0] * 4


# ------------------------------------------------------------------------------ exact analysis
def test_evaluate_matches_monte_carlo_and_iteration():
    env = distancing_v0.parallel_env(n_agents=4, gamma=0.9)
    m = env.model()
    rng = np.random.default_rng(0)
    pol = exact.random_policy(m, rng)
    V = exact.evaluate(m, pol)
    G = mc_returns(env.dynamics, pol, 0.9, 20_000, 220, rng)  # 0.9^220 ~ 1e-10
    se = G.std(axis=0) / np.sqrt(len(G))
    assert np.all(np.abs(G.mean(axis=0) - V @ m.mu) <= 5 * se)
    assert se.max() < 0.005 * np.abs(V @ m.mu).min()  # the check is sharp: values ~ -570 +- 1.6
    m3 = distancing_v0.parallel_env(n_agents=3, distancing_threshold=1).model()
    pol3 = exact.random_policy(m3, rng)
    np.testing.assert_allclose(exact.evaluate(m3, pol3), value_by_iteration(m3, pol3), rtol=1e-10)


def test_policy_gradient_matches_finite_differences():
    m = distancing_v0.parallel_env(n_agents=4).model()
    rng = np.random.default_rng(0)
    theta = [rng.normal(size=(2, 4)) for _ in range(4)]
    grads = exact.policy_gradient(m, exact.softmax_policy(theta))
    h = 1e-5
    for i in range(4):
        fd = np.zeros((2, 4))
        for s in range(2):
            for a in range(4):
                vals = []
                for sign in (1, -1):
                    th = [t.copy() for t in theta]
                    th[i][s, a] += sign * h
                    vals.append(exact.evaluate(m, exact.softmax_policy(th))[i] @ m.mu)
                fd[s, a] = (vals[0] - vals[1]) / (2 * h)
        np.testing.assert_allclose(grads[i], fd, rtol=1e-5, atol=1e-4)
        assert np.abs(grads[i]).max() > 1.0


def _profile(safe: list[int], dist: list[int], k: int = 4) -> list[np.ndarray]:
    """Deterministic policy: agent i plays safe[i] in the safe state, dist[i] in distancing."""
    return [np.eye(k)[[a, b]] for a, b in zip(safe, dist)]


def _best_response_dynamics(m: TabularModel, pol: list[np.ndarray], rng, sweeps: int = 50):
    pol = list(pol)
    for _ in range(sweeps):
        changed = False
        for i in rng.permutation(m.n_agents):
            br = exact.best_response(m, pol, int(i))
            if np.any(br.value - exact.evaluate(m, pol)[i] > 1e-9):
                pol[i], changed = br.policy, True
        if not changed:
            return pol
    raise AssertionError("best-response dynamics did not settle")


def test_nash_gap_zero_at_best_response_equilibrium_and_positive_elsewhere(model8):
    rng = np.random.default_rng(1)
    start = exact.random_policy(model8, rng)
    assert exact.nash_gap(model8, start).gap > 100.0  # random interior policy
    eq = _best_response_dynamics(model8, start, rng)
    gap = exact.nash_gap(model8, eq)
    assert gap.gap <= 1e-9 and gap.worst <= 1e-9
    counts = sum(eq)  # (S, K): agents per facility in each state
    assert counts.tolist() == [[0, 0, 4, 4], [2, 2, 2, 2]]  # this run: the reported outcome


def test_reported_outcome_is_a_nash_equilibrium_with_closed_form_values(model8):
    """Counts (0, 0, 4, 4) in safe and (2, 2, 2, 2) in distancing (DESIGN §1) -- exactly Nash."""
    pol = _profile([2, 2, 2, 2, 3, 3, 3, 3], [0, 0, 1, 1, 2, 2, 3, 3])
    gap = exact.nash_gap(model8, pol)
    assert gap.worst <= 1e-9
    V = exact.evaluate(model8, pol)
    g = model8.gamma
    safe_c, safe_d = 16 / (1 - g), 24 / (1 - g)  # the safe state is kept forever
    expected_dist = [
        -98 + g * safe_c, -98 + g * safe_c, -96 + g * safe_c, -96 + g * safe_c,
        -92 + g * safe_d, -92 + g * safe_d, -88 + g * safe_d, -88 + g * safe_d,
    ]  # fmt: skip
    np.testing.assert_allclose(V[:, 0], [safe_c] * 4 + [safe_d] * 4, rtol=1e-12)
    np.testing.assert_allclose(V[:, 1], expected_dist, rtol=1e-12)
    # not the only equilibrium: distancing can be a trap nobody leaves alone (all at D forever)
    trap = _profile([3] * 8, [3] * 8)
    assert exact.nash_gap(model8, trap).worst <= 1e-9
    np.testing.assert_allclose(exact.evaluate(model8, trap)[0], [48 - g * 52 / (1 - g), -52 / (1 - g)])
    # and a safe profile that is not an equilibrium: the lone agent at B gains by joining C
    assert exact.nash_gap(model8, _profile([1, 2, 2, 2, 3, 3, 3, 3], [0, 0, 1, 1, 2, 2, 3, 3])).gap > 1.0


def _inpg(m: TabularModel, theta: list[np.ndarray], eta: float, iters: int) -> list[np.ndarray]:
    """Exact independent NPG: theta_i += eta / (1 - gamma) * A_i, softmax policies."""
    for _ in range(iters):
        adv = exact.advantages(m, exact.softmax_policy(theta))
        theta = [th + eta / (1 - m.gamma) * a for th, a in zip(theta, adv)]
    return exact.softmax_policy(theta)


def test_exact_inpg_reaches_the_reported_outcome_or_the_trap(model8):
    """Which equilibrium INPG finds depends on the start (measured; eta = 1e-3, big steps)."""
    rng = np.random.default_rng(8)
    pol = _inpg(model8, [rng.normal(size=(2, 4)) for _ in range(8)], 1e-3, 30)
    assert exact.nash_gap(model8, pol).worst <= 1e-9
    np.testing.assert_allclose(sum(pol), [[0, 0, 4, 4], [2, 2, 2, 2]], atol=1e-6)
    pol = _inpg(model8, [np.zeros((2, 4)) for _ in range(8)], 1e-3, 20)  # from uniform
    assert exact.nash_gap(model8, pol).worst <= 1e-9
    np.testing.assert_allclose(sum(pol), [[0, 0, 0, 8], [0, 0, 0, 8]], atol=1e-6)


# ------------------------------------------------------------------------------ certificate
def _certs(m, n=32):
    c = exact.cycle_residual(m, np.random.default_rng(0), n_cycles=n)
    p = exact.potential_residual(m, np.random.default_rng(0), n_samples=n)
    return c, p


@pytest.mark.parametrize(
    "n_agents, cycle, potential",
    [(3, 1089.0, 693.0), (4, 693.0, 1485.0), (8, 792.0, 2277.0)],
)
def test_global_state_distancing_is_not_an_mpg(n_agents, cycle, potential, model8):
    """Measured: sampled 4-cycles sum to 7-11% of the value scale (multiples of gamma = 0.99)."""
    m = model8 if n_agents == 8 else distancing_v0.parallel_env(n_agents=n_agents).model()
    c, p = _certs(m)
    assert c.max_residual == pytest.approx(cycle, rel=1e-6)
    assert p.max_residual == pytest.approx(potential, rel=1e-6)
    assert c.scale == pytest.approx(9900.0, rel=1e-9) and p.scale == pytest.approx(9900.0, rel=1e-9)
    assert c.relative > 0.05


def test_residuals_do_not_depend_on_the_penalty():
    """The penalty is an identical-interest part: with phi's -c the residuals ignore c exactly."""
    base = _certs(distancing_v0.parallel_env(n_agents=4).model())
    for c in (0.0, 1e4):
        other = _certs(distancing_v0.parallel_env(n_agents=4, penalty=c).model())
        for a, b in zip(base, other):
            assert a.max_residual == pytest.approx(b.max_residual, rel=1e-9, abs=1e-6)
    assert base[0].max_residual > 100.0


@pytest.mark.parametrize("n_agents, potential", [(3, 20493.0), (4, 31185.0), (8, 71577.0)])
def test_rosenthal_potential_with_c_per_agent_is_much_worse(n_agents, potential, model8):
    """phi with -c*N (Rosenthal of the costs w_k j - c) instead of -c: residual 2-7x the values."""
    m = model8 if n_agents == 8 else distancing_v0.parallel_env(n_agents=n_agents).model()
    phi = m.phi.copy()
    phi[DIST] -= (n_agents - 1) * 100.0
    alt = TabularModel(m.n_agents, m.action_sizes, m.P, m.R, m.mu, m.gamma, phi=phi)
    p = exact.potential_residual(alt, np.random.default_rng(0), n_samples=32)
    assert p.max_residual == pytest.approx(potential, rel=1e-6)


@pytest.mark.parametrize(
    "kw",
    [
        {"weights": (0, 0, 0, 0)},  # identical interest: everybody gets -c * [distancing]
        {"safe_threshold": 0, "distancing_threshold": 0},  # distancing after one step, whatever a
        {"safe_threshold": 4, "distancing_threshold": 4},  # the state never changes
    ],
)
def test_certificate_passes_when_it_should(kw):
    c, p = _certs(distancing_v0.parallel_env(n_agents=4, **kw).model())
    assert c.relative <= 1e-12 and p.relative <= 1e-12
    assert c.scale > 1000.0


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kw, match",
    [
        ({"n_agents": 0}, "n_agents must be a positive integer, got 0"),
        ({"n_agents": -2}, "n_agents must be a positive integer"),
        ({"n_agents": 2.5}, "n_agents must be a positive integer, got 2.5"),
        ({"n_agents": True}, "n_agents must be a positive integer"),
        ({"weights": []}, r"weights must be a non-empty 1-D sequence of finite numbers .*got \[\]"),
        ({"weights": (1.0, float("nan"))}, r"weights must be .*finite.*got \(1.0, nan\)"),
        ({"weights": (1.0, float("inf"))}, "weights must be"),
        ({"weights": [[1, 2], [3, 4]]}, "1-D"),
        ({"weights": "1246"}, "weights must be a non-empty sequence"),
        ({"weights": ["a", "b"]}, "weights must be a non-empty sequence"),
        ({"penalty": float("nan")}, "penalty must be a finite number, got nan"),
        ({"penalty": "100"}, "penalty must be a finite number"),
        ({"safe_threshold": -1}, r"safe_threshold must be a number in \[0, N=8\], got -1"),
        ({"safe_threshold": 8.5}, r"safe_threshold must be a number in \[0, N=8\], got 8.5"),
        ({"safe_threshold": float("nan")}, r"safe_threshold must be a finite number in \[0, N=8\]"),
        ({"distancing_threshold": 9}, r"distancing_threshold must be a number in \[0, N=8\], got 9"),
        ({"distancing_threshold": -0.5}, "distancing_threshold must be"),
        ({"mu": (1.0, 0.0, 0.0)}, r"mu must be a probability distribution over the 2 states .*got \(1.0"),
        ({"mu": (0.7, 0.7)}, "summing to 1; got"),
        ({"mu": (-0.5, 1.5)}, "non-negative"),
        ({"mu": (float("nan"), 1.0)}, "mu must be"),
        ({"mu": "ab"}, "mu must be"),
        ({"gamma": 0.0}, r"gamma must be in \(0, 1\), got 0.0"),
        ({"gamma": 1.0}, r"gamma must be in \(0, 1\), got 1.0 \(the distancing game never terminates"),
        ({"gamma": 1.5}, "gamma must be in"),
        ({"gamma": float("nan")}, "gamma must be in"),
        ({"observation": "own"}, r"observation must be one of \['state', 'vector', 'onehot'\], got 'own'"),
        ({"render_mode": "video"}, "render_mode must be"),
        ({"max_cycles": 0}, "max_cycles"),
    ],
)
def test_bad_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        distancing_v0.parallel_env(**kw)


def test_accepted_edge_parameters():
    """Thresholds at the ends of [0, N], a distancing threshold above the safe one, K = 1."""
    for kw in (
        {"safe_threshold": 0, "distancing_threshold": 8},
        {"safe_threshold": 3, "distancing_threshold": 5},
        {"weights": (2.0,)},
        {"n_agents": 1, "penalty": 0},
        {"mu": np.array([0.25, 0.75])},
    ):
        env = distancing_v0.parallel_env(**kw)
        env.reset(seed=0)
        env.step({a: 0 for a in env.agents})


@pytest.mark.parametrize(
    "actions, exc, match",
    [
        ({"agent_0": 0}, ValueError, r"missing \['agent_1'\]"),
        ({"agent_0": 0, "agent_1": 4}, ValueError, r"agent_1 must be in \[0, 4\), got 4"),
        ({"agent_0": 0.0, "agent_1": 0}, TypeError, "agent_0 must be an integer"),
    ],
)
def test_bad_actions(actions, exc, match):
    env = distancing_v0.parallel_env(n_agents=2)
    env.reset(seed=0)
    with pytest.raises(exc, match=match):
        env.step(actions)


def test_bad_reset_state_and_step_after_end():
    env = distancing_v0.parallel_env(n_agents=2, max_cycles=1)
    with pytest.raises(ValueError, match=r"state index in \[0, 2\)"):
        env.reset(options={"state": 2})
    with pytest.raises(ValueError, match="not a state"):
        env.reset(options={"state": np.array([5])})
    env.reset(seed=0)
    env.step({"agent_0": 0, "agent_1": 1})
    with pytest.raises(RuntimeError, match="episode ended"):
        env.step({"agent_0": 0, "agent_1": 1})


def test_model_too_large_is_refused_but_simulator_runs():
    env = distancing_v0.parallel_env(n_agents=14)  # 2 * 4^14 = 536,870,912 transitions
    with pytest.raises(ModelTooLargeError, match=r"S=2 states x A=268,435,456 joint actions"):
        env.model()
    big = distancing_v0.parallel_env(n_agents=1000)
    big.reset(options={"state": 0})
    _, rew, *_ = big.step({a: 3 for a in big.agents})
    assert rew["agent_999"] == 6000.0 and big.state_index() == 1
