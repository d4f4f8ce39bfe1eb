"""TorchRL for every env: the single env's ``PettingZooWrapper`` settings that work, a batched env
on our vectorised dynamics, and exact metrics of a TorchRL policy -- one call each (needs torchrl).

``make_torchrl_env(env_id, **env_kwargs)`` wraps one PettingZoo env. ``torchrl.envs.PettingZooEnv
(task=...)`` only builds PettingZoo's own envs, so third-party envs go through
``PettingZooWrapper(env)``. What each of ours needs (checked by ``check_env_specs`` and a rollout for
every env in tests/test_torchrl.py):

* ``use_mask=True`` where agents finish separately (MultiTaskGridWorld): without it the wrapper
  stops with "Dead agents found in the environment"; with it finished agents are masked out (their
  actions are sent and ignored by the env);
* ``done_on_any=False``: the episode ends when every agent is done, as the env's own;
* ``categorical_actions=True``: actions are indices (``Discrete`` spaces).
* finished agents keep their last observation (where agents finish separately): the wrapper fills
  a masked-out agent's observation with zeros, which for a one-hot observation
  (``observation="state"``/``"own"``) is outside its ``OneHot`` spec (``check_env_specs`` failed on
  about half the seeds of ``chain_slip``). The last observation is the one of the step where the
  agent finished -- its terminal cell, or where it was when the time limit truncated it (what a
  critic bootstraps from) -- and it stays there.

Keys (one group, ``"agent"``, the wrapper's name for agents ``agent_0 ... agent_{N-1}``):
``("agent", "observation")`` (N, ...) -- one-hot int64 (N, K) for the index modes ``"state"`` and
``"own"``, float32 features for ``"vector"``/``"onehot"``; ``("agent", "action")`` (N,) int64;
``("agent", "reward")`` (N, 1) float32; per-agent ``done``/``terminated``/``truncated`` (N, 1) and the
episode's (1,) (all agents done); ``("agent", "info", key)`` (N,) float32 (the env's infos, as the
wrapper converts them: exact integers up to 2^24 only; zeros for agents that had finished);
``("agent", "mask")`` (N,) where agents finish separately (False once an agent finished);
``"state"`` (F,) float32 with ``return_state=True``. An agent that had already finished before a
step gets done, terminated and truncated True in it (the wrapper's convention).

**Batched** (``num_envs=n``): one TorchRL env with ``batch_size=[n]`` -- the same keys and specs
with a leading dimension n, a drop-in replacement for ``SerialEnv``/``ParallelEnv`` of n wrappers --
whose n copies are stepped in one call of :class:`mpg_envs.vector.ParallelVectorEnv` (the env's own
vectorised dynamics): collection 10-12x faster per agent-step than ``SerialEnv`` at 16 copies and
about 2.4 million agent-steps/s at 256 copies on a shared 2-core machine (``benchmarks/bench_torchrl.py``).
Resets follow TorchRL's convention for batched envs: a copy whose episode ends reports it in its
``"done"`` entries (with its final observation), and TorchRL restarts it through ``reset`` with a
``"_reset"`` mask (``rollout``, ``step_and_maybe_reset`` and the collectors do) while the others go
on; stepping a copy that ended without resetting it raises. With ``num_envs=1`` and the same seed the
batched env gives the wrapper's observations, rewards, flags, infos and states step for step
(tests/test_torchrl_batched.py).

**Exact metrics** of a TorchRL policy (a ``TensorDictModule`` or ``ProbabilisticActor`` reading
``("agent", "observation")`` and writing ``("agent", "logits")`` or ``("agent", "probs")``):
:class:`TorchRLExactMetrics` runs it on every evaluated state's observations, encoded as the env
emits them (one-hot for the index modes), and returns :class:`baselines.evaluation.ExactMetrics`'
values (the joint model, or per-task models for a MultiTaskGridWorld read on the own cell) --
build it once and call it every iteration; :func:`exact_metrics` is the one-off form.

Example (a few seconds; PPO's loss and optimiser step go where the comment is, see
``benchmarks/bench_torchrl.py``)::

    import torch
    from tensordict.nn import TensorDictModule
    from torchrl.collectors import Collector   # SyncDataCollector in older torchrl
    from torchrl.modules import MLP, ProbabilisticActor
    from baselines.torchrl_envs import TorchRLExactMetrics, make_torchrl_env

    env = make_torchrl_env("mpg/Coordination-v0", seed=0, num_envs=16, n_agents=2, observation="vector")
    net = TensorDictModule(MLP(in_features=4, out_features=2, num_cells=[32]),
                           in_keys=[("agent", "observation")], out_keys=[("agent", "logits")])
    actor = ProbabilisticActor(net, in_keys={"logits": ("agent", "logits")},
                               out_keys=[("agent", "action")],
                               distribution_class=torch.distributions.Categorical)
    metrics = TorchRLExactMetrics(env)   # the models are built once
    for batch in Collector(env, actor, frames_per_batch=320, total_frames=640):
        ...   # batch: (16, 20) steps of 16 copies; train on it here
        print(metrics(actor)["nash_gap"])
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from mpg_envs import _validate as V

__all__ = ["make_torchrl_env", "TorchRLExactMetrics", "exact_metrics", "ppo_loss"]


@functools.cache
def _keep_last_observation_class() -> type:
    import torch
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    class KeepLastObservation(PettingZooWrapper):
        """``PettingZooWrapper`` whose masked-out (finished) agents keep their last observation
        instead of zeros (outside a ``OneHot`` spec)."""

        def _reset(self, tensordict=None, **kwargs):
            out = super()._reset(tensordict, **kwargs)
            self._last_obs = {g: out[g, "observation"].clone() for g in self.group_map}
            return out

        def _step(self, tensordict):
            # agents live before the step get the step's observation (also the one they finish
            # on); the others, already finished, keep theirs
            live = {
                g: torch.tensor([a in self._env.agents for a in agents], device=self.device)
                for g, agents in self.group_map.items()
            }
            out = super()._step(tensordict)
            for g, last in self._last_obs.items():
                keep = live[g].reshape(-1, *([1] * (last.ndim - 1)))
                obs = torch.where(keep, out[g, "observation"], last)
                out[g, "observation"] = obs
                self._last_obs[g] = obs.clone()
            return out

    return KeepLastObservation


def _wrap(penv: Any, *, device: Any, return_state: bool):
    """The ``PettingZooWrapper`` of one parallel env with the settings ours need."""
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    separate = bool(getattr(penv.unwrapped, "agents_finish_separately", False))
    return (_keep_last_observation_class() if separate else PettingZooWrapper)(
        penv,
        use_mask=separate,
        categorical_actions=True,
        done_on_any=False,
        return_state=return_state,
        device=device,
    )


def _torchrl():
    try:
        import torchrl.envs  # noqa: F401
    except ImportError:  # pragma: no cover - the baselines extra installs it
        raise ImportError(
            "baselines.torchrl_envs needs torchrl: pip install torch==2.13.0, then "
            "pip install -e '.[baselines]'"
        ) from None


def make_torchrl_env(
    env_id: str,
    seed: int | None = None,
    *,
    num_envs: int | None = None,
    device: Any = None,
    return_state: bool = False,
    **env_kwargs: Any,
):
    """A TorchRL env of ``pettingzoo.make("parallel", env_id, **env_kwargs)``: the wrapped single
    env, or ``num_envs`` copies batched on the vectorised dynamics (see the module docstring).

    Args:
        env_id: A registered id (``mpg_envs.ENV_IDS``, or ``NAV_ENV_IDS`` for one env).
        seed: Seeds the env (``env.set_seed``), if given.
        num_envs: None: one env (``PettingZooWrapper``, ``batch_size=[]``); a positive int n: the
            batched env (``batch_size=[n]``, same keys and specs with a leading n; envs with
            vectorised dynamics, ``mpg_envs.ENV_IDS``).
        device: The TorchRL device (None: TorchRL's default).
        return_state: Also return the env's global ``state()`` (its state features, float32) under
            the key ``"state"`` (centralised critics, e.g. BenchMARL's MAPPO).
        **env_kwargs: The env's arguments.

    Raises:
        ImportError: Without torchrl (``pip install -e '.[baselines]'`` installs it).
        ValueError: An unknown id, bad env arguments or ``num_envs``; ``TooLargeError`` for copies
            whose arrays exceed the memory limit (refused before they are allocated).
    """
    _torchrl()
    import pettingzoo

    import mpg_envs
    from baselines.threads import torch_threads

    known = [*mpg_envs.ENV_IDS, *mpg_envs.NAV_ENV_IDS]
    if not isinstance(env_id, str) or env_id not in known:
        raise ValueError(f"env_id must be one of {known}, got {V.show(env_id)}")
    if num_envs is not None and env_id not in mpg_envs.ENV_IDS:
        raise ValueError(
            f"num_envs batches envs with vectorised dynamics ({list(mpg_envs.ENV_IDS)}); {env_id!r} renders "
            "each copy: use num_envs=None and TorchRL's SerialEnv/ParallelEnv"
        )
    return_state = V.flag("return_state", return_state)
    if seed is not None:
        seed = V.seed(seed)
    torch_threads()  # small networks: one thread unless the user chose (baselines.threads)
    if num_envs is None:
        penv = pettingzoo.make("parallel", env_id, **env_kwargs)
        _check_observation_bytes(penv, None)
        env = _wrap(penv, device=device, return_state=return_state)
    else:
        num_envs = V.positive_int("num_envs", num_envs)
        env = _batched_env_class()(env_id, num_envs, device=device, return_state=return_state, **env_kwargs)
    if seed is not None:
        env.set_seed(int(seed))
    return env


#: Observation tensors a TorchRL env of ours holds at once per copy (the wrapper's cached zeros for
#: reset and step and its output; the batched env's output, kept last observations, cached current
#: observations and reset rows).
_OBSERVATION_COPIES = 4


def _check_observation_bytes(penv: Any, num_envs: int | None) -> int:
    """Refuse, before TorchRL allocates them, observation tensors over the memory limit: an index
    observation (``"state"``, ``"own"``) becomes a one-hot int64 over its K values per agent, which
    for the joint state of a 10x10 MultiTaskGridWorld (K = 10^8) is 3.2 GB per copy."""
    n_agents = len(penv.possible_agents)
    space = penv.observation_space(penv.possible_agents[0])
    k = getattr(space, "n", None)
    per_agent = 8 * int(k) if k is not None else 4 * int(np.prod(space.shape, dtype=object))
    per_copy = per_agent * n_agents * _OBSERVATION_COPIES
    n = 1 if num_envs is None else int(num_envs)
    most = V.max_bytes() // per_copy
    if most >= 1:
        advice = f"use at most num_envs={most:,} copies" if num_envs is not None else ""
    else:
        advice = ""
    if k is not None and most < n:
        advice = (
            (advice + "; or " if advice else "")
            + f"observe fewer values than the one-hot's {int(k):,} per agent (e.g. observation='own' or "
            "'vector')"
        )
    what = "the batched TorchRL env's" if num_envs is not None else "the TorchRL env's"
    return V.check_bytes(
        f"{what} observation tensors of {n:,} cop{'y' if n == 1 else 'ies'} ({per_copy:,} bytes per copy: "
        f"{n_agents} agents x {per_agent:,} bytes, {_OBSERVATION_COPIES} times)",
        n * per_copy,
        advice=advice or "use fewer copies",
    )


def _encoder(obs_spec: Any, device: Any):
    """A function numpy observations (n, N) int64 or (n, N, F) float32 -> the wrapper's tensors:
    one-hot int64 (``OneHot`` spec, index modes) or float32 features."""
    import torch
    from torchrl.data import OneHot

    if isinstance(obs_spec, OneHot):
        k = int(obs_spec.shape[-1])

        def encode(obs):
            idx = torch.as_tensor(np.asarray(obs, dtype=np.int64), device=device)
            return torch.nn.functional.one_hot(idx, k).to(obs_spec.dtype)

        return encode

    def encode(obs):
        return torch.as_tensor(np.asarray(obs), device=device).to(obs_spec.dtype)

    return encode


@functools.cache
def _batched_env_class() -> type:
    import torch
    from tensordict import TensorDict
    from torchrl.envs import EnvBase

    class MPGBatchedEnv(EnvBase):
        """``num_envs`` copies of one of our envs as one TorchRL env with ``batch_size=[num_envs]``,
        stepped by :class:`mpg_envs.vector.ParallelVectorEnv` (see the module docstring).

        Its specs are those of the single env's wrapper (built once, then dropped) with
        ``num_envs`` in front. Attributes: ``venv`` (the :class:`ParallelVectorEnv`), ``group``
        (``"agent"``), ``group_map``, ``agents_finish_separately``.

        Args:
            env_id: A registered id.
            num_envs: Copies, n.
            device: The TorchRL device.
            return_state: Also emit ``"state"`` (n, F) float32.
            **env_kwargs: The env's arguments.

        Raises:
            TooLargeError: The copies' observations or arrays over the memory limit, before
                they are allocated.
        """

        def __init__(
            self,
            env_id: str,
            num_envs: int,
            *,
            device: Any = None,
            return_state: bool = False,
            **env_kwargs: Any,
        ) -> None:
            import pettingzoo

            from mpg_envs.vector import ParallelVectorEnv

            n = V.positive_int("num_envs", num_envs)
            penv = pettingzoo.make("parallel", env_id, **env_kwargs)
            raw = penv.unwrapped
            self.agents_finish_separately = bool(getattr(raw, "agents_finish_separately", False))
            _check_observation_bytes(penv, n)  # before the wrapper allocates its one-hot zeros
            self.venv = ParallelVectorEnv(raw, n)  # refuses its own arrays over the limit
            # the specs are the single env's wrapper's, with the batch dimension in front
            template = _wrap(penv, device=device, return_state=return_state)
            (self.group,) = template.group_map  # our envs: one group ("agent")
            obs_spec = template.observation_spec[self.group, "observation"]
            super().__init__(device=device, batch_size=torch.Size([n]))
            self.group_map = {g: list(a) for g, a in template.group_map.items()}
            self.return_state = bool(return_state)
            self.full_action_spec = template.full_action_spec.expand(n).clone()
            self.full_observation_spec = template.full_observation_spec.expand(n).clone()
            self.full_reward_spec = template.full_reward_spec.expand(n).clone()
            self.full_done_spec = template.full_done_spec.expand(n).clone()
            self._info_keys = list(template.observation_spec[self.group, "info"].keys())
            self._encode = _encoder(obs_spec, self.device)
            self._cur: Any = None  # the last emitted observations, infos, mask and state (a TensorDict)
            self._flags: Any = None  # the last emitted done flags (a TensorDict)
            self._pending = np.zeros(n, bool)  # copies that ended: the vector env already restarted them
            self._venv_obs: np.ndarray | None = None  # the vector env's current observations (numpy)
            # the template is dropped, not closed: its PettingZoo env is the one the vector env copies

        # ------------------------------------------------------------ helpers
        @property
        def num_envs(self) -> int:
            return self.venv.num_envs

        def _zero_flags(self, n: int):
            N = self.venv.n_agents
            z1 = torch.zeros((n, 1), dtype=torch.bool, device=self.device)
            zN = torch.zeros((n, N, 1), dtype=torch.bool, device=self.device)
            return TensorDict(
                {
                    "done": z1,
                    "terminated": z1.clone(),
                    "truncated": z1.clone(),
                    self.group: TensorDict(
                        {"done": zN, "terminated": zN.clone(), "truncated": zN.clone()},
                        batch_size=[n, N],
                        device=self.device,
                    ),
                },
                batch_size=[n],
                device=self.device,
            )

        def _observation_td(self, obs, states, idx, infos, live, mask):
            """The observation side of a step or reset: obs (n, N, ...) tensors, states (n, d),
            model indices (n,), extra infos (n, N) arrays, live (n, N) (whose infos count), mask
            (n, N) or None."""
            n, N = len(idx), self.venv.n_agents
            livef = torch.as_tensor(live, device=self.device)
            info = {"state": np.broadcast_to(np.asarray(idx)[:, None], (n, N))}
            info.update(infos)
            info_t = {
                k: torch.as_tensor(np.asarray(info[k], dtype=np.float32), device=self.device) * livef
                for k in self._info_keys
            }
            agent = {"observation": obs, "info": TensorDict(info_t, batch_size=[n, N], device=self.device)}
            if mask is not None:
                agent["mask"] = torch.as_tensor(mask, device=self.device)
            out = {self.group: TensorDict(agent, batch_size=[n, N], device=self.device)}
            if self.return_state:
                feats = self.venv.dynamics.state_features(states)
                out["state"] = torch.as_tensor(np.asarray(feats, dtype=np.float32), device=self.device)
            return TensorDict(out, batch_size=[n], device=self.device)

        def _start_rows(self, rows: np.ndarray, obs_np: np.ndarray, idx: np.ndarray):
            """Observations of copies that start an episode (rows (k,) of copy indices)."""
            venv, N = self.venv, self.venv.n_agents
            k = len(rows)
            states = venv.dynamics.decode(idx[rows])
            zeros = np.zeros((k, N))
            extra = venv.env.batch_extra_infos(states, None, None, zeros)
            live = np.ones((k, N), bool)
            mask = live if self.agents_finish_separately else None
            return self._observation_td(self._encode(obs_np[rows]), states, idx[rows], extra, live, mask)

        # ------------------------------------------------------------ EnvBase
        def _set_seed(self, seed: int | None) -> None:
            self._full_reset(seed=seed)

        def _full_reset(self, seed: int | None = None):
            obs, infos = self.venv.reset(seed=seed)
            self._pending[:] = False
            self._venv_obs = obs
            rows = np.arange(self.num_envs)
            self._cur = self._start_rows(rows, obs, infos["state"])
            self._flags = self._zero_flags(self.num_envs)
            self._idx = infos["state"].copy()

        def _reset(self, tensordict=None, **kwargs):
            seed = kwargs.pop("seed", None)
            kwargs.pop("set_state", None)
            n = self.num_envs
            reset = None if tensordict is None else tensordict.get("_reset", None)
            if reset is not None:
                reset = reset.reshape(n, -1).any(-1).cpu().numpy()
            if seed is not None:
                if reset is not None and not reset.all():
                    raise ValueError(
                        f"reset(seed={seed!r}) restarts every copy; it takes no partial '_reset'"
                    )
                self._full_reset(seed=seed)
            elif self._cur is None:  # the first reset
                self._full_reset()
            else:
                if reset is None:
                    reset = np.ones(n, bool)
                forced = reset & ~self._pending  # copies still in an episode: draw their starts now
                if forced.any():
                    obs, infos = self.venv.reset_copies(forced)
                    self._venv_obs = obs
                    self._idx = infos["state"].copy()
                rows = np.flatnonzero(reset)
                if len(rows):
                    start = self._start_rows(rows, self._venv_obs, self._idx)
                    cur = self._cur.clone()
                    cur[torch.as_tensor(rows, device=self.device)] = start
                    self._cur = cur
                    flags = self._flags.clone()
                    flags[torch.as_tensor(rows, device=self.device)] = self._zero_flags(len(rows))
                    self._flags = flags
                self._pending &= ~reset
            out = self._cur.clone()
            out.update(self._flags.clone())
            return out

        def _step(self, tensordict):
            venv, g = self.venv, self.group
            if self._cur is None:
                raise RuntimeError("call reset() before step()")
            if self._pending.any():
                ended = np.flatnonzero(self._pending).tolist()
                raise RuntimeError(
                    f"copies {V.show(ended)} ended in the last step: reset them before stepping again "
                    "(env.reset(td) with td['_reset'] set, as env.rollout, step_and_maybe_reset and the "
                    "collectors do)"
                )
            actions = tensordict.get((g, "action"))
            actions = actions.reshape(self.num_envs, venv.n_agents).cpu().numpy()
            live = venv.alive
            prev = venv.states
            obs, rew, term, trunc, infos = venv.step(actions)
            ended = infos.get("_final_obs")
            idx = infos["state"]
            if ended is not None:
                fin_obs, fin_idx = infos["final_obs"], infos["final_info"]["state"]
            else:
                ended, fin_obs, fin_idx = np.zeros(self.num_envs, bool), obs, idx
            states = venv.states
            if ended.any():
                states[ended] = venv.dynamics.decode(fin_idx[ended])
            dead = ~live
            act = np.where(live, np.asarray(actions, dtype=np.int64), 0)
            extra = venv.env.batch_extra_infos(states, prev, act, rew)
            mask = (live & ~term & ~trunc) if self.agents_finish_separately else None
            new_obs = self._encode(fin_obs)
            if self.agents_finish_separately:  # agents that had finished keep their last observation
                keep = torch.as_tensor(live, device=self.device)
                keep = keep.reshape(*live.shape, *([1] * (new_obs.ndim - 2)))
                new_obs = torch.where(keep, new_obs, self._cur.get((g, "observation")))
            cur = self._observation_td(new_obs, states, fin_idx, extra, live, mask)
            done_a, term_a, trunc_a = term | trunc | dead, term | dead, trunc | dead
            dev = self.device

            def flag(a):
                return torch.as_tensor(a, device=dev)

            flags = TensorDict(
                {
                    "done": flag(done_a.all(1, keepdims=True)),
                    "terminated": flag(term_a.all(1, keepdims=True)),
                    "truncated": flag(trunc_a.all(1, keepdims=True)),
                    g: TensorDict(
                        {
                            "done": flag(done_a[..., None]),
                            "terminated": flag(term_a[..., None]),
                            "truncated": flag(trunc_a[..., None]),
                        },
                        batch_size=list(done_a.shape),
                        device=dev,
                    ),
                },
                batch_size=[self.num_envs],
                device=dev,
            )
            self._cur, self._flags = cur, flags
            self._pending = ended.copy()
            self._venv_obs, self._idx = obs, idx.copy()
            out = cur.clone()
            out.set((g, "reward"), torch.as_tensor(rew, dtype=torch.float32, device=dev)[..., None])
            out.update(flags.clone())
            return out

        def close(self, *, raise_if_closed: bool = True) -> None:
            self.venv.close()

        def __repr__(self) -> str:
            return f"MPGBatchedEnv({self.venv!r}, device={self.device}, return_state={self.return_state})"

    return MPGBatchedEnv


#: Rows of observations one call of the policy reads (bounds its activations' memory).
_EVAL_CHUNK = 65536


class TorchRLExactMetrics:
    """Exact metrics of a TorchRL policy: :class:`baselines.evaluation.ExactMetrics` (built once)
    with the policy run on its observations as the TorchRL env emits them.

    Args:
        env: A registered id (with ``env_kwargs``), one of our parallel envs, or a TorchRL env of
            :func:`make_torchrl_env` (single or batched).
        group: The policy's group of agents (the env's: ``"agent"``).
        decompose: As :class:`~baselines.evaluation.ExactMetrics` (None: the joint model when it
            fits, else per-task models).
        **env_kwargs: The env's arguments (with an id only).

    Attributes:
        metrics: The :class:`~baselines.evaluation.ExactMetrics`.
        observations: Its observations as TorchRL tensors (S, N, K) one-hot int64 (index modes) or
            (S, N, F) float32, the env's encoding.

    Raises:
        ValueError: As :class:`~baselines.evaluation.ExactMetrics` (no exact model, a model too
            large whose observations do not decompose).
    """

    def __init__(
        self, env: Any, *, group: str = "agent", decompose: bool | None = None, **env_kwargs: Any
    ) -> None:
        _torchrl()
        import torch
        from torchrl.envs import EnvBase

        from baselines.evaluation import ExactMetrics

        if not isinstance(group, str):
            raise V.ArgumentTypeError(f"group must be a str (the env's group of agents), got {V.show(group)}")
        if isinstance(env, EnvBase):
            if env_kwargs:
                raise ValueError("env_kwargs go with a registered id, not with an env")
            env = _parallel_env_of(env)
        self.metrics = em = ExactMetrics(env, decompose=decompose, **env_kwargs)
        self.group = group
        obs = em.observations
        if em.decomposed:  # the agents read their own cell: a one-hot over the cells, as the env
            k = int(em.env.dynamics.observation_space("own").n)
            self.observations = torch.nn.functional.one_hot(torch.as_tensor(obs, dtype=torch.int64), k)
        elif obs.ndim == 2:  # an index mode: the wrapper's OneHot encoding (int64)
            k = int(em.env.dynamics.observation_space(em.observation_mode).n)
            self.observations = torch.nn.functional.one_hot(torch.as_tensor(obs, dtype=torch.int64), k)
        else:
            self.observations = torch.as_tensor(np.asarray(obs, dtype=np.float32))

    def fields(self) -> list[str]:
        """The metric names (``ExactMetrics.fields``)."""
        return self.metrics.fields()

    def probs(self, policy: Any) -> np.ndarray:
        """The policy's action probabilities on :attr:`observations`, (S, N, A) float64.

        Runs ``policy`` (without sampling: a ``ProbabilisticActor``'s ``get_dist_params``) in
        ``torch.no_grad`` on chunks of states, on the policy's device, and reads
        ``(group, "logits")`` (softmax in float64) or ``(group, "probs")``.
        """
        import torch
        from tensordict import TensorDict

        g = self.group
        if not callable(policy):
            raise V.ArgumentTypeError(f"policy must be a TensorDictModule (callable), got {V.show(policy)}")
        try:
            device = next(policy.parameters()).device
        except (AttributeError, StopIteration):
            device = torch.device("cpu")
        run = getattr(policy, "get_dist_params", None) or policy
        reads = [k if isinstance(k, tuple) else (k,) for k in getattr(policy, "in_keys", [])]
        missing = [k for k in reads if k != (g, "observation")]
        if missing:
            raise ValueError(
                f"the policy reads {missing}; the env gives each agent's observation only, under "
                f"({g!r}, 'observation') (group={g!r})"
            )
        S = self.observations.shape[0]
        out = []
        with torch.no_grad():
            for lo in range(0, S, _EVAL_CHUNK):
                obs = self.observations[lo : lo + _EVAL_CHUNK].to(device)
                inner = TensorDict({"observation": obs}, batch_size=obs.shape[:2])
                td = TensorDict({g: inner}, batch_size=obs.shape[:1])
                res = run(td)
                logits = res.get((g, "logits"), None)
                if logits is not None:
                    if not torch.isfinite(logits).all():
                        bad = logits[~torch.isfinite(logits)][0].item()
                        raise ValueError(
                            f"the policy's logits must be finite, got {bad} (a diverged network?)"
                        )
                    p = torch.softmax(logits.to(torch.float64), dim=-1)
                else:
                    p = res.get((g, "probs"), None)
                    if p is None:
                        raise ValueError(
                            f"the policy wrote neither ({g!r}, 'logits') nor ({g!r}, 'probs'); it wrote "
                            f"{sorted(map(str, res.keys(True, True)))}"
                        )
                    p = p.to(torch.float64)
                out.append(p.cpu().numpy())
        return np.concatenate(out, axis=0)

    def __call__(self, policy: Any) -> dict[str, float]:
        """The exact metrics of ``policy`` (``ExactMetrics.__call__`` on :meth:`probs`)."""
        return self.metrics(self.probs(policy))


def ppo_loss(
    actor: Any, critic: Any, *, gamma: float = 0.95, lmbda: float = 0.95, group: str = "agent", **kwargs: Any
):
    """TorchRL's ``ClipPPOLoss`` with GAE on our envs' keys: every key of the loss and of its value
    estimator under ``group`` (``reward``, ``done``, ``terminated``, ``action``, ``sample_log_prob``,
    ``state_value``, ``advantage``, ``value_target``) -- the eight keys every multi-agent TorchRL
    PPO loop sets by hand.

    Args:
        actor: A ``ProbabilisticActor`` writing ``(group, "action")`` and
            ``(group, "sample_log_prob")``.
        critic: A module writing ``(group, "state_value")``.
        gamma, lmbda: The discount and the GAE lambda.
        group: The agents' group (``"agent"`` for our envs).
        **kwargs: ``ClipPPOLoss``'s own options (``clip_epsilon``, ``entropy_coeff``,
            ``normalize_advantage``, ...).
    """
    from torchrl.objectives import ClipPPOLoss, ValueEstimators

    gamma = V.finite_real("gamma", gamma)
    lmbda = V.finite_real("lmbda", lmbda)
    loss = ClipPPOLoss(actor, critic, **kwargs)
    loss.set_keys(
        reward=(group, "reward"),
        action=(group, "action"),
        sample_log_prob=(group, "sample_log_prob"),
        value=(group, "state_value"),
        done=(group, "done"),
        terminated=(group, "terminated"),
        advantage=(group, "advantage"),
        value_target=(group, "value_target"),
    )
    loss.make_value_estimator(ValueEstimators.GAE, gamma=gamma, lmbda=lmbda)
    return loss


def _parallel_env_of(env: Any) -> Any:
    """The PettingZoo env under a TorchRL env of :func:`make_torchrl_env` (through transforms)."""
    from torchrl.envs import TransformedEnv
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    base = env
    while isinstance(base, TransformedEnv):
        base = base.base_env
    if isinstance(base, _batched_env_class()):
        return base.venv.env
    if isinstance(base, PettingZooWrapper):
        return base._env
    raise V.ArgumentTypeError(
        "env must be a registered id, one of our parallel envs or a TorchRL env of make_torchrl_env "
        f"(single or batched, transforms allowed), got {type(env).__name__}"
    )


def exact_metrics(policy: Any, env: Any, **env_kwargs: Any) -> dict[str, float]:
    """The exact metrics of a TorchRL policy on an env: ``TorchRLExactMetrics(env, **env_kwargs)
    (policy)`` (build :class:`TorchRLExactMetrics` once to evaluate every iteration)."""
    return TorchRLExactMetrics(env, **env_kwargs)(policy)
