"""Vectorised dynamics of the tug-of-war game: zero-sum stochastic matching pennies on a rope.

A state is the position ``k`` of the rope's marker, ``0 <= k < K``, as a descriptor of shape (1,);
its model index is ``k``. Agent 0 (the *matcher*) and agent 1 (the *mismatcher*) each show heads (0)
or tails (1). When the coins match the marker moves one position towards agent 0's end ``K - 1``,
otherwise one position towards agent 1's end ``0`` -- unless the pull *slips* (one Bernoulli(slip)
noise variable), when it stays; at an end it stays. The reward of agent 0 is the stage payoff of
the coins plus a position term, agent 1 receives its negative (zero-sum).
"""

from __future__ import annotations

import numpy as np

from mpg_envs import _validate as V
from mpg_envs.core import Dynamics

MIN_POSITIONS, MAX_POSITIONS = 2, 1001


def stage_payoff(heads_bonus: float) -> np.ndarray:
    """Agent 0's payoff of the coins, ``M[a_0, a_1]`` = [[heads_bonus, -1], [-1, 1]], shape (2, 2).

    ``heads_bonus = 1`` is matching pennies (value 0, both players uniform). Any
    ``heads_bonus > -1`` leaves the one-shot game without a pure saddle point; its mixed equilibrium
    has agent 0 play heads with probability ``2 / (heads_bonus + 3)`` (so does agent 1) and value
    ``(heads_bonus - 1) / (heads_bonus + 3)``.
    """
    return np.array([[heads_bonus, -1.0], [-1.0, 1.0]])


class TugOfWarDynamics(Dynamics):
    """Dynamics of the tug-of-war game; see :mod:`mpg_envs.tugofwar.env` for the spec.

    Args:
        n_positions: K in [2, 1001], the number of marker positions.
        slip: Probability in [0, 1] that a pull slips and the marker stays.
        heads_bonus: Agent 0's payoff when both show heads (finite; see :func:`stage_payoff`).
        position_reward: Weight of the position term: agent 0 gets an extra
            ``position_reward * (2 k / (K - 1) - 1)`` in position k (from -w at its opponent's end
            to +w at its own end); finite.

    Attributes:
        payoff: :func:`stage_payoff`, shape (2, 2).
        position_bonus: The position term of every position, shape (K,).
    """

    def __init__(
        self, n_positions: int = 5, slip: float = 0.1, heads_bonus: float = 2.0, position_reward: float = 1.0
    ) -> None:
        K = V.integer(
            "n_positions",
            n_positions,
            minimum=MIN_POSITIONS,
            maximum=MAX_POSITIONS,
            what=f"an integer in [{MIN_POSITIONS}, {MAX_POSITIONS}] (the positions of the rope's marker)",
        )
        self.slip = V.probability("slip", slip)
        self.heads_bonus = V.finite_real("heads_bonus", heads_bonus)
        self.position_reward = V.finite_real("position_reward", position_reward)
        self.n_positions = K
        self.n_agents = 2
        self.action_sizes = (2, 2)
        self.state_dim = 1
        self.noise_probs = (np.array([1.0 - self.slip, self.slip]),)  # outcome 1: the pull slips
        self.payoff = stage_payoff(self.heads_bonus)
        self.position_bonus = self.position_reward * (2.0 * np.arange(K) / (K - 1) - 1.0)

    # ------------------------------------------------------------------ enumeration
    @property
    def n_states(self) -> int:
        return self.n_positions

    def index(self, states: np.ndarray) -> np.ndarray:
        k = np.asarray(states, dtype=np.int64)[:, 0]
        return np.where((k >= 0) & (k < self.n_positions), k, -1)

    def decode(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        if np.any((idx < 0) | (idx >= self.n_states)):
            raise ValueError(f"state indices must be in [0, {self.n_states})")
        return idx[:, None].copy()

    def states(self) -> np.ndarray:
        return np.arange(self.n_positions, dtype=np.int64)[:, None]

    @property
    def start(self) -> int:
        """The starting position, the middle ``(K - 1) // 2``."""
        return (self.n_positions - 1) // 2

    def initial_distribution(self) -> tuple[np.ndarray, np.ndarray]:
        """The marker starts in the middle, position ``(K - 1) // 2``."""
        return np.array([[self.start]], np.int64), np.ones(1)

    def terminal(self, states: np.ndarray) -> np.ndarray:
        return np.zeros(len(states), bool)

    # ------------------------------------------------------------------ dynamics
    def step(
        self, states: np.ndarray, actions: np.ndarray, noise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        k = np.asarray(states, dtype=np.int64)[:, 0]
        a = np.asarray(actions, dtype=np.int64)
        r0 = self.payoff[a[:, 0], a[:, 1]] + self.position_bonus[k]
        move = np.where(a[:, 0] == a[:, 1], 1, -1) * (1 - np.asarray(noise, dtype=np.int64)[:, 0])
        nxt = np.clip(k + move, 0, self.n_positions - 1)
        return nxt[:, None], np.stack([r0, -r0], axis=1)
