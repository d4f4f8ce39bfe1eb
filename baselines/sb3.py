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
(:class:`baselines.evaluation.JointEvaluator`: Nash gap, potential where the env has one, price of
anarchy, each agent's value) while SB3 trains -- into SB3's logger and a CSV in the run folder.

Needs ``stable-baselines3`` (the ``baselines`` extra installs it).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from baselines.evaluation import JointEvaluator, welfare
from baselines.policies.base import Policy
from baselines.threads import torch_threads
from mpg_envs import _validate as V

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
        self.envs = [make_env() for _ in range(V.positive_int("n_envs", n_envs))]
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
        seed: Seeds the copies at the first reset (None: OS entropy). Batched: the batch's one
            generator with ``seed``; otherwise copy k with ``seed + k N``.
        batched: True: :class:`BatchedMPGVecEnv` (every copy in one call of the dynamics; needs a
            registered id); False: :class:`MPGVecEnv` (a Python loop over env objects); None
            (default): batched for a registered id, the loop for a builder function.
        **env_kwargs: Passed to the env (e.g. ``n_agents=2, observation="vector"``).

    Raises:
        ValueError: A bad ``env`` or ``n_envs``, ``env_kwargs`` with a builder function, or
            ``batched=True`` with a builder function.

    Example:
        >>> from stable_baselines3 import PPO
        >>> from baselines.sb3 import make_vec_env
        >>> venv = make_vec_env("mpg/Coordination-v0", n_envs=4, seed=0, n_agents=2,
        ...                     observation="vector")
        >>> model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, seed=0).learn(256)
    """
    if isinstance(env, str):
        import pettingzoo

        import mpg_envs  # noqa: F401 - registers the envs

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
        venv.seed(int(seed))
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
        from baselines.policies.base import _sizes

        if not hasattr(model.policy, "get_distribution"):
            raise ValueError(f"{type(model).__name__}'s policy has no action distribution to tabulate")
        torch_threads()
        self.model = model
        self.action_sizes = _sizes(action_sizes)
        self.obs_mode = obs_mode

    def probs(self, agent: int, obs: np.ndarray) -> np.ndarray:
        import torch

        self._check_agent(agent)
        policy = self.model.policy
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

    The policy is tabulated on every model state's observation (:meth:`Policy.table`) and
    evaluated by :class:`baselines.evaluation.JointEvaluator` -- the metrics of our own training
    runs: ``nash_gap`` (max over agents of the best-response improvement at mu) and
    ``nash_gap_worst``, ``potential``, ``poa`` (the price of anarchy), each agent's value
    ``value_i`` -- plus ``welfare`` (their sum) and ``timesteps``. Rows go to SB3's logger
    (``exact/...``) and to ``csv_path``.

    Args:
        env: One parallel env of the kind SB3 trains on (its exact model is built once).
        every: Environment steps (``model.num_timesteps``) between evaluations.
        csv_path: Where to append the rows (None: logger only).
    """

    def __init__(self, env: Any, every: int = 2048, csv_path: str | Path | None = None, verbose: int = 0):
        super().__init__(verbose)
        torch_threads()  # before SB3 trains: one thread unless the user chose (baselines.threads)
        self.penv = env.unwrapped
        self.mdl = self.penv.model()
        self.evaluator = JointEvaluator(self.mdl)
        self.every = int(every)
        self.csv_path = None if csv_path is None else Path(csv_path)
        self.rows: list[dict[str, float]] = []
        self._next = 0

    def _tables(self) -> list[np.ndarray]:
        pol = SB3Policy(self.model, self.penv.dynamics.action_sizes, self.penv.observation_mode)
        return pol.table(self.penv.dynamics)

    def evaluate(self) -> dict[str, float]:
        """The exact metrics of the current policy (also called at the end of training)."""
        metrics = self.evaluator(self._tables())
        row = {"timesteps": float(self.num_timesteps), **metrics, "welfare": welfare(metrics)}
        self.rows.append(row)
        for k, v in row.items():
            if k != "timesteps":
                self.logger.record(f"exact/{k}", v)
        if self.csv_path is not None:
            new = not self.csv_path.exists()
            with open(self.csv_path, "a", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(row))
                if new:
                    w.writeheader()
                w.writerow(row)
        return row

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


def run_sb3(
    env: str = "mpg/Coordination-v0",
    env_kwargs: dict[str, Any] | None = None,
    algo: str = "ppo",
    steps: int | None = None,
    n_envs: int = 8,
    seed: int = 0,
    eval_every: int = 4096,
    out: str | Path = "runs",
    resume: str | Path | None = None,
    progress: bool = True,
) -> Path:
    """Train an SB3 algorithm with parameter sharing and exact metrics; a resumable run folder.

    The folder holds ``config.json``, ``exact.csv`` (timesteps, Nash gap, welfare, POA, values) and
    ``model.zip`` (saved at every evaluation: a killed run resumes from the last one with
    ``resume=``, continuing the step count).

    Args:
        env: A registered id.
        env_kwargs: Its arguments (``observation`` defaults to ``"vector"``: parameter sharing).
        algo: ``"ppo"`` or ``"a2c"`` (SB3 defaults otherwise).
        steps: Agent-steps in total (default 32,768; with ``resume``, the run's own unless larger).
        n_envs: Env copies (``n_envs * N`` SB3 slots).
        seed: Seeds the copies and SB3.
        eval_every: Agent-steps between exact evaluations (and saves).
        out: Directory receiving the run folder.
        resume: A run folder to continue (its own config; ``steps`` may extend it).
        progress: Print a line per evaluation.

    Returns:
        The run folder.
    """
    from stable_baselines3 import A2C, PPO

    from baselines.runs import DamagedRunError, RunFolder, atomic_write_bytes, run_name

    torch_threads()  # small networks: one thread unless the user chose (baselines.threads)
    if resume is not None:
        folder = RunFolder(resume)
        cfg = folder.read_config()
        if cfg.get("kind") != "sb3":
            raise DamagedRunError(f"{folder.config_path}: not an sb3 run (kind {cfg.get('kind')!r})")
        if steps is not None:  # extend, never shorten
            cfg["steps"] = max(V.positive_int("steps", steps), cfg["steps"])
            folder.write_config(cfg)
    else:
        V.one_of("algo", algo, ALGOS)
        cfg = dict(kind="sb3", env=env, env_kwargs={"observation": "vector", **(env_kwargs or {})}, algo=algo,
                   steps=V.positive_int("steps", 32_768 if steps is None else steps),
                   n_envs=V.positive_int("n_envs", n_envs), seed=V.integer("seed", seed, minimum=0),
                   eval_every=V.positive_int("eval_every", eval_every))  # fmt: skip
        layout = cfg["env_kwargs"].get("layout") if env == "mpg/MultiTaskGridWorld-v0" else None
        folder = RunFolder.create(out, run_name(env, f"sb3-{algo}", seed, layout))
        folder.write_config(cfg)
    import pettingzoo

    venv = make_vec_env(cfg["env"], n_envs=cfg["n_envs"], seed=cfg["seed"], **cfg["env_kwargs"])
    one = pettingzoo.make("parallel", cfg["env"], **cfg["env_kwargs"])
    cls = PPO if cfg["algo"] == "ppo" else A2C
    path = folder.path / "model.zip"
    csv_path = folder.path / "exact.csv"
    if path.exists():
        model = cls.load(path, env=venv)
        # with training left: rows from evaluations after the saved model (a kill between a row and
        # its save) or of it (evaluated again on resuming) go; the resumed run writes them anew
        if csv_path.exists() and model.num_timesteps < cfg["steps"]:
            lines = csv_path.read_text().splitlines(keepends=True)
            keep = [ln for ln in lines[1:] if float(ln.split(",", 1)[0]) < model.num_timesteps]
            atomic_write_bytes(csv_path, "".join(lines[:1] + keep).encode())
    else:
        # PPO: one rollout = min(2048, eval_every) agent-steps whatever the slot count (SB3 learns
        # whole rollouts, and evaluates between them)
        n_steps = max(8, min(2048, cfg["eval_every"]) // venv.num_envs)
        extra = {"n_steps": n_steps, "batch_size": min(256, n_steps * venv.num_envs)}
        extra = extra if cfg["algo"] == "ppo" else {}
        model = cls("MlpPolicy", venv, seed=cfg["seed"], verbose=0, **extra)

    class _Save(ExactMetricsCallback):
        def evaluate(self) -> dict[str, float]:
            row = super().evaluate()
            tmp = folder.path / "model.tmp.zip"
            self.model.save(tmp)
            tmp.replace(path)
            if progress:
                print(
                    f"{int(row['timesteps']):>9} agent-steps: Nash gap {row['nash_gap']:.4g}, "
                    f"welfare {row['welfare']:.4g}, POA {row['poa']:.3f}",
                    flush=True,
                )
            return row

    cb = _Save(one, every=cfg["eval_every"], csv_path=csv_path)
    remaining = cfg["steps"] - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, callback=cb, reset_num_timesteps=False)
    elif progress:
        print(
            f"nothing to train: the run is at {model.num_timesteps:,} of its {cfg['steps']:,} agent-steps "
            "(give more steps to extend it)",
            flush=True,
        )
    return folder.path
