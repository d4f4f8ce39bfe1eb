"""Distancing game (``mpg/Distancing-v0``).

Paper 001 (Fox et al., *Independent Natural Policy Gradient Always Converges in Markov Potential
Games*), §4.1, reproducing the game of Leonardos et al. (2022); parameters from the original
authors' public code.

**Description.** N agents (default 8) choose among K facilities (default A, B, C, D with weights
``w = (1, 2, 4, 6)``). There are two states, *safe* and *distancing*. Everybody likes company: an
agent at facility k receives ``w_k * n_k``, where ``n_k`` is the number of agents at k this step,
minus a penalty ``c`` (default 100) in the distancing state. Crowding has a delayed cost: if some
facility holds more than ``safe_threshold`` agents (default N/2) the game moves from safe to
distancing, and it stays in distancing as long as some facility holds more than
``distancing_threshold`` agents (default N/4, i.e. the agents must spread out maximally to get
back to safe). Transitions are deterministic.

**Transition timing.** The next state is a function of the current state and the facility counts
of the *current* joint action (the original code's ``get_next_state(state, actions)``): the reward
of step t is paid in ``s_t`` and the counts of step t decide ``s_{t+1}``. So ``infos[...]["state"]``
after a step is the *new* state, while ``"count"`` and the reward belong to the state the step was
played in.

**State.** ``0`` safe, ``1`` distancing; the state descriptor is that single int (shape (1,)).
The exact model (``env.unwrapped.model()``) has S = 2 states and ``K**N`` joint actions (65,536 by
default), enumerated with vectorised counting. ``reset(options={"state": 1})`` starts in
distancing.

**Actions.** ``Discrete(K)`` for every agent: the facility index (0 = A, 1 = B, ...).

**Observations** (``observation=``): ``"state"`` -- the state index, ``Discrete(2)``;
``"vector"`` -- float32 one-hot agent id (N) + one-hot state (2); ``"onehot"`` -- float32 one-hot
state, shape (2,). There is no local state, hence no ``"own"`` mode. ``state()`` returns the
one-hot state (2,). The observations come from the dynamics:
``env.unwrapped.dynamics.observe(states, mode)`` gives them for a batch of state descriptors
(B, 1), as the batched samplers and the tabulation of a policy over both states read them.

**Rewards.** ``w_k * n_k`` in the safe state, ``w_k * n_k - penalty`` in the distancing state,
for an agent at facility k with ``n_k`` agents there (itself included).

**Infos.** ``{"state": model index after the step, "facility": the agent's last facility (-1
after reset), "count": agents at that facility in the last step (0 after reset)}`` for every agent.

**Potential certificate (measured, pinned in tests/test_distancing.py).** Every state is a
congestion game with Rosenthal potential ``phi(s, a) = sum_k sum_{j<=n_k} (w_k * j - c*[s = 1])
= sum_k w_k n_k (n_k + 1) / 2 - c * N * [s = 1]`` -- but ``model.phi`` subtracts the penalty
once, ``phi(s, a) = sum_k w_k n_k (n_k + 1) / 2 - c * [s = 1]``: both are exact potentials of
every stage game (they differ by a per-state constant), and only the latter is right for the
dynamic game (the penalty part of the rewards, ``-c * [s = 1]`` for everybody, is an
identical-interest game whose exact MPG potential is ``-c * [s = 1]``). Measured with
``rng=np.random.default_rng(0)`` and 32 samples, gamma = 0.99, default weights and thresholds:

=====  ==========================  =======================  ===================================
N      4-cycle sum (relative)      MPG identity, ``phi``    same with ``-c * N * [s = 1]``
=====  ==========================  =======================  ===================================
3      1089.0 (0.11)               693.0 (0.07)             20493.0 (2.07)
4      693.0 (0.07)                1485.0 (0.15)            31185.0 (3.15)
8      792.0 (0.08)                2277.0 (0.23)            71577.0 (7.23)
=====  ==========================  =======================  ===================================

(relative = residual / max |V| = 9900). So with policies on the state (the only policy class: there
is no local state) the distancing game is **not** a Markov potential game, although paper 001 and
Leonardos et al. treat it as one: a non-zero 4-cycle sum of unilateral deviations rules out every
potential function. The worst samples are pure policies; the sums are integer multiples of
gamma = 0.99. The failure comes from the weights alone: with ``penalty=0`` both residuals are
exactly the same numbers (the penalty is an identical-interest part, which the residuals, linear in
the rewards, do not see), while with ``-c * N`` in ``phi`` the identity residual grows with ``c``.
Both checks pass (~1e-11) when the transitions ignore the actions (thresholds 0 or N) and when all
weights are 0.

**Equilibria (measured with exact best responses and exact INPG, N = 8).** The original authors'
outcome -- counts (0, 0, 4, 4) in safe and (2, 2, 2, 2) in distancing -- is an exact Nash
equilibrium (Nash gap 0 in every state; values ``16/(1-gamma)``, ``24/(1-gamma)`` in safe).
INPG (``theta += eta/(1-gamma) * A``, eta = 1e-4 as in the paper) reached it from all 11 N(0, 1)
logit starts tried, best-response dynamics from 4 of 6 random starts. It is not the only
equilibrium: other safe splits, e.g. (0, 4, 0, 4) or (4, 0, 0, 4), are equilibria too, and
"everybody at D in distancing" is a trap nobody can leave alone (value ``-52/(1-gamma)``). INPG
from uniform policies ends in that trap in the distancing state (eta = 1e-4). With eta = 1e-3
(larger steps) the uniform start and 3 of 11 random starts end with everybody at D in both states
(value -5100 from safe), and only 1 of the 12 starts reaches the reported outcome.

**Arguments.** ``n_agents=8, weights=(1, 2, 4, 6) (any K >= 1 finite numbers), penalty=100.0,
safe_threshold=None (N/2), distancing_threshold=None (N/4), mu=(0.5, 0.5), gamma=0.99 (in (0, 1):
the game never ends), observation="state"|"vector"|"onehot", max_cycles=20 (paper 001's T),
render_mode=None|"human"|"ansi"|"rgb_array"``. Thresholds are real numbers in [0, N] compared
with a strict ``>``; either order is allowed (a distancing threshold at or above the safe one removes
the hysteresis). The game can return to safe only if ``K * floor(distancing_threshold) >= N``: with
the default 4 facilities and N/4, only when 4 divides N -- for N = 3, 5, 6, 7 distancing is absorbing.
Weights and penalty may be any finite numbers (the paper's are positive, increasing weights);
bools are refused, and a float32 ``mu`` is accepted within float32 round-off (then renormalised).
Any number of facilities K is fine for the simulator (counts take O(N) memory); ``model()``
refuses ``K**N`` beyond its transition and memory budget, ``render_mode="rgb_array"`` frames
beyond 2^24 pixels.

**Version history.** v0: initial release; ``observation="onehot"`` added without changing the
default observation or the other modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mpg_envs import _validate as V
from mpg_envs.core import MPGParallelEnv
from mpg_envs.distancing.dynamics import DEFAULT_WEIGHTS, DISTANCING, SAFE, DistancingDynamics

__all__ = ["DistancingEnv", "raw_env"]

_AGENT_COLORS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip
_STATE_NAMES = ("SAFE", "DISTANCING")
_STATE_COLORS = ((46, 150, 70), (200, 45, 45))


def facility_name(k: int) -> str:
    """A, B, ..., Z for the first 26 facilities, then F26, F27, ..."""
    return chr(ord("A") + k) if k < 26 else f"F{k}"


class DistancingEnv(MPGParallelEnv):
    """PettingZoo parallel env of the distancing game (see module docstring)."""

    metadata = {
        "render_modes": ["human", "ansi", "rgb_array"],
        "name": "distancing_v0",
        "is_parallelizable": True,
        "render_fps": 2,
    }

    def __init__(
        self,
        n_agents: int = 8,
        weights: Sequence[float] = DEFAULT_WEIGHTS,
        penalty: float = 100.0,
        safe_threshold: float | None = None,
        distancing_threshold: float | None = None,
        mu: Sequence[float] = (0.5, 0.5),
        gamma: float = 0.99,
        observation: str = "state",
        max_cycles: int = 20,
        render_mode: str | None = None,
    ) -> None:
        dyn = DistancingDynamics(n_agents, weights, penalty, safe_threshold, distancing_threshold, mu)
        gamma = V.discount(
            "gamma",
            gamma,
            allow_one=False,
            why="the distancing game never terminates, so gamma = 1 would give infinite returns",
        )
        super().__init__(
            dyn, gamma=gamma, max_cycles=max_cycles, observation=observation, render_mode=render_mode
        )

    # ---------------------------------------------------------------- infos
    def last_counts(self) -> np.ndarray:
        """Agents per facility in the last step, shape (K,) int64 (zeros after reset)."""
        if self._last_actions is None:
            return np.zeros(self.dynamics.n_facilities, np.int64)
        return self.dynamics.counts(self._last_actions[None])[0]

    def batch_extra_infos(self, states, prev_states, actions, rewards) -> dict[str, np.ndarray]:
        B, N = len(states), self.dynamics.n_agents
        if actions is None:
            return {"facility": np.full((B, N), -1, np.int64), "count": np.zeros((B, N), np.int64)}
        actions = np.asarray(actions, dtype=np.int64)
        return {
            "facility": actions.copy(),
            "count": np.take_along_axis(self.dynamics.counts(actions), actions, axis=1),
        }

    # ---------------------------------------------------------------- rendering
    def _transition_text(self) -> str:
        """Why the game is in its current state, e.g. 'max 5 > 4 -> DISTANCING'."""
        dyn = self.dynamics
        prev = int(self._prev_state[0, 0])
        thr = dyn.safe_threshold if prev == SAFE else dyn.distancing_threshold
        mx = int(self.last_counts().max())
        op = ">" if mx > thr else "<="
        return f"max {mx} {op} {thr:g} -> {_STATE_NAMES[int(self._state[0, 0])]}"

    def render_ansi(self) -> str:
        dyn = self.dynamics
        s = int(self._state[0, 0])
        lines = [f"Distancing-v0  step {self.num_steps}/{self.max_cycles}  state {_STATE_NAMES[s]} ({s})"]
        if self._last_actions is None:
            lines.append("no moves yet")
        else:
            prev = int(self._prev_state[0, 0])
            counts = self.last_counts()
            lines.append(f"last step in {_STATE_NAMES[prev]}: {self._transition_text()}")
            for k in range(dyn.n_facilities):
                who = ",".join(str(i) for i in np.flatnonzero(self._last_actions == k))
                r = dyn.weights[k] * counts[k] - (dyn.penalty if prev == DISTANCING else 0.0)
                reward = f"  reward {r:g} each" if counts[k] else ""
                lines.append(f"{facility_name(k)} (w={dyn.weights[k]:g}): {counts[k]} [{who}]{reward}")
        return "\n".join(lines)

    def _layout(self) -> tuple[int, int, int, int, int, int]:
        """(agent columns, agent rows, box width, box height, gap, top) of the facility boxes."""
        N = self.dynamics.n_agents
        cols = min(4, N)
        rows = -(-N // cols)
        return cols, rows, max(96, 18 * cols + 24), 64 + 18 * rows, 14, 84

    def _frame_shape(self) -> tuple[int, int]:
        _, _, box_w, box_h, gap, top = self._layout()
        return top + box_h + 56, max(380, gap + self.dynamics.n_facilities * (box_w + gap))

    def render_rgb(self) -> np.ndarray:
        """Banner (SAFE / DISTANCING), then one box per facility with last step's agents as dots."""
        from mpg_envs import _raster as rz

        dyn = self.dynamics
        K = dyn.n_facilities
        cols, rows, box_w, box_h, gap, top = self._layout()
        H, W = self._frame_shape()
        img = rz.new_canvas(H, W, (250, 250, 250))
        s = int(self._state[0, 0])
        rz.fill_rect(img, 0, 0, W, 40, _STATE_COLORS[s])
        rz.draw_text(img, _STATE_NAMES[s], W / 2, 20, (255, 255, 255), scale=3, anchor="center")
        rz.draw_text(img, f"STEP {self.num_steps}/{self.max_cycles}", 8, 47, (0, 0, 0))
        if self._last_actions is None:
            rz.draw_text(img, "NO MOVES YET", W - 8 - rz.text_size("NO MOVES YET")[0], 47, (90, 90, 90))
            counts = np.zeros(K, np.int64)
            over = np.zeros(K, bool)
        else:
            prev = int(self._prev_state[0, 0])
            txt = f"LAST STEP IN {_STATE_NAMES[prev]}: {self._transition_text()}"
            rz.draw_text(img, txt, W - 8 - rz.text_size(txt)[0], 47, _STATE_COLORS[s])
            counts = self.last_counts()
            thr = dyn.safe_threshold if prev == SAFE else dyn.distancing_threshold
            over = counts > thr
        x0 = (W - K * (box_w + gap) + gap) / 2
        for k in range(K):
            bx = x0 + k * (box_w + gap)
            edge = (200, 45, 45) if over[k] else (70, 70, 70)
            rz.fill_rect(img, bx, top, bx + box_w, top + box_h, edge)
            rz.fill_rect(img, bx + 3, top + 3, bx + box_w - 3, top + box_h - 3, (236, 238, 246))
            rz.draw_text(img, facility_name(k), bx + box_w / 2, top + 16, (0, 0, 0), scale=2, anchor="center")
            rz.draw_text(
                img, f"W={dyn.weights[k]:g}", bx + box_w / 2, top + 33, (60, 60, 60), anchor="center"
            )
            if self._last_actions is not None:
                here = np.flatnonzero(self._last_actions == k)
                gx = bx + box_w / 2 - 9 * (cols - 1)
                for j, i in enumerate(here):
                    r, c = divmod(j, cols)
                    rz.fill_circle(img, gx + 18 * c, top + 52 + 18 * r, 6, _AGENT_COLORS[i % 10])
            color = (200, 45, 45) if over[k] else (0, 0, 0)
            rz.draw_text(
                img, str(counts[k]), bx + box_w / 2, top + box_h + 14, color, scale=2, anchor="center"
            )
        legend = (
            f"SAFE->DISTANCING IF A COUNT > {dyn.safe_threshold:g}   "
            f"STAYS WHILE A COUNT > {dyn.distancing_threshold:g}"
        )
        rz.draw_text(img, legend, W / 2, H - 12, (90, 90, 90), anchor="center")
        return img


def raw_env(**kwargs: Any):
    """The unwrapped AEC env, PettingZoo's convention (``parallel_env`` is the parallel one,
    ``env`` the AEC one with order enforcement)."""
    from mpg_envs.core import _CheckedAEC

    return _CheckedAEC(DistancingEnv(**kwargs))
