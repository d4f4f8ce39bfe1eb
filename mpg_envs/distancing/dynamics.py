"""Vectorised dynamics of the distancing game (paper 001 §4.1, after Leonardos et al. 2022).

Two states: ``0`` safe and ``1`` distancing; a state descriptor is one int, shape (1,). Every
agent picks one of K facilities; ``n_k`` is the number of agents at facility k in the current
step. Agent i at facility k receives ``w_k * n_k`` in the safe state and ``w_k * n_k - c`` in the
distancing state. The **next** state is a deterministic function of the current state and the
facility counts of the **current** joint action (as in the original authors' code, whose
``get_next_state(state, actions)`` reads the actions just played)::

    safe        -> distancing  iff  max_k n_k > safe_threshold        (default N/2)
    distancing  -> distancing  iff  max_k n_k > distancing_threshold  (default N/4), else safe

Counting is a per-row ``bincount`` over the batch, so a batch of B = S * K**N (state, joint action)
pairs is stepped without Python loops.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mpg_envs import _validate as V
from mpg_envs.core import _DENSE_COUNT_LIMIT, MAX_AGENTS, Dynamics, row_counts

__all__ = ["DistancingDynamics", "SAFE", "DISTANCING", "DEFAULT_WEIGHTS"]

SAFE = 0
DISTANCING = 1
#: The original authors' facility weights (A, B, C, D).
DEFAULT_WEIGHTS = (1.0, 2.0, 4.0, 6.0)
_MU_TOL = 1e-9


class DistancingDynamics(Dynamics):
    """Dynamics of the distancing game; see :mod:`mpg_envs.distancing.env` for the spec.

    Args:
        n_agents: N >= 1.
        weights: Facility weights w_1..w_K (K >= 1 finite numbers); default (1, 2, 4, 6).
        penalty: c, subtracted from every reward in the distancing state (finite); default 100.
        safe_threshold: In the safe state, a facility count above this moves the game to the
            distancing state; a real number in [0, N], default N/2.
        distancing_threshold: In the distancing state, the game stays there while some facility
            count is above this, else returns to safe; a real number in [0, N], default N/4.
        mu: Initial distribution over (safe, distancing), shape (2,); default (0.5, 0.5).

    Raises:
        ValueError: For any invalid parameter, naming the value and what is allowed.
    """

    def __init__(
        self,
        n_agents: int = 8,
        weights: Sequence[float] = DEFAULT_WEIGHTS,
        penalty: float = 100.0,
        safe_threshold: float | None = None,
        distancing_threshold: float | None = None,
        mu: Sequence[float] = (0.5, 0.5),
    ) -> None:
        N = V.positive_int("n_agents", n_agents, maximum=MAX_AGENTS)
        what = "a non-empty sequence of finite numbers (one per facility)"
        if V.is_real(weights):
            raise V.ArgumentTypeError(f"weights must be {what}, got {V.show(weights)}")
        w = V.real_array("weights", weights, what=what, finite=False)
        what = "a non-empty 1-D sequence of finite numbers (one per facility)"
        if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)):
            raise ValueError(f"weights must be {what}, got {V.show(weights)}")
        c = V.finite_real("penalty", penalty)
        thresholds = {}
        for name, value, default in (
            ("safe_threshold", safe_threshold, N / 2),
            ("distancing_threshold", distancing_threshold, N / 4),
        ):
            t = (
                default
                if value is None
                else V.finite_real(name, value, what=f"a finite number in [0, N={N}]")
            )
            if not 0.0 <= t <= N:
                raise ValueError(f"{name} must be a number in [0, N={N}], got {V.show(value)}")
            thresholds[name] = t
        what = (
            "a probability distribution over the 2 states (safe, distancing): shape (2,), non-negative, "
            "summing to 1"
        )
        m = V.real_array("mu", mu, finite=False, what=what)
        low = V.low_precision(mu)  # float32 input: off by its round-off, then renormalised
        if (
            m.shape != (2,)
            or not np.all(np.isfinite(m))
            or m.min() < 0
            or abs(m.sum() - 1.0) > V.sum_tolerance(low, 2, _MU_TOL)
        ):
            raise ValueError(f"mu must be {what}; got {V.show(mu)}")
        if low is not None:
            m = m / m.sum()
        self.n_agents = N
        self.weights = w
        self.weights.setflags(write=False)
        self.n_facilities = K = int(w.size)
        self.penalty = c
        self.safe_threshold = thresholds["safe_threshold"]
        self.distancing_threshold = thresholds["distancing_threshold"]
        self.mu = m
        self.mu.setflags(write=False)
        self.action_sizes = (K,) * N
        self.state_dim = 1
        self.noise_probs = ()
        # threshold per current state: next = DISTANCING iff max count > _thr[state]
        self._thr = np.array([self.safe_threshold, self.distancing_threshold])
        self._pen = np.array([0.0, c])  # penalty per state

    # ------------------------------------------------------------------ enumeration
    @property
    def n_states(self) -> int:
        return 2

    def states(self) -> np.ndarray:
        return np.array([[SAFE], [DISTANCING]], np.int64)

    def index(self, states: np.ndarray) -> np.ndarray:
        st = np.asarray(states, dtype=np.int64)
        s = st[:, 0]
        return np.where((s == SAFE) | (s == DISTANCING), s, -1)

    def decode(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        if np.any((idx < 0) | (idx >= 2)):
            raise ValueError("state indices must be in [0, 2)")
        return idx[:, None].copy()

    def initial_distribution(self) -> tuple[np.ndarray, np.ndarray]:
        return self.states(), self.mu.copy()

    def terminal(self, states: np.ndarray) -> np.ndarray:
        return np.zeros(len(states), bool)

    # ------------------------------------------------------------------ observations
    def state_features(self, states: np.ndarray) -> np.ndarray:
        """One-hot of the state (safe, distancing), (B, 1) -> (B, 2) float32."""
        st = np.asarray(states, dtype=np.int64)
        out = np.zeros((len(st), 2), np.float32)
        out[np.arange(len(st)), st[:, 0]] = 1.0
        return out

    @property
    def n_state_features(self) -> int:
        """2."""
        return 2

    # ------------------------------------------------------------------ dynamics
    def counts(self, actions: np.ndarray) -> np.ndarray:
        """Agents per facility, (B, N) actions -> (B, K) int64 (a per-row bincount)."""
        actions = np.asarray(actions, dtype=np.int64)
        B, K = len(actions), self.n_facilities
        flat = (np.arange(B)[:, None] * K + actions).ravel()
        return np.bincount(flat, minlength=B * K).reshape(B, K)

    def own_counts(self, actions: np.ndarray) -> np.ndarray:
        """Agents at each agent's own facility (itself included), shape (B, N) int64."""
        return self._count_stats(np.asarray(actions, dtype=np.int64), potential=False)[0]

    def next_states(self, states: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Next state from the current states (B, 1) and this step's counts (B, K): (B, 1)."""
        return self._next(states, counts.max(axis=1))

    def _next(self, states: np.ndarray, max_count: np.ndarray) -> np.ndarray:
        crowded = max_count > self._thr[states[:, 0]]
        return np.where(crowded, DISTANCING, SAFE).astype(np.int64)[:, None]

    def _count_stats(
        self, actions: np.ndarray, potential: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Own counts (B, N), the largest count (B,) and, if asked, sum_k w_k n_k (n_k + 1) / 2 (B,).

        A dense (B, K) histogram while it is small; beyond that the counts come from sorting, in
        O(B N) memory whatever the number of facilities K.
        """
        B, K = len(actions), self.n_facilities
        if B * K <= _DENSE_COUNT_LIMIT:
            cnt = self.counts(actions)
            own = np.take_along_axis(cnt, actions, axis=1)
            ros = (cnt * (cnt + 1.0) / 2.0) @ self.weights if potential else None
            return own, cnt.max(axis=1), ros
        rows, fac, cnt, group = row_counts(actions, K)
        mx = np.zeros(B, np.int64)
        np.maximum.at(mx, rows, cnt)
        ros = None
        if potential:
            ros = np.bincount(rows, weights=self.weights[fac] * (cnt * (cnt + 1.0) / 2.0), minlength=B)
        return cnt[group], mx, ros

    def step(
        self, states: np.ndarray, actions: np.ndarray, noise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        states = np.asarray(states, dtype=np.int64)
        actions = np.asarray(actions, dtype=np.int64)
        own, mx, _ = self._count_stats(actions, potential=False)
        rewards = self.weights[actions] * own - self._pen[states[:, 0]][:, None]
        return self._next(states, mx), rewards

    def potential(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Stage-game potential, shape (B,): Rosenthal's for the weights, minus the penalty once.

        ``phi(s, a) = sum_k sum_{j<=n_k} w_k * j - c * [s = distancing]
        = sum_k w_k n_k (n_k + 1) / 2 - c * [s = distancing]``.

        Rosenthal's potential with facility cost ``w_k * j - c`` would subtract ``c * N``; both
        are exact potentials of every stage game (they differ by a per-state constant), but only
        ``c`` -- the amount each agent's own reward drops -- enters the MPG identity correctly
        when an agent's deviation moves the game between states (with all weights 0 the game is
        an identical-interest game with potential exactly ``-c * [s = distancing]``).
        """
        rosenthal = self._count_stats(np.asarray(actions, dtype=np.int64), potential=True)[2]
        return rosenthal - self._pen[np.asarray(states, dtype=np.int64)[:, 0]]
