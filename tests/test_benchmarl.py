"""BenchMARL tasks for every env (skipped where BenchMARL is absent: it has its own environment, see
baselines/benchmarl_tasks.py; ``.ci/run`` builds it and runs this file there)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("benchmarl")
torch = pytest.importorskip("torch")

from benchmarl.algorithms import MappoConfig  # noqa: E402
from benchmarl.experiment import Experiment, ExperimentConfig  # noqa: E402
from benchmarl.models.mlp import MlpConfig  # noqa: E402
from tensordict import TensorDict  # noqa: E402
from torchrl.envs import TransformedEnv  # noqa: E402
from torchrl.envs.utils import ExplorationType, check_env_specs, set_exploration_type  # noqa: E402

from baselines.benchmarl_tasks import (  # noqa: E402
    DEFAULT_CONFIGS,
    ExactMetricsCallback,
    MPGTask,
    batched_env_available,
    exact_metrics,
    policy_tables,
)
from baselines.evaluation import ExactMetrics, JointEvaluator  # noqa: E402
from baselines.torchrl_envs import make_torchrl_env  # noqa: E402
from mpg_envs.model import ModelTooLargeError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

SMALL = {  # small versions of every task (fast env specs, exact models of a few states)
    "COORDINATION": {"n_agents": 2, "max_cycles": 20},
    "CONGESTION": {"n_agents": 2},
    "DISTANCING": {"n_agents": 2},
    "MULTITASK_GRIDWORLD": {"layout": "chain_reversed"},
}


def _experiment(
    tmp_path, task, frames=0, seed=0, callbacks=None, loggers=(), batch=200, checkpoint=False, **cf
):
    torch.set_num_threads(1)
    cfg = ExperimentConfig.get_from_yaml()
    cfg.max_n_frames, cfg.on_policy_collected_frames_per_batch = max(frames, batch), batch
    cfg.on_policy_n_envs_per_worker, cfg.on_policy_minibatch_size, cfg.on_policy_n_minibatch_iters = 2, 100, 2
    cfg.loggers, cfg.evaluation, cfg.render, cfg.checkpoint_at_end = list(loggers), False, False, checkpoint
    cfg.save_folder = str(tmp_path)
    for key, value in cf.items():
        setattr(cfg, key, value)
    exp = Experiment(
        task, MappoConfig.get_from_yaml(), MlpConfig.get_from_yaml(), seed=seed, config=cfg,
        critic_model_config=MlpConfig.get_from_yaml(), callbacks=callbacks,
    )  # fmt: skip
    if frames:
        exp.run()
    return exp


def test_every_task_builds_a_valid_torchrl_env():
    assert [t.name for t in MPGTask] == list(DEFAULT_CONFIGS)
    for member in MPGTask:
        task = member.get_task(SMALL[member.name])
        # the default survives a partial config
        assert task.config["observation"] == DEFAULT_CONFIGS[member.name][1]["observation"]
        env = task.get_env_fun(num_envs=3, continuous_actions=False, seed=0, device="cpu")()
        # one env of 3 copies, or one single env (BenchMARL then steps 3 of them in a SerialEnv)
        batch = (3,) if batched_env_available() else ()
        assert tuple(env.batch_size) == batch
        env = TransformedEnv(env, *task.get_env_transforms(env))  # as BenchMARL wraps it
        check_env_specs(env)
        group = next(iter(task.group_map(env)))
        assert task.group_map(env)[group] == task.parallel_env().possible_agents
        assert list(task.observation_spec(env)[group].keys()) == ["observation"]
        assert task.observation_spec(env)[group, "observation"].dtype == torch.float32
        assert list(task.state_spec(env).keys()) == ["state"]
        assert task.max_steps(env) == task.parallel_env().max_cycles
        assert task.supports_discrete_actions() and not task.supports_continuous_actions()
        td = env.rollout(3 * task.max_steps(env), break_when_any_done=False)
        assert td["next", group, "reward"].shape[: len(batch) + 2] == (
            *batch,
            3 * task.max_steps(env),
            len(task.group_map(env)[group]),
        )
    defaults = MPGTask.CONGESTION.get_from_yaml()
    assert defaults.config == DEFAULT_CONFIGS["CONGESTION"][1]


def test_bad_tasks_are_refused():
    with pytest.raises(ValueError, match=r"observation='state' of mpg/MultiTaskGridWorld-v0 has 100,000,000"):
        MPGTask.MULTITASK_GRIDWORLD.get_task({"observation": "state"})  # a one-hot of 1e8 floats
    with pytest.raises(ValueError, match="n_agents"):
        MPGTask.COORDINATION.get_task({"n_agents": 0})
    with pytest.raises(TypeError, match="config must be a dict"):
        MPGTask.COORDINATION.get_task(["n_agents", 2])


def test_tables_are_the_distribution_benchmarl_samples_from(tmp_path):
    """The tabulated policy against the action frequencies of BenchMARL's own collection policy
    (sampling mode), 20,000 draws per state, with randomised weights (far from uniform)."""
    exp = _experiment(tmp_path, MPGTask.COORDINATION.get_task(SMALL["COORDINATION"]), seed=1)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in exp.policy.parameters():
            p.add_(0.1 * torch.randn_like(p))
    tables = policy_tables(exp)
    penv = exp.task.parallel_env()
    dyn = penv.dynamics
    obs = dyn.observe(dyn.states(), "vector")  # (S, N, F)
    n = 20_000
    for s in range(dyn.n_states):
        td = TensorDict(
            {"agent": TensorDict({"observation": torch.as_tensor(obs[[s] * n])}, batch_size=[n, 2])},
            batch_size=[n],
        )
        with torch.no_grad(), set_exploration_type(ExplorationType.RANDOM):
            acts = exp.policy(td)["agent", "action"].numpy()  # (n, N)
        for i in range(2):
            freq = np.bincount(acts[:, i], minlength=tables[i].shape[1]) / n
            np.testing.assert_allclose(freq, tables[i][s], atol=4 * np.sqrt(0.25 / n))
    assert min(np.abs(t - 0.5).max() for t in tables) > 0.1  # far from uniform: the test can fail


def test_exact_metrics_after_a_short_mappo_run(tmp_path):
    exp = _experiment(
        tmp_path, MPGTask.MULTITASK_GRIDWORLD.get_task(SMALL["MULTITASK_GRIDWORLD"]), frames=400
    )
    row = exact_metrics(exp)
    tables = policy_tables(exp)
    m = exp.task.parallel_env().model()
    assert [t.shape for t in tables] == [(m.n_states, k) for k in m.action_sizes]
    assert row == {**JointEvaluator(exp.task.parallel_env().model())(tables), "welfare": row["welfare"]}
    assert row["welfare"] == pytest.approx(row["value_0"] + row["value_1"])
    assert row["nash_gap"] >= 0 and np.isfinite(row["potential"])


@pytest.mark.parametrize(
    ("name", "config"),
    [
        ("COORDINATION", {"n_agents": 2, "observation": "state"}),
        ("COORDINATION", {"n_agents": 3, "observation": "own"}),
        ("CONGESTION", {"n_agents": 2, "observation": "state"}),
        ("MULTITASK_GRIDWORLD", {"layout": "chain_slip"}),  # "own" by default
        ("MULTITASK_GRIDWORLD", {"layout": "no_conflict"}),
    ],
)
def test_index_observations_reach_the_network_as_float_one_hot(name, config):
    """Index modes ("state", "own") are fed as float32 one-hot vectors, and policy_tables converts
    the observations of the exact metrics the same way (pinned on the observations the env emits)."""
    task = getattr(MPGTask, name).get_task(config)
    env = make_torchrl_env(task.env_id, seed=3, return_state=True, **task.config)  # one env
    raw = env._env.unwrapped  # the PettingZoo env inside the wrapper
    tenv = TransformedEnv(env, *task.get_env_transforms(env))
    check_env_specs(tenv)
    group = next(iter(task.group_map(env)))
    spec = tenv.observation_spec[group, "observation"]
    assert spec.dtype == torch.float32 and spec.shape[-1] == task.onehot_size
    td = tenv.reset()
    rng = np.random.default_rng(0)
    for _ in range(15):
        obs = td[group, "observation"]
        alive = td[group, "mask"] if (group, "mask") in td.keys(True) else torch.ones(len(obs), dtype=bool)
        emitted = raw._observe(raw.possible_agents)
        want = task.network_observations(np.array([emitted[a] for a in raw.possible_agents]))
        assert obs.dtype == torch.float32
        assert torch.equal(obs[alive], want[alive])
        acts = torch.as_tensor(rng.integers(0, 2, obs.shape[0]))
        td = tenv.step(td.set((group, "action"), acts))["next"]
        if td["done"].all():
            td = tenv.reset()
    em = task.exact_metrics()
    x = task.network_observations(em.observations)
    assert x.dtype == torch.float32 and x.shape == (*em.observations.shape, task.onehot_size)
    assert torch.equal(x.argmax(-1), torch.as_tensor(em.observations)) and torch.all(x.sum(-1) == 1)


def test_default_10x10_multitask_gridworld_gets_exact_metrics(tmp_path):
    """The default layout (10x10, 4 tasks; a 572 GiB joint model) decomposes over its task models
    on the agents' own cells; with "vector" observations the run is refused before training."""
    task = MPGTask.MULTITASK_GRIDWORLD.get_task()
    assert task.config == {"layout": "no_conflict", "observation": "own"}
    exp = _experiment(tmp_path, task)
    tables = policy_tables(exp)
    assert [t.shape for t in tables] == [(100, 4)] * 4
    em = ExactMetrics("mpg/MultiTaskGridWorld-v0", layout="no_conflict", observation="own")
    assert em.decomposed
    row = exact_metrics(exp)
    assert row == pytest.approx(em(tables), rel=1e-12)
    assert list(row) == em.fields() and row["nash_gap"] > 0
    vector = MPGTask.MULTITASK_GRIDWORLD.get_task({"observation": "vector"})
    with pytest.raises(ModelTooLargeError, match="observation='own'"):
        _experiment(tmp_path, vector, callbacks=[ExactMetricsCallback()])  # in setup, before training


def _read_csv(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_callback_logs_the_exact_metrics_of_a_real_mappo_run(tmp_path):
    """MAPPO, coordination N=2, 2,000 frames (10 iterations): the callback's rows, its CSV and
    BenchMARL's csv and TensorBoard loggers hold the exact metrics of the policy; the last row
    equals ExactMetrics of the policy tabulated after training."""
    cb = ExactMetricsCallback(every=3)
    task = MPGTask.COORDINATION.get_task({"n_agents": 2})
    exp = _experiment(tmp_path, task, frames=2000, callbacks=[cb], loggers=["csv", "tensorboard"])
    assert [r["iteration"] for r in cb.rows] == [0, 3, 6, 9]
    assert [r["frames"] for r in cb.rows] == [200, 800, 1400, 2000]
    em = ExactMetrics("mpg/Coordination-v0", n_agents=2, observation="vector")
    final = em(policy_tables(exp))
    assert {k: cb.rows[-1][k] for k in final} == pytest.approx(final, rel=1e-9, abs=1e-12)
    assert cb.rows[0]["nash_gap"] != pytest.approx(final["nash_gap"])  # the policy did move
    assert _read_csv(exp.folder_name / "exact_metrics.csv") == cb.rows  # floats round-trip
    scalars = exp.folder_name / exp.name / "scalars"
    logged = np.loadtxt(scalars / "exact_nash_gap.csv", delimiter=",", ndmin=2)
    np.testing.assert_allclose(logged, [[r["iteration"], r["nash_gap"]] for r in cb.rows], rtol=1e-6)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (exp.folder_name / exp.name).glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events))
    acc.Reload()
    board = [(e.step, e.value) for e in acc.Scalars("exact_welfare")]
    np.testing.assert_allclose(board, [[r["iteration"], r["welfare"]] for r in cb.rows], rtol=1e-6)


def test_callback_on_the_10x10_multitask_gridworld_and_resume(tmp_path):
    """MAPPO on the default 10x10 layout ("own"), and rows that survive BenchMARL's checkpoint."""
    cb = ExactMetricsCallback(every=5)
    task = MPGTask.MULTITASK_GRIDWORLD.get_task()
    exp = _experiment(tmp_path, task, frames=600, callbacks=[cb], checkpoint=True)
    assert [r["iteration"] for r in cb.rows] == [0, 2]  # every 5, and the last
    final = task.exact_metrics()(policy_tables(exp))
    assert {k: cb.rows[-1][k] for k in final} == pytest.approx(final, rel=1e-9, abs=1e-12)
    (ckpt,) = (exp.folder_name / "checkpoints").glob("*.pt")
    again = Experiment.reload_from_file(str(ckpt), experiment_patch={"max_n_frames": 800})
    (cb2,) = again.callbacks
    assert cb2.rows == cb.rows and again.n_iters_performed == 3
    again.run()
    assert [r["iteration"] for r in cb2.rows] == [0, 2, 3]
    assert [r["iteration"] for r in _read_csv(exp.folder_name / "exact_metrics.csv")] == [0, 2, 3]


def test_resume_from_an_earlier_checkpoint_rewrites_the_csv(tmp_path):
    """A run checkpointed after iteration 1 went on to iteration 2 (and wrote its row) before it
    stopped; resumed from the checkpoint, iteration 2 is evaluated again: the CSV holds it once."""
    cb = ExactMetricsCallback(every=2)
    task = MPGTask.COORDINATION.get_task(SMALL["COORDINATION"])
    exp = _experiment(tmp_path, task, frames=600, callbacks=[cb], checkpoint_interval=400)
    csv_file = exp.folder_name / "exact_metrics.csv"
    assert [r["iteration"] for r in _read_csv(csv_file)] == [0, 2]
    (ckpt,) = (exp.folder_name / "checkpoints").glob("checkpoint_400.pt")
    again = Experiment.reload_from_file(str(ckpt))
    (cb2,) = again.callbacks
    assert [r["iteration"] for r in cb2.rows] == [0] and again.n_iters_performed == 2
    assert _read_csv(csv_file) == cb2.rows  # rewritten at the checkpoint's rows
    again.run()
    assert [r["iteration"] for r in _read_csv(csv_file)] == [0, 2]
    assert _read_csv(csv_file) == cb2.rows


def test_callback_refuses_a_csv_of_other_columns(tmp_path):
    """An existing CSV whose columns differ (another env, or a damaged file) is refused before
    training, not appended to with other columns."""
    task = MPGTask.COORDINATION.get_task(SMALL["COORDINATION"])
    other = tmp_path / "other.csv"
    other.write_text("iteration,frames,nash_gap\n0,1,2\n")
    with pytest.raises(ValueError, match="other.csv: its columns"):
        _experiment(tmp_path, task, callbacks=[ExactMetricsCallback(csv_path=other)])
    other.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="other.csv: its columns"):
        _experiment(tmp_path, task, callbacks=[ExactMetricsCallback(csv_path=other)])
    assert other.read_bytes() == b"\xff\xfe\x00garbage"  # untouched
    shared = tmp_path / "shared.csv"  # the same columns: two runs append to one file
    for seed in (0, 1):
        _experiment(tmp_path, task, frames=200, seed=seed, callbacks=[ExactMetricsCallback(csv_path=shared)])
    assert len(_read_csv(shared)) == 2


def test_callback_names_the_iteration_of_a_broken_policy(tmp_path):
    cb = ExactMetricsCallback()
    exp = _experiment(tmp_path, MPGTask.COORDINATION.get_task(SMALL["COORDINATION"]), callbacks=[cb])
    with torch.no_grad():
        for p in exp.policy.parameters():
            p.fill_(float("nan"))  # a diverged network
    with pytest.raises(ValueError, match=r"after iteration 0: probs\[0\] has non-finite entries"):
        cb.evaluate()
    assert cb.rows == []


def test_bad_callbacks_are_refused(tmp_path):
    for every in (0, -1, 1.5, "2", True, None, float("nan")):
        with pytest.raises(ValueError, match="every"):
            ExactMetricsCallback(every=every)
    for path in (3, b"x.csv", ["a"]):
        with pytest.raises(TypeError, match="csv_path"):
            ExactMetricsCallback(csv_path=path)
    with pytest.raises(ValueError, match="csv_path must name a file"):
        ExactMetricsCallback(csv_path=" ")
    with pytest.raises(ValueError, match="not attached"):
        ExactMetricsCallback().evaluate()
    task = MPGTask.COORDINATION.get_task(SMALL["COORDINATION"])
    with pytest.raises(ValueError, match="csv_path must be a file"):
        _experiment(tmp_path, task, callbacks=[ExactMetricsCallback(csv_path=tmp_path)])
    with pytest.raises(ValueError, match="does not exist"):
        _experiment(tmp_path, task, callbacks=[ExactMetricsCallback(csv_path=tmp_path / "no" / "x.csv")])
    cb = ExactMetricsCallback(csv_path=None)
    _experiment(tmp_path, task, frames=200, callbacks=[cb])
    assert len(cb.rows) == 1 and not list(tmp_path.glob("*/exact_metrics.csv"))


@pytest.mark.parametrize("use_batched", [True, False])
def test_experiment_collects_through_the_batched_env_when_there_is_one(tmp_path, use_batched):
    """BenchMARL wraps an env without a batch size in a SerialEnv of num_envs copies, and uses a
    batched one as it is; both train (MultiTaskGridWorld: agents that finish separately)."""
    from torchrl.envs import SerialEnv

    task = MPGTask.MULTITASK_GRIDWORLD.get_task(SMALL["MULTITASK_GRIDWORLD"])
    task.use_batched_env = use_batched
    cb = ExactMetricsCallback()
    exp = _experiment(tmp_path, task, callbacks=[cb])
    batched = use_batched and batched_env_available()
    assert tuple(exp.test_env.batch_size) == ((exp.config.evaluation_episodes,) if batched else ())
    train_env = exp.collector.env if hasattr(exp.collector, "env") else exp.env_func()
    assert isinstance(train_env.base_env, SerialEnv) != batched
    assert tuple(train_env.batch_size) == (exp.config.on_policy_n_envs_per_worker,)
    exp.config.evaluation = True  # BenchMARL's evaluation rollouts too
    exp.run()
    assert len(cb.rows) == 1 and np.isfinite(cb.rows[0]["nash_gap"])


def test_task_configs_of_the_command_line_are_the_defaults():
    import importlib.resources

    import yaml

    folder = importlib.resources.files("baselines.benchmarl_conf").joinpath("task/mpg")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".yaml"))
    assert names == sorted(f"{m.name.lower()}.yaml" for m in MPGTask)
    for member in MPGTask:
        assert (
            yaml.safe_load(folder.joinpath(f"{member.name.lower()}.yaml").read_text())
            == (DEFAULT_CONFIGS[member.name][1])
        )
    from benchmarl.environments import task_config_registry

    assert all(task_config_registry[f"mpg/{m.name.lower()}"] is m for m in MPGTask)


def test_benchmarl_command_line_runs_every_task(tmp_path):
    """``python -m benchmarl.run algorithm=mappo task=mpg/<name>``: Hydra finds the task configs
    through our search-path plugin (a multirun over every task, one process)."""
    tasks = ",".join(f"mpg/{m.name.lower()}" for m in MPGTask)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    tiny = [
        "algorithm=mappo", "experiment.max_n_frames=100",
        "experiment.on_policy_collected_frames_per_batch=100", "experiment.on_policy_n_envs_per_worker=2",
        "experiment.on_policy_minibatch_size=50",
        "experiment.on_policy_n_minibatch_iters=1", "experiment.loggers=[]", "experiment.evaluation=false",
        "experiment.render=false", "experiment.create_json=false",
    ]  # fmt: skip
    run = [sys.executable, "-m", "benchmarl.run"]
    cmd = [*run, "-m", *tiny, f"task={tasks}", f"hydra.sweep.dir={tmp_path}"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    for member in MPGTask:
        assert f"Task: mpg/{member.name.lower()}" in out.stdout
    assert len(list(tmp_path.glob("*/mappo_*"))) == len(MPGTask)  # one experiment folder each
    # an env argument the config does not list, added on the command line, reaches the env
    cmd = [*run, *tiny, "task=mpg/congestion", "+task.max_cycles=0", f"hydra.run.dir={tmp_path}/one"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode != 0 and "max_cycles must be" in out.stderr, out.stderr[-3000:]


def test_readme_benchmarl_example_runs(tmp_path, monkeypatch, capsys):
    """The README's BenchMARL script (its ```py block, run as written; it writes into the cwd)."""
    import re

    readme = (ROOT / "README.md").read_text()
    (code,) = [b for b in re.findall(r"```py\n(.*?)```", readme, flags=re.S) if "ExactMetricsCallback" in b]
    monkeypatch.chdir(tmp_path)
    torch.set_num_threads(1)
    exec(compile(code, "README.md", "exec"), {})
    assert float(capsys.readouterr().out.strip().splitlines()[-1]) >= 0
    (folder,) = tmp_path.glob("mappo_coordination_*")
    assert len(_read_csv(folder / "exact_metrics.csv")) == 2
    assert list(folder.glob("*/events.out.tfevents.*"))  # TensorBoard's scalars
