"""Batched Monte Carlo rollouts of an env's own dynamics, and the sampled estimator built on them.

:class:`BatchSampler` runs B episodes at once as arrays: the only Python loop is over the T time
steps. States come from :meth:`~mpg_envs.core.Dynamics.sample_initial`, every agent's action is
drawn by inverse CDF from its policy row (one uniform per episode and agent), and transitions go
through :func:`mpg_envs.core.sample_step` -- the code the PettingZoo simulator and the exact model
use -- so the sampler cannot disagree with either.

:class:`SampledEstimator` turns rollouts into an :class:`~baselines.estimators.Estimate` the way
paper 001 (§4.1) does in its experiments: episodes of T = 20 steps, mini-batches of 20, Monte
Carlo averages of the returns-to-go for Q and V, and of the discounted visits for the occupancy.

**Truncation bias.** A visit at step t of an episode of T steps sees only T - t further rewards,
so ``E[q[i][s, a]]`` is an average of *finite-horizon* Q-values ``Q^(T-t)`` -- not Q -- however
many episodes are drawn; for visits near the end of the episode the gap is of order
``gamma^(T-t) * max|V|``. With ``tail > 0`` each episode runs ``tail`` further steps that only
complete the returns of the visits within the horizon, which bounds the bias of every visit by
``gamma^tail * max|R| / (1 - gamma)``; ``tail = 0`` (the default) is the paper's estimator.

Example::

    >>> import numpy as np
    >>> from mpg_envs import distancing_v0, exact
    >>> from baselines.sampler import SampledEstimator
    >>> env = distancing_v0.parallel_env(n_agents=3)
    >>> est = SampledEstimator(env.dynamics, gamma=0.99, rng=np.random.default_rng(0))
    >>> e = est.estimate(exact.uniform_policy(env.model()))
    >>> e.v.shape, e.q[0].shape, e.occupancy.shape
    ((3, 2), (2, 4), (2,))
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

from baselines.estimators import Estimate
from mpg_envs import _kernel, exact
from mpg_envs import _validate as V
from mpg_envs._repr import concise_repr
from mpg_envs.core import Dynamics, _sample_step, sample_step
from mpg_envs.exact import check_policy_table
from mpg_envs.model import TabularModel

__all__ = [
    "Rollouts",
    "BatchSampler",
    "SampledEstimator",
    "ForcedActionEstimator",
    "estimate_from_rollouts",
    "returns_to_go",
]

#: Up to this many model states, the terminal flags are tabulated once per sampler (a lookup per
#: step instead of a call to ``Dynamics.terminal``).
TERMINAL_TABLE_MAX_STATES = 1 << 20


@dataclass(frozen=True)
class Rollouts:
    """B episodes of T steps as arrays.

    Attributes:
        states: Model state indices s_0 .. s_T, shape (B, T + 1) int64.
        actions: Actions a_t^i, shape (B, T, N) int64; 0 where ``alive`` is False.
        rewards: Rewards r_t^i, shape (B, T, N) float64; 0 where ``alive`` is False (and, by the
            dynamics, for an agent that finished on its own in games whose agents finish
            separately).
        alive: Whether s_t is not terminal, shape (B, T) bool: False from the first step whose
            state is terminal (the joint state is terminal when every agent is done).
        observations: What the policy read, shape (B, T, N, ...) (rollouts of a policy object in a
            feature observation mode; None for table rollouts).
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    alive: np.ndarray
    observations: np.ndarray | None = None

    def __repr__(self) -> str:
        return concise_repr(
            self,
            n_episodes=self.n_episodes,
            horizon=self.horizon,
            states=self.states,
            actions=self.actions,
            rewards=self.rewards,
            alive=self.alive,
            observations=self.observations,
        )

    @property
    def n_episodes(self) -> int:
        """B."""
        return self.actions.shape[0]

    @property
    def horizon(self) -> int:
        """T."""
        return self.actions.shape[1]

    @property
    def n_agents(self) -> int:
        """N."""
        return self.actions.shape[2]


def returns_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """Truncated discounted returns-to-go G_t = sum_{k=t}^{T-1} gamma^(k-t) r_k.

    Args:
        rewards: Shape (B, T, N).
        gamma: Discount.

    Returns:
        Shape (B, T, N) float64 (accumulated backwards in time: no gamma^-t, stable for any T).
    """
    g = V.discount("gamma", gamma)
    r = V.real_array("rewards", rewards, ndim=3, what="an array of rewards of shape (B, T, N)")
    out = np.empty_like(r)
    acc = np.zeros(r.shape[:1] + r.shape[2:])
    for t in range(r.shape[1] - 1, -1, -1):  # T vectorised steps backwards in time
        acc = r[:, t] + g * acc
        out[:, t] = acc
    return out


def _rollout_bytes(dyn: Dynamics, B: int, T: int) -> int:
    """Peak bytes of :meth:`BatchSampler.rollout` of B episodes of T steps: its arrays (states
    (B, T+1) int64, actions and rewards (B, T, N), alive (B, T)) and one step's temporaries."""
    N, K, d = int(dyn.n_agents), max(int(k) for k in dyn.action_sizes), int(dyn.state_dim)
    return B * (T + 1) * 8 + B * T * (16 * N + 1) + B * (8 * N * (3 + K) + 24 * d + 16)


def _estimate_bytes(dyn: Dynamics, B: int, T: int) -> int:
    """Peak bytes :func:`estimate_from_rollouts` adds to rollouts of B episodes of T steps: the
    returns-to-go (B, T, N) float64 and the (state, agent, action) keys, weights and masks."""
    N = int(dyn.n_agents)
    return B * T * (8 * N * 5 + 24)


def _check_size(what: str, nbytes: int, advice: str) -> None:
    V.check_bytes(what, nbytes, advice=advice)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, Integral) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise ValueError(f"rng must be a numpy Generator, an int seed or None, got {rng!r}")


class BatchSampler:
    """Vectorised rollouts of a :class:`~mpg_envs.core.Dynamics` under a product policy.

    Args:
        dynamics: The env's dynamics (e.g. ``env.unwrapped.dynamics``).
        rng: The only source of randomness (an int seed is turned into a Generator).
        observe: Optional map from state descriptors (B, d) to the row each agent reads from its
            policy table, (B, N) int64 (e.g. ``env.unwrapped.own_observation``). Default: every
            agent reads the model state index, so ``policies[i]`` has shape (S, |A_i|). Needed for
            games too large for per-state tables (the 10x10 multi-task grids: S = 100^N).

    Attributes:
        dynamics, rng, observe: As given.
    """

    def __init__(
        self,
        dynamics: Dynamics,
        rng: np.random.Generator | int | None,
        *,
        observe: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if not isinstance(dynamics, Dynamics):
            raise ValueError(f"dynamics must be a mpg_envs.core.Dynamics, got {type(dynamics).__name__}")
        self.dynamics = dynamics
        self.rng = _generator(rng)
        self.observe = observe
        self._sizes = tuple(int(k) for k in dynamics.action_sizes)
        self._agent_range = np.arange(dynamics.n_agents)
        self._term_table: np.ndarray | None = None
        self._can_terminate = True
        if dynamics.n_states <= TERMINAL_TABLE_MAX_STATES:
            table = np.asarray(dynamics.terminal(dynamics.states()), dtype=bool)
            self._term_table = table
            self._can_terminate = bool(table.any())

    # ------------------------------------------------------------------ policies
    def _cdf_table(self, policies: Sequence[np.ndarray]) -> np.ndarray:
        """Validated policies -> padded cumulative tables, shape (R, N, K_max - 1).

        Column k of agent i holds P(a_i <= k) for k < |A_i| - 1 and +inf beyond, so the action is
        the number of columns with ``u >= cdf``: action a is drawn iff cdf[a-1] <= u < cdf[a], an
        interval of length pi(a) (zero-probability actions are never drawn; round-off in the last
        entry cannot push u past the last action).
        """
        N, sizes = self.dynamics.n_agents, self._sizes
        if (isinstance(policies, np.ndarray) and policies.dtype != object and policies.ndim != 3) or not (
            isinstance(policies, (list, tuple, np.ndarray))
        ):
            raise V.ArgumentTypeError(
                f"policies must be a sequence of {N} arrays of shape (S, |A_i|), got {V.show(policies)}"
            )
        if len(policies) != N:
            raise ValueError(f"expected one policy per agent ({N}), got {len(policies)}")
        rows = None if self.observe is not None else self.dynamics.n_states
        pols = [
            check_policy_table(f"policy of agent {i}", p, k, n_rows=rows)
            for i, (p, k) in enumerate(zip(policies, sizes))
        ]
        R = max(p.shape[0] for p in pols)
        K1 = max(sizes) - 1
        cdf = np.full((R, N, max(K1, 1)), np.inf)
        for i, (p, k) in enumerate(zip(pols, sizes)):  # loop over agents, once per rollout
            cdf[: p.shape[0], i, : k - 1] = np.cumsum(p[:, : k - 1], axis=1)
        return cdf

    def _trusted_cdf_table(self, policies: Sequence[np.ndarray]) -> np.ndarray:
        """:meth:`_cdf_table` for tables an algorithm of this package made: float64 tables of the
        right shapes skip the validation of every entry; a NaN (a diverged policy) or anything
        else goes through the validating path, which names the bad entry."""
        N, sizes = self.dynamics.n_agents, self._sizes
        rows = self.dynamics.n_states
        if (
            self.observe is not None
            or not isinstance(policies, (list, tuple))
            or len(policies) != N
            or not all(
                type(p) is np.ndarray and p.dtype == np.float64 and p.shape == (rows, k)
                for p, k in zip(policies, sizes)
            )
        ):
            return self._cdf_table(policies)
        K1 = max(sizes) - 1
        cdf = np.full((rows, N, max(K1, 1)), np.inf)
        for i, (p, k) in enumerate(zip(policies, sizes)):
            cdf[:, i, : k - 1] = np.cumsum(p[:, : k - 1], axis=1)
        if np.isnan(cdf).any():
            return self._cdf_table(policies)
        return cdf

    def draw_actions(self, cdf: np.ndarray, states: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Every agent's action in a batch of states, by inverse CDF (one uniform per agent).

        Args:
            cdf: The table of :meth:`_cdf_table`, shape (R, N, K_max - 1).
            states: State descriptors, shape (B, d) (read by ``observe``).
            idx: Their model indices, shape (B,).

        Returns:
            Actions, shape (B, N) int64 (a fresh array: the dynamics may keep a reference to it).
        """
        B, N = len(idx), self.dynamics.n_agents
        u = self.rng.random((B, N))
        if self.observe is None:
            c = cdf[idx]  # (B, N, K1): each state's row of every agent
        else:
            rows = np.asarray(self.observe(states), dtype=np.int64)
            c = cdf.reshape(-1, cdf.shape[2])[rows * N + self._agent_range]
        if c.shape[2] == 1:  # two actions: one comparison
            a = np.empty((B, N), np.int64)
            np.greater_equal(u, c[:, :, 0], out=a, casting="unsafe")
            return a
        # the number of CDF columns u reaches, in one comparison and one count (bools sum to int64)
        return np.count_nonzero(u[:, :, None] >= c, axis=2).astype(np.int64, copy=False)

    def check_policy_rollout(self, n_episodes: int, horizon: int, obs_mode: str) -> None:
        """Refuse, before sampling, :meth:`rollout_policy` episodes that would not fit in memory
        (the rollouts, every step's observations and a network's forward and backward pass over
        them).

        Raises:
            ValueError: Bad sizes; TooLargeError: over the memory limit, naming the sizes.
        """
        B = _positive_int("n_episodes", n_episodes)
        T = _positive_int("horizon", horizon)
        dyn = self.dynamics
        F = 1
        for k in dyn.observation_shape(obs_mode):
            F *= int(k)
        N = int(dyn.n_agents)
        obs = B * (T + 1) * N * F * 8 * 3  # observations, as tensors, and their gradients' inputs
        _check_size(
            f"policy rollouts of (episodes, steps, agents, observation) = ({B:,}, {T:,}, {N:,}, {F:,})",
            _rollout_bytes(dyn, B, T) + _estimate_bytes(dyn, B, T) + obs,
            "sample fewer or shorter episodes",
        )

    def rollout_policy(self, policy, n_episodes: int, horizon: int) -> Rollouts:
        """Sample episodes with a :class:`~baselines.policies.Policy` object acting on the
        observations of its mode (``dynamics.observe``), keeping them in ``observations``.

        Args:
            policy: Any policy (e.g. a torch network on ``"vector"`` or ``"onehot"`` observations).
            n_episodes: B >= 1.
            horizon: T >= 1.
        """
        from baselines.policies.base import Policy

        if not isinstance(policy, Policy):
            raise V.ArgumentTypeError(
                f"policy must be a baselines.policies.Policy (tables go to rollout()), got {V.show(policy)}"
            )
        return _rollout_policy(self, policy, n_episodes, horizon)

    # ------------------------------------------------------------------ rollouts
    def rollout(
        self,
        policies: Sequence[np.ndarray],
        n_episodes: int,
        horizon: int,
        *,
        start: np.ndarray | None = None,
    ) -> Rollouts:
        """Sample ``n_episodes`` episodes of ``horizon`` steps from mu (or from given states).

        Args:
            policies: N arrays, ``policies[i]`` of shape (S, |A_i|) (or (n_obs, |A_i|) with
                ``observe``), row-stochastic.
            n_episodes: B >= 1.
            horizon: T >= 1.
            start: Optional model state indices to start from, shape (B,) int; default: draw
                from mu.

        Returns:
            The :class:`Rollouts` (B episodes, T steps).

        Raises:
            ValueError: Bad sizes or policies.
            RuntimeError: If the dynamics step outside their own state enumeration.
        """
        B = _positive_int("n_episodes", n_episodes)
        T = _positive_int("horizon", horizon)
        dyn, N = self.dynamics, self.dynamics.n_agents
        _check_size(
            f"rollouts of (episodes, steps, agents) = ({B:,}, {T:,}, {N:,})",
            _rollout_bytes(dyn, B, T),
            "sample fewer or shorter episodes",
        )
        return self._rollout(self._cdf_table(policies), B, T, start)

    def _rollout(self, cdf: np.ndarray, B: int, T: int, start: np.ndarray | None) -> Rollouts:
        """:meth:`rollout` from the policies' CDF table (sizes already checked)."""
        dyn, rng, N = self.dynamics, self.rng, self.dynamics.n_agents
        term_table, can_terminate = self._term_table, self._can_terminate

        states = np.empty((B, T + 1), np.int64)
        actions = np.empty((B, T, N), np.int64)
        rewards = np.empty((B, T, N), np.float64)
        alive = np.ones((B, T), bool)
        if start is None:
            st = dyn.sample_initial(B, rng)
            idx = dyn.index(st)
        else:
            what = f"{B} state indices in [0, {dyn.n_states})"
            try:
                idx = V.int_array("start", start, what=what)
            except OverflowError:  # Python ints beyond int64
                raise ValueError(f"start must be {what}, got {V.show(start)}") from None
            if idx.shape != (B,):
                raise ValueError(f"start must be {what}, got shape {idx.shape}: {V.show(start)}")
            if idx.min() < 0 or idx.max() >= dyn.n_states:
                bad = idx[(idx < 0) | (idx >= dyn.n_states)]
                raise ValueError(
                    f"start must be {what}, got {V.show(start)} (out of range: {bad[:5].tolist()})"
                )
            st = dyn.decode(idx)
        states[:, 0] = idx
        for t in range(T):
            if can_terminate:
                term = term_table[idx] if term_table is not None else dyn.terminal(st)
                if term.all():  # every episode is over: the rest is absorbing, zero-reward
                    states[:, t + 1 :] = idx[:, None]
                    actions[:, t:] = 0
                    rewards[:, t:] = 0.0
                    alive[:, t:] = False
                    break
                np.logical_not(term, out=alive[:, t])
            a = self.draw_actions(cdf, st, idx)
            # the actions are in range by construction and the states come from the dynamics:
            # step without sample_step's argument checks (a fifth of a step's cost)
            try:
                st, r = _sample_step(dyn, st, a, rng)
            except IndexError:  # a state outside the enumeration: sample_step says which one
                sample_step(dyn, st, a, rng)
                raise
            actions[:, t] = a
            rewards[:, t] = r
            idx = dyn.index(st)
            states[:, t + 1] = idx
        if states.min() < 0:
            raise RuntimeError("the dynamics stepped outside their state enumeration (index -1)")
        if can_terminate:
            dead = ~alive
            actions[dead] = 0
            rewards[dead] = 0.0
        return Rollouts(states=states, actions=actions, rewards=rewards, alive=alive)


def _rollout_policy(sampler: BatchSampler, policy, n_episodes: int, horizon: int) -> Rollouts:
    """Episodes from mu with a :class:`~baselines.policies.Policy` acting on its observations."""
    B = _positive_int("n_episodes", n_episodes)
    T = _positive_int("horizon", horizon)
    sampler.check_policy_rollout(B, T, policy.obs_mode)
    dyn, rng, N = sampler.dynamics, sampler.rng, sampler.dynamics.n_agents
    st = dyn.sample_initial(B, rng)
    idx = dyn.index(st)
    obs0 = dyn.observe(st, policy.obs_mode)
    states = np.empty((B, T + 1), np.int64)
    observations = np.empty((B, T + 1, *obs0.shape[1:]), obs0.dtype)
    actions = np.zeros((B, T, N), np.int64)
    rewards = np.zeros((B, T, N), np.float64)
    alive = np.ones((B, T), bool)
    states[:, 0], observations[:, 0] = idx, obs0
    term = np.zeros(B, bool)
    for t in range(T):
        if sampler._can_terminate:
            term = sampler._term_table[idx] if sampler._term_table is not None else dyn.terminal(st)
            alive[:, t] = ~term
        a = policy.act(observations[:, t], rng)
        st, r = sample_step(dyn, st, a, rng)
        actions[:, t], rewards[:, t] = a, r
        idx = dyn.index(st)
        states[:, t + 1], observations[:, t + 1] = idx, dyn.observe(st, policy.obs_mode)
    dead = ~alive
    actions[dead], rewards[dead] = 0, 0.0
    return Rollouts(states=states, actions=actions, rewards=rewards, alive=alive, observations=observations)


def estimate_from_rollouts(
    rollouts: Rollouts,
    gamma: float,
    n_states: int,
    action_sizes: Sequence[int],
    horizon: int | None = None,
) -> Estimate:
    """Monte Carlo :class:`Estimate` from rollouts (paper 001 §4.1).

    With G_t the return-to-go over the rollout (:func:`returns_to_go`), and visits the (episode,
    t) with t < ``horizon`` whose state is not terminal:

    * ``q[i][s, a]`` = mean of G_t^i over visits with s_t = s and a_t^i = a; ``v[i][s]`` = mean
      over visits to s; unvisited states get v = q = 0, an unvisited action in a visited state
      gets q = v(s) (advantage 0);
    * ``occupancy[s]`` = mean over episodes of sum_{t < horizon} gamma^t 1[s_t = s] (terminal
      states included when gamma < 1, excluded when gamma = 1, as in
      :func:`mpg_envs.exact.occupancy`);
    * ``mu_values[i]`` = mean of G_0^i.

    Args:
        rollouts: B episodes of T steps.
        gamma: Discount in (0, 1].
        n_states: S.
        action_sizes: (|A_1|, ..., |A_N|).
        horizon: Steps whose visits count, <= T; the steps after it only complete the returns.
            Default T.

    Returns:
        The estimate: v (N, S), q list of (S, |A_i|), occupancy (S,), mu_values (N,).
    """
    if not isinstance(rollouts, Rollouts):
        raise V.ArgumentTypeError(
            f"rollouts must be a Rollouts (BatchSampler.rollout), got {V.show(rollouts)}"
        )
    gamma = V.discount("gamma", gamma)
    states, actions, alive = rollouts.states, rollouts.actions, rollouts.alive
    B, T, N = actions.shape
    H = T if horizon is None else V.positive_int("horizon", horizon)
    if not 1 <= H <= T:
        raise ValueError(f"horizon must be in [1, T={T}], got {horizon!r}")
    S, sizes = int(n_states), tuple(int(k) for k in action_sizes)
    K = max(sizes)
    G = returns_to_go(rollouts.rewards, gamma)
    s, a, g, live = states[:, :H], actions[:, :H], G[:, :H], alive[:, :H]
    if live.all():
        sv, av, gv = s.reshape(-1), a.reshape(-1, N), g.reshape(-1, N)
    else:
        sv, av, gv = s[live], a[live], g[live]
    # one histogram over (state, agent, action) keys for all agents at once
    keys = (sv[:, None] * N + np.arange(N)) * K + av
    size = S * N * K
    sums = np.bincount(keys.ravel(), weights=gv.ravel(), minlength=size).reshape(S, N, K)
    counts = np.bincount(keys.ravel(), minlength=size).reshape(S, N, K)
    visits = np.bincount(sv, minlength=S)  # (S,)
    v_sn = np.divide(sums.sum(axis=2), visits[:, None], out=np.zeros((S, N)), where=visits[:, None] > 0)
    q_all = np.divide(sums, counts, out=np.repeat(v_sn[:, :, None], K, axis=2), where=counts > 0)
    q = [np.ascontiguousarray(q_all[:, i, :k]) for i, k in enumerate(sizes)]
    disc = np.broadcast_to(float(gamma) ** np.arange(H), (B, H))
    if gamma < 1.0:
        occ = np.bincount(s.reshape(-1), weights=disc.reshape(-1), minlength=S)
    else:
        occ = np.bincount(s[live], weights=disc[live], minlength=S)
    return Estimate(v=np.ascontiguousarray(v_sn.T), q=q, occupancy=occ / B, mu_values=G[:, 0].mean(axis=0))


class _RandomEstimator:
    """Checkpointing of the one generator a Monte Carlo estimator draws from."""

    rng: np.random.Generator

    def state_dict(self) -> dict[str, Any]:
        """The generator state (a deep copy of ``rng.bit_generator.state``), for checkpoints."""
        return {"rng": copy.deepcopy(self.rng.bit_generator.state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the generator state saved by :meth:`state_dict` (same bit generator type).

        Raises:
            ValueError: If ``state`` has no ``"rng"`` entry or it does not fit this generator.
        """
        if not isinstance(state, dict) or "rng" not in state:
            raise ValueError("state must be a dict from SampledEstimator.state_dict() with key 'rng'")
        try:
            self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"cannot restore the generator state: {err}") from None


class SampledEstimator(_RandomEstimator):
    """On-policy Monte Carlo estimator, behind the Estimator protocol.

    Every :meth:`estimate` samples ``batch`` episodes of ``horizon`` (+ ``tail``) steps from mu
    with :class:`BatchSampler` and averages them (:func:`estimate_from_rollouts`).

    Args:
        dynamics: The env's dynamics (``env.unwrapped.dynamics``); policies are tables over its
            model states, (S, |A_i|).
        gamma: Discount in (0, 1].
        horizon: T >= 1, steps per episode whose visits are counted (paper 001: 20).
        batch: Episodes per estimate (paper 001: 20).
        rng: Generator (or int seed; None = fresh OS entropy). Never the global RNG.
        tail: Extra steps (>= 0) simulated after the horizon only to complete returns-to-go; 0
            (default) is the paper's truncated estimator, biased for Q and V however large the
            batch (see the module docstring); ``tail`` with ``gamma^tail * max|R| / (1 - gamma)``
            small makes every estimate consistent.

    Attributes:
        dynamics, gamma, horizon, batch, rng, tail: As given.
        sampler: The :class:`BatchSampler` (sharing ``rng``).

    Raises:
        ValueError: horizon < 1, batch < 1, tail < 0 or gamma outside (0, 1], naming the value.
    """

    def __init__(
        self,
        dynamics: Dynamics,
        gamma: float,
        horizon: int = 20,
        batch: int = 20,
        rng: np.random.Generator | int | None = None,
        *,
        tail: int = 0,
    ) -> None:
        if isinstance(gamma, bool) or not isinstance(gamma, Real) or not 0.0 < float(gamma) <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        self.horizon = _positive_int("horizon", horizon)
        self.batch = _positive_int("batch", batch)
        if isinstance(tail, bool) or not isinstance(tail, Integral) or tail < 0:
            raise ValueError(f"tail must be an integer >= 0, got {tail!r}")
        self.tail = int(tail)
        self.gamma = float(gamma)
        if not isinstance(dynamics, Dynamics):
            raise ValueError(f"dynamics must be a mpg_envs.core.Dynamics, got {V.show(dynamics)}")
        T = self.horizon + self.tail
        _check_size(
            f"the sampled estimate of {self.batch:,} episodes of {T:,} steps (horizon + tail) for "
            f"{dynamics.n_agents:,} agents",
            _rollout_bytes(dynamics, self.batch, T) + _estimate_bytes(dynamics, self.batch, T),
            "lower batch, horizon or tail",
        )
        self.dynamics = dynamics
        self.sampler = BatchSampler(dynamics, rng)
        self.rng = self.sampler.rng

    def estimate(self, policies: Sequence[np.ndarray]) -> Estimate:
        """Estimate for ``policies`` (N arrays (S, |A_i|)) from one fresh batch of episodes."""
        ro = self.sampler.rollout(policies, self.batch, self.horizon + self.tail)
        return estimate_from_rollouts(
            ro, self.gamma, self.dynamics.n_states, self.dynamics.action_sizes, horizon=self.horizon
        )

    def estimate_trusted(self, policies: Sequence[np.ndarray]) -> Estimate:
        """:meth:`estimate` without validating the entries of tables an algorithm of this package
        made (see :func:`baselines.estimators.estimate_own`); the same draws and result."""
        cdf = self.sampler._trusted_cdf_table(policies)
        ro = self.sampler._rollout(cdf, self.batch, self.horizon + self.tail, None)
        return estimate_from_rollouts(
            ro, self.gamma, self.dynamics.n_states, self.dynamics.action_sizes, horizon=self.horizon
        )


VALUE_METHODS = ("mean", "visit_sum")


class ForcedActionEstimator(_RandomEstimator):
    """The Monte Carlo estimators of paper 001's public code: per-state rollouts, forced actions.

    This is what Fox et al.'s scripts (GitHub willoverman/MPG_experiments) compute each iteration,
    vectorised; the paper's text does not describe it. With ``samples`` = K and ``horizon`` = T:

    * **Values.** ``value="mean"`` (``npg.py``, ``congestionMPG_plots.py``, distancing game):
      ``v[i][s]`` is the mean over K episodes *started in s* of the T-step discounted return
      ``sum_{t<T} gamma^t r_t^i`` -- every state is evaluated, visited or not.
      ``value="visit_sum"`` (``npg_routing.py``, ``pg_routing.py``, congestion game): for each of
      ``layers`` (their ``NUM_LAYERS`` = 2) and each start state, K episodes of ``T - layer`` steps;
      every visit adds ``gamma^t r_t^i`` (t counted from the episode's start) into the *visited*
      state's entry, and the total is divided by K only. That is a visit-weighted sum of immediate
      rewards, not a mean of returns: its scale grows with how often a state is visited, so an
      agent's own preference feeds back into its advantages.
    * **Q (forced actions).** For every state s, agent i and action a: K one-step samples with
      ``a_i = a`` forced and ``a_-i ~ pi_-i(.|s)``; ``q[i][s, a]`` = mean of
      ``r_i + gamma * v[i][s']``. Every action gets an estimate every iteration, so no action
      freezes for lack of samples. Advantages are ``q - v``.
    * **State weights** (``occupancy``, used by the direct-parameter gradient ``occ * q`` of their
      projected PG): ``w[s] = sum_k mu(k) d_s(k)``, with ``d_s(k)`` the discounted visits of k in
      the per-state episodes from s. Their ``visit_dist``/``b_dist`` weights the visitation *from*
      s by mu of the *visited* state -- for uniform mu (both of their games) the constant
      ``(1/S) sum_{t<T} gamma^t``, not the visitation ``d_mu(s)``.
    * ``mu_values = v @ mu``.

    Every estimate runs ``S * K`` episodes per layer and ``S * sum_i |A_i| * K`` one-step samples, so
    the estimator needs a model small enough to enumerate its states.

    Args:
        dynamics: The env's dynamics; policies are tables over its model states (S, |A_i|).
        gamma: Discount in (0, 1].
        horizon: T >= 1 (the authors: 20).
        samples: K >= 1 episodes per start state and one-step samples per (s, i, a) (the authors'
            scripts: 10; the paper's text says mini-batches of 20).
        rng: Generator (or int seed; None = fresh OS entropy). Never the global RNG.
        value: ``"mean"`` or ``"visit_sum"`` (see above).
        layers: Episode lengths ``T, T - 1, ..., T - layers + 1`` of the visit-sum value (>= 1,
            < T + 1; the authors: 2). Ignored by ``value="mean"``.
        max_states: Refuse models with more states than this (every state is a start state).

    Raises:
        ValueError: Bad arguments (naming the value), or more than ``max_states`` states.
    """

    def __init__(
        self,
        dynamics: Dynamics,
        gamma: float,
        horizon: int = 20,
        samples: int = 10,
        rng: np.random.Generator | int | None = None,
        *,
        value: str = "mean",
        layers: int = 2,
        max_states: int = 1 << 16,
    ) -> None:
        if isinstance(gamma, bool) or not isinstance(gamma, Real) or not 0.0 < float(gamma) <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
        if value not in VALUE_METHODS:
            raise ValueError(f"value must be one of {list(VALUE_METHODS)}, got {value!r}")
        self.horizon = _positive_int("horizon", horizon)
        self.samples = _positive_int("samples", samples)
        self.layers = _positive_int("layers", layers)
        if self.layers > self.horizon:
            raise ValueError(f"layers must be <= horizon = {self.horizon}, got {layers!r}")
        if not isinstance(dynamics, Dynamics):
            raise ValueError(f"dynamics must be a mpg_envs.core.Dynamics, got {V.show(dynamics)}")
        max_states = V.positive_int("max_states", max_states)
        if dynamics.n_states > max_states:
            raise ValueError(
                f"the forced-action estimator starts episodes in every state; this game has "
                f"{dynamics.n_states:,} states, over max_states={max_states:,}"
            )
        S, K, T = int(dynamics.n_states), self.samples, self.horizon
        N, d = int(dynamics.n_agents), int(dynamics.state_dim)
        K1 = max(int(k) for k in dynamics.action_sizes)
        M = S * sum(int(k) for k in dynamics.action_sizes) * K  # forced one-step samples
        forced = M * (24 + 8 * 2 + 16 * d + 8 * N * (3 + K1))  # their indices, states, draws
        per_state = _rollout_bytes(dynamics, S * K, T) + S * K * T * 8 * (N + 2)  # rollouts, weights
        _check_size(
            f"the forced-action estimate of S={S:,} states x samples={K:,} episodes of horizon={T:,} "
            f"steps and {M:,} forced one-step samples",
            forced + per_state,
            "lower samples or horizon",
        )
        self.gamma, self.value = float(gamma), value
        self.dynamics = dynamics
        self.sampler = BatchSampler(dynamics, rng)
        self.rng = self.sampler.rng
        S = dynamics.n_states
        init, p = dynamics.initial_distribution()
        self.mu = np.zeros(S)
        np.add.at(self.mu, dynamics.index(init), p)
        self._all_states = dynamics.states()
        sizes = dynamics.action_sizes
        # one-step forced samples: rows (agent i, state s, action a, sample k), agent-major
        self._f_agent = np.concatenate([np.full(S * k * self.samples, i) for i, k in enumerate(sizes)])
        self._f_state = np.concatenate([np.repeat(np.arange(S), k * self.samples) for k in sizes])
        self._f_action = np.concatenate(
            [np.tile(np.repeat(np.arange(k), self.samples), S) for k in sizes]
        ).astype(np.int64)

    def _per_state_rollouts(self, policies: Sequence[np.ndarray], horizon: int) -> Rollouts:
        S = self.dynamics.n_states
        start = np.repeat(np.arange(S), self.samples)  # K episodes from every state
        return self.sampler.rollout(policies, S * self.samples, horizon, start=start)

    def _weights(self, ro: Rollouts) -> np.ndarray:
        """w[s] = sum_k mu(k) d_s(k): discounted visits from start s, weighted by mu of the visit."""
        S, T = self.dynamics.n_states, ro.horizon
        disc = self.gamma ** np.arange(T)
        per_episode = (self.mu[ro.states[:, :T]] * disc).sum(axis=1)  # (S*K,)
        return per_episode.reshape(S, self.samples).mean(axis=1)

    def estimate(self, policies: Sequence[np.ndarray]) -> Estimate:
        """Estimate for ``policies`` (N arrays (S, |A_i|)) from fresh per-state and forced samples."""
        dyn, S, N, K, gamma = (
            self.dynamics,
            self.dynamics.n_states,
            self.dynamics.n_agents,
            self.samples,
            self.gamma,
        )
        ro = self._per_state_rollouts(policies, self.horizon)
        disc = gamma ** np.arange(self.horizon)
        if self.value == "mean":
            ret = np.einsum("btn,t->bn", ro.rewards, disc)  # (S*K, N): T-step return from each start
            v = ret.reshape(S, K, N).mean(axis=1).T
        else:
            v = np.zeros((N, S))
            for layer in range(self.layers):
                r = ro if layer == 0 else self._per_state_rollouts(policies, self.horizon - layer)
                T = r.horizon
                w = r.rewards * disc[:T, None]  # (B, T, N): gamma^t r_t
                visited = r.states[:, :T].reshape(-1)
                for i in range(N):
                    v[i] += np.bincount(visited, weights=w[:, :, i].reshape(-1), minlength=S)
            v /= K
        # forced one-step samples: others from pi(.|s), the agent's own action forced
        cdf = self.sampler._cdf_table(policies)
        st = self._all_states[self._f_state]
        acts = self.sampler.draw_actions(cdf, st, self._f_state)
        rows = np.arange(len(acts))
        acts[rows, self._f_agent] = self._f_action
        nxt, rew = sample_step(dyn, st, acts, self.rng)
        nidx = dyn.index(nxt)
        target = rew[rows, self._f_agent] + gamma * v[self._f_agent, nidx]
        q, lo = [], 0
        for k in dyn.action_sizes:
            n = S * k * K
            q.append(target[lo : lo + n].reshape(S, k, K).mean(axis=2))
            lo += n
        return Estimate(v=v, q=q, occupancy=self._weights(ro), mu_values=v @ self.mu)

    def expected(self, model: TabularModel, policies: Sequence[np.ndarray]) -> Estimate:
        """The expectation of :meth:`estimate` over the estimator's randomness, exactly, from the
        env's model: what the estimator converges to as ``samples`` grows, bias included.

        Every output is linear in the episodes' visits and rewards, so with ``P`` the policy's
        state-to-state matrix (S, S), ``r_i(s)`` agent i's expected one-step reward under the
        policy and ``1`` the all-ones vector over start states:

        * ``value="mean"``: ``E v_i = sum_{t<T} gamma^t P^t r_i`` (the T-step value);
        * ``value="visit_sum"``: ``E v_i(s) = r_i(s) * sum_{l<layers} sum_{t<T-l} gamma^t (1^T P^t)(s)``
          -- the visits of s from every start state times its reward, so a state the policy
          visits more gets a larger value;
        * ``E q_i(s, a_i) = E_{a_-i ~ pi_-i(.|s)}[r_i(s, a) + gamma sum_s' P(s'|s, a) E v_i(s')]``
          (the forced samples are independent of the value rollouts);
        * ``E occupancy = sum_{t<T} gamma^t P^t mu``.

        Args:
            model: The env's :class:`~mpg_envs.model.TabularModel` (same states and actions as the
                estimator's dynamics).
            policies: N arrays (S, |A_i|).

        Returns:
            The expected :class:`~baselines.estimators.Estimate` (``E[q] - E[v]`` is the expected
            advantage).

        Raises:
            ValueError: The model's states or actions differ from the dynamics', or a bad policy.
        """
        dyn = self.dynamics
        if model.n_states != dyn.n_states or tuple(model.action_sizes) != tuple(dyn.action_sizes):
            raise ValueError(
                f"the model has {model.n_states} states and actions {tuple(model.action_sizes)}; the "
                f"estimator's dynamics {dyn.n_states} and {tuple(dyn.action_sizes)}"
            )
        pol = exact.check_policy(model, policies)
        S, N, g, T = model.n_states, model.n_agents, self.gamma, self.horizon
        P = exact.transition_matrix(model, pol)  # (S, S) sparse
        r = np.einsum("nsa,sa->ns", model.R, exact.joint_policy(model, pol))  # (N, S)
        v = np.zeros((N, S))
        if self.value == "mean":
            x = r.T.copy()  # (S, N): P^t r
            for t in range(T):
                v += g**t * x.T
                x = P @ x
        else:
            y = np.ones(S)  # 1^T P^t: expected visits at step t summed over start states
            per_t = []
            for t in range(T):
                per_t.append(g**t * y)
                y = P.T @ y
            for layer in range(self.layers):
                v += np.sum(per_t[: T - layer], axis=0)[None] * r
        z, occ = self.mu.copy(), np.zeros(S)
        for t in range(T):
            occ += g**t * z
            z = P @ z  # (P^t mu)(s) = sum_k P^t(k | s) mu(k)
        Q = model.R + g * _kernel.kernel(model).expect(v)  # (N, S, A), with the estimator's gamma
        before, after = _kernel.others(pol)  # E over a_-i, as exact.marginal_q does
        q = [_kernel.marginalize(Q[i], before[i], after[i], k) for i, k in enumerate(model.action_sizes)]
        return Estimate(v=v, q=q, occupancy=occ, mu_values=v @ self.mu)
