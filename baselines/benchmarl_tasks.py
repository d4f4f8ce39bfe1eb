"""BenchMARL tasks for every env, and the exact metrics of a trained BenchMARL policy.

BenchMARL (``pip install -e '.[benchmarl]'``, see below) runs its algorithms on ``Task`` enums
whose members build TorchRL envs. :class:`MPGTask` has one member per registered env; its
``get_task(config)`` takes the env's own arguments, and ``get_from_yaml()`` (BenchMARL's default)
gives the defaults of :data:`DEFAULT_CONFIGS` -- BenchMARL's yaml files only cover its own envs.
The envs are built by :func:`baselines.torchrl_envs.make_torchrl_env` (the ``PettingZooWrapper``
settings each env needs) with ``return_state=True``, so centralised critics (MAPPO, MASAC, QMIX)
read the env's global state features.

:func:`policy_tables` tabulates a trained experiment's policy on every model state's
observations and :func:`exact_metrics` gives its exact Nash gap, values and price of anarchy
(:class:`baselines.evaluation.JointEvaluator`) -- BenchMARL only reports sampled returns.

**Install** (its own environment): BenchMARL 1.5 requires ``torchrl<0.12`` and ``torchvision``;
a plain ``pip install benchmarl`` replaces torch with the registry's newest CUDA build, because
the newest torchvision pins the newest torch. The ``benchmarl`` extra adds the range
``torch>=2.2,<2.14``, which makes pip choose torchvision 0.28 (pinned to torch 2.13.0) instead::

    python3 -m venv .venv-benchmarl && . .venv-benchmarl/bin/activate
    pip install torch==2.13.0 && pip install -e ".[dev,benchmarl]"

torch stays 2.13.0 (CPU) and gymnasium 1.4 (``.ci/run`` checks it). torchvision is never imported:
it is a CUDA build that does not load with the CPU torch ("operator torchvision::nms does not
exist"), and BenchMARL only uses it for videos, off here (``has_render`` is False). The main
environment keeps the newest torchrl for :mod:`baselines.torchrl_envs`, hence the separate one.

Torch runs on one thread when BenchMARL builds the task's envs (before its networks), unless the
user chose a count (:mod:`baselines.threads`: ``MPG_TORCH_THREADS``, ``OMP_NUM_THREADS``, or
``torch.set_num_threads`` called first).

Example (about 15 seconds)::

    from benchmarl.algorithms import MappoConfig
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.models.mlp import MlpConfig
    from baselines.benchmarl_tasks import MPGTask, exact_metrics

    cfg = ExperimentConfig.get_from_yaml()
    cfg.max_n_frames, cfg.on_policy_collected_frames_per_batch = 2000, 1000
    cfg.loggers, cfg.evaluation, cfg.render, cfg.checkpoint_at_end = [], False, False, False
    exp = Experiment(MPGTask.COORDINATION.get_task({"n_agents": 2}), MappoConfig.get_from_yaml(),
                     MlpConfig.get_from_yaml(), seed=0, config=cfg,
                     critic_model_config=MlpConfig.get_from_yaml())
    exp.run()
    print(exact_metrics(exp))   # {'nash_gap': ..., 'poa': ..., 'value_0': ..., ...}
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from mpg_envs import _validate as V

__all__ = ["MPGTask", "MPGTaskClass", "DEFAULT_CONFIGS", "FLOAT_MODES", "policy_tables", "exact_metrics"]


def _benchmarl():
    try:
        import benchmarl.environments.common as common
    except ImportError:  # pragma: no cover - only in the benchmarl environment
        raise ImportError(
            "baselines.benchmarl_tasks needs BenchMARL in its own environment: pip install torch==2.13.0, "
            "then pip install -e '.[dev,benchmarl]' (see this module's docstring)"
        ) from None
    return common


_common = _benchmarl()

#: Task name -> (registered env id, default env arguments). "vector" observations give every agent
#: one observation space (one shared network reads them) and float features.
DEFAULT_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "COORDINATION": ("mpg/Coordination-v0", {"n_agents": 2, "observation": "vector"}),
    "CONGESTION": ("mpg/Congestion-v0", {"n_agents": 4, "observation": "vector"}),
    "DISTANCING": ("mpg/Distancing-v0", {"n_agents": 4, "observation": "vector"}),
    "MULTITASK_GRIDWORLD": ("mpg/MultiTaskGridWorld-v0", {"layout": "no_conflict", "observation": "vector"}),
}


#: Observation modes BenchMARL's networks can read (float features).
FLOAT_MODES = ("vector", "onehot")


class MPGTaskClass(_common.TaskClass):
    """A BenchMARL task class: ``name`` is a member of :class:`MPGTask`, ``config`` the env's
    arguments (``pettingzoo.make("parallel", id, **config)``)."""

    def __init__(self, name: str, config: dict[str, Any] | None) -> None:
        if name not in DEFAULT_CONFIGS:
            raise ValueError(f"unknown mpg task {V.show(name)}; one of {sorted(DEFAULT_CONFIGS)}")
        if config is not None and not isinstance(config, dict):
            raise V.ArgumentTypeError(f"config must be a dict of env arguments, got {V.show(config)}")
        super().__init__(name, config)
        self.env_id = DEFAULT_CONFIGS[name][0]
        self._penv = None
        mode = self.parallel_env().observation_mode  # bad arguments fail here, with the env's message
        if mode not in FLOAT_MODES:
            raise ValueError(
                f"BenchMARL's models read float observations; observation={mode!r} gives indices: use one "
                f"of {list(FLOAT_MODES)} ('vector' for one network shared by the agents)"
            )

    def parallel_env(self):
        """The unwrapped parallel env of this config (built once; its exact model is cached)."""
        if self._penv is None:
            import pettingzoo

            import mpg_envs  # noqa: F401 - registers the envs

            self._penv = pettingzoo.make("parallel", self.env_id, **self.config).unwrapped
        return self._penv

    def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: int | None, device: Any):
        from baselines.threads import torch_threads
        from baselines.torchrl_envs import make_torchrl_env

        torch_threads()  # BenchMARL builds the envs before its networks (see baselines.threads)

        env_id, config = self.env_id, copy.deepcopy(self.config)
        return lambda: make_torchrl_env(env_id, seed=seed, device=device, return_state=True, **config)

    def supports_continuous_actions(self) -> bool:
        return False

    def supports_discrete_actions(self) -> bool:
        return True

    def has_render(self, env) -> bool:
        return False  # BenchMARL's video logging needs torchvision, a CUDA build here

    def max_steps(self, env) -> int:
        return int(self.parallel_env().max_cycles)

    def group_map(self, env) -> dict[str, list[str]]:
        return env.group_map

    def _only(self, env, keep: str):
        """``env.observation_spec`` with only ``keep`` under each group, without the state."""
        spec = env.observation_spec.clone()
        for group in self.group_map(env):
            for key in list(spec[group].keys()):
                if key != keep:
                    del spec[group][key]
            if spec[group].is_empty():
                del spec[group]
        if "state" in spec.keys():
            del spec["state"]
        return None if spec.is_empty() else spec

    def observation_spec(self, env):
        return self._only(env, "observation")

    def info_spec(self, env):
        return self._only(env, "info")

    def action_mask_spec(self, env):
        return None  # every action is always allowed

    def state_spec(self, env):
        from torchrl.data import Composite

        return Composite({"state": env.observation_spec["state"].clone()})

    def action_spec(self, env):
        return env.full_action_spec

    @staticmethod
    def env_name() -> str:
        return "mpg"


class MPGTask(_common.Task):
    """Our envs as BenchMARL tasks: ``MPGTask.COORDINATION.get_task({"n_agents": 3})`` -- the
    config's arguments override :data:`DEFAULT_CONFIGS`' (so observations stay "vector" unless
    given); without a config, the defaults."""

    COORDINATION = None
    CONGESTION = None
    DISTANCING = None
    MULTITASK_GRIDWORLD = None

    @staticmethod
    def associated_class():
        return MPGTaskClass

    def get_task(self, config: dict[str, Any] | None = None) -> MPGTaskClass:
        """The task with ``config``'s env arguments over the defaults."""
        if config is not None and not isinstance(config, dict):
            raise V.ArgumentTypeError(f"config must be a dict of env arguments, got {V.show(config)}")
        return MPGTaskClass(self.name, {**copy.deepcopy(DEFAULT_CONFIGS[self.name][1]), **(config or {})})

    def get_from_yaml(self, path: str | None = None) -> MPGTaskClass:
        """The default config (BenchMARL's yaml files only cover its own envs; ``path``: a yaml of
        env arguments)."""
        if path is not None:
            from benchmarl.utils import _read_yaml_config

            return self.get_task(dict(_read_yaml_config(path)))
        return self.get_task()


def _task_and_group(experiment) -> tuple[MPGTaskClass, str]:
    task = experiment.task
    if not isinstance(task, MPGTaskClass):
        raise ValueError(f"the experiment's task is {V.show(task)}, not one of MPGTask's")
    groups = list(experiment.group_map)
    if len(groups) != 1:
        raise ValueError(f"policy_tables reads one group of agents (our envs have one), got {groups}")
    return task, groups[0]


def policy_tables(experiment) -> list[np.ndarray]:
    """The experiment's policy on every model state: N float64 tables (S, |A_i|).

    The policy network reads each agent's observation of each state (``dynamics.observe``) as
    BenchMARL feeds it -- one group, agents stacked -- and its logits are turned into
    probabilities (BenchMARL samples from ``Categorical(logits)`` while it trains).

    Args:
        experiment: A ``benchmarl.experiment.Experiment`` on an :class:`MPGTask`.

    Raises:
        ValueError: Not an MPGTask experiment, or not a policy with logits (continuous actions).
    """
    import torch
    from tensordict import TensorDict

    from baselines.policies.base import observe_all
    from baselines.threads import torch_threads

    torch_threads()
    task, group = _task_and_group(experiment)
    penv = task.parallel_env()
    obs = observe_all(penv.dynamics, penv.observation_mode)  # (S, N, ...) as the env emits them
    S, N = obs.shape[:2]
    policy = experiment.group_policies[group]
    device = getattr(experiment.config, "sampling_device", "cpu")
    td = TensorDict(
        {group: TensorDict({"observation": torch.as_tensor(obs, dtype=torch.float32)}, batch_size=[S, N])},
        batch_size=[S],
        device=device,
    )
    with torch.no_grad():
        out = policy(td)
    if (group, "logits") not in out.keys(include_nested=True):
        raise ValueError("the policy gives no logits (policy_tables tabulates discrete stochastic policies)")
    p = torch.softmax(out[group, "logits"].double(), dim=-1).cpu().numpy()  # (S, N, A)
    return [p[:, i] / p[:, i].sum(axis=1, keepdims=True) for i in range(N)]


def exact_metrics(experiment) -> dict[str, float]:
    """Exact Nash gap, potential, price of anarchy and every agent's value of the experiment's
    policy (:class:`baselines.evaluation.JointEvaluator` on the env's exact model), plus
    ``welfare`` (the sum of the values)."""
    from baselines.evaluation import JointEvaluator, welfare

    task, _ = _task_and_group(experiment)
    row = JointEvaluator(task.parallel_env().model())(policy_tables(experiment))
    row["welfare"] = welfare(row)
    return row
