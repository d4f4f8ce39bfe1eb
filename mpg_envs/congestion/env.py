"""Stochastic congestion game (``mpg/Congestion-v0``).

Paper 001 (Fox et al., *Independent Natural Policy Gradient Always Converges in Markov Potential
Games*), Example 1 and §4.2.

**Description.** N agents travel from a source ``s`` to a sink ``t`` through a layered DAG:
``s -> L layers of w vertices -> t``, fully connected between consecutive layers (default L = 2,
w = 2: the paper's 6-vertex graph). Every step each agent picks an out-edge of its vertex and
receives ``f(load)``, where the load is the number of agents that chose the same edge (or, with
``load="vertex"``, the same next vertex); the default ``f(l) = 1/l`` is the paper's reward
"inversely proportional to the number of agents who chose this edge". At ``t`` the agents either
take a constant-reward edge back to ``s`` (``at_sink="restart"``, discounted, the default) or the
episode ends (``at_sink="terminate"``, finite horizon, ``gamma=1`` allowed). With ``slip > 0``
each agent's move follows a uniformly random out-edge with probability ``slip`` (its reward still
follows the chosen edge's load).

**State.** The vertex of every agent. Agents move in lock-step, so the model has
``2 + L * w**N`` states (all at s; ``w**N`` placements per layer; all at t): 34 for N = 4 and 514
for N = 8 on the default graph, not ``|V|**N``. The exact model is ``env.unwrapped.model()``.

**Actions.** ``Discrete(w)`` for every agent: action ``a`` at a vertex with ``d`` out-edges takes
out-edge ``a mod d`` (the last layer and ``t`` have a single out-edge).

**Observations** (``observation=``): ``"state"`` -- the model's state index, ``Discrete(S)``;
``"vector"`` -- float32 one-hot agent id (N) + one-hot vertex of every agent (N*V);
``"own"`` -- the agent's own vertex, ``Discrete(V)``; ``"onehot"`` -- float32 one-hot of the model
state index, shape (S,) (a network on the global state; at most ``MAX_ONEHOT_STATES`` = 65,536
states: N <= 14 on the default graph). ``state()`` returns the N*V one-hot vector. The
observations come from the dynamics: ``env.unwrapped.dynamics.observe(states, mode)`` gives them
for a batch of state descriptors (B, N), as the batched samplers and the tabulation of a policy
over every model state read them.

**Rewards.** ``f(load)`` of the chosen edge; ``restart_reward`` on the ``t -> s`` edge; 0 in the
terminal state.

**Infos.** ``{"state": model index, "vertex": own vertex, "load": load of the last chosen
resource (0 after reset)}`` for every agent.

**Potential certificate (measured, pinned in tests/test_potential.py).** Every state is a
congestion (stage) game with Rosenthal potential ``phi(s, a) = sum_e sum_{k<=l_e} f(k)``
(``model.phi``). For policies that condition on the global state the game is an exact MPG for
**N = 2** (MPG identity with ``phi`` and 4-cycle test both ~1e-12) but **not for N >= 3**: sampled
4-cycles of unilateral deviations sum to 50.0, 49.9 and 56.3 (N = 3, 4, 5; gamma = 0.99, values of
order 75), and to exactly 2 in the finite-horizon game (N = 3, ``at_sink="terminate"``, gamma = 1),
so no potential function exists for that policy class, although paper 001 calls the game an MPG.
For policies that see only their own vertex (``observation="own"``; pass
``env.unwrapped.observation_index("own")`` as ``obs_map``) both residuals are ~1e-13 for every N
tested: the other agents' actions then do not depend on the deviator, so its dummy term
``sum_e F(l_e^{-i})`` has a policy-independent expectation.

**The game of the authors' code** (``graph="ring"``). Paper 001's public code
(willoverman/MPG_experiments, ``npg_routing.py`` and ``pg_routing.py``) does not run the DAG of
its text: "for now we ignore layer", the state is the unit every agent occupies (``2**N`` states),
every agent picks its next unit and receives 1 / (number of agents picking the same unit), mu is
uniform over all states and there is no s or t. ``graph="ring"`` generalises that game: the L
layers form a cycle (layer L feeds layer 1), mu is uniform over all ``L * w**N`` states, and
``graph="ring", n_layers=1, load="vertex"`` (:data:`AUTHORS_CODE_GAME`) is exactly the authors'
game. Its uniform policy is an exact Nash equilibrium, as in the DAG.

**Arguments.** ``n_agents=4, n_layers=2, width=2, reward="inverse" (or callable f(loads), or the
N values f(1..N)), load="edge"|"vertex", at_sink="restart"|"terminate", restart_reward=0.0,
slip=0.0, graph="dag"|"ring", gamma=0.99, observation="state"|"vector"|"own"|"onehot", max_cycles=20
(paper 001's T), render_mode=None|"human"|"ansi"|"rgb_array"``. Sizes are bounded before anything
is allocated: at most ``MAX_AGENTS`` = 100,000 agents, a graph of at most 10^7 edges, fewer than
2^62 states; ``render_mode="rgb_array"`` draws at most 1,000 edges, ``observation="vector"`` at
most 2^25 floats per step, and ``model()`` refuses models beyond ``max_transitions`` transitions or
their memory budget. Numbers may be NumPy scalars; bools are refused.

**Version history.** v0: initial release; ``graph="ring"`` (the game of the authors' code) added
without changing the default game; ``observation="onehot"`` added without changing the default
observation or the other modes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mpg_envs import _validate as V
from mpg_envs.congestion.dynamics import CongestionDynamics, RewardSpec
from mpg_envs.core import MPGParallelEnv

#: Most edges an ``rgb_array`` frame draws (about a second per frame at this size).
MAX_RENDER_EDGES = 1_000
#: Keyword arguments that give the congestion game of paper 001's public code (see the docstring).
AUTHORS_CODE_GAME: dict[str, Any] = {"graph": "ring", "n_layers": 1, "load": "vertex"}

_AGENT_COLORS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]  # fmt: skip


class CongestionEnv(MPGParallelEnv):
    """PettingZoo parallel env of the stochastic congestion game (see module docstring)."""

    metadata = {
        "render_modes": ["human", "ansi", "rgb_array"],
        "name": "congestion_v0",
        "is_parallelizable": True,
        "render_fps": 2,
    }

    def __init__(
        self,
        n_agents: int = 4,
        n_layers: int = 2,
        width: int = 2,
        reward: RewardSpec = "inverse",
        load: str = "edge",
        at_sink: str = "restart",
        restart_reward: float = 0.0,
        slip: float = 0.0,
        graph: str = "dag",
        gamma: float = 0.99,
        observation: str = "state",
        max_cycles: int = 20,
        render_mode: str | None = None,
    ) -> None:
        dyn = CongestionDynamics(
            n_agents, n_layers, width, reward, load, at_sink, restart_reward, slip, graph=graph
        )
        g = V.discount("gamma", gamma)
        if g == 1.0 and (at_sink == "restart" or graph == "ring"):
            raise ValueError(
                f"gamma = 1 with graph={graph!r}, at_sink={at_sink!r} gives infinite returns (episodes "
                f"never end); use gamma < 1 or graph='dag' with at_sink='terminate' (got gamma={gamma!r})"
            )
        super().__init__(
            dyn, gamma=gamma, max_cycles=max_cycles, observation=observation, render_mode=render_mode
        )
        self._canvas: np.ndarray | None = None

    # ---------------------------------------------------------------- infos
    def _last_loads(self) -> np.ndarray:
        if self._prev_state is None or self._last_actions is None:
            return np.zeros(self.dynamics.n_agents, np.int64)
        return self.dynamics.loads(self._prev_state, self._last_actions[None])[0]

    def batch_extra_infos(self, states, prev_states, actions, rewards) -> dict[str, np.ndarray]:
        st = np.asarray(states, dtype=np.int64)
        if prev_states is None or actions is None:
            loads = np.zeros(st.shape, np.int64)
        else:
            loads = np.asarray(self.dynamics.loads(prev_states, actions), dtype=np.int64)
        return {"vertex": st.copy(), "load": loads}

    # ---------------------------------------------------------------- rendering
    def _vertex_name(self, v: int) -> str:
        dyn = self.dynamics
        if dyn.graph == "ring":
            return f"v{dyn.layer_of[v]}.{dyn.slot_of[v]}"
        if v == dyn.source:
            return "s"
        if v == dyn.sink:
            return "t"
        return f"v{dyn.layer_of[v]}.{dyn.slot_of[v]}"

    def render_ansi(self) -> str:
        dyn = self.dynamics
        pos = self._state[0]
        lines = [f"Congestion-v0  step {self.num_steps}/{self.max_cycles}  state {self.state_index()}"]
        for layer in range(dyn.n_layers + 2) if dyn.graph == "dag" else range(1, dyn.n_layers + 1):
            verts = np.flatnonzero(dyn.layer_of == layer)
            cells = []
            for v in verts:
                who = ",".join(str(i) for i in np.flatnonzero(pos == v))
                cells.append(f"{self._vertex_name(v)}[{who}]")
            lines.append("  ".join(cells))
        if self._last_actions is not None:
            loads = self._last_loads()
            edges = dyn.chosen_edges(self._prev_state, self._last_actions[None])[0]
            moves = [
                f"{i}:{self._vertex_name(dyn.tail[e])}->{self._vertex_name(dyn.head[e])}(load {loads[i]})"
                for i, e in enumerate(edges)
            ]
            lines.append("last choices " + " ".join(moves))
        return "\n".join(lines)

    def _layout(self, H: int, W: int) -> np.ndarray:
        """Pixel (x, y) of every vertex, shape (V, 2); on a ring, rows V.. are a copy of layer 1
        drawn on the right, where the edges that wrap around from layer L arrive."""
        dyn = self.dynamics
        if dyn.graph == "ring":
            cols = dyn.n_layers + 1
            x = 50 + (dyn.layer_of - 1) * (W - 100) / (cols - 1)
            y = 40 + (dyn.slot_of + 0.5) * (H - 80) / dyn.width
            ghost = np.stack([np.full(dyn.width, W - 50.0), y[: dyn.width]], axis=1)
            return np.concatenate([np.stack([x, y], axis=1), ghost])
        cols = dyn.n_layers + 2
        x = 50 + dyn.layer_of * (W - 100) / (cols - 1)
        rows = np.where((dyn.layer_of == 0) | (dyn.layer_of == cols - 1), 1, dyn.width)
        y = 40 + (dyn.slot_of + 0.5) * (H - 80) / rows
        return np.stack([x, y], axis=1)

    def _frame_shape(self) -> tuple[int, int]:
        return 120 + 80 * self.dynamics.width, 160 + 130 * self.dynamics.n_layers

    def _check_renderable(self) -> None:
        """Every edge is drawn, each over a box as tall as the frame: bound the edges and the frame."""
        n_edges = self.dynamics.n_edges
        if n_edges > MAX_RENDER_EDGES:
            raise ValueError(
                f"render_mode='rgb_array' draws every edge: n_layers={self.dynamics.n_layers}, "
                f"width={self.dynamics.width} give {n_edges:,} edges, over the limit of "
                f"{MAX_RENDER_EDGES:,}; use render_mode='ansi' or a smaller graph"
            )
        super()._check_renderable()

    def render_rgb(self) -> np.ndarray:
        """Picture of the DAG: edges shaded and labelled by last step's load, agents as dots."""
        from mpg_envs import _raster as rz

        self._check_renderable()
        dyn = self.dynamics
        ring = dyn.graph == "ring"
        H, W = self._frame_shape()
        img = rz.new_canvas(H, W)
        xy = self._layout(H, W)
        edge_load = np.zeros(dyn.n_edges, np.int64)
        if self._last_actions is not None:
            chosen = dyn.chosen_edges(self._prev_state, self._last_actions[None])[0]
            np.add.at(edge_load, chosen, 1)
        for e in range(dyn.n_edges):
            u, v = dyn.tail[e], dyn.head[e]
            if ring and dyn.layer_of[v] == 1:  # wrap-around edge: to the copy of layer 1
                v = dyn.n_vertices + dyn.slot_of[v]
            if u == v:
                continue
            load = edge_load[e]
            color = (200, 200, 200) if load == 0 else (220, max(40, 200 - 160 * load // dyn.n_agents), 40)
            (x0, y0), (x1, y1) = xy[u], xy[v]
            if v == dyn.source:  # restart edge t -> s drawn as an arc along the bottom
                yb = H - 18
                for a, b in (((x0, y0), (x0, yb)), ((x0, yb), (x1, yb))):
                    rz.draw_line(img, *a, *b, color, width=2)
                rz.draw_arrow(img, x1, yb, x1, y1 + 16, color, width=2)
                continue
            rz.draw_arrow(img, x0 + 16, y0, x1 - 18, y1, color, width=1.5 + 1.5 * load)
            if load:
                lx, ly = x0 + 0.3 * (x1 - x0), y0 + 0.3 * (y1 - y0) - 9  # off the crossing point
                rz.draw_text(img, str(load), lx, ly, (120, 0, 0), anchor="center")
        pos = self._state[0]
        if ring:  # the copy of layer 1 that receives the wrap-around edges, drawn faint
            for j in range(dyn.width):
                x, y = xy[dyn.n_vertices + j]
                rz.draw_circle(img, x, y, 15, (170, 170, 170), width=1)
                rz.draw_text(img, f"({self._vertex_name(j)})", x, y - 25, (130, 130, 130), anchor="center")
        for v in range(dyn.n_vertices):
            x, y = xy[v]
            rz.fill_circle(img, x, y, 15, (235, 235, 245))
            rz.draw_circle(img, x, y, 15, (60, 60, 60), width=2)
            rz.draw_text(img, self._vertex_name(v), x, y - 25, (0, 0, 0), anchor="center")
            here = np.flatnonzero(pos == v)
            for k, i in enumerate(here):
                ang = 2 * np.pi * k / max(len(here), 1)
                r = 0 if len(here) == 1 else 8
                rz.fill_circle(img, x + r * np.cos(ang), y + r * np.sin(ang), 4, _AGENT_COLORS[i % 10])
        rz.draw_text(img, f"STEP {self.num_steps}", 8, 6, (0, 0, 0))
        return img


def raw_env(**kwargs: Any):
    """The unwrapped AEC env, PettingZoo's convention (``parallel_env`` is the parallel one,
    ``env`` the AEC one with order enforcement)."""
    from mpg_envs.core import _CheckedAEC

    return _CheckedAEC(CongestionEnv(**kwargs))
