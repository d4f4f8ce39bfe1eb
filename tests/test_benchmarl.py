"""BenchMARL tasks for every env (skipped where BenchMARL is absent: it has its own environment, see
baselines/benchmarl_tasks.py; ``.ci/run`` builds it and runs this file there)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("benchmarl")
torch = pytest.importorskip("torch")

from benchmarl.algorithms import MappoConfig  # noqa: E402
from benchmarl.experiment import Experiment, ExperimentConfig  # noqa: E402
from benchmarl.models.mlp import MlpConfig  # noqa: E402
from tensordict import TensorDict  # noqa: E402
from torchrl.envs.utils import ExplorationType, check_env_specs, set_exploration_type  # noqa: E402

from baselines.benchmarl_tasks import DEFAULT_CONFIGS, MPGTask, exact_metrics, policy_tables  # noqa: E402
from baselines.evaluation import JointEvaluator  # noqa: E402

SMALL = {  # small versions of every task (fast env specs, exact models of a few states)
    "COORDINATION": {"n_agents": 2, "max_cycles": 20},
    "CONGESTION": {"n_agents": 2},
    "DISTANCING": {"n_agents": 2},
    "MULTITASK_GRIDWORLD": {"layout": "chain_reversed"},
}


def _experiment(tmp_path, task, frames=0, seed=0):
    torch.set_num_threads(1)
    cfg = ExperimentConfig.get_from_yaml()
    cfg.max_n_frames, cfg.on_policy_collected_frames_per_batch = max(frames, 200), 200
    cfg.on_policy_n_envs_per_worker, cfg.on_policy_minibatch_size, cfg.on_policy_n_minibatch_iters = 2, 100, 2
    cfg.loggers, cfg.evaluation, cfg.render, cfg.checkpoint_at_end = [], False, False, False
    cfg.save_folder = str(tmp_path)
    exp = Experiment(
        task, MappoConfig.get_from_yaml(), MlpConfig.get_from_yaml(), seed=seed, config=cfg,
        critic_model_config=MlpConfig.get_from_yaml(),
    )  # fmt: skip
    if frames:
        exp.run()
    return exp


def test_every_task_builds_a_valid_torchrl_env():
    assert [t.name for t in MPGTask] == list(DEFAULT_CONFIGS)
    for member in MPGTask:
        task = member.get_task(SMALL[member.name])
        assert task.config["observation"] == "vector"  # the default survives a partial config
        env = task.get_env_fun(num_envs=1, continuous_actions=False, seed=0, device="cpu")()
        check_env_specs(env)
        group = next(iter(task.group_map(env)))
        assert task.group_map(env)[group] == task.parallel_env().possible_agents
        assert list(task.observation_spec(env)[group].keys()) == ["observation"]
        assert list(task.state_spec(env).keys()) == ["state"]
        assert task.max_steps(env) == task.parallel_env().max_cycles
        assert task.supports_discrete_actions() and not task.supports_continuous_actions()
        td = env.rollout(3 * task.max_steps(env), break_when_any_done=False)
        assert td["next", group, "reward"].shape[:2] == (
            3 * task.max_steps(env),
            len(task.group_map(env)[group]),
        )
    defaults = MPGTask.CONGESTION.get_from_yaml()
    assert defaults.config == DEFAULT_CONFIGS["CONGESTION"][1]


def test_bad_tasks_are_refused():
    with pytest.raises(ValueError, match="float observations"):
        MPGTask.COORDINATION.get_task({"observation": "state"})
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
