"""``train --algo balancing_q`` and ``--algo rommeo``: report 002's exact soft value iteration, one
sweep per training iteration, with run folders, metrics and resume like every algorithm."""

from __future__ import annotations

import csv
import json
import re
import warnings

import numpy as np
import pytest

from baselines.algorithms import ALGORITHMS, BalancingQ, Pfp, Rommeo, make_algorithm
from baselines.cli import main
from baselines.estimators import ExactEstimator
from baselines.probabilistic import balancing_q, balancing_q_operator, pfp, rommeo
from baselines.train import TrainConfig, train
from mpg_envs import coordination_v0, exact, tugofwar_v0
from mpg_envs.model import TabularModel

COORD = {"env": "mpg/Coordination-v0", "env_kwargs": {"n_agents": 2}}
TUG = {"env": "mpg/TugOfWar-v0", "env_kwargs": {}}


def _cfg(tmp_path, algo, kw, game=COORD, **extra):
    return TrainConfig(**game, algo=algo, algo_kwargs=kw, out=str(tmp_path), **extra)


def _rows(run_dir):
    return list(csv.DictReader(open(run_dir / "metrics.csv")))


def test_registered_with_their_options():
    assert (
        ALGORITHMS["balancing_q"] is BalancingQ
        and ALGORITHMS["rommeo"] is Rommeo
        and ALGORITHMS["pfp"] is Pfp
    )
    assert [f.name for f in Pfp.config_fields()] == [f.name for f in BalancingQ.config_fields()]
    assert [f.name for f in BalancingQ.config_fields()] == [
        "beta", "beta_opponent", "mode", "agent", "prior", "prior_opponent",
    ]  # fmt: skip
    assert [f.name for f in Rommeo.config_fields()] == ["beta", "agent", "prior", "prior_opponent"]


def test_list_shows_them_without_the_python_only_priors(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "balancing_q" in out and "rommeo" in out and "--beta-opponent 1.0" in out
    assert "--prior" not in out


@pytest.mark.parametrize(
    "algo, kw, solve",
    [
        ("balancing_q", {"beta": 3.0, "beta_opponent": 2.0},
         lambda m, k: balancing_q(m, 3.0, 2.0, max_iter=k)),
        ("balancing_q", {"beta": 2.0, "beta_opponent": -2.0, "mode": "competitive", "agent": 1},
         lambda m, k: balancing_q(m, 2.0, -2.0, agent=1, max_iter=k)),
        ("rommeo", {"beta": 4.0}, lambda m, k: rommeo(m, 4.0, max_iter=k)),
        ("pfp", {"beta": 3.0, "beta_opponent": 2.0}, lambda m, k: pfp(m, 3.0, 2.0, max_iter=k)),
        ("pfp", {"beta": 2.0, "beta_opponent": -2.0, "mode": "competitive"},
         lambda m, k: pfp(m, 2.0, -2.0, max_iter=k)),
    ],
)  # fmt: skip
def test_iteration_k_is_k_sweeps_from_zero(tmp_path, algo, kw, solve):
    """Iteration k holds T^k 0; the fixed-point functions start at T 0 = r, so k - 1 sweeps."""
    game = TUG if kw.get("mode") == "competitive" else COORD
    res = train(_cfg(tmp_path, algo, kw, game, iters=6, eval_every=3), progress=False, plot=False)
    model = (tugofwar_v0.parallel_env() if game is TUG else coordination_v0.parallel_env(n_agents=2)).model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # max_iter reached: wanted here
        sol = solve(model, 5)
    np.testing.assert_allclose(res.policy.q, sol.q, rtol=1e-13, atol=1e-13)
    for a, b in zip(res.policies, sol.policies):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    rows = _rows(res.run_dir)
    assert [int(r["iteration"]) for r in rows] == [0, 1, 2, 3, 5, 6]
    last = rows[-1]
    assert float(last["soft_value"]) == pytest.approx(float(sol.values @ model.mu), rel=1e-12)
    # the residual of q_6 is the change of the next sweep
    same = algo == "balancing_q" and kw == {"beta": 3.0, "beta_opponent": 2.0}
    nxt = balancing_q_operator(model, sol.q, 3.0, 2.0) if same else None
    if nxt is not None:
        assert float(last["soft_residual"]) == pytest.approx(float(np.abs(nxt - sol.q).max()), rel=1e-12)
    assert float(rows[0]["soft_value"]) == 0.0  # q = 0: the priors, V = 0
    values = exact.evaluate(model, res.policies) @ model.mu  # the logged values: the marginal policies'
    for i, v in enumerate(values):
        assert float(last[f"value_{i}"]) == pytest.approx(float(v), rel=1e-12)


def test_converges_to_the_fixed_point_and_the_residual_falls(tmp_path):
    res = train(
        _cfg(tmp_path, "balancing_q", {"beta": 20.0, "beta_opponent": 20.0, "mode": "cooperative"},
             iters=400, eval_every=100, eval_log=False),
        progress=False, plot=False,
    )  # fmt: skip
    model = coordination_v0.parallel_env(n_agents=2).model()
    sol = balancing_q(model, 20.0, 20.0, tol=1e-8)
    for a, b in zip(res.policies, sol.policies):
        np.testing.assert_allclose(a, b, atol=1e-6)
    resid = [float(r["soft_residual"]) for r in _rows(res.run_dir)]
    assert resid[-1] < 1e-6 * resid[0] and all(x >= y for x, y in zip(resid, resid[1:]))
    assert float(_rows(res.run_dir)[-1]["nash_gap"]) < 0.1


@pytest.mark.parametrize(
    "algo, kw",
    [
        ("balancing_q", {"beta": 2.0, "beta_opponent": -1.0}),
        ("rommeo", {}),
        ("pfp", {"beta": 2.0, "beta_opponent": -1.0}),
    ],
)
def test_resume_after_kill_gives_identical_run(tmp_path, algo, kw):
    game = TUG if algo != "rommeo" else COORD
    cfg = _cfg(tmp_path / "a", algo, kw, game, iters=23, checkpoint_every=5, eval_every=4)
    full = train(cfg, progress=False, plot=False)
    cfg_b = _cfg(tmp_path / "b", algo, kw, game, iters=23, checkpoint_every=5, eval_every=4)
    killed = train(cfg_b, progress=False, stop_after=13)  # last checkpoint: iteration 10
    resumed = train(cfg_b, resume=killed.run_dir, progress=False, plot=False)
    np.testing.assert_array_equal(full.policy.q, resumed.policy.q)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time"} for r in rows]  # noqa: E731
    assert strip(_rows(full.run_dir)) == strip(_rows(resumed.run_dir))
    np.testing.assert_array_equal(full.snapshots, resumed.snapshots)
    extended = train(cfg_b, resume=killed.run_dir, iters=30, progress=False, plot=False)
    direct = train(_cfg(tmp_path / "c", algo, kw, game, iters=30, checkpoint_every=5, eval_every=4),
                   progress=False, plot=False)  # fmt: skip
    np.testing.assert_array_equal(extended.policy.q, direct.policy.q)


def test_seed_and_init_do_not_matter(tmp_path):
    a = train(_cfg(tmp_path / "a", "rommeo", {"beta": 2.0}, iters=4, seed=0), progress=False, plot=False)
    b = train(_cfg(tmp_path / "b", "rommeo", {"beta": 2.0}, iters=4, seed=9, init="uniform"), progress=False,
              plot=False)  # fmt: skip
    np.testing.assert_array_equal(a.policy.q, b.policy.q)


def test_priors_through_the_python_api(tmp_path):
    prior = [0.9, 0.1]
    res = train(_cfg(tmp_path, "balancing_q", {"beta": 1e-3, "beta_opponent": 1e-3, "prior": prior}, iters=3),
                progress=False, plot=False)  # fmt: skip
    np.testing.assert_allclose(res.policies[0], np.tile(prior, (4, 1)), atol=1e-3)  # beta -> 0: the prior
    assert json.loads((res.run_dir / "config.json").read_text())["algo_kwargs"]["prior"] == prior


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--algo", "balancing_q", "--beta", "-1", "--mode", "cooperative"],
         r"beta must be > 0 in mode='cooperative'.*got -1\.0"),
        (["--algo", "balancing_q", "--beta-opponent", "1", "--mode", "competitive"],
         r"beta_opponent must be < 0 in mode='competitive'.*got 1\.0"),
        (["--algo", "balancing_q", "--beta", "-1", "--beta-opponent", "1", "--mode", "competitive"],
         r"beta must be > 0 in mode='competitive'"),
        (["--algo", "balancing_q", "--mode", "zerosum"],
         r"mode must be one of \['any', 'cooperative', 'competitive'\]"),
        (["--algo", "balancing_q", "--beta", "0"], r"beta must be a finite non-zero number"),
        (["--algo", "balancing_q", "--beta-opponent", "nan"],
         r"beta_opponent must be a finite non-zero number"),
        (["--algo", "balancing_q", "--beta", "inf"], r"beta must be a finite non-zero number"),
        (["--algo", "rommeo", "--beta", "-2"], r"beta must be > 0 for rommeo.*got -2\.0"),
        (["--algo", "rommeo", "--agent", "2"], r"agent"),
        (["--algo", "rommeo", "--beta-opponent", "2"], r"--beta-opponent is not an option of rommeo"),
        (["--algo", "rommeo", "--env-kwargs", "n_agents=3"], r"rommeo supports exactly 2 agents.*N=3"),
        (["--algo", "balancing_q", "--env-kwargs", "n_agents=5"],
         r"balancing_q supports exactly 2 agents.*N=5"),
        (["--algo", "rommeo", "--estimator", "sampled"], r"rommeo needs the estimator exact"),
        (["--algo", "rommeo", "--stop-l1", "1e-3"], r"stop_l1 is not available with rommeo.*soft_residual"),
        (["--algo", "rommeo", "--obs", "own"], r"rommeo on the joint model needs obs='state'"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_any_folder(tmp_path, capsys, argv, message):
    base = ["train", "--env", "mpg/Coordination-v0", "--env-kwargs", "n_agents=2", "--iters", "2"]
    if "--env-kwargs" in argv:
        base = base[:3] + base[5:]
    status = main(base + argv + ["--out", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.startswith("error: ") and re.search(message, err), err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"prior": [0.7, 0.7]}, r"prior must be a probability table whose rows sum to 1.*sums to 1\.4"),
        ({"prior_opponent": [1.5, -0.5]}, r"prior_opponent must be non-negative"),
        ({"prior": [0.2, 0.3, 0.5]}, r"prior must be a probability table of shape \(2,\) or \(4, 2\)"),
        ({"prior": np.array([0.5, 0.5])}, r"prior must be None .* numpy array"),
        ({"prior": "uniform"}, r"prior must be None \(uniform\) or nested lists"),
        ({"prior": [0.5, float("nan")]}, r"prior must be None \(uniform\) or nested lists of finite"),
    ],
)
def test_bad_priors_are_refused_before_any_folder(tmp_path, kw, message):
    with pytest.raises((ValueError, TypeError), match=message):
        train(_cfg(tmp_path / "runs", "balancing_q", {"beta": 1.0, "beta_opponent": 1.0, **kw}, iters=2),
              progress=False)  # fmt: skip
    assert not (tmp_path / "runs").exists()


def test_an_overflowing_game_ends_with_a_clear_error():
    M = np.array([[1e307, -1e307], [-1e307, 1e307]])
    R = np.stack([M.ravel(), -M.ravel()])[:, None]
    model = TabularModel(2, (2, 2), P=np.ones((4, 1)), R=R, mu=[1.0], gamma=0.99)
    env = coordination_v0.parallel_env(n_agents=2)  # dynamics with 2 x 2 actions
    alg = make_algorithm("balancing_q", beta=1.0, beta_opponent=-1.0)
    policy = alg.make_policy(env.dynamics, model.n_states, np.random.default_rng(0), "normal", "state")
    alg.check(policy, ExactEstimator(model))
    with pytest.raises(ValueError, match=r"balancing_q's soft Q overflowed.*max \|r\| = 1e\+307.*rescale"):
        for _ in range(3000):
            alg.update(policy, ExactEstimator(model))


def test_a_huge_temperature_gives_its_limit_without_warnings(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = train(_cfg(tmp_path, "balancing_q", {"beta": 1e308, "beta_opponent": 1e308}, iters=60),
                    progress=False, plot=False)  # fmt: skip
    model = coordination_v0.parallel_env(n_agents=2).model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reference's own policies at beta = 1e308
        ref = balancing_q(model, 1e308, 1e308, max_iter=59)
    np.testing.assert_allclose(res.policy.q, ref.q, rtol=1e-13, atol=1e-13)
    assert all(np.isfinite(t).all() for t in res.policies)
