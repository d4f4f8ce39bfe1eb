"""baselines.sampler: batched rollouts (shapes, seeding, termination, action frequencies) and the
sampled estimator (hand-computed cases, convergence to the exact estimator, truncation bias,
checkpointing, bad input)."""

from __future__ import annotations

import numpy as np
import pettingzoo
import pytest

import mpg_envs  # noqa: F401  (registers the env ids)
from baselines.estimators import Estimate, ExactEstimator
from baselines.sampler import (
    BatchSampler,
    Rollouts,
    SampledEstimator,
    estimate_from_rollouts,
    returns_to_go,
)
from mpg_envs import exact
from mpg_envs.core import Dynamics


def make(env_id: str, **kw):
    return pettingzoo.make("parallel", env_id, **kw).unwrapped


class TwoSizes(Dynamics):
    """3 states, agents with 2 and 3 actions (exercises the padded CDF table); s' = s + a0 + a1."""

    n_agents, action_sizes, state_dim = 2, (2, 3), 1

    @property
    def n_states(self) -> int:
        return 3

    def states(self):
        return np.arange(3)[:, None]

    def index(self, states):
        return np.asarray(states)[:, 0].astype(np.int64)

    def initial_distribution(self):
        return self.states(), np.full(3, 1 / 3)

    def terminal(self, states):
        return np.zeros(len(states), bool)

    def step(self, states, actions, noise):
        nxt = (states[:, 0] + actions.sum(axis=1)) % 3
        return nxt[:, None], actions.astype(np.float64)


# ------------------------------------------------------------------------------ rollouts
def test_shapes_and_dtypes():
    env = make("mpg/Distancing-v0", n_agents=3)
    pol = exact.uniform_policy(env.model())
    ro = BatchSampler(env.dynamics, np.random.default_rng(0)).rollout(pol, 7, 5)
    assert isinstance(ro, Rollouts)
    assert (ro.n_episodes, ro.horizon, ro.n_agents) == (7, 5, 3)
    assert ro.states.shape == (7, 6) and ro.states.dtype == np.int64
    assert ro.actions.shape == (7, 5, 3) and ro.actions.dtype == np.int64
    assert ro.rewards.shape == (7, 5, 3) and ro.rewards.dtype == np.float64
    assert ro.alive.shape == (7, 5) and ro.alive.dtype == bool and ro.alive.all()
    assert set(np.unique(ro.states)) <= {0, 1} and set(np.unique(ro.actions)) <= {0, 1, 2, 3}


def _same(a: Rollouts, b: Rollouts) -> bool:
    return all(
        np.array_equal(getattr(a, f), getattr(b, f)) for f in ("states", "actions", "rewards", "alive")
    )


def test_determinism_and_seeds():
    env = make("mpg/Congestion-v0", n_agents=3, slip=0.3)
    pol = exact.random_policy(env.model(), np.random.default_rng(0))

    def run(seed):
        return BatchSampler(env.dynamics, np.random.default_rng(seed)).rollout(pol, 50, 12)

    assert _same(run(1), run(1))
    assert not _same(run(1), run(2))
    # consecutive calls draw fresh episodes from the same generator
    sampler = BatchSampler(env.dynamics, np.random.default_rng(1))
    assert not _same(sampler.rollout(pol, 50, 12), sampler.rollout(pol, 50, 12))


def reference_rollout(sampler: BatchSampler, policies, B: int, T: int, start=None) -> Rollouts:
    """The rollout loop as it was before its hot loop was trimmed: one comparison per CDF column,
    every step through the checked :func:`mpg_envs.core.sample_step` (the same draws, in order)."""
    from mpg_envs.core import sample_step

    dyn, rng, N = sampler.dynamics, sampler.rng, sampler.dynamics.n_agents
    cdf = sampler._cdf_table(policies)
    states = np.empty((B, T + 1), np.int64)
    actions = np.empty((B, T, N), np.int64)
    rewards = np.empty((B, T, N), np.float64)
    alive = np.ones((B, T), bool)
    if start is None:
        st = dyn.sample_initial(B, rng)
        idx = dyn.index(st)
    else:
        idx = np.asarray(start, np.int64)
        st = dyn.decode(idx)
    states[:, 0] = idx
    term_table = np.asarray(dyn.terminal(dyn.states()), dtype=bool)
    for t in range(T):
        term = term_table[idx]
        if term.all():
            states[:, t + 1 :] = idx[:, None]
            actions[:, t:] = 0
            rewards[:, t:] = 0.0
            alive[:, t:] = False
            break
        alive[:, t] = ~term
        u = rng.random((B, N))
        if sampler.observe is None:
            c = np.take(cdf, idx, axis=0)
        else:
            rows = np.asarray(sampler.observe(st), dtype=np.int64)
            c = np.take(cdf.reshape(-1, cdf.shape[2]), rows * N + np.arange(N), axis=0)
        a = np.empty((B, N), np.int64)
        np.greater_equal(u, c[:, :, 0], out=a, casting="unsafe")
        for k in range(1, cdf.shape[2]):
            a += u >= c[:, :, k]
        st, r = sample_step(dyn, st, a, rng)
        actions[:, t], rewards[:, t] = a, r
        idx = dyn.index(st)
        states[:, t + 1] = idx
    dead = ~alive
    actions[dead], rewards[dead] = 0, 0.0
    return Rollouts(states=states, actions=actions, rewards=rewards, alive=alive)


BIT_CASES = [
    ("mpg/Distancing-v0", {}),
    ("mpg/Congestion-v0", {"n_agents": 4, "slip": 0.2}),
    ("mpg/Congestion-v0", {"at_sink": "terminate", "gamma": 1.0}),
    ("mpg/Coordination-v0", {"n_agents": 3}),
    ("mpg/MultiTaskGridWorld-v0", {"layout": "chain_slip", "slip": 0.1}),
    ("mpg/TugOfWar-v0", {}),
]


@pytest.mark.parametrize(("env_id", "kw"), BIT_CASES, ids=lambda x: str(x).split("/")[-1])
def test_rollouts_are_bit_identical_to_the_reference_loop(env_id, kw):
    """Same seed, same rollouts, bit for bit, as the loop before the per-step checks were dropped
    (every env, 4-action agents included); also with given start states and own-cell observations."""
    env = make(env_id, **kw)
    model = env.model()
    pol = exact.random_policy(model, np.random.default_rng(5))
    for seed in (0, 1):
        got = BatchSampler(env.dynamics, seed).rollout(pol, 37, 15)
        want = reference_rollout(BatchSampler(env.dynamics, seed), pol, 37, 15)
        assert _same(got, want)
    start = np.arange(37) % model.n_states
    got = BatchSampler(env.dynamics, 3).rollout(pol, 37, 9, start=start)
    assert _same(got, reference_rollout(BatchSampler(env.dynamics, 3), pol, 37, 9, start=start))


def test_observed_rollouts_are_bit_identical_to_the_reference_loop():
    env = make("mpg/MultiTaskGridWorld-v0", slip=0.2)  # 4 tasks on 10x10 grids: own-cell tables
    rng = np.random.default_rng(0)
    pol = [rng.dirichlet(np.ones(4), size=env.own_observation_size) for _ in range(4)]
    got = BatchSampler(env.dynamics, 7, observe=env.own_observation).rollout(pol, 25, 30)
    want = reference_rollout(BatchSampler(env.dynamics, 7, observe=env.own_observation), pol, 25, 30)
    assert _same(got, want)


def test_congestion_terminates_after_three_steps():
    env = make("mpg/Congestion-v0", at_sink="terminate", gamma=1.0)
    model = env.model()
    pol = exact.random_policy(model, np.random.default_rng(3))
    ro = BatchSampler(env.dynamics, np.random.default_rng(0)).rollout(pol, 200, 8)
    sink = int(np.flatnonzero(model.terminal)[0])
    assert ro.alive[:, :3].all() and not ro.alive[:, 3:].any()
    assert np.all(ro.states[:, 3:] == sink) and not np.any(ro.states[:, :3] == sink)
    assert np.all(ro.rewards[:, :3] > 0) and np.all(ro.rewards[:, 3:] == 0)
    assert np.all(ro.actions[:, 3:] == 0)
    # undiscounted estimates: 3 non-terminal visits per episode, the terminal state gets none
    est = SampledEstimator(env.dynamics, 1.0, horizon=8, batch=4000, rng=1).estimate(pol)
    assert est.occupancy[sink] == 0 and est.occupancy.sum() == pytest.approx(3.0)
    ex = ExactEstimator(model).estimate(pol)
    np.testing.assert_allclose(est.occupancy, ex.occupancy, atol=0.05)
    np.testing.assert_allclose(est.mu_values, ex.mu_values, atol=0.05)


def test_gridworld_agents_finish_separately():
    env = make("mpg/MultiTaskGridWorld-v0", layout="chain_reversed")
    dyn = env.dynamics
    pol = exact.uniform_policy(env.model())
    ro = BatchSampler(dyn, np.random.default_rng(0)).rollout(pol, 500, 12)
    cells = dyn.decode(ro.states.ravel()).reshape(500, 13, 2)
    done = dyn.cell_terminal[np.arange(2), cells]  # (B, T+1, N)
    np.testing.assert_array_equal(ro.alive, ~done[:, :-1].all(axis=2))
    assert np.all(np.diff(ro.alive.astype(int), axis=1) <= 0)  # once over, over
    # a finished agent earns nothing while the other goes on ...
    one_done = done[:, :-1].any(axis=2) & ro.alive
    assert one_done.sum() > 100
    assert np.all(ro.rewards[done[:, :-1]] == 0) and np.all(ro.rewards[~ro.alive] == 0)
    assert np.all(ro.actions[~ro.alive] == 0) and np.any(ro.actions[ro.alive] != 0)
    # ... and the agent still playing is paid on arrival: +-1 exactly when it reaches an end cell
    arrive = ~done[:, :-1] & done[:, 1:]
    np.testing.assert_array_equal(ro.rewards != 0, arrive)
    np.testing.assert_array_equal(
        ro.rewards[arrive], dyn.arrival[np.nonzero(arrive)[2], cells[:, 1:][arrive]]
    )
    assert (ro.alive[:, 0] & ~ro.alive[:, -1]).sum() > 400  # most episodes end within 12 steps


@pytest.mark.parametrize("case", ["distancing", "two_sizes"])
def test_action_frequencies_match_policy(case):
    rng = np.random.default_rng(5)
    if case == "distancing":
        dyn = make("mpg/Distancing-v0", n_agents=3).dynamics
    else:
        dyn = TwoSizes()
    S = dyn.n_states
    pol = [rng.dirichlet(np.ones(k), size=S) for k in dyn.action_sizes]
    pol[0][0] = np.eye(dyn.action_sizes[0])[-1]  # a deterministic row ...
    pol[1][1, 0] = 0.0  # ... and a zero-probability action
    pol[1][1] /= pol[1][1].sum()
    ro = BatchSampler(dyn, np.random.default_rng(0)).rollout(pol, 3000, 10)
    s = ro.states[:, :-1][ro.alive]
    for i, p in enumerate(pol):
        a = ro.actions[..., i][ro.alive]
        counts = np.zeros_like(p)
        np.add.at(counts, (s, a), 1.0)
        n = counts.sum(axis=1, keepdims=True)
        assert n.min() > 1000
        freq = counts / n
        assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n)), (i, freq, p)
        assert np.all(counts[p == 0] == 0)


def test_observation_policies():
    """With ``observe``, each agent reads its own row (here the own cell of the chains)."""
    env = make("mpg/MultiTaskGridWorld-v0", layout="chain_reversed")
    left = np.tile([1.0, 0.0], (5, 1))
    right = np.tile([0.0, 1.0], (5, 1))
    sampler = BatchSampler(env.dynamics, np.random.default_rng(0), observe=env.own_observation)
    ro = sampler.rollout([left, right], 20, 6)
    # task 1 goes left: 2 -> 1 -> 0 (+1); task 2 goes "right", reversed in cells 1 and 3: 2 -> 3 -> 2 ...
    cells = env.dynamics.decode(ro.states.ravel()).reshape(20, 7, 2)
    np.testing.assert_array_equal(cells[:, :3, 0], np.tile([2, 1, 0], (20, 1)))
    np.testing.assert_array_equal(cells[:, :, 1], np.tile([2, 3, 2, 3, 2, 3, 2], (20, 1)))
    assert np.all(ro.actions[:, :, 1] == 1) and np.all(ro.rewards[:, 1, 0] == 1.0)
    with pytest.raises(ValueError, match=r"agent 1 must have shape \(n_observations, \|A_i\| = 2\)"):
        sampler.rollout([left, np.ones((5, 3)) / 3], 2, 2)


# ------------------------------------------------------------------------------ estimator
def test_returns_to_go_matches_definition():
    r = np.random.default_rng(0).normal(size=(4, 9, 3))
    G = returns_to_go(r, 0.8)
    direct = np.stack([np.einsum("btn,t->bn", r[:, t:], 0.8 ** np.arange(9 - t)) for t in range(9)], axis=1)
    np.testing.assert_allclose(G, direct, rtol=1e-12, atol=1e-12)


def test_estimate_by_hand():
    """Two episodes, 3 states, one agent with 2 actions; every number computed by hand."""
    ro = Rollouts(
        states=np.array([[0, 0, 1, 2], [0, 1, 1, 2]]),
        actions=np.array([[[0], [0], [1]], [[0], [1], [0]]]),
        rewards=np.array([[[1.0], [2.0], [4.0]], [[0.0], [8.0], [2.0]]]),
        alive=np.array([[True, True, True], [True, True, True]]),
    )
    e = estimate_from_rollouts(ro, 0.5, 3, (2,))
    # G: episode 0: [1 + 1 + 1, 2 + 2, 4] = [3, 4, 4]; episode 1: [0 + 4 + 0.5, 8 + 1, 2] = [4.5, 9, 2]
    np.testing.assert_allclose(e.mu_values, [(3 + 4.5) / 2])
    np.testing.assert_allclose(e.v[0], [(3 + 4 + 4.5) / 3, (4 + 9 + 2) / 3, 0.0])
    # state 0: action 1 never taken -> q = v(0); state 2 never visited -> 0
    np.testing.assert_allclose(e.q[0], [[11.5 / 3, 11.5 / 3], [2.0, 6.5], [0.0, 0.0]])
    np.testing.assert_allclose(e.occupancy, [(1 + 0.5 + 1) / 2, (0.25 + 0.5 + 0.25) / 2, 0.0])
    np.testing.assert_allclose(e.advantages()[0][0], [0.0, 0.0])
    # only the first 2 steps count as visits (horizon=2); the third only completes the returns
    e2 = estimate_from_rollouts(ro, 0.5, 3, (2,), horizon=2)
    # state 1 is now visited once (episode 1, action 1, G = 9): action 0 unvisited -> q = v = 9
    np.testing.assert_allclose(e2.q[0], [[23 / 6, 23 / 6], [9.0, 9.0], [0.0, 0.0]])
    np.testing.assert_allclose(e2.occupancy, [0.75 + 0.5, 0.25, 0.0])


def test_estimator_wiring_and_checkpoint():
    env = make("mpg/Coordination-v0", n_agents=3)
    pol = exact.random_policy(env.model(), np.random.default_rng(0))
    est = SampledEstimator(env.dynamics, 0.95, horizon=7, batch=30, rng=np.random.default_rng(4), tail=3)
    assert (est.gamma, est.horizon, est.batch, est.tail) == (0.95, 7, 30, 3)
    assert isinstance(est.rng, np.random.Generator) and est.sampler.rng is est.rng
    ckpt = est.state_dict()
    e1 = est.estimate(pol)
    ro = BatchSampler(env.dynamics, np.random.default_rng(4)).rollout(pol, 30, 10)
    ref = estimate_from_rollouts(ro, 0.95, 8, (2, 2, 2), horizon=7)
    assert isinstance(e1, Estimate)
    for f in ("v", "occupancy", "mu_values"):
        np.testing.assert_array_equal(getattr(e1, f), getattr(ref, f))
    e2 = est.estimate(pol)
    assert not np.array_equal(e1.v, e2.v)
    est.load_state_dict(ckpt)  # resume from the checkpoint: the same two estimates again
    for e in (e1, e2):
        again = est.estimate(pol)
        np.testing.assert_array_equal(again.v, e.v)
        for a, b in zip(again.q, e.q):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="with key 'rng'"):
        est.load_state_dict({})
    with pytest.raises(ValueError, match="cannot restore the generator state"):
        est.load_state_dict({"rng": {"bit_generator": "MT19937", "state": {}}})


def _horizon_for(gamma: float, scale: float, tol: float = 1e-4) -> int:
    """Smallest T with gamma^T * scale / (1 - gamma) < tol."""
    return int(np.ceil(np.log(tol * (1 - gamma) / scale) / np.log(gamma))) + 1


def _errors(env, pol, exact_est: Estimate, batch: int, seed: int, min_visits: int) -> dict:
    """Errors of the sampled estimate against the exact one, with standard errors and bias bounds.

    Returns, for "mu" (N,), "occ" (S,) and "adv" (S, N, K_max): (|error|, standard error, bias
    bound, checked mask). Standard errors treat episodes as the independent units (visits within
    an episode are correlated): plain ones for the per-episode means (mu_values, occupancy) and
    delta-method ones for the ratio estimators of Q and V, hence of A = Q - V. Advantages are
    checked where agent i tried *every* action in s at least ``min_visits`` times:
    A(s, a) = sum_a' pi(a'|s) (Q(s, a) - Q(s, a')) needs every Q(s, a') (a rare action makes the
    linearised standard error meaningless).
    """
    model = env.model()
    g, S, N = model.gamma, model.n_states, model.n_agents
    K = max(model.action_sizes)
    r_max = float(np.abs(model.R).max())
    H = _horizon_for(g, r_max)
    tail = H
    ro = BatchSampler(env.dynamics, np.random.default_rng(seed)).rollout(pol, batch, H + tail)
    est = estimate_from_rollouts(ro, g, S, model.action_sizes, horizon=H)
    B = batch
    G = returns_to_go(ro.rewards, g)
    out = {}
    # mu_values: per-episode G_0
    out["mu"] = (
        np.abs(est.mu_values - exact_est.mu_values),
        G[:, 0].std(axis=0) / np.sqrt(B),
        g ** (H + tail) * r_max / (1 - g),
        np.ones(N, bool),
    )
    # occupancy: per-episode discounted visit counts
    s = ro.states[:, :H]
    ep = np.repeat(np.arange(B), H)
    occ_b = np.bincount(ep * S + s.ravel(), weights=np.tile(g ** np.arange(H), B), minlength=B * S)
    out["occ"] = (
        np.abs(est.occupancy - exact_est.occupancy),
        occ_b.reshape(B, S).std(axis=0) / np.sqrt(B),
        g**H / (1 - g),
        np.ones(S, bool),
    )
    # advantages: per-episode sums and counts for every (state, agent, action)
    keys = ((ep[:, None] * S + s.ravel()[:, None]) * N + np.arange(N)) * K + ro.actions[:, :H].reshape(-1, N)
    size = B * S * N * K
    X = np.bincount(keys.ravel(), weights=G[:, :H].reshape(-1, N).ravel(), minlength=size).reshape(B, S, N, K)
    n = np.bincount(keys.ravel(), minlength=size).reshape(B, S, N, K).astype(np.float64)
    Y, m = X.sum(axis=3), n.sum(axis=3)  # per state (B, S, N)
    Nsa, Ms = n.sum(axis=0), m.sum(axis=0)  # (S, N, K), (S, N)
    q = np.stack([np.pad(x, ((0, 0), (0, K - x.shape[1]))) for x in est.q], axis=1)  # (S, N, K)
    v = est.v.T  # (S, N)
    with np.errstate(invalid="ignore", divide="ignore"):
        psi = (X - q * n) / Nsa - ((Y - v * m) / Ms)[..., None]
    ex_adv = np.stack([np.pad(a, ((0, 0), (0, K - a.shape[1]))) for a in exact_est.advantages()], axis=1)
    real = np.arange(K) < np.array(model.action_sizes)[:, None]  # (N, K): not padding
    tried = np.all((Nsa >= min_visits) | ~real, axis=2, keepdims=True)
    out["adv"] = (
        np.abs((q - v[..., None]) - ex_adv),
        np.sqrt(np.nansum(psi**2, axis=0)),
        2 * g**tail * r_max / (1 - g),
        tried & real,
    )
    return out


CONVERGENCE_CASES = [
    ("mpg/Congestion-v0", {"n_agents": 3, "slip": 0.3, "gamma": 0.9}),
    ("mpg/Distancing-v0", {"n_agents": 3, "gamma": 0.9}),
    ("mpg/Coordination-v0", {"n_agents": 3, "gamma": 0.9}),
]


def _check_convergence(env, pol, seeds: tuple[int, int] = (1, 2), min_visits: int = 50) -> float:
    """Assert both batches are within 5 SE + bias of the exact values; return the error ratio.

    The ratio compares max errors at batch 8000 and 500 over the quantities checked in both, each
    error divided by the same per-episode standard deviation (the batch-8000 standard error times
    sqrt(8000)) so that one high-variance quantity does not decide the maximum alone. Expected
    ~1/sqrt(16) = 0.25.
    """
    model = env.model()
    ex = ExactEstimator(model).estimate(pol)
    big = _errors(env, pol, ex, 8000, seeds[0], min_visits)
    small = _errors(env, pol, ex, 500, seeds[1], min_visits)
    ratio_num, ratio_den = [], []
    for name in ("mu", "occ", "adv"):
        for err, se, bias, checked in (big[name], small[name]):
            bound = 5 * se + bias + 1e-9
            assert np.all(err[checked] <= bound[checked]), (name, err[checked], bound[checked])
        both = big[name][3] & small[name][3]
        sigma = big[name][1] * np.sqrt(8000)
        use = both & (sigma > 1e-9)
        ratio_num.append(big[name][0][use] / sigma[use])
        ratio_den.append(small[name][0][use] / sigma[use])
    n_adv = big["adv"][3].sum()
    assert n_adv >= 0.5 * sum(model.action_sizes), n_adv  # pairs of several states were checked
    return np.concatenate(ratio_num).max() / np.concatenate(ratio_den).max()


@pytest.mark.parametrize(("env_id", "kw"), CONVERGENCE_CASES, ids=lambda x: str(x).split("/")[-1])
def test_converges_to_exact(env_id, kw):
    env = make(env_id, **kw)
    pol = exact.random_policy(env.model(), np.random.default_rng(11))
    ratio = _check_convergence(env, pol)
    # error shrinks like 1/sqrt(batch): 16x the episodes, ~1/4 of the error
    assert ratio <= 0.6, ratio


def test_paper_estimator_is_biased_without_tail():
    """tail=0 (paper 001's truncated returns): V(s) averages finite-horizon values, not V, no
    matter how many episodes; a tail long enough for gamma^tail * max|R| / (1 - gamma) to be
    negligible removes the bias (the module docstring's claim, measured)."""
    env = make("mpg/Distancing-v0", n_agents=3, gamma=0.9)
    model = env.model()
    pol = exact.random_policy(model, np.random.default_rng(11))
    V = ExactEstimator(model).estimate(pol).v
    paper = SampledEstimator(env.dynamics, 0.9, horizon=20, batch=4000, rng=0).estimate(pol)
    fixed = SampledEstimator(env.dynamics, 0.9, horizon=20, batch=4000, rng=0, tail=160).estimate(pol)
    # |V| ~ 900 here; the paper's estimate is off by hundreds, the tailed one by a few units
    assert np.abs(paper.v - V).max() > 200
    assert np.abs(fixed.v - V).max() < 10


# ------------------------------------------------------------------------------ bad input
def test_bad_arguments():
    env = make("mpg/Distancing-v0", n_agents=2)
    dyn = env.dynamics
    for kw, msg in [
        ({"horizon": 0}, r"horizon must be an integer >= 1, got 0"),
        ({"horizon": 2.5}, r"horizon must be an integer >= 1, got 2.5"),
        ({"batch": 0}, r"batch must be an integer >= 1, got 0"),
        ({"batch": -3}, r"batch must be an integer >= 1, got -3"),
        ({"gamma": 0.0}, r"gamma must be in \(0, 1\], got 0.0"),
        ({"gamma": 1.5}, r"gamma must be in \(0, 1\], got 1.5"),
        ({"gamma": float("nan")}, r"gamma must be in \(0, 1\], got nan"),
        ({"tail": -1}, r"tail must be an integer >= 0, got -1"),
        ({"rng": "seed"}, r"rng must be a numpy Generator, an int seed or None, got 'seed'"),
    ]:
        args = {"gamma": 0.99, **kw}
        with pytest.raises(ValueError, match=msg):
            SampledEstimator(dyn, **args)
    with pytest.raises(ValueError, match="dynamics must be a mpg_envs.core.Dynamics"):
        BatchSampler(env, np.random.default_rng(0))
    sampler = BatchSampler(dyn, np.random.default_rng(0))
    uni = exact.uniform_policy(env.model())
    with pytest.raises(ValueError, match=r"n_episodes must be an integer >= 1, got 0"):
        sampler.rollout(uni, 0, 5)
    with pytest.raises(ValueError, match=r"horizon must be an integer >= 1, got 0"):
        sampler.rollout(uni, 5, 0)
    with pytest.raises(ValueError, match=r"expected one policy per agent \(2\), got 1"):
        sampler.rollout(uni[:1], 5, 5)
    with pytest.raises(ValueError, match=r"policy of agent 1 must have shape \(S, \|A_i\|\) = \(2, 4\)"):
        sampler.rollout([uni[0], np.full((2, 3), 1 / 3)], 5, 5)
    with pytest.raises(ValueError, match="policy of agent 0 is not row-stochastic: row 1"):
        sampler.rollout([np.array([[0.25] * 4, [0.5] * 4]), uni[1]], 5, 5)
    with pytest.raises(ValueError, match=r"policy of agent 1 has negative probabilities \(min -0.5, row 0"):
        sampler.rollout([uni[0], np.array([[1.5, -0.5, 0, 0], [0.25] * 4])], 5, 5)
    ro = sampler.rollout(uni, 3, 4)
    with pytest.raises(ValueError, match=r"horizon must be in \[1, T=4\], got 5"):
        estimate_from_rollouts(ro, 0.9, 2, (4, 4), horizon=5)


# ------------------------------------------------------------------ the authors' estimators
def _forced_expectations(model, pol, T: int, layers: int):
    """Exact expectations of ForcedActionEstimator's outputs (an independent computation from the
    model): E[v] for both value methods, E[q] (one step with the action forced, then E[v]) and the
    state weights sum_k mu(k) d_s(k)."""
    S, N, g = model.n_states, model.n_agents, model.gamma
    P = exact.transition_matrix(model, pol).toarray()  # (S, S)
    jp = exact.joint_policy(model, pol)  # (S, A)
    r = (model.R * jp[None]).sum(axis=2)  # (N, S): expected one-step reward under pi
    powers = [np.eye(S)]
    for _ in range(T):
        powers.append(powers[-1] @ P)
    mean_v = sum(g**t * (powers[t] @ r.T) for t in range(T)).T  # T-step values (N, S)
    visit_v = np.zeros((N, S))
    for layer in range(layers):
        col = sum(g**t * powers[t].sum(axis=0) for t in range(T - layer))  # sum over start states
        visit_v += col[None] * r
    weights = sum(g**t * (powers[t] @ model.mu) for t in range(T))
    out = {}
    for name, v in (("mean", mean_v), ("visit_sum", visit_v)):
        A = model.n_joint_actions
        Pa = model.P.toarray().reshape(S, A, S)
        qj = model.R + g * np.einsum("sap,np->nsa", Pa, v)  # (N, S, A) joint one-step Q with E[v]
        q = []
        for i, k in enumerate(model.action_sizes):
            others = [p for j, p in enumerate(pol) if j != i]
            w = np.ones((S, 1))
            for p in others:  # joint weight of a_-i, in the model's joint-action order
                w = (w[:, :, None] * p[:, None, :]).reshape(S, -1)
            qa = qj[i].reshape((S, *model.action_sizes))
            qa = np.moveaxis(qa, 1 + i, 1).reshape(S, k, -1)
            q.append(np.einsum("sko,so->sk", qa, w))
        out[name] = (v, q)
    return out, weights


@pytest.mark.parametrize(
    ("env_id", "kw"),
    [
        (
            "mpg/Congestion-v0",
            {"n_agents": 3, "graph": "ring", "n_layers": 1, "load": "vertex", "gamma": 0.9},
        ),
        ("mpg/Distancing-v0", {"n_agents": 3, "gamma": 0.9}),
        ("mpg/Congestion-v0", {"n_agents": 2, "slip": 0.3, "gamma": 0.8}),
    ],
    ids=["ring", "distancing", "dag-slip"],
)
@pytest.mark.parametrize("value", ["mean", "visit_sum"])
def test_forced_action_estimator_matches_its_exact_expectation(env_id, kw, value):
    from baselines.sampler import ForcedActionEstimator

    env = make(env_id, **kw)
    model = env.model()
    pol = exact.random_policy(model, np.random.default_rng(3))
    T, K = 6, 3000
    expect, weights = _forced_expectations(model, pol, T, layers=2)
    v_ref, q_ref = expect[value]
    est = ForcedActionEstimator(env.dynamics, model.gamma, horizon=T, samples=K, rng=1, value=value)
    e = est.estimate(pol)
    scale = np.abs(model.R).max() * T
    # Monte Carlo error ~ scale / sqrt(K) (visit sums: times the number of start states)
    tol = 6 * scale / np.sqrt(K) * (model.n_states * 2 if value == "visit_sum" else 1)
    np.testing.assert_allclose(e.v, v_ref, atol=tol)
    for a, b in zip(e.q, q_ref):
        np.testing.assert_allclose(a, b, atol=tol * (1 + model.gamma))
    np.testing.assert_allclose(e.occupancy, weights, atol=6 * T / np.sqrt(K))
    np.testing.assert_allclose(e.mu_values, e.v @ model.mu)
    # the estimates are not trivially close: a cruder batch is measurably worse
    small = ForcedActionEstimator(env.dynamics, model.gamma, horizon=T, samples=5, rng=1, value=value)
    assert np.abs(small.estimate(pol).v - v_ref).max() > np.abs(e.v - v_ref).max()


@pytest.mark.parametrize(
    ("env_id", "kw"),
    [
        ("mpg/Congestion-v0", {"n_agents": 3, "graph": "ring", "n_layers": 1, "load": "vertex"}),
        ("mpg/Distancing-v0", {"n_agents": 3, "gamma": 0.9}),
        ("mpg/Congestion-v0", {"n_agents": 2, "slip": 0.3, "gamma": 0.8, "at_sink": "terminate"}),
    ],
    ids=["ring", "distancing", "dag-terminate"],
)
@pytest.mark.parametrize("value", ["mean", "visit_sum"])
def test_forced_action_expected_equals_the_independent_computation(env_id, kw, value):
    """ForcedActionEstimator.expected (iterated sparse products) against the dense matrix powers
    above, which the Monte Carlo test pins to the estimator's sample means."""
    from baselines.sampler import ForcedActionEstimator

    env = make(env_id, **kw)
    model = env.model()
    pol = exact.random_policy(model, np.random.default_rng(5))
    T = 7
    expect, weights = _forced_expectations(model, pol, T, layers=3)
    v_ref, q_ref = expect[value]
    est = ForcedActionEstimator(env.dynamics, model.gamma, horizon=T, rng=0, value=value, layers=3)
    e = est.expected(model, pol)
    np.testing.assert_allclose(e.v, v_ref, rtol=1e-12, atol=1e-12)
    for a, b in zip(e.q, q_ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(e.occupancy, weights, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(e.mu_values, e.v @ model.mu)
    other = make("mpg/Distancing-v0", n_agents=2).model()
    with pytest.raises(ValueError, match="the model has 2 states"):
        est.expected(other, exact.uniform_policy(other))


def test_forced_action_weights_are_constant_for_uniform_mu():
    """The authors' b_dist: for uniform mu every state gets (1/S) sum_t gamma^t, not d_mu(s)."""
    from baselines.sampler import ForcedActionEstimator

    env = make("mpg/Distancing-v0", n_agents=4)
    pol = exact.random_policy(env.model(), np.random.default_rng(0))
    e = ForcedActionEstimator(env.dynamics, 0.99, horizon=20, samples=10, rng=0).estimate(pol)
    np.testing.assert_allclose(e.occupancy, 0.5 * (1 - 0.99**20) / (1 - 0.99))
    assert np.abs(exact.visitation(env.model(), pol) - 0.5).max() > 0.01  # d_mu is not uniform


def test_forced_action_estimates_every_action():
    """Unlike on-policy visits, every action of every state gets a non-trivial advantage, even an
    action the policy never plays."""
    from baselines.sampler import ForcedActionEstimator

    env = make("mpg/Distancing-v0", n_agents=3)
    model = env.model()
    pol = [np.tile([1.0, 0.0, 0.0, 0.0], (2, 1)) for _ in range(3)]  # everybody at A, always
    e = ForcedActionEstimator(env.dynamics, 0.99, rng=0).estimate(pol)
    on = SampledEstimator(env.dynamics, 0.99, rng=0).estimate(pol)
    assert np.all(on.advantages()[0][:, 1:] == 0)  # never sampled: advantage exactly 0
    A = e.advantages()[0]
    assert np.all(np.abs(A[:, 1:]) > 1)
    # truncation (T = 20) shifts every action's Q by the same amount: compare within each state
    centred = A - A.mean(axis=1, keepdims=True)
    ref = exact.advantages(model, pol)[0]
    np.testing.assert_allclose(centred, ref - ref.mean(axis=1, keepdims=True), atol=1e-9)


def test_forced_action_estimator_bad_arguments():
    from baselines.sampler import ForcedActionEstimator

    dyn = make("mpg/Distancing-v0", n_agents=2).dynamics
    for kw, msg in [
        ({"value": "median"}, r"value must be one of \['mean', 'visit_sum'\], got 'median'"),
        ({"samples": 0}, "samples must be an integer >= 1, got 0"),
        ({"layers": 0}, "layers must be an integer >= 1, got 0"),
        ({"layers": 30}, "layers must be <= horizon = 20, got 30"),
        ({"gamma": True}, "gamma must be in"),
    ]:
        with pytest.raises(ValueError, match=msg):
            ForcedActionEstimator(dyn, **{"gamma": 0.99, **kw})
    big = make("mpg/Congestion-v0", n_agents=20).dynamics
    with pytest.raises(ValueError, match="2,097,154 states, over max_states=65,536"):
        ForcedActionEstimator(big, 0.99)


def test_sampler_accepts_float32_policies_like_exact():
    """One policy check for exact and the sampler: a float32 softmax (torch's default) is accepted
    and gives the same rollouts as its float64 renormalisation."""
    env = make("mpg/Distancing-v0", n_agents=3)
    pol64 = exact.random_policy(env.model(), np.random.default_rng(0))
    pol32 = [p.astype(np.float32) for p in pol64]
    a = BatchSampler(env.dynamics, 5).rollout(pol32, 50, 10)
    b = BatchSampler(env.dynamics, 5).rollout(exact.check_policy(env.model(), pol32), 50, 10)
    np.testing.assert_array_equal(a.actions, b.actions)
    with pytest.raises(ValueError, match="policy of agent 0 must be an array of probabilities"):
        BatchSampler(env.dynamics, 5).rollout([np.array([[True, False, False, False]] * 2), *pol64[1:]], 5, 5)
