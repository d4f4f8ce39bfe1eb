"""Many copies of one of our parallel envs stepped as arrays: :class:`ParallelVectorEnv`.

``ParallelVectorEnv(env, num_envs)`` runs ``num_envs`` copies of a PettingZoo env of this package
(any :class:`~mpg_envs.core.MPGParallelEnv`) with one call of the env's own vectorised dynamics
per step -- the code the single env, the batched sampler and the exact model use -- instead of a
Python loop over env objects. Observations, rewards and flags are arrays with one row per copy and
one column per agent (``n = num_envs``, ``N`` agents, ``F`` features)::

    obs, infos = venv.reset(seed=0)   # obs (n, N) int64 ("state", "own") or (n, N, F) float32
    obs, rewards, terminated, truncated, infos = venv.step(actions)   # actions (n, N) ints

Per copy the semantics are :meth:`MPGParallelEnv.step`'s: an agent is *live* until it terminates
(agents finish separately only where the env says so, ``agents_finish_separately``: the
MultiTaskGridWorld) or the copy reaches ``max_cycles`` steps, when every live agent is truncated
(also one that terminates on that step); the actions of agents that are not live are ignored (they
act 0, as in the single env; their values are not checked), their rewards are 0 and their flags
False. ``infos["alive"]`` (n, N) bool says which agents are live in the returned observation.
An agent that finished while its copy goes on still gets the real observation of the copy's
current state (the single env returns none; ``alive`` marks it as not live).

Autoreset is Gymnasium's ``AutoresetMode.SAME_STEP``: a copy whose agents are all done is reset
within the step that ended it. Its row of ``obs`` is then the first observation of the new episode
(``alive`` all True) and, whenever some copy reset, the step's infos also hold

* ``infos["final_obs"]`` (n, N, ...): the observations of the states the transition reached, for
  every copy (the rows of copies that did not reset equal ``obs``), with ``infos["_final_obs"]``
  (n,) bool: which copies reset;
* ``infos["final_info"] = {"state": (n,) int64, "_state": (n,) bool}``: the model indices of those
  states, and ``infos["_final_info"]`` (n,) bool (the same mask).

``infos["state"]`` (n,) int64 is always the model index of each copy's state in ``obs``.

Randomness: one generator for the whole batch (``reset(seed=s)`` seeds it with
``gymnasium.utils.seeding.np_random(s)``; without a seed it is created from OS entropy on first
use). Each step draws the transition noise of every copy at once, then the initial states of the
copies that reset; so with ``num_envs=1`` and the same seed the draws are exactly those of an
``MPGParallelEnv`` reset with that seed, stepped with the same actions and reset (without a seed)
whenever its episode ends; with more copies, the copies still differ from each other.

Example::

    >>> import numpy as np
    >>> from mpg_envs.vector import make_parallel_vec
    >>> venv = make_parallel_vec("mpg/Coordination-v0", num_envs=64, n_agents=2, observation="vector",
    ...                          max_cycles=10)
    >>> obs, infos = venv.reset(seed=0)
    >>> obs.shape, obs.dtype, infos["state"].shape
    ((64, 2, 4), dtype('float32'), (64,))
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(10):
    ...     obs, rewards, terminated, truncated, infos = venv.step(rng.integers(0, 2, (64, 2)))
    >>> rewards.shape, bool(truncated.all()), bool(infos["_final_obs"].all()), infos["final_obs"].shape
    ((64, 2), True, True, (64, 2, 4))
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from mpg_envs import _validate as V
from mpg_envs.core import Dynamics, LazyRandom, MPGParallelEnv, _sample_step

__all__ = ["ParallelVectorEnv", "make_parallel_vec", "batch_bytes", "check_batch_size"]


#: Int64 arrays of shape (n, N) one step of a batch holds at its peak (actions, the live mask and
#: its products, rewards, the dynamics' per-agent loads and counts, flags), counted as 8 bytes each.
_PER_AGENT_ARRAYS = 16
#: Int64 arrays of shape (n, d): states, next states, their copy at an autoreset, initial draws.
_PER_STATE_ARRAYS = 4
#: Int64 arrays of shape (n,): time counters, model indices (before and after a reset), masks.
_PER_COPY_ARRAYS = 8
#: Observation arrays alive at once: the step's, its copy at an autoreset and ``final_obs``.
_OBSERVATION_COPIES = 3


def batch_bytes(dynamics: Dynamics, mode: str, num_envs: int) -> int:
    """Estimated peak bytes of ``num_envs`` copies of an env stepped as arrays.

    Counts every per-copy array a vector env holds or makes in one step: states (n, d), live
    masks, time counters and model indices, actions, rewards and flags (n, N), the noise draws
    (n, M) and the observations (n, N, ...) three times (the step's, its copy at an autoreset and
    ``final_obs``). An exact Python int (no NumPy overflow for huge ``num_envs``).

    Args:
        dynamics: The env's dynamics.
        mode: The observation mode (one of ``dynamics.observation_modes``).
        num_envs: Copies, n.

    Returns:
        The estimate in bytes.
    """
    N, d, M = int(dynamics.n_agents), int(dynamics.state_dim), len(dynamics.noise_probs)
    floats = int(dynamics._floats_per_state(mode, "observation"))
    obs = 4 * floats if floats else 8 * N  # float32 features, or one int64 index per agent
    per_copy = (
        8 * N * _PER_AGENT_ARRAYS
        + 8 * d * _PER_STATE_ARRAYS
        + 8 * _PER_COPY_ARRAYS
        + 16 * M  # the noise: uniforms and outcomes
        + obs * _OBSERVATION_COPIES
    )
    return int(num_envs) * per_copy


def check_batch_size(dynamics: Dynamics, mode: str, num_envs: int, what: str) -> int:
    """Refuse, before allocating them, ``num_envs`` copies whose arrays (:func:`batch_bytes`) would
    exceed the memory limit (``mpg_envs._validate.check_bytes``: 2 GiB or ``$MPG_MAX_BYTES``).

    Args:
        dynamics: The env's dynamics.
        mode: The observation mode.
        num_envs: Copies (a validated positive int).
        what: The vector env's name for the message.

    Returns:
        The estimate in bytes.

    Raises:
        TooLargeError: Over the limit; the message gives the size, the limit and how many copies fit.
    """
    n = int(num_envs)
    nbytes = batch_bytes(dynamics, mode, n)
    per = max(1, nbytes // n)
    most = max(1, V.max_bytes() // per)
    return V.check_bytes(
        f"{what} of num_envs={n:,} copies (observation={mode!r}: {per:,} bytes of states, actions, "
        f"rewards, flags and observations per copy)",
        nbytes,
        advice=f"use at most num_envs={most:,} copies",
    )


def _int_array(name: str, value: Any, shape: tuple[int, ...], what: str) -> np.ndarray:
    """``V.int_array`` that also refuses, naming them, integers beyond int64 (a Python int such as
    2**70, or a uint64 above 2**63 - 1) instead of overflowing or wrapping them to negatives."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "u" and value.size:
        top = value.max()
        if int(top) > np.iinfo(np.int64).max:
            raise ValueError(f"{name} must be {what}, got the entry {int(top)} (beyond int64)")
    try:
        return V.int_array(name, value, shape=shape, what=what)
    except OverflowError:
        raise ValueError(f"{name} must be {what}, got {V.show(value)} (an integer beyond int64)") from None


class ParallelVectorEnv(LazyRandom):
    """``num_envs`` copies of one :class:`~mpg_envs.core.MPGParallelEnv`, stepped as arrays.

    Not a ``gymnasium.vector.VectorEnv`` (rewards and flags are per agent, shape (n, N)), but
    shaped like one: ``num_envs``, ``metadata["autoreset_mode"]`` (``SAME_STEP``), ``np_random``,
    ``single_observation_space`` / ``single_action_space`` (one copy: every agent's observation,
    shape (N, ...), and ``MultiDiscrete`` of the N action sizes) and their batched
    ``observation_space`` / ``action_space`` (shape (n, N, ...) and (n, N)). Per agent:
    ``possible_agents``, ``observation_spaces`` and ``action_spaces`` (PettingZoo's dicts).

    Args:
        env: The env to copy (its dynamics, observation mode, ``max_cycles``, ``gamma`` and spaces;
            the env object itself is not stepped). No ``render_mode``: the batch does not render.
        num_envs: Copies, n.

    Raises:
        TypeError: ``env`` is not one of our parallel envs (pass ``env.unwrapped`` if wrapped).
        ValueError: A bad ``num_envs`` or an env with a ``render_mode``.
        TooLargeError: The copies' arrays (:func:`batch_bytes`) over the memory limit, refused
            before anything is allocated.
    """

    metadata: ClassVar[dict[str, Any]] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
    render_mode = None

    def __init__(self, env: MPGParallelEnv, num_envs: int = 1) -> None:
        if not isinstance(env, MPGParallelEnv):
            wrapped = isinstance(getattr(env, "unwrapped", None), MPGParallelEnv)
            hint = " (a wrapped env: pass env.unwrapped)" if wrapped else ""
            raise V.ArgumentTypeError(
                f"env must be an mpg_envs.core.MPGParallelEnv, got {type(env).__name__}{hint}"
            )
        if env.render_mode is not None:
            raise ValueError(
                f"ParallelVectorEnv does not render; build the env without render_mode (got "
                f"{env.render_mode!r}) and render a single env instead"
            )
        self.num_envs = V.positive_int("num_envs", num_envs)
        self.env = env
        self.dynamics = dyn = env.dynamics
        self.observation_mode: str = env.observation_mode
        self.max_cycles: int = env.max_cycles
        self.gamma: float = env.gamma
        self.agents_finish_separately: bool = env.agents_finish_separately
        self.possible_agents = list(env.possible_agents)
        self.n_agents = N = int(dyn.n_agents)
        check_batch_size(dyn, self.observation_mode, self.num_envs, "ParallelVectorEnv")
        self.observation_spaces = {a: env.observation_space(a) for a in self.possible_agents}
        self.action_spaces = {a: env.action_space(a) for a in self.possible_agents}
        self.single_observation_space = batch_space(dyn.observation_space(self.observation_mode), N)
        self._sizes = np.asarray(dyn.action_sizes, dtype=np.int64)
        self.single_action_space = gymnasium.spaces.MultiDiscrete(self._sizes)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._np_random = None  # created on first use (LazyRandom)
        self._states: np.ndarray | None = None  # (n, d) int64
        self._alive = np.ones((self.num_envs, N), bool)  # live agents of the current episodes
        self._t = np.zeros(self.num_envs, np.int64)  # steps into the current episodes

    # ---------------------------------------------------------------- state
    @property
    def states(self) -> np.ndarray:
        """Each copy's state descriptor, shape (n, d) int64 (a copy)."""
        self._require_reset("reading states")
        return self._states.copy()

    @property
    def alive(self) -> np.ndarray:
        """Which agents are live in each copy's current episode, shape (n, N) bool (a copy)."""
        self._require_reset("reading alive")
        return self._alive.copy()

    @property
    def episode_steps(self) -> np.ndarray:
        """Steps each copy has taken in its current episode, shape (n,) int64 (a copy)."""
        self._require_reset("reading episode_steps")
        return self._t.copy()

    def model(self, **kwargs: Any) -> Any:
        """The exact model of one copy (``env.model(**kwargs)``, built once)."""
        return self.env.model(**kwargs)

    # ---------------------------------------------------------------- API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Start an episode in every copy.

        Args:
            seed: None or a non-negative int: seeds the batch's generator (None keeps it going).
            options: None or a dict; ``{"state": s}`` starts every copy from model state index
                ``s`` (an int) or copy k from ``s[k]`` (integers of shape (n,)) instead of drawing
                from mu (no draw is made then). Later episodes start from mu. Other keys are ignored.

        Returns:
            ``obs`` (n, N) int64 or (n, N, ...) float32, and ``infos`` with ``"state"`` (n,) int64
            (model indices) and ``"alive"`` (n, N) bool (all True).

        Raises:
            ValueError / TypeError: A bad seed, options or start state, naming the value.
        """
        seed = V.seed(seed)
        options = V.options_dict("options", options)
        if seed is not None:
            self._seed_random(seed)
        start = options.get("state")
        if start is None:
            states = self.dynamics.sample_initial(self.num_envs, self.np_random)
        else:
            states = self._parse_start(start)
        self._states = np.asarray(states, dtype=np.int64)
        self._alive[:] = True
        self._t[:] = 0
        idx = self.dynamics.index(self._states)
        return self._observe(self._states, idx), {"state": idx, "alive": self._alive.copy()}

    def reset_copies(self, copies: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Start a new episode in some copies only; the others go on where they are.

        The new initial states are drawn from mu with the batch's generator (one draw of
        ``sample_initial`` for the selected copies, in copy order), as :meth:`step` draws those of
        copies it resets. For libraries that reset copies themselves (TorchRL's ``"_reset"``).

        Args:
            copies: Bools of shape (num_envs,): which copies restart.

        Returns:
            ``obs`` (n, N, ...) of every copy (the new first observations of the restarted ones),
            and ``infos`` with ``"state"`` (n,) int64 and ``"alive"`` (n, N) bool.

        Raises:
            RuntimeError: Before :meth:`reset`.
            ValueError / TypeError: ``copies`` not bools of shape (num_envs,).
        """
        self._require_reset("reset_copies()")
        n = self.num_envs
        arr = np.asarray(copies) if isinstance(copies, (list, tuple, np.ndarray)) else None
        if arr is None or arr.dtype != bool or arr.shape != (n,):
            raise V.ArgumentTypeError(
                f"copies must be bools of shape (num_envs,) = ({n},), got {V.show(copies)}"
            )
        states = self._states.copy()
        if arr.any():
            states[arr] = self.dynamics.sample_initial(int(arr.sum()), self.np_random)
            self._alive[arr] = True
            self._t[arr] = 0
        self._states = states
        idx = self.dynamics.index(states)
        return self._observe(states, idx), {"state": idx, "alive": self._alive.copy()}

    def _observe(self, states: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Every agent's observation of states (B, d) with model indices (B,): (B, N, ...), never
        a view of ``states`` (the "own" observation of some games is the state itself)."""
        obs = self.dynamics._observe(states, self.observation_mode, idx)
        return obs.copy() if np.may_share_memory(obs, states) else obs

    def _parse_start(self, start: Any) -> np.ndarray:
        """``options["state"]``: one model index for every copy or one per copy, -> (n, d)."""
        n, S = self.num_envs, int(self.dynamics.n_states)
        what = f"a model state index in [0, {S:,}) or integers of shape (num_envs,) = ({n},)"
        if V.is_integer(start):
            i = int(np.asarray(start).item())  # a Python int: no overflow for 2**70
            if not 0 <= i < S:
                raise ValueError(f"options['state'] must be {what}, got the index {i}")
            idx = np.full(n, i, np.int64)
        else:
            idx = _int_array("options['state']", start, (n,), what)
        if idx.size and (idx.min() < 0 or idx.max() >= S):
            bad = int(idx[(idx < 0) | (idx >= S)][0])
            raise ValueError(f"options['state'] must be {what}, got the index {bad}")
        uniq, inverse = np.unique(idx, return_inverse=True)
        desc = self.dynamics.decode(uniq)
        for i, d in zip(uniq.tolist(), desc):
            why = self.dynamics.start_error(d)
            if why:
                raise ValueError(f"options['state']: state {i} cannot start an episode: {why}")
        return desc[inverse.reshape(-1)]

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step of every copy; copies whose agents are all done are reset within it.

        Args:
            actions: Integers of shape (n, N): agent i of copy k plays ``actions[k, i]`` in
                ``[0, |A_i|)`` (entries of agents that are not live are ignored, not checked).

        Returns:
            ``obs`` (n, N, ...), ``rewards`` (n, N) float64, ``terminated`` (n, N) bool,
            ``truncated`` (n, N) bool and ``infos`` (see the module docstring): rewards and flags
            of the transition (zero and False for agents not live before it), observations after
            the autoreset.

        Raises:
            RuntimeError: Before :meth:`reset`.
            ValueError / TypeError: Actions of the wrong shape, dtype or range.
        """
        self._require_reset()
        n, N = self.num_envs, self.n_agents
        what = f"an integer array of shape (num_envs, N) = ({n}, {N})"
        a = _int_array("actions", actions, (n, N), what)
        live = self._alive
        bad = ((a < 0) | (a >= self._sizes)) & live
        if bad.any():
            k, i = (int(x) for x in np.argwhere(bad)[0])
            raise ValueError(
                f"actions[{k}, {i}] = {int(a[k, i])} is out of range for agent {i} "
                f"(|A_{i}| = {int(self._sizes[i])})"
            )
        act = np.where(live, a, 0)  # agents that finished act 0 (ignored), as in the single env
        dyn = self.dynamics
        nxt, rew = _sample_step(dyn, self._states, act, self.np_random)
        t = self._t + 1
        done = np.asarray(dyn.agent_terminal(nxt), dtype=bool)
        limit = t >= self.max_cycles
        terminated = done & live
        truncated = limit[:, None] & live  # at the time limit every live agent is truncated
        rewards = np.where(live, rew, 0.0)
        alive = live & ~done & ~limit[:, None]
        idx = dyn.index(nxt)
        obs = self._observe(nxt, idx)
        ended = ~alive.any(axis=1)
        infos: dict[str, Any] = {"state": idx}
        if ended.any():  # SAME_STEP autoreset, drawn after the transition (the single env's order)
            final_obs, final_idx = obs, idx
            new = np.asarray(dyn.sample_initial(int(ended.sum()), self.np_random), dtype=np.int64)
            new_idx = dyn.index(new)
            nxt = nxt.copy()  # the dynamics' array, perhaps not writable
            nxt[ended] = new
            idx = idx.copy()
            idx[ended] = new_idx
            obs = obs.copy()
            obs[ended] = self._observe(new, new_idx)
            alive[ended] = True
            t[ended] = 0
            infos = {
                "state": idx,
                "final_obs": final_obs,
                "_final_obs": ended,
                "final_info": {"state": final_idx, "_state": ended},
                "_final_info": ended,
            }
        self._states, self._alive, self._t = nxt, alive, t
        infos["alive"] = alive.copy()
        return obs, rewards, terminated, truncated, infos

    def render(self) -> None:
        """Nothing: the batch does not render (``render_mode`` is None); render a single env."""
        gymnasium.logger.warn("ParallelVectorEnv does not render (render_mode is None); render a single env")

    def close(self) -> None:
        """Nothing to release (for symmetry with Gymnasium's vector envs)."""

    def __repr__(self) -> str:
        return (
            f"ParallelVectorEnv({self.env.metadata.get('name', type(self.env).__name__)}, "
            f"num_envs={self.num_envs}, n_agents={self.n_agents}, observation={self.observation_mode!r})"
        )

    def _require_reset(self, what: str = "step()") -> None:
        if self._states is None:
            raise RuntimeError(f"call reset() before {what}")


def make_parallel_vec(env_id: str, num_envs: int = 1, **env_kwargs: Any) -> ParallelVectorEnv:
    """A :class:`ParallelVectorEnv` of a registered env (``mpg_envs.ENV_IDS``).

    Args:
        env_id: A registered id, e.g. ``"mpg/Coordination-v0"``.
        num_envs: Copies.
        **env_kwargs: The env's arguments (e.g. ``n_agents=2, observation="vector"``).

    Raises:
        ValueError: An id that is not one of ``mpg_envs.ENV_IDS`` (or as the env and
            :class:`ParallelVectorEnv` raise).
    """
    import pettingzoo

    from mpg_envs import ENV_IDS

    if not isinstance(env_id, str) or env_id not in ENV_IDS:
        raise ValueError(f"env_id must be one of {list(ENV_IDS)}, got {V.show(env_id)}")
    num_envs = V.positive_int("num_envs", num_envs)
    return ParallelVectorEnv(pettingzoo.make("parallel", env_id, **env_kwargs).unwrapped, num_envs)
