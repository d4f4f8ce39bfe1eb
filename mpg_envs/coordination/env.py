"""Coordination game (``mpg/Coordination-v0``).

Paper 003 (Chen, Zhang, Doan, *Convergence and Price of Anarchy Guarantees of the Softmax Policy
Gradient in Markov Potential Games*), §5 "Environment" and Appendix G.

**Description.** N agents (2 <= N <= 8; the paper uses N = 2, 3, 5) each have a local state in
{0, 1} and choose an action in {0, 1}. An action is an attempt to move to that local state: the
agent lands there with probability ``1 - eps`` and in the other local state with probability
``eps`` (``P(s_i' = 0 | a_i = 0) = 1 - eps``, ``P(s_i' = 0 | a_i = 1) = eps``, default
``eps = 0.1``), independently of the other agents and of its current local state. All agents share
one team reward that depends only on how many agents are in local state 0 and 1: it rewards
agreement, and agreement on 0 more than agreement on 1. "Everybody always plays 0" is the social
optimum and "everybody always plays 1" a worse Nash equilibrium (price of anarchy 0.68, 0.77,
0.82, 0.70 for N = 2, 3, 4, 5). Because the next state does not depend on the current one, the
state only decides the reward of the current step; the actions decide the next state.

**State.** The tuple of local states ``(s_0, ..., s_{N-1})``, 2^N states. The model index is
``np.ravel_multi_index(s, (2,) * N)``, agent 0 the most significant bit: for N = 3, state
``(1, 0, 1)`` is index 5. The initial state is uniform over all 2^N states (App. G.2). The exact
model is ``env.unwrapped.model()``; it is built from the product structure
``P(s' | s, a) = prod_i T[a_i, s_i']`` (``T = [[1-eps, eps], [eps, 1-eps]]``, the same for every
``s``) in 0.2-1 s for N = 8 (S = A = 256, 2^24 non-zeros in P, ~200 MB).

**Actions.** ``Discrete(2)`` for every agent: the local state it tries to reach. Joint actions are
indexed like states (agent 0 most significant).

**Observations** (``observation=``): ``"state"`` -- the model's state index, ``Discrete(2^N)``
(tabular learners, the paper's setting); ``"vector"`` -- float32 one-hot agent id (N) followed by
the N local states as 0/1 (neural nets, parameter sharing); ``"own"`` -- the agent's own local
state, ``Discrete(2)``; ``"onehot"`` -- float32 one-hot of the model state index, shape (2^N,)
(the input of App. G's network, 2^N-FC-2^N-FC-Linear-softmax). ``state()`` returns the N local
states as float32. The observations come from the dynamics:
``env.unwrapped.dynamics.observe(states, mode)`` gives them for a batch of state descriptors
(B, N), as the batched samplers and the tabulation of a policy over every model state read them.

**Rewards.** Every agent receives the team reward ``r(s)`` of the state ``s`` the agents are in
when they act (Algorithm 1 computes "the team reward for N agents in state s"); the actions only
steer the next state. With ``c0`` agents in local state 0, ``c1 = N - c0`` and difference bound
``b = 1`` for N in {2, 3}, else ``b = 2`` (Algorithm 1 of App. G.1):

- ``|c0 - c1| <= b`` and ``c0 < c1``: 1;
- ``|c0 - c1| <= b`` and ``c0 >= c1``: 0;
- ``c0 - c1 > b``: 3;
- ``c1 - c0 > b``: 2.

Reward by ``c0 = 0, 1, ..., N`` (pinned in tests/test_coordination.py):

====  ===================================
N     r(c0 = 0 .. N)
====  ===================================
2     2  0  3
3     2  1  0  3
4     2  1  0  0  3
5     2  2  1  0  3  3
6     2  2  1  0  0  3  3
7     2  2  2  1  0  3  3  3
8     2  2  2  1  0  0  3  3  3
====  ===================================

**Infos.** ``{"state": model index, "local_state": own local state, "n_zeros": agents in local
state 0, "team_reward": reward of the last step (0.0 after reset)}`` for every agent.

**Potential certificate (measured, pinned in tests/test_coordination.py).** An identical-interest
game: the team reward is the stage potential, ``model.phi[s, a] = r(s)``, and the team value is an
MPG potential for every policy class. Measured with ``np.random.default_rng(0)`` and 32 samples,
for N = 2, 3, 5 with policies on the global state and with own-state policies
(``obs_map=env.unwrapped.observation_index("own")``): the MPG-identity residual is exactly 0
(every agent's value *is* the potential value, so this check is trivially tight here) and the
potential-free 4-cycle residual is at most 7.1e-15 (value scale 30-50).

**Arguments.** ``n_agents=3`` (integer in [2, 8]), ``eps=0.1`` (in [0, 1]), ``gamma=0.95``
(in (0, 1); 1 is refused because no state is terminal),
``observation="state"|"vector"|"own"|"onehot"``,
``max_cycles=100`` (truncation; 0.95^100 < 0.006, so the discounted tail cut off is below 0.6%
of the return scale 3/(1-gamma) of the infinite-horizon values the model computes),
``render_mode=None|"human"|"ansi"|"rgb_array"``.

**Version history.** v0: initial release; ``observation="onehot"`` added without changing the
default observation or the other modes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpg_envs import _validate as V
from mpg_envs.coordination.dynamics import CoordinationDynamics
from mpg_envs.core import MPGParallelEnv

_STATE_COLORS = ((33, 102, 172), (230, 120, 20))  # local state 0: blue, 1: orange
_REWARD_COLORS = {0.0: (210, 210, 210), 1.0: (250, 225, 140), 2.0: (190, 225, 160), 3.0: (110, 195, 110)}


class CoordinationEnv(MPGParallelEnv):
    """PettingZoo parallel env of the coordination game (see module docstring)."""

    metadata = {
        "render_modes": ["human", "ansi", "rgb_array"],
        "name": "coordination_v0",
        "is_parallelizable": True,
        "render_fps": 2,
    }

    def __init__(
        self,
        n_agents: int = 3,
        eps: float = 0.1,
        gamma: float = 0.95,
        observation: str = "state",
        max_cycles: int = 100,
        render_mode: str | None = None,
    ) -> None:
        dyn = CoordinationDynamics(n_agents, eps)
        if V.is_real(gamma) and float(gamma) == 1.0:
            raise ValueError(
                "gamma = 1 gives infinite returns: the coordination game has no terminal state; "
                f"use gamma in (0, 1) (got gamma={gamma!r})"
            )
        gamma = V.discount("gamma", gamma, allow_one=False)
        super().__init__(
            dyn, gamma=gamma, max_cycles=max_cycles, observation=observation, render_mode=render_mode
        )

    # ---------------------------------------------------------------- infos
    def batch_extra_infos(self, states, prev_states, actions, rewards) -> dict[str, np.ndarray]:
        st = np.asarray(states, dtype=np.int64)
        N = self.dynamics.n_agents
        zeros = N - st.sum(axis=1, keepdims=True)
        return {
            "local_state": st,
            "n_zeros": np.broadcast_to(zeros, st.shape).copy(),
            "team_reward": np.broadcast_to(np.asarray(rewards, dtype=np.float64)[:, :1], st.shape).copy(),
        }

    # ---------------------------------------------------------------- rendering
    def _summary(self) -> tuple[float, float | None]:
        """(r(s) of the current state, reward of the last step or None after reset)."""
        dyn = self.dynamics
        now = float(dyn.team_reward(self._state)[0])
        last = None if self._prev_state is None else float(dyn.team_reward(self._prev_state)[0])
        return now, last

    def render_ansi(self) -> str:
        dyn = self.dynamics
        st = self._state[0]
        now, last = self._summary()
        bits = "".join(str(int(b)) for b in st)
        zeros = dyn.n_agents - int(st.sum())
        lines = [
            f"Coordination-v0  step {self.num_steps}/{self.max_cycles}  state {self.state_index()} = {bits}",
            "local states  " + "  ".join(f"{i}:{int(b)}" for i, b in enumerate(st)),
            f"#0 = {zeros}  #1 = {dyn.n_agents - zeros}  team reward r(s) = {now:g}",
        ]
        if self._last_actions is not None:
            acts = " ".join(f"{i}:{int(a)}" for i, a in enumerate(self._last_actions))
            lines.append(f"last actions  {acts}  last reward {last:g}")
        return "\n".join(lines)

    def render_rgb(self) -> np.ndarray:
        """One cell per agent coloured by its local state; banner with the team reward."""
        from mpg_envs import _raster as rz

        dyn = self.dynamics
        N = dyn.n_agents
        st = self._state[0]
        now, last = self._summary()
        cell, gap, margin, top = 64, 12, 16, 56
        W = max(2 * margin + N * cell + (N - 1) * gap, 320)
        H = top + cell + 64
        img = rz.new_canvas(H, W)
        rz.fill_rect(img, 0, 0, W - 1, 40, _REWARD_COLORS.get(now, (210, 210, 210)))
        rz.draw_text(img, f"TEAM REWARD R(S) = {now:g}", 10, 6, (0, 0, 0), scale=2)
        info = f"STEP {self.num_steps}/{self.max_cycles}"
        if last is not None:
            info += f"   LAST REWARD {last:g}"
        rz.draw_text(img, info, 10, 27, (40, 40, 40))
        x0 = (W - (N * cell + (N - 1) * gap)) / 2
        for i in range(N):
            x = x0 + i * (cell + gap)
            s = int(st[i])
            rz.fill_rect(img, x, top, x + cell - 1, top + cell - 1, _STATE_COLORS[s])
            rz.draw_text(img, str(s), x + cell / 2, top + cell / 2, (255, 255, 255), scale=4, anchor="center")
            label = f"AGENT {i}" if N <= 4 else f"A{i}"
            rz.draw_text(img, label, x + cell / 2, top + cell + 10, (0, 0, 0), anchor="center")
            if self._last_actions is not None:
                act = f"ACT {int(self._last_actions[i])}"
                rz.draw_text(img, act, x + cell / 2, top + cell + 24, (90, 90, 90), anchor="center")
        zeros = N - int(st.sum())
        rz.draw_text(img, f"ZEROS {zeros}  ONES {N - zeros}", W / 2, H - 12, (0, 0, 0), anchor="center")
        return img


def raw_env(**kwargs: Any):
    """The unwrapped AEC env, PettingZoo's convention (``parallel_env`` is the parallel one,
    ``env`` the AEC one with order enforcement)."""
    from mpg_envs.core import _CheckedAEC

    return _CheckedAEC(CoordinationEnv(**kwargs))
