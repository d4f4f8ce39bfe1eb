"""Independent oracles shared by the tests: Monte Carlo rollouts and tiny hand-made games."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from mpg_envs.core import Dynamics, sample_initial, sample_step
from mpg_envs.model import TabularModel


def sample_actions(policies: list[np.ndarray], idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a_i ~ pi_i(.|s) for a batch of model state indices (B,) -> (B, N)."""
    out = np.empty((len(idx), len(policies)), np.int64)
    for i, p in enumerate(policies):
        cdf = np.cumsum(p[idx], axis=1)
        out[:, i] = np.minimum((rng.random((len(idx), 1)) > cdf).sum(axis=1), p.shape[1] - 1)
    return out


def mc_returns(
    dyn: Dynamics,
    policies: list[np.ndarray],
    gamma: float,
    n_episodes: int,
    horizon: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Discounted returns of n_episodes batched rollouts from mu, shape (n_episodes, N)."""
    st = sample_initial(dyn, n_episodes, rng)
    G = np.zeros((n_episodes, dyn.n_agents))
    disc = 1.0
    alive = np.ones(n_episodes, bool)
    for _ in range(horizon):
        alive &= ~dyn.terminal(st)
        if not alive.any():
            break
        act = sample_actions(policies, dyn.index(st), rng)
        st, r = sample_step(dyn, st, act, rng)
        G += disc * r * alive[:, None]
        disc *= gamma
    return G


def random_game(
    rng: np.random.Generator,
    n_states: int = 4,
    action_sizes: tuple[int, ...] = (2, 3),
    gamma: float = 0.9,
    identical: bool = False,
) -> TabularModel:
    """A random dense Markov game; with identical=True all agents share one reward (phi = it)."""
    N, A = len(action_sizes), int(np.prod(action_sizes))
    P = rng.dirichlet(np.ones(n_states) * 0.5, size=n_states * A)
    R = rng.normal(size=(N, n_states, A))
    if identical:
        R[:] = R[0]
    return TabularModel(
        n_agents=N,
        action_sizes=action_sizes,
        P=sp.csr_matrix(P),
        R=R,
        mu=rng.dirichlet(np.ones(n_states)),
        gamma=gamma,
        phi=R[0].copy() if identical else None,
    )


def value_by_iteration(model: TabularModel, policies: list[np.ndarray], sweeps: int = 5000) -> np.ndarray:
    """Plain iterative policy evaluation with explicit loops over agents' joint actions, (N, S)."""
    S, A = model.n_states, model.n_joint_actions
    pi = np.ones((S, A))
    for a in range(A):
        acts = model.joint_actions[a]
        for i, p in enumerate(policies):
            pi[:, a] *= p[:, acts[i]]
    P = model.P.toarray().reshape(S, A, S)
    V = np.zeros((model.n_agents, S))
    for _ in range(sweeps):
        V = np.einsum("sa,nsa->ns", pi, model.R + model.gamma * np.einsum("sat,nt->nsa", P, V))
    return V


def rollout_trace(env, seed: int, steps: int) -> list:
    """Everything a seeded PettingZoo parallel env returns over ``steps`` random steps."""
    obs, _ = env.reset(seed=seed)
    for i, a in enumerate(env.possible_agents):
        env.action_space(a).seed(seed * 1000 + i)
    trace = [obs]
    for _ in range(steps):
        if not env.agents:
            trace.append(env.reset()[0])
        act = {a: env.action_space(a).sample() for a in env.agents}
        trace.append((act, *env.step(act)))
    return trace


def same_trace(x, y) -> bool:
    """Deep equality of nested dicts/tuples/lists of arrays and numbers."""
    if isinstance(x, dict):
        return isinstance(y, dict) and x.keys() == y.keys() and all(same_trace(x[k], y[k]) for k in x)
    if isinstance(x, (tuple, list)):
        return len(x) == len(y) and all(same_trace(a, b) for a, b in zip(x, y))
    return bool(np.array_equal(x, y))


def assert_deterministic(make_env, steps: int = 300) -> None:
    """Same seed, same trajectory over many steps (PettingZoo's seed test checks one step)."""
    first = rollout_trace(make_env(), 7, steps)
    assert same_trace(first, rollout_trace(make_env(), 7, steps))
    assert not same_trace(first, rollout_trace(make_env(), 8, steps))


def assert_simulator_matches_model(
    dyn: Dynamics, model: TabularModel, rows: np.ndarray | None = None, n: int = 2000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``n`` steps of the simulator's ``sample_step`` from each (state, joint action) row
    (default: all S*A) and check next-state frequencies against P (5 sigma) and mean rewards
    against R (5 standard errors).

    Returns:
        (empirical frequencies (rows, S), model probabilities (rows, S)).
    """
    S, A = model.n_states, model.n_joint_actions
    rows = np.arange(S * A) if rows is None else np.asarray(rows)
    st = np.repeat(model.states[rows // A], n, axis=0)
    ac = np.repeat(model.joint_actions[rows % A], n, axis=0)
    nxt, rew = sample_step(dyn, st, ac, np.random.default_rng(seed))
    freq = np.zeros((len(rows), S))
    np.add.at(freq, (np.repeat(np.arange(len(rows)), n), dyn.index(nxt)), 1.0 / n)
    P = model.P[rows].toarray()
    assert np.all(np.abs(freq - P) <= 5 * np.sqrt(P * (1 - P) / n) + 1e-12)
    r = rew.reshape(len(rows), n, -1)
    R = model.R[:, rows // A, rows % A].T  # (rows, N)
    assert np.all(np.abs(r.mean(axis=1) - R) <= 5 * r.std(axis=1) / np.sqrt(n) + 1e-12)
    return freq, P


def assert_public_step_matches_model(
    env, model: TabularModel, pairs: int = 8, n: int = 300, seed: int = 1
) -> None:
    """Through the PettingZoo API: ``reset(options={"state": s})`` then ``step`` with joint action a,
    ``n`` times for ``pairs`` random (s, a); next-state frequencies (from ``infos["state"]``) against
    P (5 sigma) and rewards against R (5 standard errors)."""
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    agents = env.possible_agents
    for _ in range(pairs):
        s = int(rng.integers(model.n_states))
        a = model.joint_actions[int(rng.integers(model.n_joint_actions))]
        j = model.joint_index(a)
        counts, rewards = np.zeros(model.n_states), np.zeros((n, len(agents)))
        for k in range(n):
            env.reset(options={"state": s})
            assert env.unwrapped.state_index() == s
            _, rew, *_, info = env.step({ag: int(a[i]) for i, ag in enumerate(agents)})
            counts[info[agents[0]]["state"]] += 1
            rewards[k] = [rew[ag] for ag in agents]
        p = model.P[s * model.n_joint_actions + j].toarray().ravel()
        assert np.all(np.abs(counts / n - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12)
        se = rewards.std(axis=0) / np.sqrt(n)
        assert np.all(np.abs(rewards.mean(axis=0) - model.R[:, s, j]) <= 5 * se + 1e-12)


def assert_same(a, b, path: str = "results", rel: float = 1e-9, ignore: tuple[str, ...] = ()) -> None:
    """Nested equality of two JSON-like summaries: floats to ``rel`` relative (1e-12 absolute),
    everything else exactly; keys in ``ignore`` (e.g. run folder names) are skipped."""
    if isinstance(a, dict):
        ka, kb = set(a) - set(ignore), set(b) - set(ignore) if isinstance(b, dict) else None
        assert isinstance(b, dict) and ka == kb, f"{path}: keys differ: {sorted(ka ^ (kb or set()))}"
        for k in ka:
            assert_same(a[k], b[k], f"{path}.{k}", rel, ignore)
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]", rel, ignore)
    elif isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        assert b == pytest.approx(a, rel=rel, abs=1e-12, nan_ok=True), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"
