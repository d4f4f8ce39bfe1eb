"""baselines: algorithms against hand-computed updates, convergence with exact advantages, resumable
runs, the CLI, and bad configurations failing before any work."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import scipy.sparse as sp

import mpg_envs
from baselines.algorithms import INPG, IPG, NPGBestResponse, ProjectedPG, make_algorithm, project_simplex
from baselines.cli import main
from baselines.estimators import ExactEstimator
from baselines.train import TrainConfig, train
from mpg_envs import congestion_v0, coordination_v0, exact
from mpg_envs.model import TabularModel


def _bandit() -> TabularModel:
    """One state, two agents with two actions; the state never changes: V = r_pi / (1 - gamma)."""
    R = np.array([[[1.0, 0.0, 0.0, 2.0]], [[0.5, 0.0, 1.0, 0.0]]])  # (N, S, A)
    return TabularModel(2, (2, 2), sp.csr_matrix(np.ones((4, 1))), R, [1.0], gamma=0.5)


def _step(alg, params, est):
    """One update of a policy holding ``params`` (logits, or probabilities for ppg)."""
    from baselines.policies import TabularDirectPolicy, TabularSoftmaxPolicy

    if alg.policy_kind == "direct":
        policy = TabularDirectPolicy(params)
        e = alg.update(policy, est)
        return policy.tables(), e
    policy = TabularSoftmaxPolicy(params)
    e = alg.update(policy, est)
    return policy.logits, e


def test_updates_equal_hand_computation():
    """On a repeated 2x2 game every quantity has a closed form."""
    m, g = _bandit(), 0.5
    est = ExactEstimator(m)
    theta = [np.array([[0.3, -0.2]]), np.array([[0.0, 0.4]])]
    p = [np.exp(t) / np.exp(t).sum() for t in theta]
    a0, a1 = p[0][0], p[1][0]
    # marginal rewards r_i(a_i) = sum_j pi_j(a_j) R_i(a_i, a_j); Q_i = r_i + g V_i; V_i = pi_i.r_i / (1 - g)
    r0 = np.array([a1 @ [1.0, 0.0], a1 @ [0.0, 2.0]])
    r1 = np.array([a0 @ [0.5, 1.0], a0 @ [0.0, 0.0]])
    V = np.array([a0 @ r0, a1 @ r1]) / (1 - g)
    Q = [r0 + g * V[0], r1 + g * V[1]]
    A = [Q[0] - V[0], Q[1] - V[1]]
    occ = 1 / (1 - g)
    new, e = _step(INPG(eta=0.2), theta, est)
    for i in range(2):
        np.testing.assert_allclose(new[i][0], theta[i][0] + 0.2 / (1 - g) * A[i], atol=1e-12)
    np.testing.assert_allclose(e.mu_values, V, atol=1e-12)
    new, _ = _step(IPG(eta=0.2), theta, est)
    for i in range(2):
        np.testing.assert_allclose(new[i][0], theta[i][0] + 0.2 * occ * p[i][0] * A[i], atol=1e-12)
    lam = 0.3
    new, _ = _step(IPG(eta=0.2, log_barrier=lam), theta, est)
    for i in range(2):
        barrier = lam / 2 * (1 - 2 * p[i][0])  # lambda / (|S||A|) * (1 - |A| pi)
        np.testing.assert_allclose(
            new[i][0], theta[i][0] + 0.2 * (occ * p[i][0] * A[i] + barrier), atol=1e-12
        )
    new, _ = _step(ProjectedPG(eta=0.2), p, est)
    for i in range(2):
        np.testing.assert_allclose(
            new[i][0], project_simplex((p[i][0] + 0.2 * occ * Q[i])[None])[0], atol=1e-12
        )


def test_npg_best_response_moves_only_the_max_gain_agent():
    m = _bandit()
    est = ExactEstimator(m)
    theta = [np.array([[0.3, -0.2]]), np.array([[0.0, 0.4]])]
    new, _ = _step(NPGBestResponse(eta=0.2, inner_steps=3), theta, est)
    moved = [not np.array_equal(a, b) for a, b in zip(new, theta)]
    assert sum(moved) == 1
    gains = []
    for i in range(2):  # replay each agent's K inner steps by hand
        th = [t.copy() for t in theta]
        for _ in range(3):
            th[i] = th[i] + 0.2 / 0.5 * exact.advantages(m, exact.softmax_policy(th))[i]
        gains.append(
            (exact.evaluate(m, exact.softmax_policy(th)) @ m.mu)[i]
            - (exact.evaluate(m, exact.softmax_policy(theta)) @ m.mu)[i]
        )
    assert moved[int(np.argmax(gains))]


def test_project_simplex():
    x = np.array([[0.2, 0.2], [3.0, -1.0], [0.5, 0.4], [-1.0, -1.0]])
    P = project_simplex(x)
    np.testing.assert_allclose(P.sum(axis=1), 1)
    np.testing.assert_allclose(P, [[0.5, 0.5], [1.0, 0.0], [0.55, 0.45], [0.5, 0.5]])


@pytest.mark.parametrize("env, kw", [(coordination_v0, {"n_agents": 3}), (congestion_v0, {"n_agents": 4})])
def test_inpg_reaches_nash_from_random_logits(env, kw):
    """Exact advantages, standard-normal initial logits (not uniform: symmetry can freeze it)."""
    e = env.parallel_env(**kw)
    m = e.model()
    est, alg = ExactEstimator(m), INPG(eta=0.1)
    for seed in range(3):
        policy = alg.make_policy(e.dynamics, m.n_states, np.random.default_rng(seed), "normal", "state")
        for _ in range(300):
            alg.update(policy, est)
        assert exact.nash_gap(m, policy.tables()).gap < 1e-3


def test_uniform_start_can_freeze():
    """Uniform play is an equilibrium of the symmetric congestion graph: INPG never moves."""
    e = congestion_v0.parallel_env(n_agents=4)
    m = e.model()
    alg = INPG(eta=0.1)
    policy = alg.make_policy(e.dynamics, m.n_states, np.random.default_rng(0), "uniform", "state")
    th = [t.copy() for t in policy.logits]
    alg.update(policy, ExactEstimator(m))
    assert max(np.abs(a - b).max() for a, b in zip(policy.logits, th)) < 1e-10


def test_resume_after_kill_gives_identical_run(tmp_path):
    cfg = TrainConfig(
        env="mpg/Congestion-v0", env_kwargs={"n_agents": 3}, algo="ipg", iters=40, checkpoint_every=10,
        eval_every=3, out=str(tmp_path),
    )  # fmt: skip
    from baselines.evaluation import evaluation_iterations

    full = train(cfg, progress=False)
    killed = train(cfg, progress=False, stop_after=25)  # last checkpoint: iteration 20
    assert json.loads((killed.run_dir / "config.json").read_text())["iters"] == 40
    resumed = train(cfg, resume=killed.run_dir, progress=False)
    for a, b in zip(full.policy.logits, resumed.policy.logits):
        np.testing.assert_array_equal(a, b)
    rows = [list(csv.DictReader(open(r.run_dir / "metrics.csv"))) for r in (full, resumed)]
    n = len(evaluation_iterations(40, 3))
    assert len(rows[0]) == len(rows[1]) == n
    for x, y in zip(*rows):
        assert {k: v for k, v in x.items() if k != "wall_time"} == {
            k: v for k, v in y.items() if k != "wall_time"
        }
    np.testing.assert_array_equal(full.snapshots, resumed.snapshots)
    assert (resumed.run_dir / "final.npz").exists() and (resumed.run_dir / "checkpoint.npz").exists()
    l1 = list(csv.DictReader(open(resumed.run_dir / "l1_accuracy.csv")))
    assert len(l1) == n and float(l1[-1]["l1_accuracy"]) == 0.0 and float(l1[0]["l1_accuracy"]) > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "mpg/Nope-v0"], "unknown env"),
        (["--algo", "sgd"], "unknown algorithm"),
        (["--estimator", "oracle"], "unknown estimator"),
        (["--eta", "0"], "eta must be a finite number > 0, got 0.0"),
        (["--eta", "-0.1"], "eta must be a finite number > 0, got -0.1"),
        (["--stop-l1", "nan"], "stop_l1 must be a finite number >= 0, got nan"),
        (["--algo", "ppg", "--log-barrier", "0.1"], "--log-barrier is not an option of ppg"),
        (["--algo", "ipg", "--inner-steps", "3"], "--inner-steps is not an option of ipg"),
        (
            ["--estimator", "exact", "--horizon", "5"],
            "--horizon is not an option of inpg or of the exact estimator",
        ),
        (
            ["--algo", "nn_pg", "--optimizer", "rmsprop"],
            "optimizer must be one of ['sgd', 'adam'], got 'rmsprop'",
        ),
        (["--stop-rule", "never"], "unknown stop_rule 'never'"),
        (["--estimator", "sampled", "--batch", "0"], "batch must be an integer >= 1, got 0"),
        (["--iters", "0"], "iters must be a positive integer"),
        (["--seeds", "-1"], "seeds must be distinct integers >= 0, got [-1]"),
        (["--env-kwargs", "n_agents=0"], "n_agents must be a positive integer"),
        (["--env", "mpg/MultiTaskGridWorld-v0", "--obs", "state"], "trains on per-task models"),
        (["--env", "mpg/MultiTaskGridWorld-v0", "--estimator", "sampled"], "needs the joint model"),
    ],
)
def test_bad_configs_fail_before_work(tmp_path, capsys, argv, message):
    assert main(["train", "--out", str(tmp_path), "--no-progress", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # no run folder was created


def test_cli_train_and_list(tmp_path, capsys):
    assert main(["train", "--env", "mpg/Coordination-v0", "--env-kwargs", "n_agents=2", "--iters", "5",
                 "--seeds", "0", "1", "--out", str(tmp_path), "--no-progress"]) == 0  # fmt: skip
    assert len(list(tmp_path.iterdir())) == 2
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "mpg/Coordination-v0" in out and "npg_br" in out and "chen2022-coordination" in out


def test_algorithm_arguments_validated():
    with pytest.raises(ValueError, match="eta must be a finite number > 0, got 0.0"):
        make_algorithm("inpg", eta=0.0)
    with pytest.raises(ValueError, match="inner_steps"):
        make_algorithm("npg_br", inner_steps=0)
    with pytest.raises(ValueError, match=r"ppg has no option\(s\) \['log_barrier'\]"):
        make_algorithm("ppg", log_barrier=0.1)
    with pytest.raises(ValueError, match="unknown algorithm"):
        make_algorithm("trpo")


def test_l1_accuracy_matches_l1_distance(tmp_path):
    """The run's L1-accuracy curve equals exact.l1_distance(snapshot policy, final policy)."""
    from baselines.train import l1_accuracy

    res = train(TrainConfig(env="mpg/Congestion-v0", env_kwargs={"n_agents": 2}, iters=6, out=str(tmp_path)),
                progress=False)  # fmt: skip
    final = [p[:, :k] for p, k in zip(res.snapshots[-1], (2, 2))]
    expected = [exact.l1_distance([p[:, :2] for p in snap], final) for snap in res.snapshots]
    np.testing.assert_allclose(l1_accuracy(res.snapshots), expected, rtol=1e-6)
    assert expected[0] > 0


def _authors_loop(algo, policy, estimator, rule: str, tol: float, max_iters: int):
    """Literal port of the stop logic of paper 001's scripts (npg.py / npg_routing.py and
    pg_routing.py / congestionMPG_plots.py): returns their policy history."""
    if rule == "fox2022-npg":
        hist = []
        for t in range(max_iters):
            current = policy.tables()
            algo.update(policy, estimator)
            hist.append(current)
            if t > 1 and exact.l1_distance(hist[t], hist[t - 1]) < tol:
                return hist
        return hist
    hist = [policy.tables()]
    for t in range(max_iters):
        algo.update(policy, estimator)
        hist.append(policy.tables())
        if exact.l1_distance(hist[t], hist[t - 1]) < tol:
            return hist
    return hist


@pytest.mark.parametrize(
    "algo, rule, tol",
    [("inpg", "fox2022-npg", 1e-3), ("ppg", "fox2022-pg", 1e-3), ("ppg", "fox2022-pg", 1e-10)],
)
def test_stop_rules_match_the_authors_loops(tmp_path, algo, rule, tol):
    """Same final policy and iteration count as the authors' loops, run on the exact estimator."""
    eta = 1e-3 if algo == "ppg" else 0.05
    cfg = TrainConfig(
        env="mpg/Distancing-v0",
        env_kwargs={"n_agents": 3},
        algo=algo,
        algo_kwargs={"eta": eta},
        init="uniform",
        iters=400,
        stop_l1=tol,
        stop_rule=rule,
        out=str(tmp_path),
    )
    res = train(cfg, progress=False)
    env = mpg_envs.distancing_v0.parallel_env(n_agents=3)
    model = env.model()
    alg = make_algorithm(algo, eta=eta)
    policy = alg.make_policy(env.dynamics, model.n_states, np.random.default_rng(0), "uniform", "state")
    hist = _authors_loop(alg, policy, ExactEstimator(model), rule, tol, cfg.iters)
    assert res.stopped and len(hist) - 1 < cfg.iters
    assert int(res.metrics[-1]["iteration"]) == len(hist) - 1
    for a, b in zip(res.policies, hist[-1]):
        np.testing.assert_allclose(a, b, atol=1e-12)
    # our own rule stops at the first t >= 1 with d_t < tol, one iteration earlier or equal
    ours = train(TrainConfig(**{**cfg.__dict__, "stop_rule": "l1"}), progress=False)
    assert int(ours.metrics[-1]["iteration"]) <= len(hist) - 1


def test_a_diverging_run_is_refused_with_its_iteration(tmp_path):
    """A step size that overflows the logits ends the run with an error naming the iteration and
    the folder that keeps the iterations before, not with a NaN policy passed on to the metrics."""
    cfg = TrainConfig(
        env="mpg/Coordination-v0", env_kwargs={"n_agents": 2}, algo="inpg", algo_kwargs={"eta": 1e308},
        iters=20, out=str(tmp_path),
    )  # fmt: skip
    msg = r"iteration 1: the policy is not finite .*lower the step size.*keeps"
    with pytest.raises(ValueError, match=msg):
        train(cfg, progress=False, plot=False)


# ------------------------------------------------------------------------------ validate once
def _same_estimate(a, b) -> bool:
    return (
        np.array_equal(a.v, b.v)
        and np.array_equal(a.occupancy, b.occupancy)
        and np.array_equal(a.mu_values, b.mu_values)
        and all(np.array_equal(x, y) for x, y in zip(a.q, b.q))
    )


def _estimators(seed: int):
    from baselines.estimators import TaskwiseExactEstimator
    from baselines.sampler import SampledEstimator
    from mpg_envs import multitask_gridworld_v0

    env = coordination_v0.parallel_env(n_agents=3)
    model = env.model()
    tasks = multitask_gridworld_v0.parallel_env(layout="no_conflict").task_models()
    return [
        (ExactEstimator(model), exact.random_policy(model, seed)),
        (TaskwiseExactEstimator(tasks), [exact.random_policy(m, seed + i)[0] for i, m in enumerate(tasks)]),
        (SampledEstimator(env.dynamics, model.gamma, rng=seed), exact.random_policy(model, seed)),
    ]


def test_estimate_own_skips_the_validation_with_the_same_result(monkeypatch):
    """Our algorithms' tables are valid by construction: estimate_own gives estimate's result
    (bit for bit; the sampled estimator with the same draws) without validating every entry."""
    from baselines import sampler as sampler_module
    from baselines.estimators import estimate_own

    want = [est.estimate(pol) for est, pol in _estimators(0)]
    checked = []

    def spy(*args, **kwargs):
        checked.append(1)
        raise AssertionError("validated a trusted table")

    monkeypatch.setattr(exact, "check_policy", spy)
    monkeypatch.setattr(exact, "check_policy_table", spy)
    monkeypatch.setattr(sampler_module, "check_policy_table", spy)
    got = [estimate_own(est, pol) for est, pol in _estimators(0)]
    assert checked == []
    for a, b in zip(got, want):
        assert _same_estimate(a, b)


@pytest.mark.parametrize("bad", ["nan", "float32", "shape"])
def test_estimate_own_falls_back_to_the_validating_path(bad):
    """A diverged (NaN) table still ends with the validation's error; other dtypes and shapes go
    through estimate() as before."""
    from baselines.estimators import estimate_own

    for est, pol in _estimators(1):
        pol = [p.copy() for p in pol]
        if bad == "nan":
            pol[0][1, 0] = np.nan
            with pytest.raises(ValueError, match="NaN"):
                estimate_own(est, pol)
        elif bad == "float32":
            pol32 = [p.astype(np.float32) for p in pol]
            got, want = estimate_own(est, pol32), est.estimate(pol32)
            if not hasattr(est, "sampler"):
                assert _same_estimate(got, want)
        else:
            with pytest.raises(ValueError, match="shape"):
                estimate_own(est, [p[:-1] for p in pol])
