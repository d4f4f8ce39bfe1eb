"""The native Gymnasium vector env of ``mpg/GridWorldTask-v0`` against the task's exact model."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import mpg_envs  # noqa: F401


def _make(n, **kw):
    return gymnasium.make_vec(
        "mpg/GridWorldTask-v0", num_envs=n, vectorization_mode="vector_entry_point", **kw
    )


def test_transition_frequencies_match_the_model():
    env = _make(4096, layout="no_conflict", task=1, slip=0.3, gamma=0.9)
    model = env.unwrapped.single.model()  # (S, A, S) per the single env's model
    P = model.P.toarray().reshape(model.n_states, model.action_sizes[0], model.n_states)
    R = model.R[0]
    rng = np.random.default_rng(0)
    counts = np.zeros_like(P)
    rew_sum = np.zeros(P.shape[:2])
    obs, info = env.reset(seed=0)
    cells = info["cell"]
    ended = np.zeros(4096, bool)
    for _ in range(30):
        a = rng.integers(0, 4, 4096)
        obs, r, term, trunc, info = env.step(a)
        live = ~ended  # NEXT_STEP: a copy that ended this step restarts on the next, its action ignored
        np.add.at(counts, (cells[live], a[live], info["cell"][live]), 1)
        np.add.at(rew_sum, (cells[live], a[live]), r[live])
        cells, ended = info["cell"], term | trunc
        np.testing.assert_array_equal(obs, cells)  # "own": the cell
    n = counts.sum(axis=2)
    ok = n >= 400
    assert ok.sum() >= 20
    freq = counts[ok] / n[ok][:, None]
    assert np.abs(freq - P[ok]).max() < 0.08  # 400+ draws: a few standard errors
    np.testing.assert_allclose(rew_sum[ok] / n[ok], R[ok], atol=0.1)


def test_next_step_autoreset_and_truncation():
    env = _make(3, layout="chain_reversed", task=0, max_episode_steps=4)
    obs, info = env.reset(seed=1)
    start = info["cell"].copy()
    # chain task 1: L, L from S3 reaches the goal S1 (terminated); R, R reaches S5, its obstacle
    _, r, term, trunc, _ = env.step(np.array([0, 1, 0]))
    assert not term.any() and not trunc.any()
    _, r, term, trunc, info = env.step(np.array([0, 1, 1]))
    assert term.tolist() == [True, True, False] and r.tolist() == [1.0, -1.0, 0.0]
    obs, r, term, trunc, info = env.step(np.array([1, 1, 0]))  # copies 0, 1 restart: action ignored
    np.testing.assert_array_equal(info["cell"][:2], start[:2])
    assert r[:2].tolist() == [0.0, 0.0] and not term[:2].any() and not trunc[:2].any()
    _, _, term, trunc, _ = env.step(np.array([1, 1, 1]))  # copy 2: its 4th step, no terminal: truncated
    assert trunc.tolist() == [False, False, True] and not term[2]


def test_seeding_spaces_and_bad_input():
    a, b, c = (_make(64, layout="no_conflict", slip=0.5) for _ in range(3))
    acts = np.random.default_rng(0).integers(0, 4, (20, 64))
    runs = []
    for env, seed in ((a, 5), (b, 5), (c, 6)):
        env.reset(seed=seed)
        runs.append(np.stack([env.step(x)[0] for x in acts]))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    v = _make(8, layout="no_conflict", observation="onehot")
    obs, _ = v.reset(seed=0)
    assert obs.shape == (8, 100) and v.observation_space.contains(obs)
    with pytest.raises(ValueError, match="actions must be 8 integers"):
        v.step(np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"actions must be in \[0, 4\)"):
        v.step(np.full(8, 4))


def test_registered_episode_length_is_gymnasiums_max_episode_steps():
    """One time limit: the registration's max_episode_steps (TimeLimit / the vector env), never two
    that disagree."""
    from mpg_envs.gridworld.env import GYM_MAX_EPISODE_STEPS, GridWorldTaskEnv

    assert gymnasium.spec("mpg/GridWorldTask-v0").max_episode_steps == GYM_MAX_EPISODE_STEPS == 100
    assert GridWorldTaskEnv().max_steps == GYM_MAX_EPISODE_STEPS
    kw = dict(layout=["S...."], slip=0.0)  # a corridor without goal: never terminates

    def length(env, action=0):
        env.reset(seed=0)
        for t in range(1, 1000):
            _, _, term, trunc, _ = env.step(action)
            if term or trunc:
                assert trunc and not term
                return t
        return None

    assert length(gymnasium.make("mpg/GridWorldTask-v0", **kw)) == 100
    env = gymnasium.make("mpg/GridWorldTask-v0", max_episode_steps=7, **kw)
    assert env.spec.max_episode_steps == 7 and length(env) == 7
    assert env.unwrapped.max_steps is None  # the TimeLimit wrapper alone truncates
    assert length(gymnasium.make("mpg/GridWorldTask-v0", max_episode_steps=-1, **kw)) is None
    with pytest.raises(ValueError, match="max_episode_steps=7 instead"):
        gymnasium.make("mpg/GridWorldTask-v0", max_steps=7, **kw)
    vec = _make(2, max_episode_steps=5, **kw)
    assert vec.unwrapped.max_steps == 5
    assert _make(2, **kw).unwrapped.max_steps == 100
    with pytest.raises(ValueError, match="use max_episode_steps"):
        _make(2, max_steps=5, **kw)


def test_huge_num_envs_is_refused_before_allocating():
    """make_vec(num_envs=10**9) ended in a raw MemoryError."""
    with pytest.raises(mpg_envs.TooLargeError, match=r"num_envs=1,000,000,000 copies.*at most num_envs="):
        gymnasium.make_vec("mpg/GridWorldTask-v0", num_envs=10**9)
    with pytest.raises(ValueError, match="num_envs must be a positive integer, got 1000000000.0"):
        gymnasium.make_vec("mpg/GridWorldTask-v0", num_envs=1e9)


def test_make_vec_checks_max_episode_steps_under_its_own_name():
    """It was checked as max_steps (the vector env's other name), so the message named a parameter
    the user never passed."""
    with pytest.raises(ValueError, match="max_episode_steps must be a positive integer, got True"):
        _make(2, max_episode_steps=True)


def test_gymnasium_make_takes_max_episode_steps_true_as_one():
    """Gymnasium's make consumes max_episode_steps and its TimeLimit accepts True (an int) as 1;
    no hook of the registration sees it (documented in the README). Pinned so that a Gymnasium
    that starts refusing it is noticed."""
    env = gymnasium.make("mpg/GridWorldTask-v0", max_episode_steps=True)
    assert env.spec.max_episode_steps is True


def test_reset_options_state_starts_every_copy_there():
    """options={"state": ...} was silently ignored (every copy drawn from the start distribution)."""
    env = _make(3, layout="no_conflict", task=0)
    obs, info = env.reset(seed=0, options={"state": 7})
    assert obs.tolist() == [7, 7, 7] and info["cell"].tolist() == [7, 7, 7]
    obs, _ = env.reset(options={"state": [1, 2, 3]})
    assert obs.tolist() == [1, 2, 3]
    bads = [(2**70, "got 1180591620717411303424"), ([1, 2], r"shape \(2,\)"), (1.5, "1.5"), (-1, "-1")]
    for bad, match in bads:
        with pytest.raises(ValueError, match=match):
            env.reset(options={"state": bad})
    with pytest.raises(ValueError, match="options must be None or a dict"):
        env.reset(options="x")
