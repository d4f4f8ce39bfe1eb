"""One exact-metrics entry point (``baselines.evaluation.ExactMetrics``) for every env.

Oracle: where the joint model fits, the per-task decomposition of independent tasks read on the
agent's own cell gives the joint model's metrics (values, Nash gap at mu and in the worst state,
potential, price of anarchy) to round-off.
"""

from __future__ import annotations

import numpy as np
import pytest

import mpg_envs
from baselines.evaluation import ExactMetrics, JointEvaluator
from mpg_envs.model import ModelTooLargeError

GRIDS = ["S.G/.#./...", "...//G.#/S.."]  # two 3x3 tasks: 81 joint states


def _random_cells(em: ExactMetrics, seed: int) -> np.ndarray:
    """A random policy per agent on its cell, (S_cells, N, A)."""
    rng = np.random.default_rng(seed)
    n_cells = em.dynamics.n_cells
    p = rng.dirichlet(np.ones(em.action_sizes[0]), size=(n_cells, em.n_agents))
    return p


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(layout=GRIDS, slip=0.2, gamma=0.9),
        dict(layout="chain_slip", chain_p=0.7, gamma=0.9),
        dict(layout="chain_reversed", slip=0.1),
    ],
    ids=["grids", "chain_slip", "chain_reversed"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_decomposition_equals_joint_model(kwargs, seed):
    joint = ExactMetrics("mpg/MultiTaskGridWorld-v0", observation="own", decompose=False, **kwargs)
    tasks = ExactMetrics("mpg/MultiTaskGridWorld-v0", observation="own", decompose=True, **kwargs)
    assert not joint.decomposed and tasks.decomposed
    assert tasks.n_states == joint.dynamics.n_cells
    assert joint.n_states == joint.dynamics.n_cells**joint.n_agents
    cells = _random_cells(tasks, seed)  # (S_cells, N, A)
    obs = joint.observations  # (S_joint, N): each agent's own cell
    n = joint.n_agents
    joint_probs = np.stack([cells[obs[:, i], i] for i in range(n)], axis=1)
    a, b = joint(joint_probs), tasks(cells)
    assert list(a) == list(b) == joint.fields() == tasks.fields()
    np.testing.assert_allclose([a[k] for k in a], [b[k] for k in a], rtol=1e-9, atol=1e-11)
    assert a["nash_gap"] > 1e-3  # a random policy is not an equilibrium: the check can fail


def test_auto_picks_the_joint_model_when_it_fits_and_tasks_otherwise():
    small = ExactMetrics("mpg/MultiTaskGridWorld-v0", layout="chain_slip", observation="vector")
    assert not small.decomposed and small.observations.shape[:2] == (small.n_states, small.n_agents)
    big = ExactMetrics("mpg/MultiTaskGridWorld-v0", layout="no_conflict", observation="own")
    assert big.decomposed and big.observations.shape == (100, 4)
    np.testing.assert_array_equal(big.observations, np.repeat(np.arange(100)[:, None], 4, axis=1))
    # per agent, the task models are the env's own
    models = big.env.task_models()
    assert big.task_models == models
    u = np.full((100, 4, 4), 0.25)
    row = big(u)
    for i, m in enumerate(models):
        direct = JointEvaluator(m)([u[:, i]])
        assert row[f"value_{i}"] == pytest.approx(direct["value_0"], rel=1e-12)
    assert row["welfare"] == pytest.approx(sum(row[f"value_{i}"] for i in range(4)), rel=1e-12)


def test_monte_carlo_agrees_on_a_default_layout():
    """The decomposed values of a 10x10 layout, against episodes of the joint env itself."""
    from mpg_envs import exact
    from mpg_envs.vector import make_parallel_vec

    em = ExactMetrics("mpg/MultiTaskGridWorld-v0", layout="resolvable_conflict", observation="own")
    best = np.stack([exact.social_optimum(m).policies[0] for m in em.task_models], axis=1)
    p = 0.6 * best + 0.4 * _random_cells(em, 3)  # (S_cells, N, A): good but not optimal
    row = em(p)
    assert min(row[f"value_{i}"] for i in range(em.n_agents)) > 0.1  # a check that can fail
    gamma = em.env.gamma
    venv = make_parallel_vec(
        "mpg/MultiTaskGridWorld-v0", 4000, layout="resolvable_conflict", observation="own"
    )
    obs, _ = venv.reset(seed=0)
    rng = np.random.default_rng(0)
    n = em.n_agents
    ret = np.zeros((4000, n))
    done = np.zeros((4000, n), bool)  # the vector env resets a copy once all its agents are done
    disc = 1.0
    for _ in range(venv.max_cycles):
        cdf = np.cumsum(p[obs, np.arange(n)], axis=2)  # (B, N, A)
        act = (rng.random((4000, n, 1)) > cdf).sum(axis=2).clip(max=3)
        obs, rew, term, trunc, _ = venv.step(act)
        ret += disc * rew * ~done
        disc *= gamma
        done |= term | trunc
    mc = ret.mean(axis=0)
    se = ret.std(axis=0) / np.sqrt(len(ret))
    for i in range(n):
        assert abs(mc[i] - row[f"value_{i}"]) < 4 * se[i] + 2 * gamma**venv.max_cycles, (
            i,
            mc[i],
            row[f"value_{i}"],
        )


def test_coupled_observations_on_a_large_layout_are_refused_with_the_reason():
    with pytest.raises(ModelTooLargeError, match="observation='own'.*decompose"):
        ExactMetrics("mpg/MultiTaskGridWorld-v0", layout="no_conflict", observation="vector")


@pytest.mark.parametrize(
    "env, kwargs, match",
    [
        ("mpg/Coordination-v0", dict(decompose=True), "decompose=True needs independent tasks"),
        ("mpg/MultiTaskGridWorld-v0", dict(layout="chain_slip", observation="vector", decompose=True), "own"),
        ("mpg/Coordination-v0", dict(decompose="yes"), "decompose"),
        ("mpg/IndoorNav-v0", {}, "without an exact tabular model"),
        ("mpg/Nope-v0", {}, "unknown env"),
        ("mpg/Coordination-v0", dict(n_agent=2), "n_agent"),
        (3, {}, "env must be"),
    ],
)
def test_bad_arguments_are_refused(env, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ExactMetrics(env, **kwargs)


def test_bad_probabilities_are_refused():
    em = ExactMetrics("mpg/Coordination-v0", n_agents=2, observation="vector")
    S = em.n_states
    with pytest.raises(ValueError, match=r"shape \(S, N, A\)"):
        em(np.full((S, 3, 2), 0.5))
    with pytest.raises(ValueError, match="one table per agent"):
        em([np.full((S, 2), 0.5)])
    bad = np.full((S, 2, 2), 0.5)
    bad[0, 0] = [np.nan, 1]
    with pytest.raises(ValueError, match="finite"):
        em(bad)
    with pytest.raises(ValueError, match="env_kwargs go with a registered id"):
        ExactMetrics(em.env, n_agents=2)


@pytest.mark.parametrize("env_id", sorted(mpg_envs.ENV_IDS))
def test_every_env_and_mode_with_a_model(env_id):
    """Every registered env with an exact model, in every observation mode it has, evaluates the
    uniform policy: the tabulated observations are the env's own (``reset`` emits one of them)."""
    import pettingzoo

    kwargs = {"layout": "chain_slip"} if "GridWorld" in env_id else {}
    probe = pettingzoo.make("parallel", env_id, **kwargs).unwrapped
    modes = probe.dynamics.observation_modes if hasattr(probe.dynamics, "observation_modes") else None
    for mode in modes or ("state", "own", "vector", "onehot"):
        try:
            env = pettingzoo.make("parallel", env_id, observation=mode, **kwargs)
        except ValueError:
            continue
        em = ExactMetrics(env)
        obs, _ = env.reset(seed=0)
        first = np.stack([np.asarray(obs[a]) for a in env.agents])  # (N, ...)
        assert any(np.array_equal(first, em.observations[s]) for s in range(em.n_states)), mode
        k = em.action_sizes
        row = em([np.full((em.n_states, a), 1.0 / a) for a in k])
        assert set(row) == set(em.fields()) and np.isfinite(row["nash_gap"]) and row["nash_gap"] >= 0
