"""The Stable-Baselines3 bridge: parameter-sharing vector env semantics and exact metrics of SB3 policies."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
torch = pytest.importorskip("torch")

import pettingzoo  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402

import mpg_envs  # noqa: E402, F401
from baselines.sb3 import ExactMetricsCallback, SB3Policy, make_vec_env  # noqa: E402
from mpg_envs import exact  # noqa: E402


def _rollout(venv, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs = [venv.reset()]
    out = []
    for _ in range(steps):
        o, r, d, info = venv.step(rng.integers(0, venv.action_space.n, venv.num_envs))
        obs.append(o)
        out.append((r, d, info))
    return np.stack(obs), out


def test_seeding_one_seed_same_episodes_other_seed_differs():
    kw = dict(n_envs=3, layout="no_conflict", slip=0.5)
    a, _ = _rollout(make_vec_env("mpg/MultiTaskGridWorld-v0", seed=1, **kw), 40)
    b, _ = _rollout(make_vec_env("mpg/MultiTaskGridWorld-v0", seed=1, **kw), 40)
    c, _ = _rollout(make_vec_env("mpg/MultiTaskGridWorld-v0", seed=2, **kw), 40)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # the copies of one vector env differ from each other (each its own seed)
    N = 4
    assert not np.array_equal(a[:, 0:N], a[:, N : 2 * N])


def test_time_limit_is_a_truncation_with_terminal_observation_and_episode_stats():
    venv = make_vec_env(
        "mpg/Coordination-v0", n_envs=2, seed=0, n_agents=2, observation="vector", max_cycles=5
    )
    _, steps = _rollout(venv, 5)
    assert not any(d.any() for _, d, _ in steps[:4])
    r, d, info = steps[4]
    assert d.all()
    for i in info:
        assert i["TimeLimit.truncated"] is True and i["episode"]["l"] == 5
        assert i["terminal_observation"].shape == venv.observation_space.shape


def test_agents_that_finish_separately_keep_their_slot_until_the_copy_ends():
    # first chain, two agents: agent_0 reaches its goal S1 from S3 after two L moves
    venv = make_vec_env(
        "mpg/MultiTaskGridWorld-v0", n_envs=1, seed=0, layout="chain_reversed", observation="vector"
    )
    first = venv.reset()
    o, r, d, info = venv.step(np.array([0, 1]))  # agent_1: R in S3 -> S4
    assert not d.any()
    o, r, d, info = venv.step(np.array([0, 1]))  # agent_0 -> S1 (goal); agent_1: R reversed in S4 -> S3
    assert d.tolist() == [True, False] and r[0] == 1.0
    assert info[0]["TimeLimit.truncated"] is False and info[0]["episode"] == {"r": 1.0, "l": 2}
    assert not o[0].any()  # a dead slot sees zeros ...
    o, r, d, info = venv.step(np.array([1, 0]))  # ... whatever it plays; agent_1: L in S3 -> S2
    assert r[0] == 0.0 and not d[0] and not o[0].any()
    o, r, d, info = venv.step(np.array([1, 1]))  # agent_1: R reversed in S2 -> S1, task 2's -1
    assert d.tolist() == [True, True] and r[1] == -1.0
    assert "episode" not in info[0]  # the dead stretch is closed, not counted as an episode
    np.testing.assert_array_equal(o, first)  # the copy restarted from its start state


def test_exact_metrics_of_an_sb3_policy(tmp_path):
    torch.set_num_threads(1)
    venv = make_vec_env("mpg/Coordination-v0", n_envs=2, seed=0, n_agents=2, observation="vector")
    env = pettingzoo.make("parallel", "mpg/Coordination-v0", n_agents=2, observation="vector")
    cb = ExactMetricsCallback(env, every=256, csv_path=tmp_path / "exact.csv")
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0).learn(512, callback=cb)
    assert [r["timesteps"] for r in cb.rows] == [0, 256, 512]
    m = env.unwrapped.model()
    tables = SB3Policy(model, m.action_sizes, "vector").table(env.unwrapped.dynamics)
    assert cb.rows[-1]["nash_gap"] == pytest.approx(exact.nash_gap(m, tables).gap, rel=1e-12)
    assert (tmp_path / "exact.csv").read_text().count("\n") == 4  # header + 3 rows
    # the tabulation agrees with the actions SB3 itself samples (an independent path: predict)
    obs = env.unwrapped.dynamics.observe(env.unwrapped.dynamics.states()[:1], "vector")[0]  # (N, F)
    for i in range(2):
        draws = np.array(
            [model.predict(np.repeat(obs[i : i + 1], 4000, axis=0))[0] for _ in range(2)]
        ).ravel()
        freq = np.bincount(draws, minlength=2) / draws.size
        np.testing.assert_allclose(freq, tables[i][0], atol=0.03)


def test_cli_run_folder_resumes_and_refuses_bad_input(tmp_path, capsys):
    import csv

    from baselines.cli import main
    from baselines.sb3 import run_sb3

    kw = dict(steps=512, n_envs=2, eval_every=256, out=tmp_path, progress=False)
    run = run_sb3(env_kwargs={"n_agents": 2}, **kw)
    rows = list(csv.DictReader(open(run / "exact.csv")))
    assert [int(float(r["timesteps"])) for r in rows] == [0, 256, 512] and (run / "model.zip").exists()
    # resuming without --steps keeps the run's own length: nothing to do
    assert main(["sb3", "--resume", str(run), "--no-progress"]) == 0
    assert len(list(csv.DictReader(open(run / "exact.csv")))) == 3
    # a kill between an evaluation's row and its model save leaves a row the model has not reached
    with open(run / "exact.csv", "a") as f:
        f.write("768.0" + ",0" * (len(rows[0]) - 1) + "\n")
    # a later resume continues the step count with the saved model, rewriting rows from there on
    run_sb3(resume=run, steps=1024, progress=False)
    its = [int(float(r["timesteps"])) for r in csv.DictReader(open(run / "exact.csv"))]
    assert its == [0, 256, 512, 768, 1024]
    assert main(["sb3", "--algo", "ppo", "--steps", "0", "--out", str(tmp_path)]) == 2
    assert "steps must be a positive integer" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"kind": "dcpg"}')
    assert main(["sb3", "--resume", str(tmp_path / "other")]) == 2
    assert "not an sb3 run" in capsys.readouterr().err


def test_make_vec_env_refuses_bad_input():
    with pytest.raises(ValueError, match="env must be a registered id or a function"):
        make_vec_env(123)
    with pytest.raises(ValueError, match="env_kwargs go with a registered id"):
        make_vec_env(lambda: None, n_agents=2)
    with pytest.raises(ValueError, match="n_envs must be a positive integer, got 0"):
        make_vec_env("mpg/Coordination-v0", n_envs=0, n_agents=2, observation="vector")


def test_parameter_sharing_needs_equal_spaces():
    import gymnasium

    def make():
        env = pettingzoo.make("parallel", "mpg/Coordination-v0", n_agents=2, observation="vector")
        spaces = {"agent_0": gymnasium.spaces.Discrete(2), "agent_1": gymnasium.spaces.Discrete(3)}
        env.action_space = spaces.__getitem__
        return env

    with pytest.raises(ValueError, match="parameter sharing needs one observation and action space"):
        make_vec_env(make, n_envs=1)
