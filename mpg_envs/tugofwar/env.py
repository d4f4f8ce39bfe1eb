"""Tug of war (``mpg/TugOfWar-v0``): a two-player zero-sum Markov game, stochastic matching pennies.

**Not a potential game.** Every other env of this package is a Markov potential game (or a set of
independent tasks); this one is *zero-sum*, ``r_1(s, a) = -r_0(s, a)``, the competitive test game
for the soft and minimax baselines. Its model has no stage potential (``model.phi is None``), so
:func:`mpg_envs.exact.potential_value` and :func:`mpg_envs.exact.potential_residual` refuse it, and
:func:`mpg_envs.exact.cycle_residual` finds non-zero 4-cycle sums (no potential exists for any
policy class). The social welfare of every policy is 0, so :func:`mpg_envs.exact.price_of_anarchy`
refuses it too (it needs a positive optimal welfare). What does apply: values, best responses and
the Nash gap (a product policy with Nash gap 0 is a pair of minimax strategies), and the minimax
oracle :func:`mpg_envs.zerosum.shapley` (one linear program per state and sweep), which gives the
game's value ``V*(s)`` and stationary minimax policies.

**Description.** A rope's marker sits at one of K positions (default 5) and starts in the middle,
position ``(K - 1) // 2``. Every step agent 0 (the *matcher*) and agent 1 (the *mismatcher*) each
show heads (0) or tails (1). If the coins match the marker moves one position towards agent 0's end
(position ``K - 1``), otherwise one position towards agent 1's end (position 0); with probability
``slip`` (default 0.1) the pull slips and the marker stays, and at an end it cannot move further.
Agent 0 is paid the stage payoff of the coins plus a position term, agent 1 pays it. Both players
must mix in every position (no pure saddle point); the position term makes the continuation values
differ between outcomes, so the minimax strategies change from position to position and are not
those of the one-shot stage game.

**State.** The marker's position k, 0 <= k < K; the model index is k, the state descriptor is
``(k,)``. The initial state is ``(K - 1) // 2`` with probability 1. The exact model is
``env.unwrapped.model()``.

**Actions.** ``Discrete(2)`` for both agents: 0 = heads, 1 = tails. Joint action index
``2 * a_0 + a_1``.

**Observations** (``observation=``): ``"state"`` -- the position, ``Discrete(K)``; ``"vector"`` --
float32 one-hot agent id (2) followed by the one-hot of the position (K); ``"onehot"`` -- float32
one-hot of the position, shape (K,). There is no ``"own"`` mode (both players see the whole state).
``state()`` returns the one-hot of the position.

**Rewards.** In position k with coins ``(a_0, a_1)``:
``r_0 = M[a_0, a_1] + w (2 k / (K - 1) - 1)`` and ``r_1 = -r_0``, with the stage payoff
``M = [[h, -1], [-1, 1]]`` (``h = heads_bonus``, default 2; ``h = 1`` is matching pennies) and the
position weight ``w = position_reward`` (default 1; the term runs from -w at agent 1's end to +w at
agent 0's end). The reward is paid for the position the agents act in.

**Infos.** ``{"state": position, "position": position, "matched": 1 if the last coins matched else
0 (0 after reset)}`` for both agents.

**Arguments.** ``n_positions=5`` (integer in [2, 1001]), ``slip=0.1`` (in [0, 1]),
``heads_bonus=2.0`` (finite), ``position_reward=1.0`` (finite), ``gamma=0.9`` (in (0, 1); 1 is
refused because no state is terminal), ``observation="state"|"vector"|"onehot"``,
``max_cycles=100`` (truncation; 0.9^100 < 3e-5),
``render_mode=None|"human"|"ansi"|"rgb_array"``.

**Version history.** v0: initial release.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpg_envs import _validate as V
from mpg_envs.core import MPGParallelEnv
from mpg_envs.tugofwar.dynamics import TugOfWarDynamics

_SIDE_COLORS = ((200, 60, 60), (40, 90, 190))  # agent 0's end red, agent 1's end blue
_COINS = ("H", "T")


class TugOfWarEnv(MPGParallelEnv):
    """PettingZoo parallel env of the tug-of-war game (see module docstring)."""

    metadata = {
        "render_modes": ["human", "ansi", "rgb_array"],
        "name": "tugofwar_v0",
        "is_parallelizable": True,
        "render_fps": 2,
    }

    def __init__(
        self,
        n_positions: int = 5,
        slip: float = 0.1,
        heads_bonus: float = 2.0,
        position_reward: float = 1.0,
        gamma: float = 0.9,
        observation: str = "state",
        max_cycles: int = 100,
        render_mode: str | None = None,
    ) -> None:
        dyn = TugOfWarDynamics(n_positions, slip, heads_bonus, position_reward)
        if V.is_real(gamma) and float(gamma) == 1.0:
            raise ValueError(
                "gamma = 1 gives infinite returns: the tug-of-war game has no terminal state; "
                f"use gamma in (0, 1) (got gamma={gamma!r})"
            )
        gamma = V.discount("gamma", gamma, allow_one=False)
        super().__init__(
            dyn, gamma=gamma, max_cycles=max_cycles, observation=observation, render_mode=render_mode
        )

    # ---------------------------------------------------------------- infos
    def batch_extra_infos(self, states, prev_states, actions, rewards) -> dict[str, np.ndarray]:
        k = np.asarray(states, dtype=np.int64)[:, :1]
        B = len(k)
        if actions is None:
            matched = np.zeros((B, 1), np.int64)
        else:
            matched = (actions[:, :1] == actions[:, 1:2]).astype(np.int64)
        return {"position": np.repeat(k, 2, axis=1), "matched": np.repeat(matched, 2, axis=1)}

    # ---------------------------------------------------------------- rendering
    def render_ansi(self) -> str:
        dyn = self.dynamics
        k = int(self._state[0, 0])
        rope = " ".join("X" if j == k else "." for j in range(dyn.n_positions))
        lines = [
            f"TugOfWar-v0  step {self.num_steps}/{self.max_cycles}  position {k} of 0..{dyn.n_positions - 1}",
            f"agent_1 end |{rope}| agent_0 end",
        ]
        if self._last_actions is not None:
            a0, a1 = (int(x) for x in self._last_actions)
            r0 = float(dyn.payoff[a0, a1] + dyn.position_bonus[int(self._prev_state[0, 0])])
            lines.append(f"last coins {_COINS[a0]} {_COINS[a1]}  rewards {r0:+g} / {-r0:+g}")
        return "\n".join(lines)

    def _frame_shape(self) -> tuple[int, int]:
        K = self.dynamics.n_positions
        cell, gap, margin = (40, 6, 16) if K <= 25 else (6, 1, 16)
        return 140, max(2 * margin + K * cell + (K - 1) * gap, 320)

    def render_rgb(self) -> np.ndarray:
        """The rope as a row of cells, the marker's cell filled; the ends in the players' colours."""
        from mpg_envs import _raster as rz

        K = self.dynamics.n_positions
        k = int(self._state[0, 0])
        cell, gap, margin = (40, 6, 16) if K <= 25 else (6, 1, 16)
        H, W = self._frame_shape()
        img = rz.new_canvas(H, W)
        rz.draw_text(img, f"STEP {self.num_steps}/{self.max_cycles}  POSITION {k}", 10, 8, (0, 0, 0), scale=2)
        x0 = (W - (K * cell + (K - 1) * gap)) / 2
        top = 50
        for j in range(K):
            x = x0 + j * (cell + gap)
            if j == 0 or j == K - 1:
                color = _SIDE_COLORS[0 if j == K - 1 else 1]
            else:
                color = (215, 215, 215)
            rz.fill_rect(img, x, top, x + cell - 1, top + cell - 1, color)
            if j == k:
                q = cell / 4
                rz.fill_rect(img, x + q, top + q, x + 3 * q, top + 3 * q, (20, 20, 20))
        if self._last_actions is not None:
            a0, a1 = (int(x) for x in self._last_actions)
            rz.draw_text(img, f"COINS {_COINS[a0]} {_COINS[a1]}", W / 2, H - 20, (0, 0, 0), anchor="center")
        return img


def raw_env(**kwargs: Any):
    """The unwrapped AEC env, PettingZoo's convention (``parallel_env`` is the parallel one,
    ``env`` the AEC one with order enforcement)."""
    from mpg_envs.core import _CheckedAEC

    return _CheckedAEC(TugOfWarEnv(**kwargs))
