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
import shutil
from pathlib import Path

import numpy as np
import pytest

from baselines.consensus import DCPGConfig, TaskSet, Topology, run_dcpg
from baselines.consensus import dcpg as D
from baselines.consensus.objective import relative_entropy, softmax_logits
from baselines.consensus.policies import make_policy_class
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
        run_dcpg(resume=res.run_dir, iters=60)
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


# ------------------------------------------------------------------------------ hostile input
def _killed(tmp_path, **kw) -> Path:
    """A run killed after 10 updates (checkpoints at 7), its folder."""
    return Path(run_dcpg(_cfg(tmp_path, **kw), stop_after=10).run_dir)


def test_resume_refuses_a_finished_or_shorter_run_instead_of_looping(tmp_path, capsys):
    from baselines.cli import main

    res = run_dcpg(_cfg(tmp_path, gradient="exact"))  # 40 iterations
    with pytest.raises(ValueError, match=r"iters must be an integer >= the run's iters \(40\).*got 5"):
        run_dcpg(resume=res.run_dir, iters=5, stop_after=3)  # (the loop never ended: bounded here)
    with pytest.raises(ValueError, match="is finished .final.npz exists.; pass iters to extend it"):
        run_dcpg(resume=res.run_dir, stop_after=3)
    assert main(["dcpg", "--resume", str(res.run_dir), "--iters", "5", "--no-progress"]) == 2
    assert "iters must be an integer >=" in capsys.readouterr().err
    # a checkpoint past the iters of config.json (edited down) is refused, never looped on
    cfg_path = Path(res.run_dir) / "config.json"
    cfg_path.write_text(cfg_path.read_text().replace('"iters": 40', '"iters": 20'))
    (Path(res.run_dir) / "final.npz").unlink()
    with pytest.raises(DamagedRunError, match=r"checkpoint at iteration 40, past the run's iters \(20\)"):
        run_dcpg(resume=res.run_dir, stop_after=3)
    # a damaged final.npz of a finished run is named, with what to do
    res = run_dcpg(_cfg(tmp_path / "b", gradient="exact", iters=5))
    (Path(res.run_dir) / "final.npz").write_bytes(b"PK\x03\x04 cut")
    with pytest.raises(DamagedRunError, match="final.npz: cannot read the final results.*delete final.npz"):
        run_dcpg(resume=res.run_dir)


def test_success_horizon_is_bounded_and_fast(tmp_path):
    with pytest.raises(ValueError, match="success_horizon must be a positive integer of at most"):
        run_dcpg(_cfg(tmp_path, success_horizon=10**13))
    cfg = _cfg(tmp_path, success_horizon=10**4)
    with pytest.raises(ValueError, match=r"success_horizon=10000 would take .* over the limit of 1e\+11"):
        D.check_sizes(cfg, 6, 1600, 4)  # six 40x40 tasks: 10^4 steps of (1600, 1600) products
    assert not any(tmp_path.iterdir())
    # far horizons square the transition matrix (log2 H products): exact, and as fast as short ones
    env, ts = _taskset()
    pi = np.random.default_rng(0).dirichlet(np.ones(4), size=(3, ts.n_states))
    success, survived = ts.outcomes(pi, [0, 1, 2], 10**9)
    s_short, v_short = ts.outcomes(pi, [0, 1, 2], 10**5)  # absorbed long before (slip 0.1)
    np.testing.assert_allclose(success, s_short, atol=1e-10)
    alive_rate = ts.outcomes(pi, [0, 1, 2], 10**5 + 1)[1] - v_short  # P(no obstacle yet): constant
    np.testing.assert_allclose(survived, v_short + (10**9 - 10**5) * alive_rate, rtol=1e-9)
    for H in (1, 7, 150, 777, 3000):  # squaring (H > 3 S log2 H) agrees with H single steps
        d = ts.rho.copy()
        P = ts.transition(pi, np.arange(3))
        alive = np.zeros(3)
        for _ in range(H):
            d = np.einsum("ks,kst->kt", d, P)
            alive += 1 - (d * ts.obstacles).sum(axis=1)
        s, v = ts.outcomes(pi, [0, 1, 2], H)
        np.testing.assert_allclose(s, (d * ts.goals).sum(axis=1), atol=1e-12)
        np.testing.assert_allclose(v, alive, rtol=1e-12)


@pytest.mark.parametrize(
    "kw",
    [{"gradient": "exact"}, {"gradient": "montecarlo"}, {"policy": "mlp", "hidden": "8", "view": 1}],
    ids=["exact", "montecarlo", "mlp"],
)
def test_divergence_is_refused_naming_the_iteration(tmp_path, kw):
    cfg = _cfg(tmp_path, alpha=1e308, iters=6, eval_every=2, checkpoint_every=2, **kw)
    match = r"^iteration 1: .*the updates diverged; lower alpha \(now 1e\+308\)\); .*keeps"
    with pytest.raises(ValueError, match=match):
        run_dcpg(cfg)
    (run_dir,) = list(tmp_path.iterdir())
    assert not (run_dir / "final.npz").exists()
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0"]  # the iterations before, nothing after
    with pytest.raises(ValueError, match="^iteration 1: "):  # resuming meets the same divergence
        run_dcpg(resume=run_dir)


def test_cli_divergence_exits_2_with_the_iteration(tmp_path, capsys):
    from baselines.cli import main

    args = ["dcpg", "--layout", *SMALL, "--gradient", "exact", "--alpha", "1e308", "--iters", "5"]
    assert main([*args, "--out", str(tmp_path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "error: iteration 1:" in err and "lower alpha" in err and "Warning" not in err


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("layout", ["S.G#/.W../....", "S..#/.W.G/....", "G..#/.W../...S"]),  # same shape, other goals
        ("layout", ["S.G#/.W../....", "S..#/.W.G/...."]),  # fewer tasks: no common checkpoint
        ("layout", "no_conflict"),  # another size: it restarted from iteration 0 over its own files
        ("gradient", "exact"),
        ("policy", "mlp"),
        ("lam", 0.5),
        ("seed", 3),
    ],
)
def test_resume_refuses_an_edited_config(tmp_path, key, value):
    run_dir = _killed(tmp_path)
    path = run_dir / "config.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, key: value}))
    with pytest.raises(DamagedRunError, match=rf"config.json: differs from the config .*{key} is"):
        run_dcpg(resume=run_dir)


def test_second_writer_of_a_run_folder_is_refused(tmp_path, capsys):
    from baselines.cli import main
    from baselines.runs import RunFolder, RunInUseError

    run_dir = _killed(tmp_path)
    before = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"}
    with RunFolder(run_dir).lock():  # the first writer
        with pytest.raises(RunInUseError, match="another process .pid .* is writing this run folder"):
            run_dcpg(resume=run_dir)
        assert main(["dcpg", "--resume", str(run_dir), "--no-progress"]) == 2
        assert "is writing this run folder" in capsys.readouterr().err
        with pytest.raises(RunInUseError):
            run_dcpg(resume=run_dir, iters=80)
    after = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before  # the refused writers wrote nothing
    res = run_dcpg(resume=run_dir)  # the lock is released with its holder
    assert [r["iteration"] for r in res.metrics] == [0, 1, 2, 3, 5, 7, 10, 20, 30, 40]


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"policy": "mlp", "hidden": "100000,100000"}, r"network parameters of shape \(N, d\)"),
        ({"layout": "no_conflict", "policy": "mlp", "hidden": "100000", "view": 1}, "activations on every"),
        ({"policy": "mlp", "view": 10**5}, r"inputs of shape \(N, S, F\)"),
        ({"episodes": 10**8}, r"sampled episodes of shape \(T, B, n\)"),
        ({"horizon": 10**12}, r"sampled episodes of shape \(T, B, n\)"),
        ({"iters": 10**11, "eval_every": 1}, "the schedule and rows of"),
    ],
)
def test_sizes_are_refused_before_allocating(tmp_path, kw, match, capsys):
    from mpg_envs import TooLargeError

    with pytest.raises(TooLargeError, match=match + ".*over the memory limit"):
        run_dcpg(_cfg(tmp_path, **kw))
    assert not any(tmp_path.iterdir())
    # many tasks: the evaluation's N^2 (agent, task) pairs of dense transition tables
    with pytest.raises(TooLargeError, match=r"exact evaluation of 40 agents' policies .*over the memory"):
        D.check_sizes(_cfg(tmp_path, gradient="exact"), 40, 400, 4)


def test_cli_sizes_leave_no_run_folder(tmp_path, capsys):
    from baselines.cli import main

    for flags in (["--episodes", "100000000"], ["--policy", "mlp", "--view", "100000"],
                  ["--policy", "mlp", "--hidden", "100000,100000"], ["--horizon", "1000000000000"],
                  ["--success-horizon", "10000000000000"]):  # fmt: skip
        assert main(["dcpg", *flags, "--out", str(tmp_path / "out"), "--no-progress"]) == 2
        assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "out").exists()


def _latest(run_dir: Path, agent: int = 1) -> Path:
    return sorted((run_dir / "checkpoints").glob(f"agent{agent:04d}_*.npz"))[-1]


def _rewrite(path: Path, drop: str | None = None, **arrays) -> None:
    with np.load(path) as z:
        data = {k: z[k] for k in z.files if k != drop}
    data.update(arrays)
    np.savez(path, **data)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda d: _latest(d).write_bytes(_latest(d).read_bytes()[:300]), "agent0001_00000007.npz: cannot"),
        (lambda d: _rewrite(_latest(d), theta=np.zeros((3, 3))), r"theta array has shape \(3, 3\)"),
        (lambda d: _rewrite(_latest(d), theta=np.full((12, 4), np.nan)), "theta array has not finite"),
        (lambda d: _rewrite(_latest(d), drop="theta"), "has no theta array"),
        (lambda d: _rewrite(_latest(d), rng=np.array('{"state": 1}')), "random state is broken"),
        (lambda d: _rewrite(_latest(d), rng=np.array("not json")), "random state is broken"),
        (lambda d: _rewrite(_latest(d), drop="rng"), "has no rng array"),
        (lambda d: (shutil.rmtree(d / "checkpoints"), (d / "checkpoints").write_text("x")),
         "checkpoints: not a folder"),
        (lambda d: (d / "checkpoints" / "agent0001_junk.npz").write_text("x"), "not a checkpoint name"),
        (lambda d: (d / "metrics.csv").write_text((d / "metrics.csv").read_text().splitlines()[0] + "\n"),
         r"metrics.csv: has rows for iterations \[\], .*delete metrics.csv and the checkpoints folder"),
        (lambda d: (d / "metrics.csv").write_text("junk\n"), "metrics.csv: unexpected header; delete"),
    ],
    ids=["truncated", "theta-shape", "theta-nan", "no-theta", "rng-state", "rng-json", "no-rng",
         "checkpoints-file", "stray-name", "rows-lost", "header"],
)  # fmt: skip
def test_damaged_run_folders_are_named(tmp_path, damage, match):
    run_dir = _killed(tmp_path)
    damage(run_dir)
    with pytest.raises(DamagedRunError, match=match):
        run_dcpg(resume=run_dir)


def test_damaged_optimiser_state_is_named(tmp_path):
    run_dir = _killed(tmp_path, policy="mlp", hidden="4", view=1, gradient="a2c", optimizer="adam")
    _rewrite(_latest(run_dir), drop="critic_adam_v")
    with pytest.raises(DamagedRunError, match="has no critic_adam_v array"):
        run_dcpg(resume=run_dir)


def test_cli_layout_takes_a_one_task_grid(tmp_path, capsys):
    from baselines.cli import main

    assert D.cli_layout(["S.G"]) == ["S.G"] and D.cli_layout(["no_conflict"]) == "no_conflict"
    assert D.cli_layout(["S.G/..."]) == ["S.G/..."] and D.cli_layout(["S.G", "G.S"]) == ["S.G", "G.S"]
    flags = ["--gradient", "exact", "--iters", "3", "--out", str(tmp_path), "--no-progress"]
    assert main(["dcpg", "--layout", "S.G", *flags]) == 0
    (run_dir,) = list(tmp_path.iterdir())
    assert json.loads((run_dir / "config.json").read_text())["layout"] == ["S.G"]
    assert main(["dcpg", "--layout", "nowhere", *flags]) == 2
    assert "unknown layout 'nowhere'" in capsys.readouterr().err


Z, U = np.zeros((2, 12, 4)), np.full((2, 12, 4), 0.25)  # logits and policies of 2 agents


def _objects():
    from baselines.consensus.policies import MLP, Tabular, task_features

    env, ts = _taskset(SMALL[:2])
    return env, ts, Tabular(12, 4), MLP(task_features(env.tasks, "local", 1), 4, (8,))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda e, s, t, m: t.logits(None, [0]), r"tabular logits of shape \(K, 12, 4\), got None"),
        (lambda e, s, t, m: t.logits(np.zeros((2, 5, 4)), [0]), r"got shape \(2, 5, 4\)"),
        (lambda e, s, t, m: t.logits(Z, "ab"), "tasks must be task indices"),
        (lambda e, s, t, m: t.logits(Z, [0.5]), "tasks must be task indices"),
        (lambda e, s, t, m: t.vjp(Z, [0, 1], Z), "G must have the logits' shape"),
        (lambda e, s, t, m: t.own_logits(Z, [0]), "tasks must be 2 task indices"),
        (lambda e, s, t, m: t.initial("x", 0), "init must be one of"),
        (lambda e, s, t, m: m.logits(np.zeros((2, 7)), [0]), r"parameters of shape \(K, 276\), got shape"),
        (lambda e, s, t, m: m.logits(np.zeros((2, 276)), [5]), r"indices \[0, 2\), got \[5\]"),
        (lambda e, s, t, m: m.own_vjp(np.zeros((2, 276)), [0, 1], np.zeros((2, 12, 3))), "G must have"),
        (lambda e, s, t, m: type(m)(None, 4, (8,)), "features must be task features of shape"),
        (lambda e, s, t, m: type(m)(np.zeros((2, 12, 5)), 4, "8"), "hidden must be a sequence of widths"),
        (lambda e, s, t, m: type(m)(np.zeros((2, 12, 5)), 4, (10**6, 10**6)), "over the memory limit"),
        (lambda e, s, t, m: type(t)("12", 4), "n_states must be a positive integer, got '12'"),
        (lambda e, s, t, m: make_policy_class(None, e.tasks), "cfg must be a DCPGConfig"),
        (lambda e, s, t, m: make_policy_class(DCPGConfig(), e.task_models()), "tasks must be a non-empty"),
        (lambda e, s, t, m: TaskSet(None), "models must be a non-empty sequence"),
        (lambda e, s, t, m: TaskSet.from_env(None), "env must be a MultiTaskGridWorld-v0 env"),
        (lambda e, s, t, m: TaskSet([MultiTaskGridWorldEnv(layout="chain_slip").model()]), "single-agent"),
        (lambda e, s, t, m: s.values(None, [0, 1]), "pi must be policies"),
        (lambda e, s, t, m: s.values(np.full((2, 12, 4), np.nan), [0, 1]), "pi has non-finite entries"),
        (lambda e, s, t, m: s.values(np.ones((2, 12, 4)), [0, 1]), "pi must hold probabilities"),
        (lambda e, s, t, m: s.values(U, [0, 1.5]), "tasks must be 2 task indices"),
        (lambda e, s, t, m: s.gradient(Z, [0, 1], mu=np.ones(5) / 5), r"mu must be .*\(2, 5\)"),
        (lambda e, s, t, m: s.gradient(Z, [0, 1], lam="x"), "lam must be"),
        (lambda e, s, t, m: s.outcomes(U, [0, 1], 1.5), "horizon must be a positive"),
        (lambda e, s, t, m: D.softmax_logits("ab"), "theta must be an array of real numbers"),
    ],
)  # fmt: skip
def test_policy_classes_and_task_sets_name_wrong_objects(call, match):
    with pytest.raises(ValueError, match=match):
        call(*_objects())


def test_a_start_distribution_of_one_row_is_used_for_every_task():
    env, ts = _taskset()
    theta = np.random.default_rng(1).normal(size=(3, ts.n_states, ts.n_actions))
    mu = np.ones(ts.n_states) / ts.n_states  # before: reshaped to (3, S / 3), a wrong distribution
    g, v = ts.gradient(theta, [0, 1, 2], mu=mu)
    g3, v3 = ts.gradient(theta, [0, 1, 2], mu=np.tile(mu, (3, 1)))
    np.testing.assert_array_equal(g, g3)
    np.testing.assert_array_equal(v, v3)


def test_extreme_schedules_are_refused_or_finite(tmp_path):
    with pytest.raises(ValueError, match="ppo_epochs must be a positive integer of at most 1,000"):
        run_dcpg(_cfg(tmp_path, policy="mlp", gradient="ppo", ppo_epochs=10**20))
    res = run_dcpg(_cfg(tmp_path, gradient="exact", alpha_decay=1e308, iters=3))  # was an OverflowError
    assert [r["alpha"] for r in res.metrics] == [1.0, 0.0, 0.0, 0.0]
    res = run_dcpg(_cfg(tmp_path, gradient="exact", alpha_decay=10**30, iters=3))  # int: 2**10**30 hung
    assert [r["alpha"] for r in res.metrics] == [1.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match=r"diverged; lower alpha \(now 1.0\) or lam \(now 1e\+308\)"):
        run_dcpg(_cfg(tmp_path / "lam", gradient="exact", lam=1e308, iters=3))


def test_config_fields_of_numpy_types_and_wrong_types(tmp_path):
    res = run_dcpg(_cfg(tmp_path, gradient="exact", iters=np.int64(2), alpha=np.int64(1), out=tmp_path))
    saved = json.loads((Path(res.run_dir) / "config.json").read_text())  # was a TypeError, folder left
    assert saved["iters"] == 2 and saved["alpha"] == 1.0 and saved["out"] == str(tmp_path)
    bad = [({"hidden": None, "policy": "mlp"}, "hidden must be a str, got None"),
           ({"graph": np.eye(3)}, "graph must be a str"), ({"out": 3}, "out must be a folder")]  # fmt: skip
    for kw, match in bad:
        with pytest.raises(ValueError, match=match):
            run_dcpg(_cfg(tmp_path / "no", **kw))
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda c: c.pop("gradient"), r"missing keys \['gradient'\]"),
        (lambda c: c.update(kind="train"), "not a DCPG run config .kind 'train'"),
        (lambda c: c.update(alpha="fast"), "config.json: alpha must be a number"),
        (lambda c: c.update(layout=5), "config.json: layout must be"),
    ],
)
def test_damaged_config_json_is_named(tmp_path, edit, match):
    run_dir = _killed(tmp_path)
    path = run_dir / "config.json"
    saved = json.loads(path.read_text())
    edit(saved)
    path.write_text(json.dumps(saved))
    with pytest.raises(DamagedRunError, match=match):
        run_dcpg(resume=run_dir)
