"""DCPG over a multi-task env (baselines.consensus.envtasks): networks on raw observations,
REINFORCE / A2C / PPO from rollouts, Monte Carlo evaluation.

Oracles: a linear softmax on one-hot cells is the tabular policy, so the REINFORCE estimate from
many rollouts must match the exact gradient of the task's model (paper 004 eq. 8); W = I is N
independent runs; a resumed run equals an uninterrupted one bit for bit; 2 torch.distributed ranks
give the single process's iterates (tests/test_dcpg_env_distributed.py).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from baselines.consensus.envtasks import (  # noqa: E402
    EnvAgents,
    EnvDCPGConfig,
    env_metric_fields,
    evaluate_policy,
    run_dcpg_env,
)
from mpg_envs import task_env_makers  # noqa: E402

GRID = {
    "layout": ["S..#/.W.G/....", "S.G#/.W../...."],
    "observation": "onehot",
    "max_cycles": 30,
    "slip": 0.1,
}


def _cfg(tmp_path: Path, **kw) -> EnvDCPGConfig:
    base = dict(
        env="mpg/MultiTaskGridWorld-v0", env_kwargs=dict(GRID), policy="mlp", hidden="8", alpha=0.01,
        critic_lr=0.01, iters=12, eval_every=5, eval_episodes=3, checkpoint_every=4, episodes=2,
        out=str(tmp_path),
    )  # fmt: skip
    base.update(kw)
    return EnvDCPGConfig(**base)


def _final(res) -> np.ndarray:
    return np.load(Path(res.run_dir) / "final.npz")["thetas"]


def test_reinforce_matches_the_exact_gradient_of_the_task_model():
    """hidden='' is a linear softmax on the one-hot cell: logits[s, a] = W[a, s] + b[a]."""
    from baselines.consensus.objective import TaskSet
    from mpg_envs.gridworld.env import MultiTaskGridWorldEnv

    kw = dict(layout=["S..#/.W.G"], slip=0.1, gamma=0.9)
    cfg = EnvDCPGConfig(
        env="mpg/MultiTaskGridWorld-v0", env_kwargs=dict(kw, observation="own", max_cycles=150),
        policy="mlp", hidden="", gamma=0.9, lam=0.0, episodes=2000,
    )  # fmt: skip
    local = EnvAgents(cfg, task_env_makers(cfg.env, **cfg.env_kwargs), [0])
    rng = np.random.default_rng(3)
    theta = rng.normal(0, 0.5, local.net.size)
    batch = local._episodes(0, theta)
    _, g = local.net.value_and_grad(theta, lambda f: local._loss(f(batch["x"]), batch, batch["G"]))
    est = -g
    S, A = local.obs_space.n, local.n_actions
    W, b = theta[: S * A].reshape(A, S), theta[S * A :]
    logits = W.T + b  # (S, A)
    exact, _ = TaskSet.from_env(MultiTaskGridWorldEnv(**kw)).gradient(logits[None], [0])
    want = np.concatenate([exact[0].T.ravel(), exact[0].sum(axis=0)])
    scale = np.abs(want).max()
    # seen: max error 0.0175 at 1000 episodes (scale 0.17), shrinking as 1 / sqrt(episodes); a wrong
    # weight (no gamma^t, no baseline-free return, a sign) is off by more than half the scale
    assert np.abs(est - want).max() < 0.15 * scale
    assert np.corrcoef(est, want)[0, 1] > 0.99


@pytest.mark.parametrize("gradient", ["reinforce", "a2c", "ppo"])
def test_no_communication_is_independent_runs(tmp_path, gradient):
    cfg = _cfg(tmp_path, communicate=False, gradient=gradient, lam=0.1)
    thetas = _final(run_dcpg_env(cfg))
    makers = task_env_makers(cfg.env, **cfg.env_kwargs)
    for i in range(2):  # agent i alone: its own generator, env, optimiser and critic
        local = EnvAgents(cfg.normalized(), makers, [i])
        th = local.initial()[None]
        for _ in range(cfg.iters):
            th = local.update(th, th.copy(), cfg.alpha)
        np.testing.assert_array_equal(thetas[i], th[0])


@pytest.mark.parametrize("gradient", ["reinforce", "ppo"])
def test_resume_after_a_kill_is_bit_identical(tmp_path, gradient):
    cfg = _cfg(tmp_path / "a", gradient=gradient)
    full = run_dcpg_env(cfg)
    killed = run_dcpg_env(dataclasses.replace(cfg, out=str(tmp_path / "b")), stop_after=6)
    resumed = run_dcpg_env(resume=killed.run_dir)
    np.testing.assert_array_equal(_final(full), _final(resumed))
    assert [r["iteration"] for r in full.metrics] == [r["iteration"] for r in resumed.metrics]
    for a, b in zip(full.metrics, resumed.metrics):  # evaluations and training windows as well
        assert {k: v for k, v in a.items() if k != "wall_time"} == {
            k: v for k, v in b.items() if k != "wall_time"
        }


def test_extending_a_finished_run(tmp_path):
    cfg = _cfg(tmp_path / "a", iters=8)
    longer = _final(run_dcpg_env(dataclasses.replace(cfg, iters=12)))
    short = run_dcpg_env(dataclasses.replace(cfg, out=str(tmp_path / "b")))
    with pytest.raises(ValueError, match="finished"):
        run_dcpg_env(resume=short.run_dir)
    np.testing.assert_array_equal(longer, _final(run_dcpg_env(resume=short.run_dir, iters=12)))


def test_metrics_and_final_table(tmp_path):
    cfg = _cfg(tmp_path, iters=10, eval_every=5)
    res = run_dcpg_env(cfg)
    assert set(res.metrics[0]) == set(env_metric_fields(2, True, exact=True))
    assert [r["iteration"] for r in res.metrics] == [0, 5, 10]
    last = res.metrics[-1]
    assert last["objective"] == pytest.approx(last["return_task_0"] + last["return_task_1"])
    th = res.thetas
    assert last["consensus_error"] == pytest.approx(np.linalg.norm(th - th.mean(0), axis=1).max())
    assert res.metrics[0]["train_distance_agent_0"] == 0.0  # no training episode before iteration 0
    # training window: mean length of the 5 iterations x 2 episodes before the evaluation, in (0, 30]
    assert 0 < res.metrics[1]["train_distance_agent_1"] <= 30
    z = np.load(Path(res.run_dir) / "final.npz")
    assert z["distance"].shape == z["return"].shape == z["terminated"].shape == (3, 2, 3)
    # row N (the average) in task i at the last iteration = the last row's averaged-policy metrics
    for i in range(2):
        assert z["distance"][2, i].mean() == pytest.approx(last[f"distance_task_{i}"])
        assert z["distance"][i, i].mean() == pytest.approx(last[f"distance_agent_{i}"])
    cfg_json = json.loads((Path(res.run_dir) / "config.json").read_text())
    assert cfg_json["kind"] == "dcpg-env" and cfg_json["env_kwargs"]["observation"] == "onehot"


@pytest.mark.parametrize("communicate", [True, False])
def test_exact_task_values_of_grid_world_env_runs(tmp_path, communicate):
    """Env runs on MultiTaskGridWorld log each task's exact discounted value: pinned against the
    joint env's own task models (``task_models()``, another path) on the network tabulated by hand,
    and against discounted Monte Carlo returns of the final policy."""
    import pettingzoo
    import torch

    from baselines.consensus.objective import softmax_logits
    from baselines.policies.nets import FlatNet, build_network
    from mpg_envs import exact

    res = run_dcpg_env(_cfg(tmp_path, iters=10, communicate=communicate))
    last = res.metrics[-1]
    penv = pettingzoo.make("parallel", "mpg/MultiTaskGridWorld-v0", **GRID).unwrapped
    env = task_env_makers("mpg/MultiTaskGridWorld-v0", **GRID)[0]()
    net = FlatNet(build_network("mlp", env.observation_space, 4, (8,)))
    S = penv.dynamics.n_cells
    onehot = np.eye(S, dtype=np.float32)  # the task env's "onehot" observation of each cell

    def value(theta, i):
        with torch.no_grad():
            logits = net.forward(torch.as_tensor(theta, dtype=torch.float32), torch.as_tensor(onehot))
        m = penv.task_models()[i]
        return float(exact.evaluate(m, [softmax_logits(logits.double().numpy())])[0] @ m.mu)

    th = res.thetas
    for i in range(2):
        assert last[f"exact_value_agent_{i}"] == pytest.approx(value(th[i], i), rel=1e-6, abs=1e-9)
        if communicate:
            assert last[f"exact_value_task_{i}"] == pytest.approx(
                value(th.mean(axis=0), i), rel=1e-6, abs=1e-9
            )
    who = "task" if communicate else "agent"
    assert last["exact_objective"] == pytest.approx(
        last[f"exact_value_{who}_0"] + last[f"exact_value_{who}_1"]
    )
    # discounted Monte Carlo returns of agent 0's final policy in its task
    gamma = penv.gamma
    with torch.no_grad():
        logits = net.forward(torch.as_tensor(th[0], dtype=torch.float32), torch.as_tensor(onehot))
    p = softmax_logits(logits.double().numpy())
    rng = np.random.default_rng(0)
    rets = []
    env = task_env_makers("mpg/MultiTaskGridWorld-v0", **{**GRID, "max_cycles": 400})[0]()
    for _ in range(3000):
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        g, disc, done = 0.0, 1.0, False
        while not done:
            a = int(rng.choice(4, p=p[int(np.argmax(obs))]))
            obs, r, term, trunc, _ = env.step(a)
            g += disc * r
            disc *= gamma
            done = term or trunc
        rets.append(g)
    se = np.std(rets) / np.sqrt(len(rets))
    assert abs(np.mean(rets) - last["exact_value_agent_0"]) < 4 * se + gamma**400


def test_evaluation_uses_common_random_numbers():
    """Every policy evaluated in a task at an iteration meets the same starts and uniforms: the
    same policy gives the same episodes, another iteration other ones."""
    makers = task_env_makers("mpg/MultiTaskGridWorld-v0", **GRID)
    env = makers[0]()
    uniform = lambda obs: np.zeros((len(obs), env.action_space.n))  # noqa: E731
    a = evaluate_policy(env, uniform, 0, 10, 0, 20)
    b = evaluate_policy(makers[0](), uniform, 0, 10, 0, 20)
    c = evaluate_policy(env, uniform, 0, 11, 0, 20)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    assert np.all(a[0] <= 30) and a[0].dtype == float


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(env="mpg/Congestion-v0"), "multi-task env id"),
        (dict(env_kwargs={"resolution": 0}, env="mpg/IndoorNav-v0"), "resolution"),
        (dict(env_kwargs={"nope": 1}), "unknown env keyword"),
        (dict(policy="cnn"), "policy='cnn' reads images"),
        (dict(gradient="montecarlo"), "gradient"),
        (dict(eval_episodes=1), "eval_episodes"),
        (dict(alpha=0.0), "alpha"),
        (dict(gamma=1.5), "gamma"),
        (dict(hidden="a,b"), "hidden"),
        (dict(hidden="auto"), "hidden"),
        (dict(env_kwargs=[1]), "env_kwargs"),
    ],
)
def test_bad_input_is_refused_before_a_folder(tmp_path, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        run_dcpg_env(_cfg(tmp_path, **kw))
    assert not any(tmp_path.iterdir())


def test_cli_env_runs_and_refuses_grid_options(tmp_path):
    base = [sys.executable, "-m", "baselines", "dcpg", "--no-progress", "--out", str(tmp_path)]
    env = ["--env", "mpg/MultiTaskGridWorld-v0", "--env-kwargs", "layout=no_conflict", "observation=onehot",
           "max_cycles=20"]  # fmt: skip
    ok = subprocess.run(
        [*base, *env, "--policy", "mlp", "--hidden", "8", "--iters", "4", "--eval-every", "2",
         "--eval-episodes", "2"], capture_output=True, text=True,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    (run,) = list(tmp_path.iterdir())
    bad = subprocess.run([*base, *env, "--slip", "0.1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--slip: not an option" in bad.stderr
    resume = [sys.executable, "-m", "baselines", "dcpg", "--no-progress", "--resume", str(run)]
    resume += ["--iters", "6"]
    again = subprocess.run(resume, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert json.loads((run / "config.json").read_text())["iters"] == 6
    assert len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize("command", ["train", "sb3"])
def test_exact_model_commands_point_navigation_users_to_dcpg_env(tmp_path, command):
    p = subprocess.run(
        [sys.executable, "-m", "baselines", command, "--env", "mpg/IndoorNav-v0", "--out", str(tmp_path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert p.returncode == 2 and "dcpg --env mpg/IndoorNav-v0" in p.stderr and "exact" in p.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(hidden="100000000"), "networks of d = "),
        (dict(episodes=10**7), "a batch of 10,000,000 episodes"),
    ],
)
def test_sizes_over_the_memory_limit_are_refused_before_allocating(tmp_path, kw, match):
    from mpg_envs import TooLargeError

    with pytest.raises(TooLargeError, match=match):
        run_dcpg_env(_cfg(tmp_path, **kw))
    assert not any(tmp_path.iterdir())


def test_network_size_is_the_built_network_size():
    import gymnasium

    from baselines.policies.nets import FlatNet, build_network, network_size

    for res in (55, 64, 103):
        space = gymnasium.spaces.Box(0, 255, (res, res, 3), np.uint8)
        for hidden in ((1024,), (7,)):
            d, _ = network_size("cnn", space, 25, hidden)
            assert d == FlatNet(build_network("cnn", space, 25, hidden)).size
    space = gymnasium.spaces.Discrete(12)
    assert network_size("mlp", space, 4, (8, 5))[0] == FlatNet(build_network("mlp", space, 4, (8, 5))).size


def test_resume_refuses_an_edited_config(tmp_path):
    from baselines.runs import DamagedRunError

    killed = run_dcpg_env(_cfg(tmp_path), stop_after=5)
    path = Path(killed.run_dir) / "config.json"
    data = json.loads(path.read_text())
    data["env_kwargs"]["max_cycles"] = 10
    path.write_text(json.dumps(data))
    with pytest.raises(DamagedRunError, match="env_kwargs"):
        run_dcpg_env(resume=killed.run_dir)
    data["kind"] = "dcpg"
    path.write_text(json.dumps(data))
    with pytest.raises(DamagedRunError, match="not a DCPG-env run config"):
        run_dcpg_env(resume=killed.run_dir)
