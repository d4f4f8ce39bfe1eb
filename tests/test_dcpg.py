"""Decentralized consensus policy gradient against oracles.

* the exact multi-task quantities (values, eq. 8's regularised gradient) against ``mpg_envs.exact``
  and finite differences;
* the Monte Carlo gradient against the exact one (many episodes);
* W = I is N independent runs; W = 11^T / N with gradient at the mixed point is centralised
  gradient ascent; for any doubly stochastic W the average moves by the mean local gradient;
* the §2.2 chains converge to their closed-form stationary points, which one depending on the start;
* runs resume bit-identically after a kill, also in the middle of a checkpoint; damaged files and
  bad options give clear errors.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from baselines.consensus import DCPGConfig, TaskSet, Topology, run_dcpg
from baselines.consensus import dcpg as D
from baselines.consensus.objective import relative_entropy, softmax_logits
from baselines.runs import DamagedRunError
from mpg_envs import exact
from mpg_envs.gridworld.env import MultiTaskGridWorldEnv

SMALL = ["S..#/.W.G/....", "S.G#/.W../....", "G..#/.W../...S"]


def _taskset(layout=SMALL, gamma=0.9, slip=0.1) -> tuple[MultiTaskGridWorldEnv, TaskSet]:
    env = MultiTaskGridWorldEnv(layout=layout, gamma=gamma, slip=slip)
    return env, TaskSet.from_env(env)


def _cfg(tmp_path, **kw) -> DCPGConfig:
    base = dict(
        layout=SMALL, gamma=0.9, slip=0.1, iters=40, eval_every=10, checkpoint_every=7, out=str(tmp_path)
    )
    base.update(kw)
    return DCPGConfig(**base)


# ------------------------------------------------------------------------------ exact quantities
def test_values_match_mpg_envs_exact():
    env, ts = _taskset()
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(3, ts.n_states, ts.n_actions))
    pi = softmax_logits(theta)
    v, _ = ts.values(pi, [0, 1, 2])
    for i, m in enumerate(env.task_models()):
        np.testing.assert_allclose(v[i], exact.evaluate(m, [pi[i]])[0], atol=1e-12)
        np.testing.assert_allclose(
            ts.objective(pi[:1])[0], exact.multitask_value(env.task_models(), pi[0]), atol=1e-12
        )


def test_regularised_gradient_matches_finite_differences():
    env, ts = _taskset()
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(ts.n_states, ts.n_actions))
    lam, task = 0.3, 1
    mu = rng.dirichlet(np.ones(ts.n_states))

    def L(th):
        pi = softmax_logits(th)
        v, _ = ts.values(pi[None], [task])
        return float(v[0] @ mu - lam * relative_entropy(pi))

    g, val = ts.gradient(theta[None], [task], lam, mu[None])
    assert val[0] == pytest.approx(L(theta) + lam * relative_entropy(softmax_logits(theta)), abs=1e-12)
    h = 1e-6
    fd = np.zeros_like(theta)
    for s in range(ts.n_states):
        for a in range(ts.n_actions):
            e = np.zeros_like(theta)
            e[s, a] = h
            fd[s, a] = (L(theta + e) - L(theta - e)) / (2 * h)
    np.testing.assert_allclose(g[0], fd, atol=1e-7)
    # the unregularised part is mpg_envs' exact softmax gradient
    g0, _ = ts.gradient(theta[None], [task])
    np.testing.assert_allclose(
        g0[0], exact.multitask_gradient([env.task_models()[task]], softmax_logits(theta)), atol=1e-12
    )


def test_success_and_survival_against_brute_force_monte_carlo():
    env, ts = _taskset()
    rng = np.random.default_rng(2)
    pi = softmax_logits(rng.normal(size=(ts.n_states, ts.n_actions)))
    H = 12
    success, survived = ts.outcomes(np.repeat(pi[None], 3, axis=0), [0, 1, 2], H)
    dyn = env.dynamics
    B = 40_000
    s = dyn.sample_initial(B, rng)
    hit_obstacle = np.zeros((B, 3), bool)
    steps_alive = np.zeros((B, 3))
    for _ in range(H):
        cdf = np.cumsum(pi, axis=1)[s]  # (B, 3, A)
        a = (rng.random((B, 3, 1)) >= cdf[..., :-1]).sum(axis=2)
        noise = np.stack(
            [rng.choice(len(p), size=B, p=p) for p in dyn.noise_probs], axis=1
        )  # each task's noise law
        s, _ = dyn.step(s, a, noise)
        hit_obstacle |= ts.obstacles[np.arange(3), s]
        steps_alive += ~hit_obstacle
    goal = ts.goals[np.arange(3), s]
    np.testing.assert_allclose(goal.mean(axis=0), success, atol=4 * np.sqrt(0.25 / B))
    np.testing.assert_allclose(steps_alive.mean(axis=0), survived, atol=0.1)


def test_montecarlo_gradient_is_unbiased():
    env, ts = _taskset(gamma=0.8)
    rng = np.random.default_rng(3)
    theta = rng.normal(size=(3, ts.n_states, ts.n_actions)) * 0.5
    B = 60_000
    rngs = [np.random.default_rng(10 + j) for j in range(3)]
    g = D.montecarlo_gradients(env.dynamics, theta, rngs, ts.rho, B, 60, ts.gamma)  # 0.8^60 ~ 1e-6
    ex, _ = ts.gradient(theta, [0, 1, 2])
    scale = np.abs(ex).max()
    assert np.abs(g - ex).max() < 0.03 * scale
    # a biased estimator (e.g. without the -pi baseline term) would be far off
    assert np.abs(ex).max() > 0.05


# ------------------------------------------------------------------------------ the algorithm
def _final(res) -> np.ndarray:
    return np.load(Path(res.run_dir) / "final.npz")["thetas"]


@pytest.mark.parametrize("gradient", ["exact", "montecarlo"])
def test_no_communication_is_independent_runs(tmp_path, gradient):
    cfg = _cfg(tmp_path, communicate=False, gradient=gradient, alpha=0.5, lam=0.1, iters=25, episodes=3)
    thetas = _final(run_dcpg(cfg))
    env, ts = _taskset()
    for i in range(3):  # agent i alone: its own generator, its own task, plain gradient ascent
        th = np.zeros((1, ts.n_states, ts.n_actions))
        local = D.LocalAgents(cfg, env.tasks, ts, [i])
        for _ in range(25):
            th = th + 0.5 * local.gradients(th)
        np.testing.assert_array_equal(thetas[i], th[0])


def test_averaging_weights_with_gradient_at_mixed_point_is_centralised_ascent(tmp_path):
    # the complete graph with max-degree weights is W = 11^T / N
    cfg = _cfg(tmp_path, graph="complete", weights="max_degree", gradient="exact", gradient_at="mixed",
               alpha=0.7, lam=0.05, init="normal", iters=30)  # fmt: skip
    top = Topology.make("complete", 3, weights="max_degree")
    np.testing.assert_allclose(top.weights, np.full((3, 3), 1 / 3))
    thetas = _final(run_dcpg(cfg))
    _, ts = _taskset()
    th = D._initial(cfg, ts.n_states, ts.n_actions)
    for _ in range(30):
        g, _ = ts.gradient(np.repeat(th[None], 3, axis=0), [0, 1, 2], 0.05)
        th = th + 0.7 * g.mean(axis=0)
    np.testing.assert_allclose(thetas.mean(axis=0), th, atol=1e-10)


def test_eq9_average_moves_by_the_mean_local_gradient(tmp_path):
    """For any doubly stochastic W: mean_i theta_i^{k+1} = mean_i theta_i^k + alpha mean_i g_i(theta_i^k);
    with W = 11^T / N the first step is exactly centralised, later ones differ by O(alpha^2)."""
    _, ts = _taskset()
    top = Topology.make("path", 3)
    be = D.SingleProcess(top)
    rng = np.random.default_rng(5)
    th = rng.normal(size=(3, ts.n_states, ts.n_actions))
    g, _ = ts.gradient(th, [0, 1, 2], 0.1)
    new = be.mix(th) + 0.3 * g
    np.testing.assert_allclose(new.mean(axis=0), th.mean(axis=0) + 0.3 * g.mean(axis=0), atol=1e-12)

    def gap(alpha):
        cfg = _cfg(
            Path("/nonexistent"), graph="complete", weights="max_degree", gradient="exact", alpha=alpha
        )
        local = D.LocalAgents(
            cfg, MultiTaskGridWorldEnv(layout=SMALL, gamma=0.9, slip=0.1).tasks, ts, [0, 1, 2]
        )
        avg = D.SingleProcess(Topology.make("complete", 3, weights="max_degree"))
        x = np.zeros((3, ts.n_states, ts.n_actions))
        c = np.zeros((ts.n_states, ts.n_actions))
        for _ in range(3):
            x = avg.mix(x) + alpha * local.gradients(x)
            gc, _ = ts.gradient(np.repeat(c[None], 3, axis=0), [0, 1, 2])
            c = c + alpha * gc.mean(axis=0)
        return np.abs(x.mean(axis=0) - c).max()

    g1, g2 = gap(0.2), gap(0.1)
    assert g1 > 1e-8  # eq. (9) is not centralised ascent ...
    assert 3.0 < g1 / g2 < 5.0  # ... but within O(alpha^2) of it


@pytest.mark.parametrize(
    ("layout", "init", "closed_form"),
    [
        # first chain: the best shared policy, 2 gamma / (2 - gamma^2) per paper 004 App. A
        ("chain_reversed", "zeros", lambda g, p: 2 * g / (2 - g**2)),
        # second chain: from the uniform start the gradient in S_3 is 0 -- the non-global
        # stationary point (uniform in S_3), worth gamma (2 - 4p) / (2 - gamma^2)
        ("chain_slip", "zeros", lambda g, p: g * (2 - 4 * p) / (2 - g**2)),
        # ... from a random start, a deterministic choice in S_3 (the global maximum)
        (
            "chain_slip",
            "normal",
            lambda g, p: g * (-2 * g**2 * p + g**2 + 2 * p - 1) / (g**4 * p**2 - g**4 * p + g**2 - 1),
        ),
    ],
)
def test_chains_converge_to_their_closed_form_stationary_points(tmp_path, layout, init, closed_form):
    g, p = 0.9, 0.75
    cfg = DCPGConfig(layout=layout, gamma=g, chain_p=p, gradient="exact", init=init, alpha=2.0, iters=4000,
                     eval_every=4000, checkpoint_every=4000, out=str(tmp_path))  # fmt: skip
    res = run_dcpg(cfg)
    # the agents' average sits at the stationary point; with a constant step each agent stays
    # O(alpha) away from it (the local gradients of the two tasks do not vanish there)
    assert res.metrics[-1]["objective"] == pytest.approx(closed_form(g, p), abs=2e-3)


def test_metrics_are_the_exact_quantities(tmp_path):
    res = run_dcpg(_cfg(tmp_path, gradient="montecarlo", lam=0.2, iters=12, eval_every=12, eval_log=False))
    thetas = _final(res)
    env, ts = _taskset()
    row = res.metrics[-1]
    mean_pi = softmax_logits(thetas.mean(axis=0))
    assert row["objective"] == pytest.approx(exact.multitask_value(env.task_models(), mean_pi), abs=1e-12)
    assert row["objective_reg"] == pytest.approx(row["objective"] - 3 * 0.2 * relative_entropy(mean_pi))
    for j in range(3):
        own = exact.multitask_value(env.task_models(), softmax_logits(thetas[j]))
        assert row[f"objective_agent_{j}"] == pytest.approx(own, abs=1e-12)
    dev = np.linalg.norm((thetas - thetas.mean(axis=0)).reshape(3, -1), axis=1).max()
    assert row["consensus_error"] == pytest.approx(dev)
    station = max(
        np.linalg.norm(exact.multitask_gradient(env.task_models(), softmax_logits(thetas[j])) / 3)
        for j in range(3)
    )
    assert row["stationarity"] == pytest.approx(station, rel=1e-9)
    assert [r["iteration"] for r in res.metrics] == [0, 12]


# ------------------------------------------------------------------------------ runs
@pytest.mark.parametrize("kill_after", [3, 7, 15, 39])
def test_resume_after_a_kill_is_bit_identical(tmp_path, kill_after):
    cfg = _cfg(tmp_path / "a", gradient="montecarlo", episodes=2)
    full = run_dcpg(cfg)
    killed = run_dcpg(dataclasses.replace(cfg, out=str(tmp_path / "b")), stop_after=kill_after)
    resumed = run_dcpg(resume=killed.run_dir)
    np.testing.assert_array_equal(_final(full), _final(resumed))
    a = (Path(full.run_dir) / "metrics.csv").read_text().splitlines()
    b = (Path(resumed.run_dir) / "metrics.csv").read_text().splitlines()
    assert [r.rsplit(",", 1)[0] for r in a] == [r.rsplit(",", 1)[0] for r in b]  # but wall_time


def test_kill_in_the_middle_of_a_checkpoint(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path / "a", gradient="montecarlo")
    full = _final(run_dcpg(cfg))
    calls = {"n": 0}
    real = D.atomic_savez

    def dying(path, **arrays):
        calls["n"] += 1
        if calls["n"] == 6:  # second checkpoint (iteration 14): agents 0, 1 saved, then killed
            raise KeyboardInterrupt
        real(path, **arrays)

    monkeypatch.setattr(D, "atomic_savez", dying)
    with pytest.raises(KeyboardInterrupt):
        run_dcpg(dataclasses.replace(cfg, out=str(tmp_path / "b")))
    monkeypatch.setattr(D, "atomic_savez", real)
    run_dir = next((tmp_path / "b").iterdir())
    saved = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert "agent0000_00000014.npz" in saved and "agent0002_00000014.npz" not in saved
    np.testing.assert_array_equal(full, _final(run_dcpg(resume=run_dir)))


def test_extension_and_damaged_files(tmp_path):
    cfg = _cfg(tmp_path, gradient="exact", iters=20)
    res = run_dcpg(cfg)
    longer = run_dcpg(resume=res.run_dir, iters=40)
    direct = run_dcpg(dataclasses.replace(cfg, iters=40, out=str(tmp_path / "direct")))
    np.testing.assert_array_equal(_final(longer), _final(direct))
    assert json.loads((Path(res.run_dir) / "config.json").read_text())["iters"] == 40
    ck = sorted((Path(res.run_dir) / "checkpoints").glob("agent0001_*.npz"))[-1]
    ck.write_bytes(b"garbage")
    with pytest.raises(DamagedRunError, match=ck.name):
        run_dcpg(resume=res.run_dir)
    (Path(res.run_dir) / "config.json").write_text('{"kind": "train"}')
    with pytest.raises(DamagedRunError, match="not a DCPG run config"):
        run_dcpg(resume=res.run_dir)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"alpha": 0.0}, "alpha must be"),
        ({"lam": -1.0}, "lam must be"),
        ({"gradient": "trpo"}, "gradient must be one of"),
        ({"gradient": "ppo"}, "trains a critic network: use policy=.mlp."),
        ({"policy": "mlp", "features": "pixels"}, "features must be one of"),
        ({"optimizer": "rmsprop"}, "optimizer must be one of"),
        ({"policy": "mlp", "hidden": "a,b"}, "hidden must be"),
        ({"graph": "torus"}, "torus"),
        ({"weights": "uniform"}, "uniform"),
        ({"episodes": 0}, "episodes must be"),
        ({"gamma": 1.0}, "gamma must be"),
        ({"layout": "nowhere"}, "unknown layout"),
        ({"train_start": "corner"}, "train_start must be"),
    ],
)
def test_bad_options_are_clear_errors(tmp_path, kw, match):
    with pytest.raises(ValueError, match=match):
        run_dcpg(_cfg(tmp_path, **kw))
    assert not any(tmp_path.iterdir())  # refused before anything is written


def test_cli_dcpg_runs_and_refuses_bad_input(tmp_path, capsys):
    from baselines.cli import main

    args = [
        "dcpg",
        "--layout",
        "chain_reversed",
        "--gradient",
        "exact",
        "--iters",
        "30",
        "--out",
        str(tmp_path),
    ]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "objective" in out
    run_dir = next(tmp_path.iterdir())
    assert main(["dcpg", "--resume", str(run_dir), "--iters", "50", "--no-progress"]) == 0
    assert main(["dcpg", "--resume", str(run_dir), "--alpha", "2"]) == 2
    assert "only --iters" in capsys.readouterr().err
    assert main(["dcpg", "--alpha", "-1", "--out", str(tmp_path)]) == 2
    assert "alpha must be" in capsys.readouterr().err
