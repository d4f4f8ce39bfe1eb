"""Stable-Baselines3 for every env: a parameter-sharing vector env and an exact-metrics callback.

:func:`make_vec_env` turns any of our parallel envs into an SB3 ``VecEnv`` with one slot per
(copy, agent) -- parameter sharing, the way SuperSuit's ``pettingzoo_env_to_vec_env_v1`` +
``concat_vec_envs_v1`` do it -- but without the glue those need here (measured on SuperSuit 3.11 /
SB3 2.9):

* **each copy seeded on its own**: ``vec_env.seed(s)`` (SB3's convention) gives copy k the seed
  ``s + k N`` at the next reset; SuperSuit's vector env has no ``seed`` at all;
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
policy bridge of :mod:`baselines.policies`) and records the exact Nash gap, each agent's value, the
potential and (where the env has one) the price of anarchy while SB3 trains -- into SB3's logger and a
CSV in the run folder.

Needs ``stable-baselines3`` (the ``baselines`` extra installs it).
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from baselines.policies.base import Policy
from mpg_envs import _validate as V

__all__ = ["MPGVecEnv", "make_vec_env", "SB3Policy", "ExactMetricsCallback"]


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


class MPGVecEnv(_vec_env_base()):  # type: ignore[misc]
    """``n_envs`` copies of a parallel env, one SB3 slot per (copy, agent): slot ``k N + i`` is agent
    i of copy k.

    Args:
        make_env: Builds one parallel env (every copy is built by calling it).
        n_envs: Copies.

    Raises:
        ValueError: Agents whose observation or action spaces differ (one shared network cannot read
            them; ``observation="vector"`` gives every agent the same space where the env has it).
    """

    def __init__(self, make_env: Callable[[], Any], n_envs: int = 8) -> None:
        self.envs = [make_env() for _ in range(V.positive_int("n_envs", n_envs))]
        env = self.envs[0]
        self.agents = list(env.possible_agents)
        self.n_agents = len(self.agents)
        obs_space = env.observation_space(self.agents[0])
        act_space = env.action_space(self.agents[0])
        for a in self.agents[1:]:
            if env.observation_space(a) != obs_space or env.action_space(a) != act_space:
                raise ValueError(
                    f"parameter sharing needs one observation and action space for every agent; {a} has "
                    f"{env.observation_space(a)} / {env.action_space(a)}, {self.agents[0]} has {obs_space} / "
                    f"{act_space} (observation='vector' gives every agent the same space)"
                )
        super().__init__(len(self.envs) * self.n_agents, obs_space, act_space)
        self._obs = np.zeros((self.num_envs, *obs_space.shape), dtype=obs_space.dtype)
        self._ret = np.zeros(self.num_envs)
        self._len = np.zeros(self.num_envs, np.int64)
        self._dead = np.zeros(self.num_envs, bool)
        self._actions: np.ndarray | None = None

    # ---------------------------------------------------------------- SB3 VecEnv API
    def reset(self) -> np.ndarray:
        for k in range(len(self.envs)):
            self._reset_copy(k, self._seeds[k * self.n_agents])
        self._reset_seeds()
        self._reset_options()
        return self._obs.copy()

    def _reset_copy(self, k: int, seed: int | None) -> None:
        obs, infos = self.envs[k].reset(seed=seed)
        N = self.n_agents
        for i, a in enumerate(self.agents):
            self._obs[k * N + i] = obs[a]
            self.reset_infos[k * N + i] = infos.get(a, {})
        self._ret[k * N : (k + 1) * N] = 0.0
        self._len[k * N : (k + 1) * N] = 0
        self._dead[k * N : (k + 1) * N] = False

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self):
        N = self.n_agents
        rews = np.zeros(self.num_envs, np.float32)
        dones = np.zeros(self.num_envs, bool)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for k, env in enumerate(self.envs):
            live = set(env.agents)
            act = {a: int(self._actions[k * N + i]) for i, a in enumerate(self.agents) if a in live}
            obs, rew, term, trunc, info = env.step(act)
            for i, a in enumerate(self.agents):
                j = k * N + i
                if a not in obs:  # finished earlier: a dead slot until the copy resets
                    self._obs[j] = 0
                    continue
                rews[j] = rew[a]
                self._ret[j] += rew[a]
                self._len[j] += 1
                infos[j].update(info.get(a, {}))
                if term[a] or trunc[a]:
                    dones[j] = True
                    infos[j]["terminal_observation"] = np.asarray(obs[a])
                    infos[j]["TimeLimit.truncated"] = bool(trunc[a] and not term[a])
                    infos[j]["episode"] = {"r": float(self._ret[j]), "l": int(self._len[j])}
                    self._dead[j] = True
                    self._obs[j] = 0
                else:
                    self._obs[j] = obs[a]
            if not env.agents:  # every agent of this copy finished: close the dead slots, reset
                for i in range(N):
                    j = k * N + i
                    if self._dead[j] and not dones[j]:
                        dones[j] = True  # the dead stretch ends here (reward 0, no bootstrap)
                        infos[j]["terminal_observation"] = np.zeros_like(self._obs[j])
                        infos[j]["TimeLimit.truncated"] = False
                self._reset_copy(k, None)
        return self._obs.copy(), rews, dones, infos

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.envs[j // self.n_agents], attr_name) for j in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        for j in self._get_indices(indices):
            setattr(self.envs[j // self.n_agents], attr_name, value)

    def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
        return [
            getattr(self.envs[j // self.n_agents], method_name)(*method_args, **method_kwargs)
            for j in self._get_indices(indices)
        ]

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]


def make_vec_env(env: str | Callable[[], Any], n_envs: int = 8, seed: int | None = None, **env_kwargs):
    """An SB3 vector env with parameter sharing over ``n_envs`` copies of one of our envs.

    Args:
        env: A registered id (``"mpg/Coordination-v0"``; ``pettingzoo.make``) or a function that
            builds a parallel env.
        n_envs: Copies (SB3 sees ``n_envs * N`` slots).
        seed: Seeds copy k with ``seed + k N`` at the first reset (None: OS entropy, every copy
            its own stream).
        **env_kwargs: Passed to the env (e.g. ``n_agents=2, observation="vector"``).

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

    The policy is tabulated on every model state's observation (:meth:`Policy.table`), and
    :mod:`mpg_envs.exact` evaluates the tables: ``nash_gap`` (max over agents of the best-response
    improvement), each agent's value ``V_i(mu)``, their sum (``welfare``) and the price of anarchy
    (welfare over the social optimum's, computed once). Rows go to SB3's logger (``exact/...``) and
    to ``csv_path``.

    Args:
        env: One parallel env of the kind SB3 trains on (its exact model is built once).
        every: Environment steps (``model.num_timesteps``) between evaluations.
        csv_path: Where to append the rows (None: logger only).
    """

    def __init__(self, env: Any, every: int = 2048, csv_path: str | Path | None = None, verbose: int = 0):
        super().__init__(verbose)
        from mpg_envs import exact

        self.exact = exact
        self.penv = env.unwrapped
        self.mdl = self.penv.model()
        self.every = int(every)
        self.csv_path = None if csv_path is None else Path(csv_path)
        self.rows: list[dict[str, float]] = []
        self._next = 0
        try:  # the social optimum, once (for the price of anarchy)
            self.optimum = exact.social_optimum(self.mdl)
        except (ValueError, MemoryError):
            self.optimum = None

    def _tables(self) -> list[np.ndarray]:
        pol = SB3Policy(self.model, self.penv.dynamics.action_sizes, self.penv.observation_mode)
        return pol.table(self.penv.dynamics)

    def evaluate(self) -> dict[str, float]:
        """The exact metrics of the current policy (also called at the end of training)."""
        tables = self._tables()
        V = self.exact.evaluate(self.mdl, tables) @ self.mdl.mu
        row = {
            "timesteps": float(self.num_timesteps),
            "nash_gap": self.exact.nash_gap(self.mdl, tables).gap,
            "welfare": float(V.sum()),
            **{f"value_agent_{i}": float(v) for i, v in enumerate(V)},
        }
        if self.optimum is not None:
            row["poa"] = float(self.exact.price_of_anarchy(self.mdl, tables, self.optimum))
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
    import torch
    from stable_baselines3 import A2C, PPO

    from baselines.runs import DamagedRunError, RunFolder, atomic_write_bytes

    torch.set_num_threads(1)  # small networks on shared cores
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
        folder = RunFolder.create(out, f"{env.split('/')[-1]}__sb3-{algo}__{seed}")
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
                    f"welfare {row['welfare']:.4g}" + (f", POA {row['poa']:.3f}" if "poa" in row else ""),
                    flush=True,
                )
            return row

    cb = _Save(one, every=cfg["eval_every"], csv_path=csv_path)
    remaining = cfg["steps"] - model.num_timesteps
    if remaining > 0:
        model.learn(remaining, callback=cb, reset_num_timesteps=False)
    return folder.path
