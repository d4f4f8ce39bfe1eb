"""BenchMARL tasks for every env, and the exact metrics of a BenchMARL policy while it trains.

BenchMARL (``pip install -e '.[benchmarl]'``, see below) runs its algorithms on ``Task`` enums
whose members build TorchRL envs. :class:`MPGTask` has one member per registered env; its
``get_task(config)`` takes the env's own arguments over the defaults of :data:`DEFAULT_CONFIGS`
(the same as the task configs BenchMARL's command line reads, ``baselines/benchmarl_conf``).
The envs are built by :func:`baselines.torchrl_envs.make_torchrl_env` (the ``PettingZooWrapper``
settings each env needs; one batched env of ``num_envs`` copies where that function takes
``num_envs``) with ``return_state=True``, so centralised critics (MAPPO, MASAC, QMIX) read the
env's global state features.

**Observations.** BenchMARL's networks read float features. "vector" and "onehot" are float
already; the index modes "state" and "own" come out of TorchRL as int64 one-hot tensors, which the
task casts to float32 (a ``DTypeCastTransform`` from :meth:`MPGTaskClass.get_env_transforms`, so
BenchMARL's specs, collection and evaluation all see floats). ``MultiTaskGridWorld`` defaults to
``observation="own"``: one shared policy on the agent's own cell, the multi-task setting whose
exact metrics decompose over the tasks (the default 10x10 layouts have no joint model).

**Exact metrics.** :func:`policy_tables` tabulates the experiment's policy on
:attr:`baselines.evaluation.ExactMetrics.observations` (fed as the task feeds the network) and
:func:`exact_metrics` gives its exact Nash gap, values, potential and price of anarchy --
BenchMARL only reports sampled returns. :class:`ExactMetricsCallback` computes them every
``every`` iterations while BenchMARL trains, logs them through the experiment's loggers
(``exact/nash_gap``...; BenchMARL writes ``exact_nash_gap`` to csv and TensorBoard) and appends
them to ``exact_metrics.csv`` in the experiment's folder.

**Command line.** ``python -m benchmarl.run algorithm=mappo task=mpg/coordination`` works for
every member (``mpg/congestion``, ``mpg/distancing``, ``mpg/multitask_gridworld``): the Hydra
plugin ``hydra_plugins/mpg_envs_benchmarl`` adds this package's task configs to BenchMARL's search
path and registers the tasks. Override an env argument with ``task.n_agents=3``; add one that the
task config does not list with ``+task.max_cycles=20``.

**Loggers.** BenchMARL's default loggers are ``[csv, wandb]``; wandb is not installed by the
extra: ``pip install wandb``, or choose others (``experiment.loggers=[csv,tensorboard]`` on the
command line, ``cfg.loggers = ["csv", "tensorboard"]`` in Python; the extra installs TensorBoard).

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
    from baselines.benchmarl_tasks import ExactMetricsCallback, MPGTask

    cfg = ExperimentConfig.get_from_yaml()
    cfg.max_n_frames, cfg.on_policy_collected_frames_per_batch = 2000, 1000
    cfg.loggers, cfg.evaluation, cfg.render = ["csv", "tensorboard"], False, False
    exact = ExactMetricsCallback(every=1)
    exp = Experiment(MPGTask.COORDINATION.get_task({"n_agents": 2}), MappoConfig.get_from_yaml(),
                     MlpConfig.get_from_yaml(), seed=0, config=cfg,
                     critic_model_config=MlpConfig.get_from_yaml(), callbacks=[exact])
    exp.run()
    print(exact.rows[-1])   # {'iteration': 1, 'frames': 2000, 'nash_gap': ..., 'poa': ..., ...}
"""

from __future__ import annotations

import copy
import csv
import inspect
import os
from pathlib import Path
from typing import Any

import numpy as np

from mpg_envs import _validate as V

__all__ = [
    "MPGTask",
    "MPGTaskClass",
    "DEFAULT_CONFIGS",
    "FLOAT_MODES",
    "INDEX_MODES",
    "ExactMetricsCallback",
    "batched_env_available",
    "policy_tables",
    "exact_metrics",
]


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
from benchmarl.experiment.callback import Callback as _Callback  # noqa: E402

#: Task name -> (registered env id, default env arguments). "vector" observations give every agent
#: one observation space (one shared network reads them, and tells the agents apart) and float
#: features; MultiTaskGridWorld's tasks are read on the agent's own cell (one policy for every task).
DEFAULT_CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "COORDINATION": ("mpg/Coordination-v0", {"n_agents": 2, "observation": "vector"}),
    "CONGESTION": ("mpg/Congestion-v0", {"n_agents": 4, "observation": "vector"}),
    "DISTANCING": ("mpg/Distancing-v0", {"n_agents": 4, "observation": "vector"}),
    "MULTITASK_GRIDWORLD": ("mpg/MultiTaskGridWorld-v0", {"layout": "no_conflict", "observation": "own"}),
}

#: Observation modes that are float features already.
FLOAT_MODES = ("vector", "onehot")
#: Index observation modes, fed to the networks as float32 one-hot vectors.
INDEX_MODES = ("state", "own")
#: Observations of one state the policy reads at once in :func:`policy_tables` (float32 entries).
_CHUNK_ENTRIES = 2**22


def batched_env_available() -> bool:
    """Whether :func:`baselines.torchrl_envs.make_torchrl_env` builds one batched env of
    ``num_envs`` copies (then BenchMARL collects through it instead of a ``SerialEnv`` of single
    envs)."""
    from baselines.torchrl_envs import make_torchrl_env

    return "num_envs" in inspect.signature(make_torchrl_env).parameters


class MPGTaskClass(_common.TaskClass):
    """A BenchMARL task class: ``name`` is a member of :class:`MPGTask`, ``config`` the env's
    arguments (``pettingzoo.make("parallel", id, **config)``).

    Raises:
        ValueError: An unknown name, bad env arguments (the env's own message), or an index
            observation whose one-hot would exceed ``mpg_envs.core.MAX_ONEHOT_STATES`` entries.
    """

    def __init__(self, name: str, config: dict[str, Any] | None) -> None:
        if name not in DEFAULT_CONFIGS:
            raise ValueError(f"unknown mpg task {V.show(name)}; one of {sorted(DEFAULT_CONFIGS)}")
        if config is not None and not isinstance(config, dict):
            raise V.ArgumentTypeError(f"config must be a dict of env arguments, got {V.show(config)}")
        super().__init__(name, config)
        self.env_id = DEFAULT_CONFIGS[name][0]
        self._penv = None
        self._exact = None
        #: Collect through one batched env when :func:`batched_env_available` (False: single envs
        #: in BenchMARL's SerialEnv/ParallelEnv, as before it existed; benchmarks compare both).
        self.use_batched_env = True
        penv = self.parallel_env()  # bad arguments fail here, with the env's message
        self.observation_mode: str = penv.observation_mode
        #: One-hot width of an index observation mode (None for float modes).
        self.onehot_size: int | None = None
        if self.observation_mode in INDEX_MODES:
            from mpg_envs.core import MAX_ONEHOT_STATES

            sizes = {int(penv.observation_space(a).n) for a in penv.possible_agents}
            if len(sizes) != 1:  # pragma: no cover - every agent of our envs has one space
                raise ValueError(f"the agents' observation spaces differ: {sorted(sizes)}")
            (n,) = sizes
            if n > MAX_ONEHOT_STATES:
                others = [m for m in penv.dynamics.observation_modes if m != "state"]
                raise ValueError(
                    f"observation={self.observation_mode!r} of {self.env_id} has {n:,} values: BenchMARL's "
                    f"networks would read one-hot vectors of {n:,} floats per agent and step (limit "
                    f"{MAX_ONEHOT_STATES:,}); use " + " or ".join(f"observation={m!r}" for m in others)
                )
            self.onehot_size = n
        elif self.observation_mode not in FLOAT_MODES:  # pragma: no cover - every mode is one of both
            raise ValueError(f"unsupported observation mode {self.observation_mode!r}")

    def __getstate__(self) -> dict[str, Any]:
        # BenchMARL pickles the task into its experiment folder: not the env and its exact models
        state = self.__dict__.copy()
        state["_penv"] = state["_exact"] = None
        return state

    def parallel_env(self):
        """The unwrapped parallel env of this config (built once; its exact model is cached)."""
        if self._penv is None:
            import pettingzoo

            import mpg_envs  # noqa: F401 - registers the envs

            self._penv = pettingzoo.make("parallel", self.env_id, **self.config).unwrapped
        return self._penv

    def exact_metrics(self):
        """The task's :class:`baselines.evaluation.ExactMetrics` (built once): the joint model, or
        per-task models (``MultiTaskGridWorld`` read on the own cell).

        Raises:
            ValueError: No exact model fits in memory for this config (the message says which
                observation mode has one).
        """
        if self._exact is None:
            from baselines.evaluation import ExactMetrics

            self._exact = ExactMetrics(self.parallel_env())
        return self._exact

    def network_observations(self, obs: Any):
        """Observations as the env emits them -> the float32 tensor BenchMARL's networks read.

        Args:
            obs: (..., ) int64 indices (index modes, one-hot encoded here to (..., K)) or
                (..., F) float features.
        """
        import torch

        t = torch.as_tensor(np.asarray(obs))
        if self.onehot_size is None:
            return t.to(torch.float32)
        return torch.nn.functional.one_hot(t.to(torch.int64), self.onehot_size).to(torch.float32)

    def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: int | None, device: Any):
        from baselines.threads import torch_threads
        from baselines.torchrl_envs import make_torchrl_env

        torch_threads()  # BenchMARL builds the envs before its networks (see baselines.threads)

        env_id, config = self.env_id, copy.deepcopy(self.config)
        if getattr(self, "use_batched_env", True) and batched_env_available():
            # one env of num_envs copies: BenchMARL uses it as it is
            n = V.positive_int("num_envs", num_envs)
            return lambda: make_torchrl_env(
                env_id, seed=seed, num_envs=n, device=device, return_state=True, **config
            )
        # single envs: BenchMARL steps num_envs of them in a SerialEnv (or a ParallelEnv)
        return lambda: make_torchrl_env(env_id, seed=seed, device=device, return_state=True, **config)

    def get_env_transforms(self, env) -> list:
        """Index observations (int64 one-hot from TorchRL) cast to float32 for the networks."""
        if self.onehot_size is None:
            return []
        import torch
        from torchrl.envs import DTypeCastTransform

        keys = [(group, "observation") for group in self.group_map(env)]
        return [DTypeCastTransform(torch.int64, torch.float32, in_keys=keys)]

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

    # BenchMARL reads specs without the batch dimension of a batched env (as VMAS gives them)
    def _only(self, env, keep: str):
        """The unbatched observation spec with only ``keep`` under each group, without the state."""
        spec = env.full_observation_spec_unbatched.clone()
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

        return Composite({"state": env.full_observation_spec_unbatched["state"].clone()})

    def action_spec(self, env):
        return env.full_action_spec_unbatched

    @staticmethod
    def env_name() -> str:
        return "mpg"


class MPGTask(_common.Task):
    """Our envs as BenchMARL tasks: ``MPGTask.COORDINATION.get_task({"n_agents": 3})`` -- the
    config's arguments override :data:`DEFAULT_CONFIGS`' (so the default observation mode stays
    unless given); without a config, the defaults."""

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
        """The default config (``path``: a yaml of env arguments over the defaults)."""
        if path is not None:
            from benchmarl.utils import _read_yaml_config

            return self.get_task(dict(_read_yaml_config(path)))
        return self.get_task()


def _register_tasks() -> None:
    """Make ``mpg/<member>`` known to BenchMARL's task registry (what its Hydra runs look up)."""
    from benchmarl.environments import task_config_registry

    for member in MPGTask:
        task_config_registry[f"{MPGTaskClass.env_name()}/{member.name.lower()}"] = member


_register_tasks()


def _task_and_group(experiment) -> tuple[MPGTaskClass, str]:
    task = getattr(experiment, "task", None)
    if not isinstance(task, MPGTaskClass):
        raise ValueError(f"the experiment's task is {V.show(task)}, not one of MPGTask's")
    groups = list(experiment.group_map)
    if len(groups) != 1:
        raise ValueError(f"exact metrics read one group of agents (our envs have one), got {groups}")
    return task, groups[0]


def policy_tables(experiment) -> list[np.ndarray]:
    """The experiment's policy on every evaluated state: N float64 tables (S, |A_i|).

    The policy network reads :attr:`~baselines.evaluation.ExactMetrics.observations` of the task
    (every model state's, or every cell's where the metrics decompose over tasks) as the task
    feeds it (:meth:`MPGTaskClass.network_observations`: one group, agents stacked), a chunk of
    states at a time, and its logits are turned into probabilities (BenchMARL samples from
    ``Categorical(logits)`` while it trains).

    Args:
        experiment: A ``benchmarl.experiment.Experiment`` on an :class:`MPGTask`.

    Raises:
        ValueError: Not an MPGTask experiment, a policy without logits (continuous actions), or
            no exact model for this config (see :meth:`MPGTaskClass.exact_metrics`).
    """
    import torch
    from tensordict import TensorDict

    from baselines.threads import torch_threads

    torch_threads()
    task, group = _task_and_group(experiment)
    obs = task.exact_metrics().observations  # (S, N) indices or (S, N, F) features
    S, N = obs.shape[:2]
    policy = experiment.group_policies[group]
    device = getattr(experiment.config, "sampling_device", "cpu")
    width = task.onehot_size or int(np.prod(obs.shape[2:], dtype=np.int64))
    chunk = max(1, _CHUNK_ENTRIES // max(1, N * width))
    parts = []
    with torch.no_grad():
        for lo in range(0, S, chunk):
            x = task.network_observations(obs[lo : lo + chunk])
            td = TensorDict(
                {group: TensorDict({"observation": x}, batch_size=list(x.shape[:2]))},
                batch_size=list(x.shape[:1]),
                device=device,
            )
            out = policy(td)
            if (group, "logits") not in out.keys(include_nested=True):
                raise ValueError(
                    "the policy gives no logits (policy_tables tabulates discrete stochastic policies)"
                )
            parts.append(torch.softmax(out[group, "logits"].double(), dim=-1).cpu().numpy())
    p = np.concatenate(parts)  # (S, N, A)
    return [p[:, i] / p[:, i].sum(axis=1, keepdims=True) for i in range(N)]


def exact_metrics(experiment) -> dict[str, float]:
    """Exact Nash gap, potential, price of anarchy and every agent's value of the experiment's
    policy, plus ``welfare`` (the sum of the values): :class:`baselines.evaluation.ExactMetrics`
    of the task on :func:`policy_tables`."""
    task, _ = _task_and_group(experiment)
    return task.exact_metrics()(policy_tables(experiment))


class ExactMetricsCallback(_Callback):
    """A BenchMARL ``Callback``: the exact metrics of the policy every ``every`` iterations.

    After the policy's update of iteration ``k`` (BenchMARL's ``on_train_end`` hook; ``k`` counts
    from 0), when ``k % every == 0`` and at the last iteration, it computes :func:`exact_metrics`
    and

    * logs them through the experiment's loggers as ``exact/<metric>`` at ``step=k`` (BenchMARL's
      own step; its csv and TensorBoard loggers write ``exact_<metric>``, wandb keeps the slash),
    * keeps the row ``{"iteration": k, "frames": total frames, <metric>: ...}`` in :attr:`rows`
      (also saved in BenchMARL's checkpoints, and restored with them),
    * appends it to ``csv_path``.

    The exact models are built when the experiment is set up (``on_setup``), so a config without
    one fails before training, not after it.

    Args:
        every: Iterations between evaluations (>= 1).
        csv_path: The CSV file to append rows to; a relative path is taken in the experiment's
            folder; None: no file.
    """

    def __init__(self, every: int = 1, csv_path: str | os.PathLike | None = "exact_metrics.csv") -> None:
        super().__init__()
        self.every = V.positive_int("every", every)
        if csv_path is not None and not isinstance(csv_path, (str, os.PathLike)):
            raise V.ArgumentTypeError(f"csv_path must be a path or None, got {V.show(csv_path)}")
        if csv_path is not None and str(csv_path).strip() == "":
            raise ValueError(f"csv_path must name a file, got {V.show(csv_path)}")
        self.csv_path: Path | None = None if csv_path is None else Path(csv_path)
        self.rows: list[dict[str, float]] = []
        self._last = 0
        self._file: Path | None = None
        self._fields: list[str] = []

    def __getstate__(self) -> dict[str, Any]:
        # BenchMARL pickles its callbacks into the experiment folder: not the experiment itself
        state = self.__dict__.copy()
        state["experiment"] = None
        return state

    def on_setup(self) -> None:
        exp = self.experiment
        task, _ = _task_and_group(exp)
        em = task.exact_metrics()  # the exact models now: a config without one fails before training
        self._fields = ["iteration", "frames", *em.fields()]
        self._last = int(exp.config.get_max_n_iters(exp.on_policy)) - 1
        self._file = None
        if self.csv_path is not None:
            path = self.csv_path if self.csv_path.is_absolute() else Path(exp.folder_name) / self.csv_path
            if path.is_dir():
                raise ValueError(f"csv_path must be a file to append rows to, got the folder {str(path)!r}")
            if not path.parent.is_dir():
                raise ValueError(f"csv_path's folder {str(path.parent)!r} does not exist")
            if path.exists() and path.stat().st_size > 0:  # appending: the same columns, or refuse
                try:
                    with open(path, newline="") as f:
                        header = next(csv.reader(f), [])
                except (OSError, UnicodeDecodeError, csv.Error) as err:
                    header = [f"<unreadable: {err}>"]
                if header != self._fields:
                    raise ValueError(
                        f"{path}: its columns {header} are not this run's {self._fields}; give another "
                        "csv_path, or delete the file"
                    )
            self._file = path

    def _write_all(self) -> None:
        """Rewrite the CSV with :attr:`rows` (atomically: a temporary file, then a rename)."""
        tmp = self._file.with_name(self._file.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._fields)
            w.writeheader()
            w.writerows(self.rows)
        os.replace(tmp, self._file)

    def on_train_end(self, training_td, group: str) -> None:
        k = int(self.experiment.n_iters_performed)
        if k % self.every == 0 or k >= self._last:
            self.evaluate()

    def evaluate(self) -> dict[str, float]:
        """The exact metrics of the policy now: logged, kept in :attr:`rows` and written (also
        callable by hand, e.g. before training)."""
        exp = self.experiment
        if exp is None:
            raise ValueError("the callback is not attached to an experiment (pass it in callbacks=[...])")
        k = int(exp.n_iters_performed)
        try:
            metrics = exact_metrics(exp)
        except ValueError as err:
            raise ValueError(f"exact metrics of the policy after iteration {k}: {err}") from err
        row = {"iteration": float(k), "frames": float(exp.total_frames), **metrics}
        self.rows.append(row)
        exp.logger.log({f"exact/{key}": value for key, value in metrics.items()}, step=k)
        if self._file is not None:
            new = not self._file.exists() or self._file.stat().st_size == 0
            with open(self._file, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=self._fields)
                if new:
                    w.writeheader()
                w.writerow(row)
        return row

    def on_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict["exact_metrics_rows"] = copy.deepcopy(self.rows)

    def on_load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # a restored run goes on from its checkpoint: rows written after it (by the run that went on
        # before it stopped) would come twice, so the CSV is rewritten with the checkpoint's rows
        self.rows = copy.deepcopy(list(state_dict.get("exact_metrics_rows", [])))
        if self._file is not None:
            self._write_all()
