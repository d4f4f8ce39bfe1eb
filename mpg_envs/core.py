"""Shared machinery: vectorised dynamics, the model builder, and the PettingZoo base env.

Every environment family writes its dynamics **once**, as a :class:`Dynamics` subclass whose
``step`` maps a batch of (state, joint action, noise) to (next state, rewards) deterministically.
Randomness enters only through independent categorical *noise* variables whose distributions the
dynamics declare (``noise_probs``). From that single piece of code:

* :func:`build_model` enumerates every (state, joint action, noise outcome) and assembles the exact
  :class:`~mpg_envs.model.TabularModel`;
* :func:`sample_step` draws the noise and steps a batch of B states at once (the simulator and the
  batched samplers of ``baselines`` call it);
* :class:`MPGParallelEnv` wraps it as a PettingZoo ``ParallelEnv``.

So the simulator and the model cannot disagree; ``tests/test_congestion.py`` checks it anyway.

Observations live in the dynamics too (:meth:`Dynamics.observe`, vectorised over a batch of
states), so the PettingZoo env, the batched samplers and the tabulation of a policy over every
model state all read the same features.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from math import prod
from typing import Any, ClassVar

import gymnasium
import numpy as np
import scipy.sparse as sp
from gymnasium.utils import seeding
from pettingzoo import AECEnv, ParallelEnv
from pettingzoo.utils.conversions import parallel_to_aec_wrapper
from pettingzoo.utils.wrappers import OrderEnforcingWrapper

from mpg_envs import _validate as V
from mpg_envs.model import ModelTooLargeError, TabularModel, unravel_actions

__all__ = [
    "Dynamics",
    "build_model",
    "check_model_size",
    "sample_step",
    "sample_initial",
    "row_counts",
    "MPGParallelEnv",
    "to_aec",
    "DEFAULT_MAX_TRANSITIONS",
    "DEFAULT_MAX_MODEL_BYTES",
    "MAX_AGENTS",
    "MAX_OBSERVATION_FLOATS",
    "MAX_OBSERVATION_BATCH_FLOATS",
    "MAX_ONEHOT_STATES",
    "OBS_MODES",
]

#: Default cap on S * A * (noise outcomes) evaluated when building a model (~0.5 GB worst case).
DEFAULT_MAX_TRANSITIONS = 20_000_000
#: Default cap on the memory a model build may need (raised with ``max_transitions``, see
#: :func:`check_model_size`).
DEFAULT_MAX_MODEL_BYTES = 2 * 2**30
_BYTES_PER_TRANSITION = 24  # float64 prob + int64 row + int64 col while assembling COO
_PEAK_BYTES_PER_TRANSITION = 80  # COO lists, their concatenation, the CSR matrix and its copy
#: Most agents an environment accepts (names, spaces and per-agent dicts grow with N).
MAX_AGENTS = 100_000
#: Most float32 entries the observations of one state may hold, all agents together ("vector":
#: N * (N + F) for F state features; "onehot": N * S).
MAX_OBSERVATION_FLOATS = 2**25
#: Most float32 entries one call of :meth:`Dynamics.observe` may return (B states together, 512 MiB).
MAX_OBSERVATION_BATCH_FLOATS = 2**27
#: Most model states a one-hot encoding covers: the ``"onehot"`` observation mode and the default
#: :meth:`Dynamics.state_features` (a network input of more than 65,536 one-hot entries is no
#: sensible encoding; give the dynamics compact state features instead).
MAX_ONEHOT_STATES = 2**16
#: Observation modes (``"own"`` only for dynamics with a local observation, see
#: :attr:`Dynamics.own_observation_size`).
OBS_MODES = ("state", "vector", "own", "onehot")
#: Largest per-row histogram (rows x keys) counted densely; larger ones are counted by sorting.
_DENSE_COUNT_LIMIT = 1 << 22


class Dynamics(ABC):
    """Vectorised dynamics of a finite Markov game over integer state descriptors.

    A state is an int64 vector of length ``state_dim``; the dynamics enumerate the states covered
    by the exact model (:meth:`states`) and map descriptors to indices (:meth:`index`).

    What the agents observe is part of the dynamics too: :meth:`observe` maps a batch of states to
    every agent's observation in one of the modes of :data:`OBS_MODES`, built from two hooks a
    subclass may override, :meth:`state_features` (global float features) and
    :meth:`own_observation` (each agent's local observation, with :attr:`own_observation_size`).

    Attributes:
        n_agents: N.
        action_sizes: (|A_1|, ..., |A_N|).
        state_dim: d, length of a state descriptor.
        noise_probs: Tuple of M probability vectors, one per independent noise variable.
        own_observation_size: K, the number of local observations of the ``"own"`` mode (indices
            in [0, K)), or None when the game has no local observation (no ``"own"`` mode).
    """

    n_agents: int
    action_sizes: tuple[int, ...]
    state_dim: int
    noise_probs: tuple[np.ndarray, ...] = ()
    own_observation_size: int | None = None

    @property
    @abstractmethod
    def n_states(self) -> int:
        """Number of states of the model (computed without enumerating them)."""

    @abstractmethod
    def states(self) -> np.ndarray:
        """All model states in index order, shape (S, d) int64."""

    @abstractmethod
    def index(self, states: np.ndarray) -> np.ndarray:
        """State descriptors (B, d) -> model indices (B,) int64; -1 for states outside the model."""

    @abstractmethod
    def initial_distribution(self) -> tuple[np.ndarray, np.ndarray]:
        """Support of mu: (states (K, d) int64, probabilities (K,))."""

    @abstractmethod
    def step(
        self, states: np.ndarray, actions: np.ndarray, noise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic transition given the noise.

        Args:
            states: Shape (B, d) int64.
            actions: Shape (B, N) int64, each in range.
            noise: Shape (B, M) int64, outcome index of each noise variable.

        Returns:
            next_states (B, d) int64 and rewards (B, N) float64.
        """

    @abstractmethod
    def terminal(self, states: np.ndarray) -> np.ndarray:
        """Shape (B, d) -> (B,) bool: absorbing zero-reward states."""

    def agent_terminal(self, states: np.ndarray) -> np.ndarray:
        """Per-agent episode end, (B, d) -> (B, N) bool. Default: every agent ends with the state.

        Override for games whose agents finish separately (e.g. independent tasks); the state is
        then terminal when every agent is done, and a done agent's actions must not matter.
        """
        return np.repeat(self.terminal(states)[:, None], self.n_agents, axis=1)

    def sample_initial(self, n: int, rng: np.random.Generator | int | None) -> np.ndarray:
        """Draw n initial states from mu, shape (n, d). Override when mu's support is huge.

        ``rng`` is a Generator, an int seed or None (overrides should accept the same, via
        ``mpg_envs._validate.generator``).
        """
        rng = V.generator(rng)
        st, p = self.initial_distribution()
        if len(st) == 1:
            return np.repeat(st, n, axis=0)
        return st[rng.choice(len(st), size=n, p=p)]

    def start_error(self, state: np.ndarray) -> str | None:
        """Why a model state (descriptor, shape (d,)) cannot start an episode, or None if it can.

        Default: every model state can (``reset(options={"state": s})`` accepts any of them).
        Override to refuse states that are in the enumeration but never occupied (e.g. walls).
        """
        return None

    def decode(self, indices: np.ndarray) -> np.ndarray:
        """Model indices (B,) -> state descriptors (B, d). Default: rows of :meth:`states`."""
        return self.states()[np.asarray(indices, dtype=np.int64)]

    def potential(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray | None:
        """One-step potential phi(s, a) for (B, d), (B, N) -> (B,), or None if none is known."""
        return None

    def exact_model(
        self, gamma: float, *, max_transitions: int = DEFAULT_MAX_TRANSITIONS, name: str = ""
    ) -> TabularModel:
        """The exact model. Default: :func:`build_model` enumerates :meth:`step`.

        Override only to exploit structure (e.g. a product of per-agent transitions); the override
        must agree with :func:`build_model` (test it on small instances).
        """
        return build_model(self, gamma, max_transitions=max_transitions, name=name)

    # ---------------------------------------------------------------- observations
    def state_features(self, states: np.ndarray) -> np.ndarray:
        """Global state as float32 features in [0, 1], shape (B, d) -> (B, F).

        Default: the one-hot of the model index (F = S), for at most :data:`MAX_ONEHOT_STATES`
        states. Override with a compact encoding (and :attr:`n_state_features`) for larger games.
        The states must be model states (use :meth:`observe` for checked input).

        Raises:
            ValueError: The default one-hot for more than :data:`MAX_ONEHOT_STATES` states.
        """
        S = self._default_features_size()
        idx = self.index(states)
        out = np.zeros((len(idx), S), np.float32)
        out[np.arange(len(idx)), idx] = 1.0
        return out

    @property
    def n_state_features(self) -> int:
        """F, the length of :meth:`state_features` (computed once from one initial state).

        Override alongside :meth:`state_features` when F is known without computing features.
        """
        if type(self).state_features is Dynamics.state_features:
            return self._default_features_size()
        cached = self.__dict__.get("_n_state_features_cache")
        if cached is None:
            probe = self.sample_initial(1, np.random.default_rng(0))
            cached = int(np.shape(self.state_features(probe))[1])
            self._n_state_features_cache = cached
        return cached

    def own_observation(self, states: np.ndarray) -> np.ndarray:
        """Each agent's local observation index, shape (B, d) -> (B, N) int64, in [0, K).

        Only for dynamics with an :attr:`own_observation_size` K (the ``"own"`` mode).

        Raises:
            ValueError: The dynamics have no local observation (``own_observation_size`` is None).
        """
        if self.own_observation_size is None:
            raise ValueError(
                f"{type(self).__name__} has no local observation (own_observation_size is None), "
                f"so no 'own' observation mode; use one of {list(self.observation_modes)}"
            )
        raise NotImplementedError(f"{type(self).__name__} sets own_observation_size but not own_observation")

    @property
    def observation_modes(self) -> tuple[str, ...]:
        """The modes of :meth:`observe` these dynamics support (``"own"`` only with a local
        observation; ``"onehot"`` and ``"vector"`` may still refuse games that are too large, see
        :meth:`check_observation_mode`)."""
        return tuple(m for m in OBS_MODES if m != "own" or self.own_observation_size is not None)

    def check_observation_mode(self, mode: Any, name: str = "mode") -> str:
        """An observation mode these dynamics can produce, checked for its size per state.

        Args:
            mode: One of :attr:`observation_modes`.
            name: Parameter name for the message (the env passes ``"observation"``).

        Returns:
            The mode.

        Raises:
            ValueError: An unknown or unsupported mode, or observations of one state over
                :data:`MAX_OBSERVATION_FLOATS` floats ("vector", "onehot") or a one-hot over more
                than :data:`MAX_ONEHOT_STATES` states, naming the sizes.
        """
        modes = self.observation_modes
        if not any(type(mode) is str and mode == m for m in modes):
            why = ""
            if isinstance(mode, str) and mode == "own":
                why = f" ({type(self).__name__} has no local observation: own_observation_size is None)"
            raise ValueError(f"{name} must be one of {list(modes)}, got {V.show(mode)}{why}")
        self._floats_per_state(mode, name)
        return mode

    def _onehot_states(self, what: str, advice: str) -> int:
        """S, if a one-hot of the model state is allowed (S <= MAX_ONEHOT_STATES), else raise."""
        S = int(self.n_states)
        if S > MAX_ONEHOT_STATES:
            raise ValueError(
                f"{what} of {type(self).__name__} would have S={V.format_count(S)} entries, over the limit "
                f"of MAX_ONEHOT_STATES={MAX_ONEHOT_STATES:,} states; {advice}"
            )
        return S

    def _default_features_size(self) -> int:
        return self._onehot_states(
            "the default state features (a one-hot of the model state)",
            "override state_features (and n_state_features) with a compact encoding",
        )

    def _floats_per_state(self, mode: str, name: str = "mode") -> int:
        """Float32 entries of one state's observations, all agents ("vector", "onehot"; 0 for the
        integer modes); raises when over :data:`MAX_OBSERVATION_FLOATS`."""
        N = int(self.n_agents)
        if mode == "vector":
            F = int(self.n_state_features)
            total, each = N * (N + F), f"{N + F:,} floats (one-hot agent id + {F:,} state features)"
        elif mode == "onehot":
            S = self._onehot_states(
                f"{name}='onehot' (a one-hot of the model state)",
                "use " + " or ".join(f"{name}={m!r}" for m in self.observation_modes if m != "onehot"),
            )
            total, each = N * S, f"{S:,} floats (a one-hot of the model state)"
        else:
            return 0
        if total > MAX_OBSERVATION_FLOATS:
            raise ValueError(
                f"{name}={mode!r} gives each of the N={N:,} agents {each}: {total:,} floats per step, "
                f"over the limit of {MAX_OBSERVATION_FLOATS:,}; use {name}='state' or fewer agents"
            )
        return total

    def observation_shape(self, mode: str) -> tuple[int, ...]:
        """Shape of one agent's observation: () for "state" and "own", (N + F,) for "vector",
        (S,) for "onehot".

        Raises:
            ValueError: As :meth:`check_observation_mode`.
        """
        mode = self.check_observation_mode(mode)
        if mode == "vector":
            return (int(self.n_agents) + int(self.n_state_features),)
        if mode == "onehot":
            return (int(self.n_states),)
        return ()

    def observation_space(self, mode: str) -> gymnasium.spaces.Space:
        """One agent's observation space (a new object each call): ``Discrete(S)`` for "state",
        ``Discrete(K)`` for "own", float32 ``Box(0, 1)`` of :meth:`observation_shape` otherwise.

        Raises:
            ValueError: As :meth:`check_observation_mode`.
        """
        shape = self.observation_shape(mode)
        if mode == "state":
            return gymnasium.spaces.Discrete(int(self.n_states))
        if mode == "own":
            return gymnasium.spaces.Discrete(int(self.own_observation_size))
        return gymnasium.spaces.Box(0.0, 1.0, shape, np.float32)

    def observe(self, states: np.ndarray, mode: str, *, indices: np.ndarray | None = None) -> np.ndarray:
        """Every agent's observation in a batch of states (vectorised: no loop over the batch).

        Modes (``N`` agents, ``S`` model states, ``F`` = :attr:`n_state_features`):

        * ``"state"``: (B, N) int64, the model index of the state, the same for every agent;
        * ``"own"``: (B, N) int64, :meth:`own_observation` (each agent's local observation);
        * ``"vector"``: (B, N, N + F) float32, agent i's one-hot id followed by
          :meth:`state_features` of the state;
        * ``"onehot"``: (B, N, S) float32, the one-hot of the model index, the same for every agent
          (at most :data:`MAX_ONEHOT_STATES` states).

        Args:
            states: State descriptors, shape (B, d), integers; every row a state of the model.
            mode: One of :attr:`observation_modes`.
            indices: Their model indices ``index(states)``, shape (B,), if already known (saves
                computing them again; trusted to match ``states``).

        Returns:
            The observations; row b is what each agent sees in ``states[b]``.

        Raises:
            ValueError: A bad mode (see :meth:`check_observation_mode`), states of the wrong shape
                or dtype, a state outside the model, or a result of more than
                :data:`MAX_OBSERVATION_BATCH_FLOATS` floats (the message says how many states fit).
        """
        mode = self.check_observation_mode(mode)
        d = int(self.state_dim)
        st = V.int_array("states", states, what=f"an integer array of shape (B, d={d})")
        if st.ndim != 2 or st.shape[1] != d:
            raise ValueError(f"states must be an integer array of shape (B, d={d}), got shape {st.shape}")
        B = len(st)
        per = self._floats_per_state(mode)
        if B * per > MAX_OBSERVATION_BATCH_FLOATS:
            raise ValueError(
                f"observe(mode={mode!r}) of {B:,} states would return {B:,} x {per:,} = {B * per:,} floats, "
                f"over the limit of MAX_OBSERVATION_BATCH_FLOATS={MAX_OBSERVATION_BATCH_FLOATS:,}; pass "
                f"at most {max(1, MAX_OBSERVATION_BATCH_FLOATS // per):,} states per call"
            )
        if indices is None:
            idx = self.index(st)
        else:
            idx = V.int_array("indices", indices, what=f"an integer array of shape (B,) = ({B},)")
            if idx.shape != (B,):
                raise ValueError(f"indices must have shape (B,) = ({B},), got shape {idx.shape}")
        if B and (idx.min() < 0 or idx.max() >= self.n_states):
            b = int(np.flatnonzero((idx < 0) | (idx >= self.n_states))[0])
            raise ValueError(f"states[{b}] = {st[b].tolist()} is not a state of these dynamics")
        return self._observe(st, mode, idx)

    def _observe(self, states: np.ndarray, mode: str, indices: np.ndarray) -> np.ndarray:
        """:meth:`observe` without argument checks: states (B, d) int64 of the model, a checked
        mode and the states' model indices (B,) int64."""
        B, N = len(states), self.n_agents
        if mode == "state":
            out = np.empty((B, N), np.int64)
            out[:] = indices[:, None]
            return out
        if mode == "own":
            return np.asarray(self.own_observation(states), dtype=np.int64)
        if mode == "onehot":
            out = np.zeros((B, N, self.n_states), np.float32)
            out[np.arange(B)[:, None], np.arange(N), indices[:, None]] = 1.0
            return out
        feat = self.state_features(states)
        out = np.zeros((B, N, N + feat.shape[1]), np.float32)
        agents = np.arange(N)
        out[:, agents, agents] = 1.0
        out[:, :, N:] = feat[:, None, :]
        return out

    # ---------------------------------------------------------------- shared helpers
    @property
    def n_noise_outcomes(self) -> int:
        """Number of joint noise outcomes with positive probability."""
        return prod(int(np.count_nonzero(p)) for p in self.noise_probs)

    def noise_outcomes(self) -> tuple[np.ndarray, np.ndarray]:
        """Every joint noise outcome with positive probability: (outcomes (C, M), probs (C,))."""
        supports = [np.flatnonzero(p) for p in self.noise_probs]
        if not supports:
            return np.zeros((1, 0), np.int64), np.ones(1)
        grid = np.array(list(itertools.product(*supports)), dtype=np.int64).reshape(-1, len(supports))
        probs = np.prod([self.noise_probs[m][grid[:, m]] for m in range(len(supports))], axis=0)
        return grid, probs


def check_model_size(dyn: Dynamics, max_transitions: int = DEFAULT_MAX_TRANSITIONS) -> int:
    """Raise :class:`ModelTooLargeError` if building the model would take too much time or memory.

    Two limits, both checked before anything is allocated: the number of (state, joint action, noise
    outcome) evaluations, ``max_transitions``, and the estimated peak memory of the build (transition
    table, rewards and potential for every agent, state table), ``max(DEFAULT_MAX_MODEL_BYTES,
    80 bytes x max_transitions)``. Sizes are exact Python ints, so huge games are reported, not
    overflowed.

    Args:
        dyn: The dynamics.
        max_transitions: Positive int.

    Returns:
        The number of (state, joint action, noise outcome) evaluations the build needs.
    """
    max_transitions = V.positive_int("max_transitions", max_transitions)
    S, A, C = int(dyn.n_states), prod(int(k) for k in dyn.action_sizes), int(dyn.n_noise_outcomes)
    N, d = int(dyn.n_agents), int(dyn.state_dim)
    total = S * A * C
    fmt = V.format_count
    advice = "use fewer agents/actions/states or raise max_transitions"
    if total > max_transitions:
        raise ModelTooLargeError(
            f"the exact model has S={fmt(S)} states x A={fmt(A)} joint actions x {fmt(C)} noise outcomes "
            f"= {fmt(total)} transitions (~{V.gib(total * _BYTES_PER_TRANSITION)} GiB to build), over the "
            f"limit max_transitions={max_transitions:,}; {advice}"
        )
    need = total * _PEAK_BYTES_PER_TRANSITION + 8 * (N + 1) * S * A + 16 * S * d
    limit = max(DEFAULT_MAX_MODEL_BYTES, _PEAK_BYTES_PER_TRANSITION * max_transitions)
    if need > limit:
        raise ModelTooLargeError(
            f"the exact model of N={N:,} agents, S={fmt(S)} states and A={fmt(A)} joint actions needs "
            f"~{V.gib(need)} GiB (transitions, rewards R of shape (N, S, A), state table of shape "
            f"(S, {d})), over the memory limit of {V.gib(limit)} GiB (max_transitions={max_transitions:,}); "
            f"{advice}"
        )
    return total


def build_model(
    dyn: Dynamics,
    gamma: float,
    *,
    max_transitions: int = DEFAULT_MAX_TRANSITIONS,
    name: str = "",
    chunk: int = 1 << 20,
) -> TabularModel:
    """Enumerate the dynamics into an exact :class:`TabularModel`.

    Every (state, joint action) pair is stepped once per noise outcome; probabilities of outcomes
    that lead to the same next state are summed and rewards are averaged over the noise.

    Args:
        dyn: The environment's dynamics.
        gamma: Discount factor in (0, 1].
        max_transitions: Size limit checked before anything is allocated.
        name: Label stored in the model.
        chunk: Max (state, joint action) rows x max(N, d) processed at once (bounds peak memory
            whatever the number of joint actions).

    Returns:
        The validated model.

    Raises:
        ModelTooLargeError: If S * A * noise outcomes exceeds ``max_transitions``.
        RuntimeError: If the dynamics step outside their own state enumeration.
    """
    if not isinstance(dyn, Dynamics):
        raise V.ArgumentTypeError(f"dyn must be a mpg_envs.core.Dynamics, got {V.show(dyn)}")
    V.discount("gamma", gamma)  # refuse a bad gamma before the (possibly long) build
    chunk = V.positive_int("chunk", chunk)
    check_model_size(dyn, max_transitions)
    states = dyn.states()
    S, N = len(states), dyn.n_agents
    A = prod(dyn.action_sizes)
    outcomes, oprobs = dyn.noise_outcomes()
    # the dynamics' temporaries are (rows, N) or (rows, d) arrays: bound rows x max(N, d)
    rows_per_chunk = max(1, chunk // max(N, dyn.state_dim, 1))
    R = np.zeros((N, S * A))
    phi = None
    coo_r, coo_c, coo_p = [], [], []
    for lo in range(0, S * A, rows_per_chunk):
        hi = min(S * A, lo + rows_per_chunk)
        flat = np.arange(lo, hi)
        st = states[flat // A]
        ac = unravel_actions(flat % A, tuple(dyn.action_sizes))
        for noise, p in zip(outcomes, oprobs):
            nxt, rew = dyn.step(st, ac, np.broadcast_to(noise, (hi - lo, len(noise))))
            idx = dyn.index(nxt)
            if np.any(idx < 0):
                bad = int(np.flatnonzero(idx < 0)[0])
                raise RuntimeError(
                    f"dynamics left their state enumeration: state {st[bad].tolist()} with actions "
                    f"{ac[bad].tolist()} led to {nxt[bad].tolist()}"
                )
            coo_r.append(flat)
            coo_c.append(idx)
            coo_p.append(np.full(hi - lo, p))
            R[:, lo:hi] += p * rew.T
        ph = dyn.potential(st, ac)
        if ph is not None:
            if phi is None:
                phi = np.zeros(S * A)
            phi[lo:hi] = ph
    P = sp.csr_matrix(
        (np.concatenate(coo_p), (np.concatenate(coo_r), np.concatenate(coo_c))), shape=(S * A, S)
    )
    mu = np.zeros(S)
    init_states, init_p = dyn.initial_distribution()
    np.add.at(mu, dyn.index(init_states), init_p)
    return TabularModel(
        n_agents=N,
        action_sizes=tuple(dyn.action_sizes),
        P=P,
        R=R.reshape(N, S, A),
        mu=mu,
        gamma=gamma,
        terminal=dyn.terminal(states),
        phi=None if phi is None else phi.reshape(S, A),
        states=states,
        name=name,
    )


def sample_noise(dyn: Dynamics, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw n joint noise outcomes, shape (n, M) int64, with one uniform draw per variable."""
    if not dyn.noise_probs:
        return np.zeros((n, 0), np.int64)
    cdf = _noise_cdf(dyn)
    u = rng.random((n, len(dyn.noise_probs), 1))
    return (u >= cdf[None]).sum(axis=2).astype(np.int64)


def _noise_cdf(dyn: Dynamics) -> np.ndarray:
    cached = getattr(dyn, "_cdf_cache", None)
    if cached is None:
        K = max(len(p) for p in dyn.noise_probs)
        cached = np.ones((len(dyn.noise_probs), K))
        for m, p in enumerate(dyn.noise_probs):
            cached[m, : len(p)] = np.cumsum(p)
            cached[m, len(p) - 1 :] = np.inf  # guard against round-off: last outcome catches u
        dyn._cdf_cache = cached
    return cached


def sample_step(
    dyn: Dynamics, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator | int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Sample one transition for a batch: (B, d), (B, N) -> next states (B, d), rewards (B, N).

    Args:
        dyn: The dynamics.
        states: Shape (B, d) integer state descriptors.
        actions: Shape (B, N) integer actions, each in range.
        rng: Generator, or an int seed / None for a fresh one (see :func:`mpg_envs._validate.generator`).

    Raises:
        ValueError / TypeError: Actions of the wrong shape, dtype or range, states of the wrong shape
            (or outside the dynamics' state enumeration, when that makes the step index out of range;
            the states are not checked otherwise, to keep the batched samplers fast).
    """
    rng = V.generator(rng)
    st = np.asarray(states)
    a = np.asarray(actions)
    if st.ndim != 2 or st.shape[1] != dyn.state_dim or not np.issubdtype(st.dtype, np.integer):
        raise ValueError(
            f"states must be an integer array of shape (B, d={dyn.state_dim}), got shape {st.shape} and "
            f"dtype {st.dtype}"
        )
    if a.shape != (len(st), dyn.n_agents):
        raise ValueError(f"actions must have shape (B, N) = {(len(st), dyn.n_agents)}, got {a.shape}")
    if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
        raise V.ArgumentTypeError(f"actions must be integers, got dtype {a.dtype}: {V.show(actions)}")
    if a.size:
        bad = (a < 0) | (a >= np.asarray(dyn.action_sizes))
        if bad.any():
            b, i = (int(x) for x in np.argwhere(bad)[0])
            raise ValueError(
                f"actions[{b}, {i}] = {int(a[b, i])} is out of range for agent {i} (|A_{i}| = "
                f"{dyn.action_sizes[i]})"
            )
    try:
        return _sample_step(dyn, st, a, rng)
    except IndexError:  # a state outside the enumeration indexed past a table: say which one
        bad = np.flatnonzero(dyn.index(st) < 0)
        if bad.size:
            b = int(bad[0])
            raise ValueError(f"states[{b}] = {st[b].tolist()} is not a state of these dynamics") from None
        raise


def _sample_step(
    dyn: Dynamics, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sample_step` without argument checks (for callers that already validated them)."""
    return dyn.step(states, actions, sample_noise(dyn, len(states), rng))


def sample_initial(dyn: Dynamics, n: int, rng: np.random.Generator | int | None) -> np.ndarray:
    """Draw n initial states from mu, shape (n, d) (see :meth:`Dynamics.sample_initial`).

    ``rng`` may be a Generator, an int seed or None.
    """
    return dyn.sample_initial(V.integer("n", n, minimum=0), V.generator(rng))


def row_counts(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The non-zero entries of the per-row histogram of ``keys`` (B, N) over ``range(n_keys)``.

    Memory is O(B * N) whatever ``n_keys`` (a dense (B, n_keys) histogram would be B * n_keys).

    Returns:
        ``(rows, values, counts, group)``: for each distinct (row, key) pair, sorted by row then
        key, its row (U,), key (U,) and count (U,); and ``group`` (B, N), the pair index of every
        entry of ``keys`` (so ``counts[group]`` is each entry's own count).
    """
    keys = np.asarray(keys, dtype=np.int64)
    B, N = keys.shape
    flat = (np.arange(B, dtype=np.int64)[:, None] * int(n_keys) + keys).ravel()
    uniq, group, counts = np.unique(flat, return_inverse=True, return_counts=True)
    rows, values = np.divmod(uniq, int(n_keys))
    return rows, values, counts, group.reshape(B, N)


class LazyRandom:
    """``np_random`` created from OS entropy on first use, as Gymnasium's envs do: copies made by
    pickling a fresh object (how SuperSuit and vector envs copy an env) then draw from streams of
    their own. ``reset(seed=s)`` replaces it with ``seeding.np_random(s)`` (:meth:`_seed_random`)."""

    _np_random: np.random.Generator | None = None
    _np_random_seed: int | None = None

    @property
    def np_random(self) -> np.random.Generator:
        """The generator, created from OS entropy on first use unless ``reset(seed=...)``."""
        if self._np_random is None:
            self._np_random, self._np_random_seed = seeding.np_random(None)
        return self._np_random

    @np_random.setter
    def np_random(self, value: np.random.Generator) -> None:
        self._np_random, self._np_random_seed = value, -1

    @property
    def np_random_seed(self) -> int | None:
        """The seed of :attr:`np_random` (-1 when it was set directly, as in Gymnasium)."""
        if self._np_random is None:
            self.np_random  # noqa: B018 - creates it
        return self._np_random_seed

    @np_random_seed.setter
    def np_random_seed(self, value: int | None) -> None:
        self._np_random_seed = value

    def _seed_random(self, seed: int) -> None:
        """A new generator from ``seed`` (Gymnasium's ``seeding.np_random``)."""
        self._np_random, self._np_random_seed = seeding.np_random(seed)


class MPGParallelEnv(LazyRandom, ParallelEnv):
    """PettingZoo ``ParallelEnv`` driven by a :class:`Dynamics` (base of every env here).

    Subclasses set ``metadata`` and build their dynamics, then call ``super().__init__``. They
    may override :meth:`batch_extra_infos` and the renderers. Observations come from the dynamics
    (:meth:`Dynamics.observe`; override :meth:`Dynamics.state_features` and
    :meth:`Dynamics.own_observation` there), so the env, the batched samplers and the tabulation
    of a policy over the model states read the same features.

    Observation modes:
        ``"state"``: the model's global state index, ``Discrete(S)`` (tabular learners).
        ``"vector"``: float32 one-hot agent id (N) followed by :meth:`Dynamics.state_features`
        (neural nets, SB3 with parameter sharing).
        ``"own"``: the agent's own local observation only, ``Discrete(K)`` (env specific).
        ``"onehot"``: float32 one-hot of the model state index, shape (S,) (the input of a
        network on the global state; small games only).
    """

    #: Whether agents can finish at different steps (then wrappers must mask finished agents).
    agents_finish_separately: bool = False

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["human", "ansi", "rgb_array"], "name": "mpg_base"}

    def __init__(
        self,
        dynamics: Dynamics,
        *,
        gamma: float,
        max_cycles: int,
        observation: str = "state",
        render_mode: str | None = None,
    ) -> None:
        for hook in ("state_features", "own_observation", "own_observation_size"):
            if getattr(type(self), hook) is not getattr(MPGParallelEnv, hook):
                raise TypeError(
                    f"{type(self).__name__} overrides {hook}, but observations come from the dynamics: "
                    f"define {hook} on the Dynamics subclass ({type(dynamics).__name__}) instead"
                )
        self.observation_mode = dynamics.check_observation_mode(observation, name="observation")
        modes = self.metadata["render_modes"]
        if render_mode is not None and not any(render_mode == m and type(render_mode) is str for m in modes):
            raise ValueError(f"render_mode must be None or one of {modes}, got {V.show(render_mode)}")
        max_cycles = V.positive_int("max_cycles", max_cycles)
        n = V.positive_int("n_agents", dynamics.n_agents, maximum=MAX_AGENTS)
        self.dynamics = dynamics
        self.gamma = V.discount("gamma", gamma)
        self.max_cycles = max_cycles
        self.render_mode = render_mode
        self.possible_agents = [f"agent_{i}" for i in range(n)]
        self._agent_ids = {a: i for i, a in enumerate(self.possible_agents)}
        self.agents: list[str] = []
        self._sizes = np.asarray(dynamics.action_sizes, dtype=np.int64)
        self._action_spaces = {
            a: gymnasium.spaces.Discrete(int(k)) for a, k in zip(self.possible_agents, dynamics.action_sizes)
        }
        self._observation_spaces = {a: dynamics.observation_space(observation) for a in self.possible_agents}
        if render_mode == "rgb_array":
            self._check_renderable()
        self.state_space = gymnasium.spaces.Box(0.0, 1.0, (dynamics.n_state_features,), np.float32)
        self._state: np.ndarray | None = None
        self._indices = np.full(1, -1, np.int64)  # model index of _state, shape (1,)
        self._prev_state: np.ndarray | None = None  # state before the last step (for infos/render)
        self._index = -1
        self._model: TabularModel | None = None
        self._np_random = None  # created on first use (LazyRandom)
        self.num_steps = 0
        self._last_actions: np.ndarray | None = None

    # ---------------------------------------------------------------- spaces
    def observation_space(self, agent: str) -> gymnasium.spaces.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.spaces.Space:
        return self._action_spaces[agent]

    # ---------------------------------------------------------------- exact model
    def model(self, *, max_transitions: int = DEFAULT_MAX_TRANSITIONS) -> TabularModel:
        """The exact :class:`TabularModel`, built (once) from the same dynamics as ``step``.

        Raises:
            ModelTooLargeError: If it would exceed ``max_transitions`` (checked before allocating).
        """
        if self._model is None:
            self._model = self.dynamics.exact_model(
                self.gamma, max_transitions=max_transitions, name=self.metadata["name"]
            )
        return self._model

    def observation_index(self, mode: str | None = None) -> np.ndarray:
        """Which observation each agent sees in each model state, shape (N, S) int64.

        ``dynamics.observe(dynamics.states(), mode).T``. A policy that reads observation mode
        ``mode`` ("state" or "own") is a table over these indices; pass the result as ``obs_map``
        to :func:`mpg_envs.exact.cycle_residual` to check the potential certificate for that
        policy class.

        Args:
            mode: "state" or "own" (if the env has it); default: the env's observation mode.
        """
        mode = self.observation_mode if mode is None else mode
        allowed = [m for m in ("state", "own") if m in self.dynamics.observation_modes]
        if not any(type(mode) is str and mode == m for m in allowed):
            raise ValueError(f"observation_index supports the modes {allowed}, got {V.show(mode)}")
        dyn = self.dynamics
        return dyn.observe(dyn.states(), mode).T.copy()

    # ---------------------------------------------------------------- observations (from the dynamics)
    @property
    def own_observation_size(self) -> int | None:
        """K of the ``"own"`` mode (``dynamics.own_observation_size``), or None without one."""
        return self.dynamics.own_observation_size

    def state_features(self, states: np.ndarray) -> np.ndarray:
        """Global state features, (B, d) -> (B, F) float32: ``dynamics.state_features``."""
        return self.dynamics.state_features(states)

    def own_observation(self, states: np.ndarray) -> np.ndarray:
        """Per-agent local observation indices, (B, d) -> (B, N) int64: ``dynamics.own_observation``."""
        return self.dynamics.own_observation(states)

    # ---------------------------------------------------------------- hooks for subclasses
    def _extra_infos(self, rewards: np.ndarray) -> dict[str, np.ndarray]:
        """Per-agent numeric infos beyond ``state``: name -> array of shape (N,) (the current
        state's row of :meth:`batch_extra_infos`)."""
        actions = None if self._last_actions is None else self._last_actions[None]
        prev = None if actions is None else self._prev_state
        rows = self.batch_extra_infos(self._state, prev, actions, np.asarray(rewards)[None])
        return {k: v[0] for k, v in rows.items()}

    def batch_extra_infos(
        self,
        states: np.ndarray,
        prev_states: np.ndarray | None,
        actions: np.ndarray | None,
        rewards: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Per-agent numeric infos beyond ``state`` of B copies: name -> array (B, N).

        The single env's infos are row 0 of this; batched envs (the batched TorchRL env) call it
        for many copies at once. Subclasses override it (not :meth:`_extra_infos`).

        Args:
            states: The states the step reached (or the reset started from), (B, d) int64.
            prev_states: The states before the step, (B, d), or None after a reset.
            actions: The step's joint actions (B, N) int64 (0 for agents that had finished), or
                None after a reset.
            rewards: The step's rewards (B, N) (zeros after a reset).
        """
        return {}

    def render_ansi(self) -> str:
        return f"step {self.num_steps}: state {self.state_index()}"

    def render_rgb(self) -> np.ndarray:
        raise NotImplementedError

    def _frame_shape(self) -> tuple[int, int] | None:
        """(H, W) of :meth:`render_rgb`'s frame, or None if unknown (override with the renderer)."""
        return None

    def _check_renderable(self) -> None:
        """Refuse, at construction, an ``rgb_array`` frame too large to draw (see ``_raster``)."""
        shape = self._frame_shape()
        if shape is not None:
            from mpg_envs import _raster

            _raster.check_canvas_size(*shape)

    # ---------------------------------------------------------------- API
    def state(self) -> np.ndarray:
        """Global state features, shape (F,) float32 (see :attr:`state_space`)."""
        self._require_reset()
        return self.dynamics.state_features(self._state)[0]

    def state_index(self) -> int:
        """The model's index of the current state."""
        self._require_reset()
        return self._index

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Start an episode.

        Args:
            seed: None or a non-negative int (NumPy integers accepted) seeding ``np_random``.
            options: None or a dict; ``{"state": s}`` starts from model state index ``s`` (an int,
                NumPy int or 0-d int array) or a state descriptor of shape (d,) instead of
                sampling from mu (states the dynamics refuse as starts, e.g. walls, raise). Other
                keys are ignored.

        Raises:
            ValueError / TypeError: A bad seed, options or start state, naming the value.
        """
        seed = V.seed(seed)
        options = V.options_dict("options", options)
        if seed is not None:
            self._seed_random(seed)
        start = options.get("state")
        if start is None:
            self._state = self.dynamics.sample_initial(1, self.np_random)
        else:
            self._state = self._parse_start(start)
        self._indices = self.dynamics.index(self._state)
        self._index = int(self._indices[0])
        self._prev_state = None
        self.agents = self.possible_agents[:]
        self.num_steps = 0
        self._last_actions = None
        obs = self._observe(self.agents)
        infos = self._infos(self.agents, np.zeros(self.dynamics.n_agents))
        if self.render_mode == "human":
            self.render()
        return obs, infos

    def _parse_start(self, start: Any) -> np.ndarray:
        """``options["state"]``: a model index (int, NumPy int or 0-d int array) or a descriptor (d,)."""
        S, d = self.dynamics.n_states, self.dynamics.state_dim
        if V.is_integer(start):
            i = int(start[()] if isinstance(start, np.ndarray) else start)
            if not 0 <= i < S:
                raise ValueError(f"options['state'] must be a state index in [0, {S:,}), got {V.show(start)}")
            desc = self.dynamics.decode(np.array([i]))
        else:
            arr = np.asarray(start) if isinstance(start, (list, tuple, np.ndarray)) else None
            if (
                arr is None
                or arr.shape != (d,)
                or arr.dtype == bool
                or not np.issubdtype(arr.dtype, np.integer)
            ):
                raise ValueError(
                    f"options['state'] must be an int index in [0, {S:,}) or an integer state descriptor "
                    f"of shape ({d},), got {V.show(start)}"
                )
            desc = arr.astype(np.int64)[None]
            if self.dynamics.index(desc)[0] < 0:
                raise ValueError(f"options['state'] = {V.show(start)} is not a state of this environment")
        why = self.dynamics.start_error(desc[0])
        if why:
            raise ValueError(f"options['state'] = {V.show(start)} cannot start an episode: {why}")
        return desc

    def step(self, actions: dict[str, Any]):
        """Step every live agent.

        Args:
            actions: ``{agent: int action}`` for exactly the agents in ``self.agents``.

        Raises:
            RuntimeError: If called before ``reset`` or after the episode ended.
            ValueError / TypeError: Missing or unknown agents, non-integer or out-of-range actions.
        """
        if self._state is None or not self.agents:
            raise RuntimeError("step() called after the episode ended (or before reset()); call reset()")
        act = self._parse_actions(actions)
        nxt, rew = _sample_step(self.dynamics, self._state, act[None], self.np_random)
        self._prev_state = self._state
        self._state = nxt
        self._indices = self.dynamics.index(nxt)
        self._index = int(self._indices[0])
        self._last_actions = act
        self.num_steps += 1
        r = rew[0]
        done = self.dynamics.agent_terminal(nxt)[0]
        trunc = self.num_steps >= self.max_cycles
        live = self.agents
        ids = self._agent_ids
        obs = self._observe(live)
        rewards = {a: float(r[ids[a]]) for a in live}
        terminations = {a: bool(done[ids[a]]) for a in live}
        # at the time limit every live agent is truncated, also one that terminates on that step
        # (terminated then takes precedence for bootstrapping): "all truncated" ends the episode
        # unambiguously for wrappers that test all(terminations) or all(truncations), as RLlib's
        truncations = {a: trunc for a in live}
        infos = self._infos(live, r)
        self.agents = [] if trunc else [a for a in live if not done[ids[a]]]
        if self.render_mode == "human":
            self.render()
        return obs, rewards, terminations, truncations, infos

    def _parse_actions(self, actions: dict[str, Any]) -> np.ndarray:
        if not isinstance(actions, dict):
            raise TypeError(f"actions must be a dict {{agent: action}}, got {type(actions).__name__}")
        live = set(self.agents)
        missing = sorted(live - set(actions))
        unknown = sorted((a for a in actions if a not in self._agent_ids), key=str)
        if missing or unknown:
            raise ValueError(
                f"actions must have one entry per live agent; missing {missing}, unknown {unknown}"
            )
        out = np.zeros(self.dynamics.n_agents, np.int64)  # finished agents act 0 (ignored)
        for agent, a in actions.items():
            if agent in live:  # actions of agents that already finished are ignored (TorchRL sends them)
                out[self._agent_ids[agent]] = self._check_action(agent, a)
        return out

    def _check_action(self, agent: str, a: Any) -> int:
        """One agent's action: an int (NumPy ints and size-1 arrays accepted) in its range."""
        i = self._agent_ids[agent]
        if isinstance(a, np.ndarray) and a.size == 1:
            a = a.reshape(())[()]
        if isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)):
            raise TypeError(
                f"action for {agent} must be an integer in [0, {self._sizes[i]}), got {V.show(a)} "
                f"({type(a).__name__})"
            )
        if not 0 <= a < self._sizes[i]:
            raise ValueError(f"action for {agent} must be in [0, {self._sizes[i]}), got {V.show(a)}")
        return int(a)

    def _observe(self, agents: list[str]) -> dict[str, Any]:
        """Each live agent's observation: its row of ``dynamics.observe`` for the current state
        (np.int64 for "state" and "own", a float32 array otherwise)."""
        obs = self.dynamics._observe(self._state, self.observation_mode, self._indices)[0]
        if len(agents) == len(obs):  # every agent (live agents keep the order of possible_agents)
            return dict(zip(agents, obs))
        ids = self._agent_ids
        return {a: obs[ids[a]] for a in agents}

    def _infos(self, agents: list[str], rewards: np.ndarray) -> dict[str, dict[str, Any]]:
        s = self._index
        # one tolist() per key, not one item() per agent and key: Python scalars either way
        extra = {k: v.tolist() for k, v in self._extra_infos(rewards).items()}
        ids = self._agent_ids
        return {a: {"state": s, **{k: v[ids[a]] for k, v in extra.items()}} for a in agents}

    def _require_reset(self) -> None:
        if self._state is None:
            raise RuntimeError("call reset() first")

    def render(self, mode: str | None = None) -> str | np.ndarray | None:
        """Render per ``render_mode``: "ansi" -> str, "rgb_array" -> (H, W, 3) uint8, "human" prints.

        ``mode`` is accepted for callers of the old Gym signature (RLlib passes one); the env's own
        ``render_mode`` decides, and a different ``mode`` gets a warning saying so.
        """
        if mode is not None and mode != self.render_mode:
            gymnasium.logger.warn(
                f"render({mode!r}) ignored: this env renders in its render_mode {self.render_mode!r} "
                "(pass render_mode=... to the env)"
            )
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode=... to the env")
            return None
        self._require_reset()
        if self.render_mode == "rgb_array":
            return self.render_rgb()
        text = self.render_ansi()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def close(self) -> None:
        pass


class _CheckedAEC(parallel_to_aec_wrapper):
    """``parallel_to_aec`` that checks each agent's action when it is given, not when the last
    agent's action triggers the parallel step (an error would then name another call's action)."""

    def step(self, action: Any) -> None:
        agent = self.agent_selection
        if not (self.terminations.get(agent) or self.truncations.get(agent)):
            self.env.unwrapped._check_action(agent, action)
        super().step(action)


def to_aec(par_env: MPGParallelEnv) -> AECEnv:
    """The AEC version of one of our parallel envs (order enforced, actions checked per call)."""
    return OrderEnforcingWrapper(_CheckedAEC(par_env))
