"""Vectorised dynamics of the coordination game (paper 003, §5 and Appendix G).

A state is the tuple of the N local states ``(s_0, ..., s_{N-1})`` in {0, 1}, shape (N,). Its model
index is ``np.ravel_multi_index(s, (2,) * N)``: agent 0 is the most significant bit, so state
``(1, 0, 1)`` has index ``0b101 = 5``. Joint actions are indexed the same way (DESIGN §3).

Each agent's next local state depends only on its own action: ``s_i' = a_i XOR flip_i`` with an
independent ``flip_i ~ Bernoulli(eps)``, i.e. ``P(s_i' = 0 | a_i = 0) = 1 - eps`` and
``P(s_i' = 0 | a_i = 1) = eps``. So ``P(s' | s, a) = prod_i T[a_i, s_i']`` with the 2x2 matrix
``T = [[1 - eps, eps], [eps, 1 - eps]]`` and does not depend on the current state ``s``;
:meth:`CoordinationDynamics.exact_model` builds the model from that product structure.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from mpg_envs import _validate as V
from mpg_envs.core import DEFAULT_MAX_TRANSITIONS, Dynamics, check_model_size
from mpg_envs.model import TabularModel

MIN_AGENTS, MAX_AGENTS = 2, 8


def difference_bound(n_agents: int) -> int:
    """Paper 003, Algorithm 1: 1 for N in {2, 3}, else 2."""
    return 1 if n_agents in (2, 3) else 2


def reward_table(n_agents: int) -> np.ndarray:
    """Team reward by the number of agents in local state 0 (Algorithm 1 of paper 003, App. G.1).

    With ``c0`` agents in local state 0, ``c1 = N - c0`` in state 1 and ``b = difference_bound(N)``:
    reward 1 if ``|c0 - c1| <= b`` and ``c0 < c1``; 0 if ``|c0 - c1| <= b`` and ``c0 >= c1``;
    3 if ``c0 > c1`` beyond the bound; 2 otherwise (``c1 > c0`` beyond the bound).

    Args:
        n_agents: N.

    Returns:
        Shape (N + 1,) float64, entry ``c0`` is the reward of any state with ``c0`` zeros.
    """
    c0 = np.arange(n_agents + 1)
    c1 = n_agents - c0
    close = np.abs(c0 - c1) <= difference_bound(n_agents)
    return np.where(close, np.where(c0 < c1, 1.0, 0.0), np.where(c0 > c1, 3.0, 2.0))


def _check_n_agents(n_agents: object) -> int:
    return V.integer(
        "n_agents",
        n_agents,
        minimum=MIN_AGENTS,
        maximum=MAX_AGENTS,
        what=(
            f"an integer in [{MIN_AGENTS}, {MAX_AGENTS}] (a coordination game needs at least 2 agents; "
            f"N = {MAX_AGENTS} already has 2^{2 * MAX_AGENTS} (state, joint action) pairs and "
            f"2^{3 * MAX_AGENTS} transition entries)"
        ),
    )


def _check_eps(eps: object) -> float:
    return V.probability("eps", eps)


class CoordinationDynamics(Dynamics):
    """Dynamics of the coordination game; see :mod:`mpg_envs.coordination.env` for the spec.

    The reward is paid for the state the agents are in when they act: ``r_i(s, a) = r(s)`` for
    every agent (identical interest), with ``r`` from :func:`reward_table`.

    Args:
        n_agents: N in [2, 8].
        eps: Transition noise in [0, 1]: each agent lands in the local state opposite to its
            action with probability ``eps``.

    Attributes:
        rewards_by_zeros: :func:`reward_table` of N, shape (N + 1,).
        local_transition: ``T[a_i, s_i'] = P(s_i' | a_i)``, shape (2, 2).
    """

    def __init__(self, n_agents: int = 3, eps: float = 0.1) -> None:
        N = _check_n_agents(n_agents)
        self.eps = _check_eps(eps)
        self.n_agents = N
        self.action_sizes = (2,) * N
        self.state_dim = N
        self.own_observation_size = 2  # "own" mode: the agent's local state
        p = np.array([1.0 - self.eps, self.eps])
        self.noise_probs = tuple(p.copy() for _ in range(N))  # flip_i ~ Bernoulli(eps)
        self.rewards_by_zeros = reward_table(N)
        self.local_transition = np.array([[1.0 - self.eps, self.eps], [self.eps, 1.0 - self.eps]])
        self._place = 1 << np.arange(N - 1, -1, -1, dtype=np.int64)  # agent 0 = most significant bit

    # ------------------------------------------------------------------ enumeration
    @property
    def n_states(self) -> int:
        return 1 << self.n_agents

    def index(self, states: np.ndarray) -> np.ndarray:
        st = np.asarray(states, dtype=np.int64)
        ok = np.all((st == 0) | (st == 1), axis=1)
        return np.where(ok, st @ self._place, -1)

    def decode(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        if np.any((idx < 0) | (idx >= self.n_states)):
            raise ValueError(f"state indices must be in [0, {self.n_states})")
        return (idx[:, None] >> np.arange(self.n_agents - 1, -1, -1)) & 1

    def states(self) -> np.ndarray:
        return self.decode(np.arange(self.n_states))

    def initial_distribution(self) -> tuple[np.ndarray, np.ndarray]:
        """Uniform over all 2^N states (paper 003, App. G.2)."""
        return self.states(), np.full(self.n_states, 1.0 / self.n_states)

    def terminal(self, states: np.ndarray) -> np.ndarray:
        return np.zeros(len(states), bool)

    # ------------------------------------------------------------------ observations
    def state_features(self, states: np.ndarray) -> np.ndarray:
        """The N local states as float32 0/1, (B, N) -> (B, N)."""
        return np.asarray(states, dtype=np.float32)

    @property
    def n_state_features(self) -> int:
        """N."""
        return self.n_agents

    def own_observation(self, states: np.ndarray) -> np.ndarray:
        """Each agent's own local state, (B, N) -> (B, N) int64 in {0, 1}."""
        return np.asarray(states, dtype=np.int64)

    # ------------------------------------------------------------------ dynamics
    def team_reward(self, states: np.ndarray) -> np.ndarray:
        """r(s) for a batch of states (B, N) -> (B,) float64."""
        zeros = self.n_agents - np.asarray(states, dtype=np.int64).sum(axis=1)
        return self.rewards_by_zeros[zeros]

    def step(
        self, states: np.ndarray, actions: np.ndarray, noise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        r = self.team_reward(states)
        rewards = np.broadcast_to(r[:, None], (len(r), self.n_agents)).copy()
        return np.asarray(actions, dtype=np.int64) ^ noise, rewards

    def potential(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Identical interest: phi(s, a) = r(s)."""
        return self.team_reward(states)

    # ------------------------------------------------------------------ exact model
    def next_state_matrix(self) -> np.ndarray:
        """P(s' | a), shape (A, S): the Kronecker product of N copies of ``local_transition``.

        Row ``a`` (joint action, agent 0 most significant) is the next-state distribution from
        every current state. The entries are multiplied in agent order, exactly as
        :func:`mpg_envs.core.build_model` multiplies the noise probabilities.
        """
        Q = np.ones((1, 1))
        for _ in range(self.n_agents):
            Q = np.kron(Q, self.local_transition)
        return Q

    def exact_model(
        self, gamma: float, *, max_transitions: int = DEFAULT_MAX_TRANSITIONS, name: str = ""
    ) -> TabularModel:
        """The exact model, built from the product structure (no enumeration of :meth:`step`).

        ``P`` row ``s*A + a`` is row ``a`` of :meth:`next_state_matrix` for every ``s``; its CSR
        arrays are tiled directly (no dense (S*A, S) array, no COO). Equal to
        :func:`mpg_envs.core.build_model` (tests/test_coordination.py checks N = 2, 3, 4).

        Raises:
            ModelTooLargeError: If S * A * noise outcomes exceeds ``max_transitions``.
        """
        gamma = V.discount("gamma", gamma)
        check_model_size(self, max_transitions)
        S = A = self.n_states
        Q = self.next_state_matrix()
        support = Q > 0
        rows, cols = np.nonzero(support)  # row-major: sorted columns within each row
        counts = np.bincount(rows, minlength=A)
        nnz_block = len(cols)
        idx_dtype = np.int32 if S * nnz_block < np.iinfo(np.int32).max else np.int64
        data = np.tile(Q[rows, cols], S)
        indices = np.tile(cols.astype(idx_dtype), S)
        indptr = np.empty(S * A + 1, idx_dtype)
        indptr[0] = 0
        np.cumsum(np.tile(counts, S), out=indptr[1:])
        P = sp.csr_matrix((data, indices, indptr), shape=(S * A, S))
        states = self.states()
        r = self.team_reward(states)  # (S,)
        phi = np.broadcast_to(r[:, None], (S, A))
        return TabularModel(
            n_agents=self.n_agents,
            action_sizes=self.action_sizes,
            P=P,
            R=np.broadcast_to(phi, (self.n_agents, S, A)),
            mu=np.full(S, 1.0 / S),
            gamma=gamma,
            terminal=np.zeros(S, bool),
            phi=phi,
            states=states,
            name=name,
        )
