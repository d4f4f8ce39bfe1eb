"""Stable-Baselines3 for every env: a parameter-sharing vector env and an exact-metrics callback.

:func:`make_vec_env` turns any of our parallel envs into an SB3 ``VecEnv`` with one slot per
(copy, agent) -- parameter sharing, the way SuperSuit's ``pettingzoo_env_to_vec_env_v1`` +
``concat_vec_envs_v1`` do it -- but without the glue those need here (measured on SuperSuit 3.11 /
SB3 2.9):

* **all copies stepped at once** for a registered id (:class:`BatchedMPGVecEnv`, over
  :class:`mpg_envs.vector.ParallelVectorEnv`: one call of the env's vectorised dynamics per step,
  no Python loop over copies or agents but for SB3's list of info dicts); a function that builds
  an env gets :class:`MPGVecEnv`, a Python loop over env objects (``batched=False`` asks for it
  with an id too). Both have the slot semantics below; the batched env's info dicts hold only
  what SB3 reads, the loop env's also the env's per-agent infos;
* **seeding**: ``vec_env.seed(s)`` (SB3's convention) takes effect at the next reset. The batched
  env has one generator for the batch, seeded with ``s`` (the copies still differ from each
  other; with one copy it draws exactly what the loop env does); the loop env seeds copy k with
  ``s + k N``. SuperSuit's vector env has no ``seed`` at all;
* **agents that finish separately** (MultiTaskGridWorld): a finished agent's slot reports
  ``done`` once (with ``terminal_observation``), then zero observations and rewards until its copy's
  episode ends, when the slot is closed with ``done`` again; the copy resets when all its agents
  have finished (SuperSuit's ``black_death_v3`` tests ``terminations & truncations`` and never ends
  such an episode);
* **truncation passed on**: ``info["TimeLimit.truncated"]`` is set for slots that hit the time limit
  without terminating, so SB3 bootstraps from ``terminal_observation`` (SuperSuit's SB3 wrapper
  drops it);
* **episode statistics** in SB3's Monitor format (``info["episode"] = {"r", "l"}``), so
  ``ep_rew_mean`` is logged per agent-episode.

:class:`ExactMetricsCallback` tabulates the SB3 policy on every model state's observation (the
policy bridge of :mod:`baselines.policies`) and records the exact metrics of our own runs
(:class:`baselines.evaluation.ExactMetrics`: Nash gap, potential where the env has one, price of
anarchy, each agent's value) while SB3 trains -- into SB3's logger and a CSV in the run folder.

:func:`run_sb3` (the CLI's ``sb3``) trains PPO or A2C into a run folder: ``config.json``,
``exact.csv`` (one row per evaluation) and ``model.zip`` (saved right after each row). It checks
every option, builds the env, its exact model and the SB3 model, and estimates the memory before
the folder exists, so a refused run leaves nothing behind; one process writes a folder at a time.
Resuming checks config.json against model.zip (algorithm, env, sizes, seed) and drops the rows the
saved model has not reached (see :func:`run_sb3` for what a resumed run reproduces).

Needs ``stable-baselines3`` (the ``baselines`` extra installs it).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from baselines.evaluation import ExactMetrics
from baselines.policies.base import Policy
from baselines.threads import torch_threads
from mpg_envs import _validate as V
from mpg_envs import check_env_kwargs

__all__ = ["MPGVecEnv", "BatchedMPGVecEnv", "make_vec_env", "SB3Policy", "ExactMetricsCallback"]


def _sb3():
    try:
        import stable_baselines3
    except ImportError:  # pragma: no cover - the baselines extra installs it
        raise ImportError(
            "baselines.sb3 needs stable-baselines3: pip install torch==2.13.0, then "
            "pip install -e '.[baselines]'"
        ) from None
    return stable_baselines3


def _vec_env_base():
    _sb3()
    from stable_baselines3.common.vec_env import VecEnv

    return VecEnv


class _SharedPolicyVecEnv(_vec_env_base()):  # type: ignore[misc]
    """What :class:`MPGVecEnv` and :class:`BatchedMPGVecEnv` share: slot ``k N + i`` is agent i of
    copy k; one observation and action space for every agent (parameter sharing); the slot
    bookkeeping of a step (:meth:`_finish_step`); ``get_attr`` and friends on the env object behind
    a slot (:meth:`_env_of`).

    Args:
        env: One parallel env of the kind (its agents and spaces).
        n_copies: Copies, n (``n N`` slots).

    Raises:
        ValueError: Agents whose observation or action spaces differ (one shared network cannot read
            them; ``observation="vector"`` gives every agent the same space where the env has it).
    """

    def __init__(self, env: Any, n_copies: int) -> None:
        self.agents = list(env.possible_agents)
        self.n_agents = len(self.agents)
        self.n_copies = n_copies
        obs_space = env.observation_space(self.agents[0])
        act_space = env.action_space(self.agents[0])
        for a in self.agents[1:]:
            if env.observation_space(a) != obs_space or env.action_space(a) != act_space:
                raise ValueError(
                    f"parameter sharing needs one observation and action space for every agent; {a} has "
                    f"{env.observation_space(a)} / {env.action_space(a)}, {self.agents[0]} has {obs_space} / "
                    f"{act_space} (observation='vector' gives every agent the same space)"
                )
        super().__init__(n_copies * self.n_agents, obs_space, act_space)
        self._obs = np.zeros((self.num_envs, *obs_space.shape), dtype=obs_space.dtype)
        self._ret = np.zeros(self.num_envs)  # return and length of each slot's agent-episode
        self._len = np.zeros(self.num_envs, np.int64)
        self._live = np.ones(self.num_envs, bool)  # the slot's agent is live in its copy's episode
        self._actions: np.ndarray | None = None

    def _env_of(self, slot: int) -> Any:
        """The env object behind a slot (for ``get_attr``, ``set_attr``, ``env_method``)."""
        raise NotImplementedError

    def _start(self, obs: np.ndarray) -> np.ndarray:
        """Every copy starts an episode with observations ``obs`` (n N, ...); returns a copy."""
        self._obs[:] = obs
        self._ret[:] = 0.0
        self._len[:] = 0
        self._live[:] = True
        return self._obs.copy()

    def _finish_step(
        self,
        obs: np.ndarray,
        final_obs: np.ndarray,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        ended: np.ndarray,
        infos: list[dict[str, Any]] | None = None,
    ):
        """SB3's step return from the step of every copy, with the slot semantics of the module
        docstring (vectorised but for the per-slot info dicts of slots that have something to say).

        Args:
            obs: Each slot's observation after the step (its copy's first one if the copy reset),
                shape (n N, ...); entries of slots not live after the step are not read.
            final_obs: The observation of the state the step reached, (n N, ...) (``obs`` where the
                copy did not reset); read for slots that are done.
            rewards: (n N,) float, 0 for slots not live before the step.
            terminated: (n N,) bool, False for slots not live before the step.
            truncated: (n N,) bool, likewise.
            ended: (n,) bool: the copies whose agents are all done (reset within the step).
            infos: Per-slot info dicts to add to (default: new empty dicts).

        Returns:
            ``(obs, rewards, dones, infos)`` for SB3: obs (n N, ...) (zeros for dead slots), rewards
            (n N,) float32, dones (n N,) bool and the list of n N info dicts.
        """
        N = self.n_agents
        live = self._live
        done = terminated | truncated
        self._ret += rewards
        self._len += live
        restarted = np.repeat(ended, N)
        closing = restarted & ~live  # a dead stretch ends with its copy (reward 0, no bootstrap)
        if infos is None:
            infos = [{} for _ in range(self.num_envs)]
        slots = np.flatnonzero(done)
        if slots.size:
            timeout = (truncated[slots] & ~terminated[slots]).tolist()
            stats = zip(slots.tolist(), self._ret[slots].tolist(), self._len[slots].tolist(), timeout)
            for j, ret, length, tl in stats:
                infos[j]["terminal_observation"] = np.array(final_obs[j])
                infos[j]["TimeLimit.truncated"] = tl
                infos[j]["episode"] = {"r": ret, "l": length}
        for j in np.flatnonzero(closing).tolist():
            infos[j]["terminal_observation"] = np.zeros_like(self._obs[j])
            infos[j]["TimeLimit.truncated"] = False
        self._live = (live & ~done) | restarted
        self._obs[:] = obs
        self._obs[~self._live] = 0  # a dead slot sees zeros until its copy resets
        self._ret[restarted] = 0.0
        self._len[restarted] = 0
        return self._obs.copy(), rewards.astype(np.float32), done | closing, infos

    # ---------------------------------------------------------------- SB3 VecEnv API
    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self._env_of(j), attr_name) for j in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        for j in self._get_indices(indices):
            setattr(self._env_of(j), attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        return [
            getattr(self._env_of(j), method_name)(*method_args, **method_kwargs)
            for j in self._get_indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def _built_and_measured(make_env: Callable[[], Any]) -> tuple[Any, int]:
    """One env from ``make_env`` (reset once) and the bytes it took (tracemalloc; a floor of 4 KiB,
    and only the floor if the caller already traces allocations)."""
    import tracemalloc

    if tracemalloc.is_tracing():
        env = make_env()
        return env, 4096
    tracemalloc.start()
    try:
        env = make_env()
        env.reset(seed=0)
        used = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return env, max(4096, int(used))


class MPGVecEnv(_SharedPolicyVecEnv):
    """``n_envs`` copies of a parallel env stepped one after the other in Python, one SB3 slot per
    (copy, agent): slot ``k N + i`` is agent i of copy k. Copy k is seeded ``s + k N`` by
    ``seed(s)``; infos carry the env's per-agent infos.

    Args:
        make_env: Builds one parallel env (every copy is built by calling it).
        n_envs: Copies.

    Raises:
        ValueError: Agents whose observation or action spaces differ (see :func:`make_vec_env`).
    """

    def __init__(self, make_env: Callable[[], Any], n_envs: int = 8) -> None:
        n = V.positive_int("n_envs", n_envs)
        first, per = _built_and_measured(make_env)
        V.check_bytes(
            f"{n:,} env objects (~{per:,} bytes each, measured on the first)",
            n * per,
            advice="use fewer n_envs, or batched=True with a registered id (one array state for every copy)",
        )
        self.envs = [first] + [make_env() for _ in range(n - 1)]
        super().__init__(self.envs[0], len(self.envs))

    def _env_of(self, slot: int) -> Any:
        return self.envs[slot // self.n_agents]

    def reset(self) -> np.ndarray:
        obs = np.zeros_like(self._obs)
        for k in range(len(self.envs)):
            self._reset_copy(k, self._seeds[k * self.n_agents], obs)
        self._reset_seeds()
        self._reset_options()
        return self._start(obs)

    def _reset_copy(self, k: int, seed: int | None, obs: np.ndarray) -> None:
        """Reset copy k, writing its first observations into ``obs`` (n N, ...)."""
        first, infos = self.envs[k].reset(seed=seed)
        N = self.n_agents
        for i, a in enumerate(self.agents):
            obs[k * N + i] = first[a]
            self.reset_infos[k * N + i] = infos.get(a, {})

    def step_wait(self):
        N = self.n_agents
        final = np.zeros_like(self._obs)
        rew = np.zeros(self.num_envs)
        term = np.zeros(self.num_envs, bool)
        trunc = np.zeros(self.num_envs, bool)
        ended = np.zeros(len(self.envs), bool)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for k, env in enumerate(self.envs):
            live = set(env.agents)
            act = {a: int(self._actions[k * N + i]) for i, a in enumerate(self.agents) if a in live}
            o, r, te, tr, info = env.step(act)
            for i, a in enumerate(self.agents):
                if a in o:  # live before the step (agents that finished earlier are not in o)
                    j = k * N + i
                    final[j], rew[j], term[j], trunc[j] = o[a], r[a], te[a], tr[a]
                    infos[j].update(info.get(a, {}))
            ended[k] = not env.agents  # every agent of this copy finished
        obs = final
        if ended.any():  # reset those copies (each draws from its own generator)
            obs = final.copy()
            for k in np.flatnonzero(ended).tolist():
                self._reset_copy(k, None, obs)
        return self._finish_step(obs, final, rew, term, trunc, ended, infos)

    def close(self) -> None:
        for env in self.envs:
            env.close()


class BatchedMPGVecEnv(_SharedPolicyVecEnv):
    """The SB3 vector env of :class:`MPGVecEnv` over a :class:`~mpg_envs.vector.ParallelVectorEnv`:
    every copy stepped with one call of the env's dynamics, the same slot semantics.

    One generator for the batch: ``seed(s)`` seeds it with ``s`` at the next reset (the copies
    still differ from each other; with one copy, episodes are those of :class:`MPGVecEnv` seeded
    alike). Info dicts hold only what SB3 reads (``terminal_observation``, ``TimeLimit.truncated``,
    ``episode``), for the slots that have it. ``get_attr`` and ``env_method`` reach the template env
    the batch was built from (e.g. ``env_method("model")``); its state is not the batch's, so
    ``set_attr`` is refused.

    Args:
        venv: The batch (``mpg_envs.vector.make_parallel_vec(env_id, n_envs, **kwargs)``).

    Raises:
        ValueError: Agents whose observation or action spaces differ (see :func:`make_vec_env`).
    """

    def __init__(self, venv: Any) -> None:
        from mpg_envs.vector import ParallelVectorEnv

        if not isinstance(venv, ParallelVectorEnv):
            raise V.ArgumentTypeError(f"venv must be a mpg_envs.vector.ParallelVectorEnv, got {V.show(venv)}")
        self.venv = venv
        super().__init__(venv.env, venv.num_envs)

    def _env_of(self, slot: int) -> Any:
        return self.venv.env

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        raise AttributeError(
            f"cannot set {attr_name!r}: the batched env's copies are arrays, not env objects "
            "(use make_vec_env(..., batched=False) for one env object per copy)"
        )

    def reset(self) -> np.ndarray:
        obs, _ = self.venv.reset(seed=self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        return self._start(obs.reshape(self._obs.shape))

    def step_wait(self):
        n, N = self.n_copies, self.n_agents
        if self._actions.size != n * N:
            raise ValueError(
                f"actions must hold one action per slot, {n * N} in all, got shape {self._actions.shape}"
            )
        obs, rew, term, trunc, info = self.venv.step(self._actions.reshape(n, N))
        shape = self._obs.shape
        obs = obs.reshape(shape)
        if "_final_obs" in info:
            final, ended = info["final_obs"].reshape(shape), info["_final_obs"]
        else:
            final, ended = obs, np.zeros(n, bool)
        return self._finish_step(obs, final, rew.reshape(-1), term.reshape(-1), trunc.reshape(-1), ended)

    def close(self) -> None:
        self.venv.close()


def make_vec_env(
    env: str | Callable[[], Any],
    n_envs: int = 8,
    seed: int | None = None,
    batched: bool | None = None,
    **env_kwargs: Any,
):
    """An SB3 vector env with parameter sharing over ``n_envs`` copies of one of our envs.

    Args:
        env: A registered id (``"mpg/Coordination-v0"``; ``pettingzoo.make``) or a function that
            builds a parallel env.
        n_envs: Copies (SB3 sees ``n_envs * N`` slots).
        seed: Seeds the copies at the first reset (None: OS entropy; else an integer >= 0).
            Batched: the batch's one generator with ``seed``; otherwise copy k with ``seed + k N``.
        batched: True: :class:`BatchedMPGVecEnv` (every copy in one call of the dynamics; needs a
            registered id); False: :class:`MPGVecEnv` (a Python loop over env objects); None
            (default): batched for a registered id, the loop for a builder function.
        **env_kwargs: Passed to the env (e.g. ``n_agents=2, observation="vector"``).

    Raises:
        ValueError: A bad ``env``, ``n_envs`` or ``seed``, unknown ``env_kwargs`` (the message lists
            the env's), ``env_kwargs`` or ``batched=True`` with a builder function, or copies too
            many for memory (:class:`~mpg_envs.TooLargeError`).

    Example:
        >>> from stable_baselines3 import PPO
        >>> from baselines.sb3 import make_vec_env
        >>> venv = make_vec_env("mpg/Coordination-v0", n_envs=4, seed=0, n_agents=2,
        ...                     observation="vector")
        >>> model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, seed=0).learn(256)
    """
    if isinstance(env, str):
        import pettingzoo

        import mpg_envs

        mpg_envs.check_model_env(env)
        check_env_kwargs(env, env_kwargs)
        env_id = env

        def make() -> Any:
            return pettingzoo.make("parallel", env_id, **env_kwargs)
    elif callable(env):
        if env_kwargs:
            raise ValueError("env_kwargs go with a registered id; a builder function takes its own arguments")
        make = env
    else:
        raise ValueError(f"env must be a registered id or a function building a parallel env, got {env!r}")
    n_envs = V.positive_int("n_envs", n_envs)
    seed = V.seed(seed)
    torch_threads()  # SB3's networks are small: one thread unless the user chose (baselines.threads)
    batched = isinstance(env, str) if batched is None else V.flag("batched", batched)
    if batched and not isinstance(env, str):
        raise ValueError(
            "batched=True needs a registered id (the batch steps the env's dynamics as arrays and cannot "
            "run a builder function's env); pass the id or batched=False"
        )
    if batched:
        from mpg_envs.vector import make_parallel_vec

        venv = BatchedMPGVecEnv(make_parallel_vec(env, n_envs, **env_kwargs))
    else:
        venv = MPGVecEnv(make, n_envs)
    if seed is not None:
        venv.seed(seed)
    return venv


class SB3Policy(Policy):
    """An SB3 model's (shared) policy as a :class:`Policy`: tabulate it, get its exact Nash gap.

    Args:
        model: A trained SB3 model with a discrete action space (PPO, A2C, DQN's greedy policy is
            not a distribution and is refused).
        action_sizes: (|A_1|, ..., |A_N|).
        obs_mode: The env's observation mode (the one SB3 was trained on).
    """

    def __init__(self, model: Any, action_sizes, obs_mode: str) -> None:
        import gymnasium

        from baselines.policies.base import OBS_MODES, _sizes

        if not hasattr(model, "policy") or not hasattr(model, "action_space"):
            raise V.ArgumentTypeError(
                f"model must be a Stable-Baselines3 model (PPO, A2C), got {V.show(model)}"
            )
        if not hasattr(model.policy, "get_distribution"):
            raise ValueError(f"{type(model).__name__}'s policy has no action distribution to tabulate")
        self.action_sizes = _sizes(action_sizes)
        space = model.action_space
        if not isinstance(space, gymnasium.spaces.Discrete) or set(self.action_sizes) != {int(space.n)}:
            raise ValueError(
                f"action_sizes {self.action_sizes} do not match the model's action space {space} (one shared "
                "policy: every agent has its n actions)"
            )
        self.obs_mode = V.one_of("obs_mode", obs_mode, OBS_MODES)
        torch_threads()
        self.model = model

    def probs(self, agent: int, obs: np.ndarray) -> np.ndarray:
        import torch

        self._check_agent(agent)
        policy = self.model.policy
        obs = np.asarray(obs)
        space = policy.observation_space
        if obs.ndim != 1 + len(space.shape) or obs.shape[1:] != space.shape:
            raise ValueError(
                f"obs must be a batch of the model's observations {space} (shape (B, *{space.shape})), got "
                f"shape {obs.shape}; obs_mode ({self.obs_mode!r}) must be the mode the model was trained on"
            )
        with torch.no_grad():
            t, _ = policy.obs_to_tensor(np.asarray(obs))
            p = policy.get_distribution(t).distribution.probs.cpu().numpy().astype(np.float64)
        return p / p.sum(axis=1, keepdims=True)

    def state_dict(self) -> dict[str, Any]:
        return {k: v.cpu().numpy() for k, v in self.model.policy.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        import torch

        self.model.policy.load_state_dict({k: torch.as_tensor(v) for k, v in state.items()})


def _callback_base():
    _sb3()
    from stable_baselines3.common.callbacks import BaseCallback

    return BaseCallback


class ExactMetricsCallback(_callback_base()):  # type: ignore[misc]
    """Every ``every`` environment steps, the exact Nash gap, values and potential of the SB3 policy.

    The policy is tabulated on every evaluated state's observation and evaluated by
    :class:`baselines.evaluation.ExactMetrics` (the joint model, or one model per task for
    MultiTaskGridWorld with ``observation="own"``, whose 10x10 layouts have no joint model that
    fits) -- the metrics of our own training runs: ``nash_gap`` (max over agents of the
    best-response improvement at mu) and ``nash_gap_worst``, ``potential``, ``poa`` (the price
    of anarchy), each agent's value ``value_i`` -- plus ``welfare`` (their sum) and
    ``timesteps``. Rows go to SB3's logger (``exact/...``) and to ``csv_path``.

    Args:
        env: One parallel env of the kind SB3 trains on (its exact model is built once).
        every: Environment steps (``model.num_timesteps``) between evaluations.
        csv_path: Where to append the rows (None: logger only).
        metrics: ``ExactMetrics(env)`` if already built (None: built here).
    """

    def __init__(
        self,
        env: Any,
        every: int = 2048,
        csv_path: str | Path | None = None,
        verbose: int = 0,
        *,
        metrics: ExactMetrics | None = None,
    ):
        super().__init__(verbose)
        from mpg_envs.core import MPGParallelEnv

        if not isinstance(getattr(env, "unwrapped", None), MPGParallelEnv):
            raise V.ArgumentTypeError(
                f"env must be one of our parallel envs (pettingzoo.make), got {V.show(env)}"
            )
        self.every = V.positive_int("every", every)
        self.csv_path = None if csv_path is None else Path(csv_path)
        if self.csv_path is not None and self.csv_path.is_dir():
            raise ValueError(
                f"csv_path must be a file to append rows to, got the folder {str(self.csv_path)!r}"
            )
        torch_threads()  # before SB3 trains: one thread unless the user chose (baselines.threads)
        self.penv = env.unwrapped
        if metrics is not None and (not isinstance(metrics, ExactMetrics) or metrics.env is not self.penv):
            raise ValueError(f"metrics must be ExactMetrics of this env, got {V.show(metrics)}")
        # the joint model, or one per task (MultiTaskGridWorld, "own")
        self.metrics = ExactMetrics(env) if metrics is None else metrics
        self.rows: list[dict[str, float]] = []
        self._next = 0

    def _tables(self) -> list[np.ndarray]:
        """The policy on the evaluated states' observations, N tables (S, |A_i|)."""
        pol = SB3Policy(self.model, self.metrics.action_sizes, self.metrics.observation_mode)
        obs = self.metrics.observations
        return [pol._probs_checked(i, obs[:, i]) for i in range(pol.n_agents)]

    def evaluate(self) -> dict[str, float]:
        """The exact metrics of the current policy (also called at the end of training)."""
        metrics = self.metrics(self._tables())
        row = {"timesteps": float(self.num_timesteps), **metrics}
        self.rows.append(row)
        values = {f"exact/{k}": v for k, v in row.items() if k != "timesteps"}
        for k, v in values.items():  # SB3's table and CSV at its next dump (as its own records)
            self.logger.record(k, v, exclude="tensorboard")
        self._write_tensorboard(values)
        if self.csv_path is not None:
            new = not self.csv_path.exists()
            with open(self.csv_path, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(row))
                if new:
                    w.writeheader()
                w.writerow(row)
        return row

    def _write_tensorboard(self, values: dict[str, float]) -> None:
        """TensorBoard gets the row now, at the evaluation's step: through SB3's records it would
        land one rollout late, and the evaluation at the end of training not at all (no dump
        follows it)."""
        from stable_baselines3.common.logger import TensorBoardOutputFormat

        for fmt in self.logger.output_formats:
            if isinstance(fmt, TensorBoardOutputFormat):
                fmt.write(values, dict.fromkeys(values), int(self.num_timesteps))

    def _on_training_start(self) -> None:
        self._next = self.num_timesteps

    def _on_rollout_start(self) -> None:  # the policy was just updated (or not yet trained)
        if self.num_timesteps >= self._next:
            self.evaluate()
            self._next = self.num_timesteps + self.every

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:  # the policy after the last update
        self.evaluate()


# ------------------------------------------------------------------------------ runs (the CLI's ``sb3``)
ALGOS = ("ppo", "a2c")
#: What a fresh run uses for an option left at None.
DEFAULTS: dict[str, Any] = dict(
    env="mpg/Coordination-v0", env_kwargs={}, algo="ppo", steps=32_768, n_envs=8, seed=0, eval_every=4096,
    out="runs",
)  # fmt: skip
#: The options that define a run (config.json); ``resume`` accepts only ``steps`` (to extend it).
RUN_OPTIONS = ("env", "env_kwargs", "algo", "n_envs", "seed", "eval_every", "out")
#: Timesteps are recorded as floats in exact.csv: beyond 2**53 they would not be exact.
MAX_STEPS = 2**53
#: SB3 seeds NumPy's global generator, which takes 32-bit seeds.
MAX_SEED = 2**32 - 1
_CONFIG_KEYS = ("kind", "env", "env_kwargs", "algo", "steps", "n_envs", "seed", "eval_every")
_RESTART = "delete model.zip and exact.csv to restart the run from step 0 with the same config"


_RUN_KEY = "mpg_run_config"


def _run_identity(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config without ``steps`` (which resuming may extend), as JSON gives it back."""
    from baselines.runs import config_record

    return config_record(cfg, ("steps",))


def exact_fields(n_agents: int) -> list[str]:
    """The columns of an sb3 run's ``exact.csv`` (those of :class:`ExactMetricsCallback`'s rows)."""
    values = [f"value_{i}" for i in range(n_agents)]
    return ["timesteps", "nash_gap", "nash_gap_worst", "potential", "poa", *values, "welfare"]


def _check_config(cfg: dict[str, Any], where: str) -> dict[str, Any]:
    """``cfg`` with every value checked; ``where`` prefixes the message (a config.json when resuming).

    Raises:
        ValueError: A bad value, named with what is allowed (a DamagedRunError for a saved config).
    """
    import mpg_envs
    from baselines.runs import DamagedRunError

    def bad(msg: str) -> ValueError:
        if where:
            return DamagedRunError(f"{where}: {msg}; restore it or start a new run")
        return ValueError(msg)

    if cfg.get("kind") != "sb3":
        raise bad(f"not an sb3 run (kind {V.show(cfg.get('kind'))})")
    missing = [k for k in _CONFIG_KEYS if k not in cfg]
    unknown = sorted(set(cfg) - set(_CONFIG_KEYS))
    if missing or unknown:
        parts = ([f"no {missing}"] if missing else []) + ([f"unknown keys {unknown}"] if unknown else [])
        raise bad(f"not an sb3 run config ({', '.join(parts)})")
    try:
        mpg_envs.check_model_env(cfg["env"])
        kw = cfg["env_kwargs"]
        if not isinstance(kw, dict) or not all(isinstance(k, str) for k in kw):
            raise ValueError(f"env_kwargs must be a dict of keyword arguments, got {V.show(kw)}")
        out = dict(cfg)
        out["algo"] = V.one_of("algo", cfg["algo"], ALGOS)
        out["steps"] = V.positive_int("steps", cfg["steps"], maximum=MAX_STEPS)
        out["n_envs"] = V.positive_int("n_envs", cfg["n_envs"])
        out["seed"] = V.integer("seed", cfg["seed"], minimum=0, maximum=MAX_SEED)
        out["eval_every"] = V.positive_int("eval_every", cfg["eval_every"])
    except ValueError as err:
        raise bad(str(err)) from None
    return out


def _make_env(env_id: str, env_kwargs: dict[str, Any]) -> Any:
    """One parallel env; unknown keyword arguments raise ValueError naming the allowed ones."""
    import pettingzoo

    check_env_kwargs(env_id, env_kwargs)
    try:
        return pettingzoo.make("parallel", env_id, **env_kwargs)
    except TypeError as err:
        raise ValueError(f"env_kwargs {env_kwargs!r} for {env_id}: {err}") from None


def _rollout_steps(cfg: dict[str, Any], n_slots: int) -> tuple[int, int]:
    """(n_steps, batch_size) of the SB3 algorithm: PPO's rollout is min(2048, eval_every) agent-steps
    whatever the slot count (SB3 learns whole rollouts and evaluates between them); A2C's SB3 default."""
    if cfg["algo"] == "ppo":
        n_steps = max(8, min(2048, cfg["eval_every"]) // n_slots)
        return n_steps, min(256, n_steps * n_slots)
    return 5, 5 * n_slots


def _check_run_bytes(cfg: dict[str, Any], env: Any, n_states: int) -> None:
    """Refuse, before SB3 allocates anything, a run whose rollout buffer, network or exact
    tabulation (over ``n_states`` evaluated states) would not fit (exact Python ints: no overflow
    whatever the sizes)."""
    from stable_baselines3.common.preprocessing import get_flattened_obs_dim, get_obs_shape

    raw = env.unwrapped
    N = len(raw.possible_agents)
    space = env.observation_space(raw.possible_agents[0])
    F = int(get_flattened_obs_dim(space))  # what the network reads (SB3 one-hots Discrete spaces)
    Fs = int(np.prod(get_obs_shape(space), dtype=object))  # what a buffer stores per observation
    A = int(max(raw.dynamics.action_sizes))
    slots = int(cfg["n_envs"]) * N
    n_steps, batch = _rollout_steps(cfg, slots)
    S = int(n_states)
    rollout = 2 * n_steps * slots * (Fs + 8) * 4  # SB3's buffer and the flattened copies get() makes
    step = slots * (8 * Fs * 4 + F * 4 + 400)  # the vector env's arrays, copies, one-hot, info dicts
    net = 16 * (2 * (F * 64 + 64 * 64 + 64) + 64 * (A + 1)) + batch * (F + 4 * 64) * 4 * 3
    table = S * (N * Fs * 4 + (F + 4 * 64) * 4)  # every state's observation through the network
    V.check_bytes(
        f"the SB3 run ({slots:,} slots = {cfg['n_envs']:,} copies x {N} agents, rollouts of {n_steps:,} "
        f"steps, {F:,} observation features, tabulation over {S:,} states)",
        rollout + step + net + table,
        advice="use fewer --n-envs, or the vector observation (observation=vector) instead of a one-hot one",
    )


def _saved_model(path: Path) -> tuple[str, dict[str, Any]]:
    """The algorithm of a saved SB3 model and its saved attributes (JSON), read without unpickling.

    Raises:
        DamagedRunError: Not a readable SB3 save, or of another algorithm than PPO or A2C.
    """
    import json
    import zipfile

    from baselines.runs import DamagedRunError

    try:
        with zipfile.ZipFile(path) as z:
            data = json.loads(z.read("data"))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise DamagedRunError(f"{path}: cannot read the saved model ({err}); {_RESTART}") from None
    if not isinstance(data, dict) or not {"policy_class", "n_steps", "n_envs", "num_timesteps"} <= set(data):
        raise DamagedRunError(f"{path}: not a PPO or A2C model saved by SB3; {_RESTART}")
    t = data["num_timesteps"]
    if not V.is_integer(t) or t < 0:
        raise DamagedRunError(f"{path}: its num_timesteps is {V.show(t)}, not a count; {_RESTART}")
    ppo = {"clip_range", "n_epochs", "batch_size"}
    if ppo <= set(data):
        return "ppo", data
    if not ppo & set(data) and not {"buffer_size", "exploration_rate"} & set(data):
        return "a2c", data
    raise DamagedRunError(f"{path}: not a PPO or A2C model saved by SB3; {_RESTART}")


def _read_exact_csv(path: Path, fields: list[str]) -> tuple[str, list[tuple[float, str]]]:
    """The header line and the complete rows of an sb3 run's exact.csv as (timesteps, line); a last
    line cut short by a kill (no line end, or not a full row of numbers) is dropped.

    Raises:
        DamagedRunError: Unreadable, another header, an earlier row malformed, or timesteps not
            increasing.
    """
    from baselines.runs import DamagedRunError

    try:
        lines = path.read_bytes().decode().splitlines(keepends=True)
    except (OSError, UnicodeDecodeError) as err:
        raise DamagedRunError(f"{path}: cannot read it ({err}); {_RESTART}") from None
    if not lines or not lines[0].endswith("\n"):
        return "", []  # killed while writing the header: no row yet
    if lines[0].rstrip("\r\n").split(",") != fields:
        raise DamagedRunError(
            f"{path}: unexpected header {lines[0].rstrip()!r} (expected {','.join(fields)!r}); {_RESTART}"
        )
    rows: list[tuple[float, str]] = []
    for n, line in enumerate(lines[1:], 2):
        try:
            values = [float(c) for c in line.rstrip("\r\n").split(",")]
            ok = line.endswith("\n") and len(values) == len(fields)
        except ValueError:
            ok = False
        if not ok:
            if n == len(lines):
                break  # the row a kill cut short
            raise DamagedRunError(f"{path}: line {n} is damaged ({line.rstrip()!r}); {_RESTART}")
        if rows and not values[0] > rows[-1][0]:
            raise DamagedRunError(
                f"{path}: line {n} is at timesteps {values[0]:g}, not after the row before it; {_RESTART}"
            )
        rows.append((values[0], line))
    return lines[0], rows


def _resume_plan(
    folder: Any, fields: list[str], steps: int
) -> tuple[str | None, dict[str, Any], bytes | None]:
    """What resuming finds and what it will write, read without writing anything: the saved
    model's algorithm and attributes (None, {}: no model.zip) and exact.csv's new content.

    Without a model.zip (killed before the first save), exact.csv goes (b""): the run restarts from
    step 0 and writes exactly what an uninterrupted run writes. With one at T agent-steps: rows
    after T (evaluations whose save the kill prevented) go, and so does the row at T when training is
    left (the resumed run evaluates the saved model again and writes that row anew, identical).

    Raises:
        DamagedRunError: An unreadable model.zip or exact.csv, or one inconsistent with the other.
    """
    from baselines.runs import DamagedRunError

    path, csv_path = folder.path / "model.zip", folder.path / "exact.csv"
    if not path.exists():
        return None, {}, b""
    algo, data = _saved_model(path)
    t = int(data["num_timesteps"])
    if not csv_path.is_file():
        raise DamagedRunError(f"{csv_path}: missing, but model.zip is at {t:,} agent-steps; {_RESTART}")
    header, rows = _read_exact_csv(csv_path, fields)
    if not any(r == t for r, _ in rows):
        raise DamagedRunError(f"{csv_path}: no row at the saved model's {t:,} agent-steps; {_RESTART}")
    keep = [line for r, line in rows if r < t or (r == t and t >= steps)]
    return algo, data, "".join([header, *keep]).encode()


def run_sb3(
    env: str | None = None,
    env_kwargs: dict[str, Any] | None = None,
    algo: str | None = None,
    steps: int | None = None,
    n_envs: int | None = None,
    seed: int | None = None,
    eval_every: int | None = None,
    out: str | Path | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Train an SB3 algorithm with parameter sharing and exact metrics; a resumable run folder.

    The folder holds ``config.json``, ``exact.csv`` (timesteps, Nash gap, welfare, POA, values) and
    ``model.zip`` (saved at every evaluation, right after its row). One process writes a folder at a
    time (:meth:`~baselines.runs.RunFolder.lock`). A killed run resumes with ``resume=``: killed
    before its first model.zip, it restarts and writes exactly the rows an uninterrupted run
    writes; later, it continues the step count from the last model.zip, dropping the rows after it
    (SB3 saves no environment or random-generator state, so the rows from there on are those of a
    run that restarted its episodes from the seed, not those of an uninterrupted run).

    Every option is checked, and the env, its exact model and the SB3 model are built, before the
    run folder is created: a refused run leaves nothing behind.

    Args:
        env: A registered id (default ``"mpg/Coordination-v0"``).
        env_kwargs: Its arguments (``observation`` defaults to ``"vector"``: parameter sharing).
        algo: ``"ppo"`` (default) or ``"a2c"`` (SB3 defaults otherwise).
        steps: Agent-steps in total (default 32,768, at most 2**53); with ``resume``, the run's own,
            or more to extend it.
        n_envs: Env copies (default 8; ``n_envs * N`` SB3 slots).
        seed: Seeds the copies and SB3 (default 0; at most 2**32 - 1, SB3 seeds NumPy with it).
        eval_every: Agent-steps between exact evaluations and saves (default 4096).
        out: Directory receiving the run folder (default ``"runs"``).
        resume: A run folder to continue with its own config.json; only ``steps`` may be given.
        progress: Print a line per evaluation.

    Returns:
        The run folder.

    Raises:
        ValueError: A bad option (named, with what is allowed), a run too large for memory
            (:class:`~mpg_envs.TooLargeError`), a damaged run folder
            (:class:`~baselines.runs.DamagedRunError`, naming the file and what to do), or a run
            folder another process is writing (:class:`~baselines.runs.RunInUseError`).
    """
    from baselines.runs import RunFolder, run_name

    progress = V.flag("progress", progress)
    given = dict(env=env, env_kwargs=env_kwargs, algo=algo, n_envs=n_envs, seed=seed, eval_every=eval_every,
                 out=out)  # fmt: skip
    torch_threads()  # small networks: one thread unless the user chose (baselines.threads)
    if resume is None:
        opts = {k: DEFAULTS[k] if v is None else v for k, v in given.items()}
        kw = opts["env_kwargs"]
        if not isinstance(kw, dict) or not all(isinstance(k, str) for k in kw):
            raise V.ArgumentTypeError(f"env_kwargs must be a dict of keyword arguments, got {V.show(kw)}")
        cfg = dict(kind="sb3", env=opts["env"], env_kwargs={"observation": "vector", **kw}, algo=opts["algo"],
                   steps=DEFAULTS["steps"] if steps is None else steps, n_envs=opts["n_envs"],
                   seed=opts["seed"], eval_every=opts["eval_every"])  # fmt: skip
        cfg = _check_config(cfg, "")
        setup = _Setup(cfg, None)
        layout = cfg["env_kwargs"].get("layout") if cfg["env"] == "mpg/MultiTaskGridWorld-v0" else None
        folder = RunFolder.create(
            opts["out"], run_name(cfg["env"], f"sb3-{cfg['algo']}", cfg["seed"], layout)
        )
        with folder.lock():
            folder.write_config(cfg)
            return setup.learn(folder, progress)
    changed = [k for k, v in given.items() if v is not None]
    if changed:
        raise ValueError(
            f"resume continues a run with its own config.json; options cannot be changed (got "
            f"{', '.join(changed)}); only steps extends it"
        )
    folder = RunFolder(resume)
    _check_config(folder.read_config(), str(folder.config_path))  # an sb3 run (before its lock file)
    with folder.lock():
        saved = _check_config(folder.read_config(), str(folder.config_path))
        cfg = dict(saved)
        if steps is not None:  # extend, never shorten
            if not V.is_integer(steps) or not cfg["steps"] <= steps <= MAX_STEPS:
                raise ValueError(
                    f"steps must be an integer in [{cfg['steps']:,}, {MAX_STEPS:,}] (the run's steps or "
                    f"more, to extend it), got {V.show(steps)}"
                )
            cfg["steps"] = int(steps)
        setup = _Setup(cfg, folder)
        if cfg != saved:
            folder.write_config(cfg)  # the extension is recorded before anything else
        return setup.learn(folder, progress)


class _Setup:
    """Everything a run needs, built and checked before it writes anything: the env (unknown
    keyword arguments refused), its exact model, the memory estimate, the vector env and the SB3
    model (new, or loaded from the run folder's model.zip after checking it)."""

    def __init__(self, cfg: dict[str, Any], folder: Any) -> None:
        from stable_baselines3 import A2C, PPO

        from baselines.runs import DamagedRunError, atomic_write_bytes, changed_entries
        from mpg_envs import ModelTooLargeError

        self.cfg = cfg
        self.one = _make_env(cfg["env"], cfg["env_kwargs"])
        try:  # too large for the exact evaluation: refused now (the callback reuses it)
            self.metrics = ExactMetrics(self.one)
        except ModelTooLargeError as err:
            raise ModelTooLargeError(
                f"an sb3 run evaluates its policy exactly on {cfg['env']}: {err}"
            ) from None
        _check_run_bytes(cfg, self.one, self.metrics.n_states)
        self.venv = make_vec_env(cfg["env"], n_envs=cfg["n_envs"], seed=cfg["seed"], **cfg["env_kwargs"])
        cls = PPO if cfg["algo"] == "ppo" else A2C
        self.fields = exact_fields(len(self.one.unwrapped.possible_agents))
        n_steps, batch = _rollout_steps(cfg, self.venv.num_envs)
        algo, data, csv_bytes = (
            (None, {}, None) if folder is None else _resume_plan(folder, self.fields, cfg["steps"])
        )
        if algo is None:  # a new run, or one killed before its first save: start (again) from step 0
            extra = {"n_steps": n_steps, "batch_size": batch} if cfg["algo"] == "ppo" else {}
            self.model = cls("MlpPolicy", self.venv, seed=cfg["seed"], verbose=0, **extra)
        else:
            path = folder.path / "model.zip"
            if algo != cfg["algo"]:
                raise DamagedRunError(
                    f"{path}: a {algo.upper()} model, but config.json says algo {cfg['algo']!r}; restore "
                    f"config.json (algo {algo!r}) or {_RESTART}"
                )
            run = data.get(_RUN_KEY)  # absent in saves of older versions
            differ = [] if run is None else changed_entries(run, _run_identity(cfg))
            if differ:
                what = ", ".join(f"{k} {V.show(cfg.get(k))} (the run's {V.show(run.get(k))})" for k in differ)
                raise DamagedRunError(
                    f"{folder.config_path}: differs from the config the saved model was trained with "
                    f"({what}); restore config.json or {_RESTART}"
                )
            expect = {"n_envs": self.venv.num_envs, "n_steps": n_steps, "seed": cfg["seed"]}
            if algo == "ppo":
                expect["batch_size"] = batch
            differ = {k: (data.get(k), v) for k, v in expect.items() if data.get(k) != v}
            if differ:
                what = ", ".join(
                    f"{k} {a!r} in model.zip, {b!r} from config.json" for k, (a, b) in differ.items()
                )
                raise DamagedRunError(
                    f"{folder.config_path}: does not match the saved model ({what}); restore config.json or "
                    f"{_RESTART}"
                )
            try:
                self.model = cls.load(path, env=self.venv, device="cpu")
            except Exception as err:  # noqa: BLE001 - SB3 raises many kinds for a damaged or foreign save
                raise DamagedRunError(
                    f"{path}: cannot load it for this run's env ({type(err).__name__}: {err}); {_RESTART}"
                ) from None
        if folder is None:
            return
        # nothing was written so far; now make the folder consistent with the model
        folder.clean_temporaries()
        (folder.path / "model.tmp.zip").unlink(missing_ok=True)  # older versions' temporary save
        csv_path = folder.path / "exact.csv"
        if not csv_bytes:
            csv_path.unlink(missing_ok=True)
        elif csv_bytes != csv_path.read_bytes():
            atomic_write_bytes(csv_path, csv_bytes)

    def learn(self, folder: Any, progress: bool) -> Path:
        """Train to the config's steps, appending to exact.csv and saving model.zip at each evaluation."""
        import io

        from baselines.runs import atomic_write_bytes

        cfg, model = self.cfg, self.model
        path = folder.path / "model.zip"
        identity = _run_identity(cfg)

        class _Save(ExactMetricsCallback):
            def evaluate(self) -> dict[str, float]:
                row = super().evaluate()  # the row first, then its model: a kill between them
                buf = io.BytesIO()  # leaves a row that resuming drops
                setattr(self.model, _RUN_KEY, identity)  # what defines the run, checked on resuming
                self.model.save(buf, include=[_RUN_KEY])
                atomic_write_bytes(path, buf.getvalue())
                if progress:
                    print(
                        f"{int(row['timesteps']):>9} agent-steps: Nash gap {row['nash_gap']:.4g}, "
                        f"welfare {row['welfare']:.4g}, POA {row['poa']:.3f}",
                        flush=True,
                    )
                return row

        cb = _Save(
            self.one, every=cfg["eval_every"], csv_path=folder.path / "exact.csv", metrics=self.metrics
        )
        remaining = cfg["steps"] - model.num_timesteps
        if remaining > 0:
            model.learn(remaining, callback=cb, reset_num_timesteps=False)
        elif progress:
            print(
                f"nothing to train: the run is at {model.num_timesteps:,} of its {cfg['steps']:,} "
                "agent-steps (give more steps to extend it)",
                flush=True,
            )
        return folder.path
