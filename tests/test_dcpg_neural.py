"""DCPG with neural policies (paper 004 §5.2): features, the network's gradients, the REINFORCE /
A2C / PPO local steps, no-communication runs and resumption."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.consensus import DCPGConfig, TaskSet, run_dcpg  # noqa: E402
from baselines.consensus import dcpg as D  # noqa: E402
from baselines.consensus.objective import relative_entropy, softmax_logits  # noqa: E402
from baselines.consensus.policies import MLP, task_features  # noqa: E402
from mpg_envs.gridworld.env import MultiTaskGridWorldEnv  # noqa: E402

SMALL = ["S..G/.#../....", "S.../..#./G..."]  # 3x4 grids, two tasks


def _env(slip=0.1, gamma=0.9):
    env = MultiTaskGridWorldEnv(layout=SMALL, slip=slip, gamma=gamma)
    return env, TaskSet.from_env(env)


def _cfg(tmp_path, **kw) -> DCPGConfig:
    base = dict(layout=SMALL, slip=0.1, gamma=0.9, policy="mlp", hidden="8", view=1, iters=12, eval_every=6,
                eval_log=False, checkpoint_every=5, out=str(tmp_path), alpha=0.05)  # fmt: skip
    base.update(kw)
    return DCPGConfig(**base)


def test_local_features_by_hand():
    env, _ = _env()
    f = task_features(env.tasks, "local", radius=1)  # 3 channels x 9 cells + (row, col)
    assert f.shape == (2, 12, 29)
    # task 1, cell (0, 0): the window's top row and left column are off the grid
    goal, obst, off = f[0, 0, :9].reshape(3, 3), f[0, 0, 9:18].reshape(3, 3), f[0, 0, 18:27].reshape(3, 3)
    np.testing.assert_array_equal(off, [[1, 1, 1], [1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(obst, [[0, 0, 0], [0, 0, 0], [0, 0, 1]])  # '#' at (1, 1)
    assert goal.sum() == 0
    # task 1, cell (0, 2): the goal 'G' at (0, 3) is to the right
    assert f[0, 2, :9].reshape(3, 3)[1, 2] == 1
    np.testing.assert_allclose(f[0, 6, 27:], [1 / 2, 2 / 3])  # cell (1, 2)
    # task 2 sees its own obstacle at (1, 2) from cell (0, 2): below
    assert f[1, 2, 9:18].reshape(3, 3)[2, 1] == 1 and f[0, 2, 9:18].reshape(3, 3)[2, 1] == 0
    np.testing.assert_array_equal(task_features(env.tasks, "onehot")[1], np.eye(12))


def test_network_vjp_matches_finite_differences():
    env, _ = _env()
    net = MLP(task_features(env.tasks, "local", 1), 4, (6, 5))
    rng = np.random.default_rng(0)
    th = np.stack([net.initial("normal", 0), net.initial("normal", 0) + 0.1 * rng.normal(size=net.size)])
    G = rng.normal(size=(2, 2, 12, 4))
    g = net.vjp(th, np.arange(2), G)
    h = 1e-6
    for k in rng.choice(net.size, 8, replace=False):
        e = np.zeros_like(th)
        e[:, k] = h
        fd = ((net.logits(th + e, np.arange(2)) - net.logits(th - e, np.arange(2))) * G).sum(
            axis=(1, 2, 3)
        ) / (2 * h)
        np.testing.assert_allclose(g[:, k], fd, rtol=1e-6, atol=1e-9)
    own = net.own_vjp(th, np.array([1, 0]), G[:, 0])
    for k, t in enumerate([1, 0]):
        np.testing.assert_allclose(
            own[k], net.vjp(th[k : k + 1], np.array([t]), G[k : k + 1, :1])[0], rtol=1e-12
        )
    np.testing.assert_allclose(net.own_logits(th, np.array([1, 0]))[0], net.logits(th, np.arange(2))[0, 1])


def test_exact_network_gradient_matches_finite_differences_of_the_regularised_objective(tmp_path):
    env, ts = _env()
    cfg = _cfg(tmp_path, gradient="exact", lam=0.3)
    local = D.LocalAgents(cfg, env.tasks, ts, [0, 1])
    net = local.pclass
    th = np.stack([net.initial("normal", 1), net.initial("normal", 2)])
    g = local.gradients(th)

    def L(theta, i):
        pi = softmax_logits(net.own_logits(theta[None], np.array([i])))
        return ts.values_at_start(pi, [i])[0] - 0.3 * relative_entropy(pi[0])

    h = 1e-6
    for k in np.random.default_rng(3).choice(net.size, 6, replace=False):
        for i in range(2):
            e = np.zeros(net.size)
            e[k] = h
            assert g[i, k] == pytest.approx((L(th[i] + e, i) - L(th[i] - e, i)) / (2 * h), rel=1e-5, abs=1e-9)


@pytest.mark.parametrize("gradient", ["montecarlo", "a2c"])
def test_sampled_network_gradients_are_unbiased(tmp_path, gradient):
    # a long horizon and slip: every episode ends, so the estimate targets V(mu) itself
    env, ts = _env(slip=0.3, gamma=0.8)
    cfg = _cfg(tmp_path, gradient=gradient, episodes=4000, horizon=120, gamma=0.8, slip=0.3, critic_lr=0.05)
    local = D.LocalAgents(cfg, env.tasks, ts, [0, 1])
    th = np.repeat(local.pclass.initial("normal", 5)[None], 2, axis=0)
    est = local.gradients(th)
    exact_cfg = dataclasses.replace(cfg, gradient="exact")
    exact = D.LocalAgents(exact_cfg, env.tasks, ts, [0, 1]).gradients(th)
    scale = np.abs(exact).max()
    assert np.abs(est - exact).max() < 0.1 * scale  # 4000 episodes: a few percent of the scale
    corr = np.corrcoef(est.ravel(), exact.ravel())[0, 1]
    assert corr > 0.98


def _final(res) -> np.ndarray:
    return np.load(Path(res.run_dir) / "final.npz")["thetas"]


@pytest.mark.parametrize("gradient", ["montecarlo", "ppo"])
def test_no_communication_is_independent_runs(tmp_path, gradient):
    cfg = _cfg(tmp_path, communicate=False, gradient=gradient, optimizer="adam", lam=0.1, episodes=2)
    thetas = _final(run_dcpg(cfg))
    env, ts = _env()
    for i in range(2):  # agent i alone: its own generator, task, optimiser and critic
        local = D.LocalAgents(cfg, env.tasks, ts, [i])
        th = local.pclass.initial("zeros", 0)[None]
        for _ in range(cfg.iters):
            th = local.update(th, th.copy(), cfg.alpha)
        np.testing.assert_allclose(thetas[i], th[0], rtol=1e-12, atol=1e-14)  # batched matmuls: round-off


@pytest.mark.parametrize("gradient", ["a2c", "ppo"])
def test_resume_after_a_kill_is_bit_identical(tmp_path, gradient):
    cfg = _cfg(tmp_path / "a", gradient=gradient, optimizer="adam", episodes=2)
    full = run_dcpg(cfg)
    killed = run_dcpg(dataclasses.replace(cfg, out=str(tmp_path / "b")), stop_after=7)
    resumed = run_dcpg(resume=killed.run_dir)
    np.testing.assert_array_equal(_final(full), _final(resumed))
    ck = np.load(sorted((Path(killed.run_dir) / "checkpoints").glob("agent0000_*.npz"))[0])
    assert {"critic", "adam_m", "critic_adam_v"} <= set(ck.files)


def test_metrics_and_policies_of_a_network_run(tmp_path):
    cfg = _cfg(tmp_path, gradient="exact", optimizer="adam", lam=0.05)
    res = run_dcpg(cfg)
    env, ts = _env()
    net = MLP(task_features(env.tasks, "local", 1), 4, (8,))
    pols = softmax_logits(net.logits(res.thetas.mean(axis=0)[None], np.arange(2))[0])
    np.testing.assert_allclose(res.policies, pols)
    assert not np.allclose(pols[0], pols[1])  # the tasks' features differ: so do the policies
    with pytest.raises(ValueError, match="differs between tasks"):
        res.policy
    row = res.metrics[-1]
    vals = ts.values_at_start(pols, [0, 1])
    assert row["objective"] == pytest.approx(vals.sum(), rel=1e-12)
    assert row["objective_reg"] == pytest.approx(vals.sum() - 0.05 * relative_entropy(pols).sum(), rel=1e-12)
