"""``train``, its run folders, the sampler, the estimators and the policies refuse bad input clearly:
before any run folder exists and before anything large is allocated, never by hanging, never by
continuing a run on something other than what it started with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from baselines import runs
from baselines import sampler as smp
from baselines.runs import DamagedRunError, RunFolder, RunInUseError
from baselines.train import TrainConfig, train, validate_config
from mpg_envs import TooLargeError, congestion_v0, coordination_v0

SMALL = dict(env="mpg/Congestion-v0", env_kwargs={"n_agents": 2}, iters=6, checkpoint_every=2, eval_every=2)


def _run(tmp_path: Path, stop_after: int | None = 5, **kw) -> Path:
    cfg = TrainConfig(**{**SMALL, "out": str(tmp_path / "runs"), **kw})
    return train(cfg, progress=False, plot=False, stop_after=stop_after).run_dir


def _resume(run_dir: Path, **kw):
    return train(TrainConfig(), resume=run_dir, progress=False, plot=False, **kw)


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    from baselines.cli import main

    code = main([*argv, "--no-progress"])
    return code, capsys.readouterr().err


# ------------------------------------------------------------------------------ hangs
def test_a_checkpoint_past_iters_is_refused_instead_of_looping(tmp_path):
    run = _run(tmp_path, stop_after=None, iters=3, checkpoint_every=1)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "iters": 2}))  # edited to fewer iterations
    (run / "final.npz").unlink()
    # (stop_after bounds the loop that used to run forever)
    past = r"checkpoint.npz: it is at iteration 3, past the run's iters = 2"
    with pytest.raises(DamagedRunError, match=past):
        train(TrainConfig(), resume=run, progress=False, plot=False, stop_after=20)
    with pytest.raises(DamagedRunError, match=r"resume with iters >= 3"):
        train(TrainConfig(), resume=run, iters=2, progress=False, plot=False, stop_after=20)
    assert _resume(run, iters=3).iterations == 3  # extending past the checkpoint works


# ------------------------------------------------------------------------------ silently wrong
@pytest.mark.parametrize("rule", ["fox2022-npg", "fox2022-pg"])
def test_a_stop_rule_without_its_threshold_is_refused(tmp_path, capsys, rule):
    with pytest.raises(ValueError, match=f"stop_rule '{rule}' needs a threshold: stop_l1 must be > 0"):
        validate_config(TrainConfig(stop_rule=rule))
    validate_config(TrainConfig(stop_rule=rule, stop_l1=1e-5))
    validate_config(TrainConfig())  # the default: rule l1 with 0, documented as "never"
    code, err = _cli(["train", "--stop-rule", rule, "--out", str(tmp_path)], capsys)
    assert code == 2 and "needs --stop-l1" in err and not any(tmp_path.iterdir())
    code, err = _cli(["train", "--stop-rule", "l1", "--out", str(tmp_path)], capsys)
    assert code == 2 and "--stop-rule l1 needs --stop-l1" in err and not any(tmp_path.iterdir())


def test_resume_without_the_estimator_random_state_is_refused(tmp_path):
    run = _run(tmp_path, estimator="sampled", algo_kwargs={"eta": 0.01})
    ck = dict(np.load(run / "checkpoint.npz"))
    np.savez(run / "checkpoint.npz", **{k: v for k, v in ck.items() if k != "estimator_rng"})
    with pytest.raises(DamagedRunError, match=r"checkpoint.npz: no random state of the sampled estimator"):
        _resume(run)
    # the exact estimator has no random state: nothing to miss
    exact_run = _run(tmp_path / "exact")
    ck = dict(np.load(exact_run / "checkpoint.npz"))
    assert "estimator_rng" not in ck
    assert _resume(exact_run).iterations == 6


def test_a_second_writer_is_refused_before_it_writes(tmp_path):
    run = _run(tmp_path)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    with RunFolder(run).lock():  # another process writing the folder (flock is per open file)
        with pytest.raises(RunInUseError, match=r"another process \(pid \d+\) is writing this run folder"):
            _resume(run)
        with pytest.raises(RunInUseError):
            _resume(run, iters=8)
    after = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before
    assert _resume(run).iterations == 6  # the lock released, the run resumes


def test_a_fresh_run_holds_its_lock_while_it_writes(tmp_path, monkeypatch):
    seen = []
    original = RunFolder.append_metrics

    def probe(self, fields, row):
        try:
            with RunFolder(self.path).lock():
                seen.append("free")
        except RunInUseError:
            seen.append("held")
        return original(self, fields, row)

    monkeypatch.setattr(RunFolder, "append_metrics", probe)
    _run(tmp_path, stop_after=None)
    assert seen and set(seen) == {"held"}


def test_reproduction_workers_never_share_a_run_folder(tmp_path):
    """Two curves with the same config train it once (two workers resuming one interrupted folder
    would race)."""
    from baselines.experiments.common import Context, Curve, run_grid

    cfg = TrainConfig(**{**SMALL, "out": str(tmp_path / "runs")})
    ctx = Context(out=tmp_path, full=False, seeds=None, progress=False, workers=2, max_iters=None)
    res = run_grid("t", [Curve("a", [cfg]), Curve("b", [cfg])], ctx)
    assert len(list((tmp_path / "runs").iterdir())) == 1
    assert res["a"][0].run_dir == res["b"][0].run_dir


# ------------------------------------------------------------------------------ memory
@pytest.mark.parametrize(
    "make, match",
    [
        (lambda d: smp.SampledEstimator(d, 0.9, batch=10**8), "lower batch"),
        (lambda d: smp.SampledEstimator(d, 0.9, horizon=10**9), "10^9|GiB"),
        (lambda d: smp.SampledEstimator(d, 0.9, tail=10**9), r"horizon \+ tail"),
        (lambda d: smp.ForcedActionEstimator(d, 0.9, samples=10**8), "samples"),
        (lambda d: smp.ForcedActionEstimator(d, 0.9, horizon=10**8), "horizon"),
        (
            lambda d: smp.BatchSampler(d, 0).rollout([np.full((d.n_states, 2), 0.5)] * 2, 10**9, 20),
            r"rollouts of \(episodes, steps, agents\) = \(1,000,000,000, 20, 2\)",
        ),
        (
            lambda d: smp.BatchSampler(d, 0).check_policy_rollout(10**6, 10**4, "onehot"),
            "policy rollouts",
        ),
    ],
)
def test_sampler_sizes_are_refused_before_allocating(make, match):
    dyn = congestion_v0.parallel_env(n_agents=2).dynamics
    with pytest.raises(TooLargeError, match=match):
        make(dyn)


@pytest.mark.parametrize(
    "flags",
    [
        ["--estimator", "sampled", "--batch", "100000000"],
        ["--estimator", "sampled", "--horizon", "100000000"],
        ["--estimator", "sampled", "--tail", "100000000"],
        ["--estimator", "forced", "--samples", "100000000"],
        ["--estimator", "forced", "--horizon", "100000000"],
        ["--iters", "1000000000000", "--eval-every", "1"],
        ["--algo", "nn_pg", "--hidden", "100000000", "--env", "mpg/Coordination-v0"],
    ],
)
def test_train_sizes_are_refused_before_any_folder(tmp_path, capsys, flags):
    code, err = _cli(["train", *flags, "--out", str(tmp_path)], capsys)
    assert code == 2 and "over the memory limit" in err, err
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------ damaged run folders
def _damage_checkpoint(run: Path, **replace) -> None:
    ck = dict(np.load(run / "checkpoint.npz"))
    for k, v in replace.items():
        if v is None:
            ck = {key: val for key, val in ck.items() if not key.startswith(k)}
        else:
            ck[k] = v
    np.savez(run / "checkpoint.npz", **ck)


def test_damaged_run_folders_are_named(tmp_path):
    def case(name: str, damage, match: str, **kw) -> None:
        run = _run(tmp_path / name, **kw)
        damage(run)
        with pytest.raises(DamagedRunError, match=match):
            _resume(run)

    def truncate_final(run):
        _resume(run)
        data = (run / "final.npz").read_bytes()
        (run / "final.npz").write_bytes(data[: len(data) // 2])

    case("final", truncate_final, r"final.npz: cannot read the final results .*delete final.npz and resume")

    def change_algo(run):
        cfg = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps({**cfg, "algo": "ipg"}))

    case("algo", change_algo, r"checkpoint.npz: written with another config .*algo: 'inpg' -> 'ipg'")
    case(
        "params",
        lambda r: _damage_checkpoint(r, **{"policy.": None}),
        r"checkpoint.npz: its policy parameters do not fit .*missing \['logits_0', 'logits_1'\]",
    )
    case(
        "rng",
        lambda r: _damage_checkpoint(r, estimator_rng=np.array('{"rng": {"state": 5}}')),
        r"checkpoint.npz: its estimator random state is damaged",
        estimator="sampled",
    )
    case(
        "theta",
        lambda r: _damage_checkpoint(r, **{"policy.logits_0": np.zeros((3, 3))}),
        r"checkpoint.npz: policy parameter 'logits_0' has shape \(3, 3\) .*needs \(10, 2\)",
    )

    def snapshots_file(run):
        shutil.rmtree(run / "snapshots", ignore_errors=True)
        (run / "snapshots").write_text("not a folder")

    case("snapshots", snapshots_file, r"snapshots: not a folder; delete checkpoint.npz")
    case("snapshots0", snapshots_file, r"snapshots: not a folder", stop_after=1)  # before a checkpoint
    case(
        "iteration",
        lambda r: _damage_checkpoint(r, iteration=np.array("x")),
        r"checkpoint.npz: entry 'iteration' is not a scalar",
    )


def test_an_old_checkpoint_of_another_policy_kind_is_refused(tmp_path):
    """A checkpoint without the config record (older runs): the parameters themselves must fit."""
    pytest.importorskip("torch")
    run = _run(tmp_path, env="mpg/Coordination-v0")
    _damage_checkpoint(run, config=None)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "algo": "nn_pg", "algo_kwargs": {"hidden": "4"}}))
    match = r"checkpoint.npz: its policy parameters do not fit the nn_pg policy"
    with pytest.raises(DamagedRunError, match=match):
        _resume(run)


# ------------------------------------------------------------------------------ divergence
@pytest.mark.parametrize(
    "algo, kw",
    [
        ("npg_br", {"eta": 1e308}),
        ("ppg", {"eta": 1e308}),
        ("nn_pg", {"lr": 1e308, "dtype": "float64", "hidden": "4"}),
        ("nn_pg", {"lr": 1e38, "hidden": "4"}),
    ],
)
def test_a_diverged_run_names_its_iteration(tmp_path, algo, kw):
    if algo == "nn_pg":
        pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"iteration 1: the policy is not finite \(the run diverged"):
        _run(tmp_path, stop_after=None, env="mpg/Coordination-v0", algo=algo, algo_kwargs=kw)


def test_a_diverged_run_between_evaluations_names_its_iteration(tmp_path):
    """Iterations 11..19 are not evaluated: the divergence shows up inside the next update."""
    with pytest.raises(ValueError, match=r"iteration \d+: the policy is not finite"):
        _run(tmp_path, stop_after=None, iters=40, eval_every=20, eval_log=False, algo_kwargs={"eta": 1e307})


def test_a_float32_network_refuses_a_step_it_cannot_take(tmp_path, capsys):
    pytest.importorskip("torch")
    argv = ["train", "--algo", "nn_pg", "--lr", "1e308", "--env", "mpg/Coordination-v0"]
    argv += ["--out", str(tmp_path)]
    code, err = _cli(argv, capsys)
    assert code == 2 and "lr must be at most 3.4e+38 (the largest float32)" in err, err
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------------------ refusals leave no folder
@pytest.mark.parametrize(
    "flags",
    [
        ["--algo", "reinforce", "--estimator", "exact"],
        ["--algo", "reinforce", "--estimator", "forced"],
        ["--stop-rule", "fox2022-npg"],
        ["--stop-rule", "fox2022-pg"],
        ["--iters", "0"],
        ["--iters", "10000000000000"],
        ["--eval-every", "0"],
        ["--checkpoint-every", "-1"],
        ["--seeds", "-1"],
        ["--env", "mpg/Nope-v0"],
        ["--env-kwargs", "n_agents=0"],
        ["--env-kwargs", "n_agents=2", "slip=2"],
        ["--estimator", "sampled", "--horizon", "0"],
        ["--estimator", "sampled", "--batch", "-3"],
        ["--estimator", "forced_visit_sum", "--layers", "30"],
        ["--eta", "0"],
        ["--eta", "nan"],
        ["--lr", "1e308", "--algo", "nn_pg", "--env", "mpg/Coordination-v0"],
        ["--obs", "vector"],
        ["--init", "torch"],
        ["--algo", "nn_pg", "--hidden", "x", "--env", "mpg/Coordination-v0"],
        ["--env", "mpg/MultiTaskGridWorld-v0", "--estimator", "sampled"],
    ],
)
def test_refused_train_commands_leave_no_folder(tmp_path, capsys, flags):
    code, err = _cli(["train", *flags, "--out", str(tmp_path)], capsys)
    assert code == 2 and err.startswith("error: "), err
    assert not any(tmp_path.iterdir()), list(tmp_path.rglob("*"))


def test_reproduce_refuses_an_output_folder_it_cannot_write(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, err = _cli(["reproduce", "fox2022-congestion", "--out", str(tmp_path / "file" / "x")], capsys)
    assert code == 2 and "cannot create or write the output folder" in err and "choose another --out" in err


# ------------------------------------------------------------------------------ policies
@pytest.fixture(scope="module")
def coord():
    return coordination_v0.parallel_env(n_agents=2).dynamics  # S = 4, actions (2, 2)


def test_a_network_with_more_outputs_than_actions_is_refused(coord):
    torch = pytest.importorskip("torch")
    from baselines.policies.neural import TorchSoftmaxPolicy

    nets = [torch.nn.Linear(4, 3) for _ in range(2)]
    with pytest.raises(ValueError, match=r"network of agent 0 gives \(1, 3\) .*2 actions.*\(1, 2\) logits"):
        TorchSoftmaxPolicy(nets, coord.action_sizes, "onehot", coord)
    with pytest.raises(ValueError, match=r"action counts \(2, 2\).*N = 2 agents with \(3, 3\)"):
        TorchSoftmaxPolicy(nets, (3, 3), "onehot", coord)


def test_policies_refuse_wrong_objects_naming_them(coord):
    torch = pytest.importorskip("torch")
    from baselines.policies import TabularPolicy, TabularSoftmaxPolicy
    from baselines.policies.neural import TorchSoftmaxPolicy

    other = congestion_v0.parallel_env(n_agents=2).dynamics
    net = TorchSoftmaxPolicy.mlp(coord, "onehot", hidden="4", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"network of agent 0 cannot read the 'onehot' .*width 4"):
        TorchSoftmaxPolicy([torch.nn.Linear(7, 2) for _ in range(2)], (2, 2), "onehot", coord)
    with pytest.raises(ValueError, match=r"observation has shape \(10,\); this policy's .* \(4,\)"):
        net.table(other)
    for bad in (None, "mpg/Coordination-v0"):
        with pytest.raises(ValueError, match=f"dynamics must be an env's mpg_envs.core.Dynamics .*{bad!r}"):
            net.table(bad)
        with pytest.raises(ValueError, match=f"got {bad!r}"):
            TabularSoftmaxPolicy([np.zeros((4, 2))] * 2).table(bad)
    with pytest.raises(ValueError, match=r"policy of agent 0 has 2 rows; the model has S = 4 states"):
        TabularSoftmaxPolicy([np.zeros((2, 2))] * 2).table(coord)
    with pytest.raises(ValueError, match=r"observation 1 of agent 0 is not a row of its table \(rows 0..0"):
        TabularSoftmaxPolicy([np.zeros((1, 2))] * 2, obs_mode="own").table(coord)
    with pytest.raises(ValueError, match=r"action counts \(2, 2\).*\(3, 3\) actions"):
        TabularSoftmaxPolicy([np.zeros((4, 3))] * 2).table(coord)
    with pytest.raises(ValueError, match=r"logits must be a non-empty list .*got 'mpg/Coordination-v0'"):
        TabularSoftmaxPolicy("mpg/Coordination-v0")
    with pytest.raises(ValueError, match=r"tables must be a non-empty list .*got None"):
        TabularPolicy(None)
    with pytest.raises(ValueError, match="dynamics must be .*got 'x'"):
        TorchSoftmaxPolicy.mlp("x")
    with pytest.raises(ValueError, match=r"observations must have shape \(B, N = 2, F\).*got shape \(3, 7\)"):
        net.act(np.zeros((3, 7), np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"this policy's networks read \(B, N, 4\)"):
        net.act(np.zeros((3, 2, 7), np.float32), np.random.default_rng(0))


def test_tabular_observations_outside_the_table_are_refused_not_wrapped():
    """Index -1 used to read the last row and 0.5 the first: silently another state's policy."""
    from baselines.policies import TabularSoftmaxPolicy

    pol = TabularSoftmaxPolicy([np.array([[0.0, 1.0], [1.0, 0.0]])])
    with pytest.raises(ValueError, match=r"observation -1 of agent 0 is not a row of its table \(rows 0..1"):
        pol.probs(0, np.array([-1]))
    with pytest.raises(ValueError, match=r"observations of agent 0 must be an integer array, .*\[0.5\]"):
        pol.probs(0, np.array([0.5]))
    with pytest.raises(ValueError, match="observation 2 of agent 0"):
        pol.act(np.array([[2]]), np.random.default_rng(0))


def test_policy_parameters_of_the_wrong_shape_are_refused(coord):
    torch = pytest.importorskip("torch")  # noqa: F841
    from baselines.policies import TabularDirectPolicy, TabularSoftmaxPolicy
    from baselines.policies.neural import TorchSoftmaxPolicy

    pol = TabularSoftmaxPolicy([np.zeros((4, 2))] * 2)
    with pytest.raises(ValueError, match=r"logits_0 must have shape \(4, 2\), got shape \(3, 3\)"):
        pol.load_state_dict({"logits_0": np.zeros((3, 3)), "logits_1": np.zeros((4, 2))})
    with pytest.raises(ValueError, match=r"with 'logits_0'"):
        pol.load_state_dict({})
    direct = TabularDirectPolicy([np.full((4, 2), 0.5)])
    with pytest.raises(ValueError, match=r"policy of agent 0 must have shape \(4, 2\), got shape \(4, 3\)"):
        direct.set_tables([np.full((4, 3), 1 / 3)])
    net = TorchSoftmaxPolicy.mlp(coord, "onehot", hidden="4", rng=0)
    with pytest.raises(ValueError, match=r"missing keys \['agent0.0.bias'"):
        net.load_state_dict({})
    with pytest.raises(ValueError, match=r"state\['agent0.0.weight'\] has shape \(3,\); .* needs \(4, 4\)"):
        net.load_state_dict({k: np.zeros(3) for k in net.state_dict()})
    with pytest.raises(TooLargeError, match="tabular policies of 1,000,000,000,000 rows"):
        TabularSoftmaxPolicy.init(10**12, (2, 2), np.random.default_rng(0))
    with pytest.raises(TooLargeError, match="networks of 1,400,000,004 parameters"):
        TorchSoftmaxPolicy.mlp(coord, "onehot", hidden="100000000")


def test_an_estimator_refuses_an_env_instead_of_its_dynamics():
    from baselines.sampler import ForcedActionEstimator, SampledEstimator

    env = coordination_v0.parallel_env(n_agents=2)
    for cls in (SampledEstimator, ForcedActionEstimator):
        with pytest.raises(ValueError, match="dynamics must be a mpg_envs.core.Dynamics"):
            cls(env, 0.9)


def test_train_resume_must_be_a_path(tmp_path):
    with pytest.raises(ValueError, match="resume must be a run folder's path, got 5"):
        train(TrainConfig(), resume=5)
    with pytest.raises(ValueError, match="iters extends a resumed run"):
        train(TrainConfig(out=str(tmp_path)), iters=5)
    assert not any(tmp_path.iterdir())


def test_resume_of_a_folder_of_another_kind_or_without_its_options_is_refused(tmp_path):
    run = _run(tmp_path)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "layout": "no_conflict", "alpha": 0.1}))
    with pytest.raises(DamagedRunError, match=r"config.json: not a train run's config .*'alpha', 'layout'"):
        _resume(run)
    (run / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if k != "algo"}))
    with pytest.raises(DamagedRunError, match=r"config.json: no \['algo'\] entries"):
        _resume(run)


def test_more_damaged_checkpoints_are_named(tmp_path):
    """An .npy in place of the .npz, a non-bool stop flag (it used to stop the run), a NaN previous
    table, Adam without its moments (it used to restart them: another result than uninterrupted)."""

    def damaged(run: Path, match: str) -> None:
        with pytest.raises(DamagedRunError, match=match):
            _resume(run)

    run = _run(tmp_path / "npy")
    np.save(run / "x.npy", np.zeros(3))
    (run / "x.npy").replace(run / "checkpoint.npz")
    damaged(run, r"checkpoint.npz: cannot read the checkpoint \(not an .npz archive\)")
    run = _run(tmp_path / "stop")
    _damage_checkpoint(run, stop_next=np.array("x"))
    damaged(run, r"checkpoint.npz: entry 'stop_next' is not a scalar of the right type")
    run = _run(tmp_path / "prev")
    _damage_checkpoint(run, prev_0=np.full((10, 2), np.nan))
    damaged(run, r"checkpoint.npz: entry 'prev_0' is missing or not a finite float table")
    pytest.importorskip("torch")
    adam = {"optimizer": "adam", "hidden": "4"}
    run = _run(tmp_path / "adam", env="mpg/Coordination-v0", algo="nn_pg", algo_kwargs=adam)
    _damage_checkpoint(run, **{"algorithm.state": None})
    damaged(run, r"checkpoint.npz: cannot restore the policy or the optimiser \(Adam state without 'state.0")


def test_runs_module_keeps_its_names():
    assert runs.TRAIN_FINAL == ("snapshots", "policy_0", "stopped", "iteration")


def test_estimators_evaluators_and_the_sampler_name_wrong_objects():
    from baselines.algorithms import make_algorithm
    from baselines.estimators import ExactEstimator, TaskwiseExactEstimator
    from baselines.evaluation import JointEvaluator, TaskwiseEvaluator, evaluation_iterations
    from mpg_envs import exact

    env = congestion_v0.parallel_env(n_agents=2)
    model, dyn = env.model(), env.dynamics
    pol = exact.uniform_policy(model)
    for call, match in [
        (lambda: ExactEstimator("x"), "model must be a mpg_envs TabularModel .*got 'x'"),
        (lambda: JointEvaluator(None), "model must be a mpg_envs TabularModel .*got None"),
        (lambda: TaskwiseExactEstimator(3), "models must be a non-empty list of TabularModel, got 3"),
        (lambda: TaskwiseEvaluator([model, "x"]), r"models\[1\] must be a mpg_envs TabularModel"),
        (lambda: smp.BatchSampler(dyn, 0).rollout(None, 2, 3), "policies must be a sequence of 2 arrays"),
        (lambda: smp.BatchSampler(dyn, 0).rollout(pol, 1, 3, start=10**30), "start must be 1 state indices"),
        (lambda: smp.BatchSampler(dyn, 0).rollout(pol, 1, 3, start=np.nan), "start must be 1 state indices"),
        (lambda: smp.returns_to_go(np.zeros((2, 3, 2)), 1e308), r"gamma must be in \(0, 1\], got 1e\+308"),
        (lambda: smp.estimate_from_rollouts(None, 0.9, 10, (2, 2)), "rollouts must be a Rollouts"),
        (lambda: evaluation_iterations(10, 0), "every must be a positive integer, got 0"),
        (lambda: evaluation_iterations(10**12, 1), "evaluated iterations .* over the memory limit"),
        (lambda: make_algorithm("npg_br", inner_steps=10**9), "inner_steps .* of at most 10,000"),
        (lambda: validate_config(TrainConfig(out="")), "out must be a folder path .*got ''"),
    ]:
        with pytest.raises(ValueError, match=match):
            call()


def test_train_refuses_an_env_kwarg_given_twice(tmp_path):
    import subprocess
    import sys

    p = subprocess.run(
        [sys.executable, "-m", "baselines", "train", "--env", "mpg/Congestion-v0", "--env-kwargs",
         "n_agents=2", "n_agents=3", "--out", str(tmp_path)], capture_output=True, text=True,
    )  # fmt: skip
    assert p.returncode == 2 and "n_agents given more than once" in p.stderr
    assert not any(tmp_path.iterdir())


def test_a_config_that_json_cannot_record_is_refused_before_any_folder(tmp_path):
    """A numpy float32 option passed every check, then failed writing config.json after the run
    folder existed."""
    cfg = TrainConfig(env="mpg/Coordination-v0", env_kwargs={"n_agents": 2}, algo="inpg",
                      algo_kwargs={"eta": np.float32(0.1)}, iters=2, out=str(tmp_path / "runs"))  # fmt: skip
    with pytest.raises(ValueError, match=r"cannot be recorded in config.json .*float32"):
        train(cfg, progress=False)
    assert not (tmp_path / "runs").exists()
