"""Vectorised dynamics of the stochastic congestion game (paper 001, Example 1 and §4.2).

Graph ``"dag"`` (default): a layered DAG ``s -> L layers of width w -> t``, fully connected between
consecutive layers. Vertex ids: ``s = 0``; vertex ``j`` of layer ``l`` (1-based) is
``1 + (l-1)*w + j``; ``t = 1 + L*w``. A state is the vertex of every agent, shape (N,). Because
every agent moves one edge per step, all agents are always in the same layer, so the reachable
states are: all at s, ``w**N`` placements in each of the L layers, all at t -- ``2 + L*w**N``
states (514 for the default graph with N = 8).

Graph ``"ring"``: the L layers form a cycle (layer L feeds layer 1), no s or t; vertex ``j`` of
layer ``l`` is ``(l-1)*w + j``; ``L*w**N`` states, mu uniform over all of them. With L = 1 and
vertex loads it is the game of paper 001's public code (``npg_routing.py``, ``pg_routing.py``):
the state is the unit every agent occupies, every agent picks its next unit and receives
``1 / (number of agents picking that unit)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from mpg_envs import _validate as V
from mpg_envs.core import _DENSE_COUNT_LIMIT, MAX_AGENTS, Dynamics, row_counts

RewardSpec = str | Callable[[np.ndarray], np.ndarray] | Sequence[float]
_MAX_INDEX = 1 << 62


def reward_table(reward: RewardSpec, n_agents: int) -> np.ndarray:
    """f(load) for load = 0..N as a table, shape (N + 1,) (entry 0 unused, set to 0).

    Args:
        reward: ``"inverse"`` (f(l) = 1/l, the paper's), a vectorised callable ``f(loads)``, or
            the N values f(1), ..., f(N).
        n_agents: N.
    """
    loads = np.arange(1, n_agents + 1)
    what = f"'inverse', a callable f(loads) or {n_agents} finite numbers f(1), ..., f({n_agents})"
    if isinstance(reward, str):
        if reward != "inverse":
            raise ValueError(f"reward must be {what}, got {reward!r}")
        vals = 1.0 / loads
    elif callable(reward):
        vals = V.real_array(
            "reward", reward(loads.astype(np.float64)), finite=False, what=f"{what} (the callable's f(loads))"
        )
    elif V.is_real(reward) or reward is None or isinstance(reward, (bool, np.bool_)):
        raise V.ArgumentTypeError(f"reward must be {what}, got {V.show(reward)}")
    else:
        vals = V.real_array("reward", reward, finite=False, what=what)
    if vals.shape != (n_agents,) or not np.all(np.isfinite(vals)):
        raise ValueError(
            f"reward must give a finite f(l) for each load l = 1..{n_agents} (shape ({n_agents},)), "
            f"got {V.show(reward if not callable(reward) else vals)}"
        )
    return np.concatenate([[0.0], vals])


#: Largest graph (edges, or vertices x width for the out-edge table) the dynamics will build.
MAX_GRAPH_SIZE = 10_000_000
GRAPHS = ("dag", "ring")


class CongestionDynamics(Dynamics):
    """Dynamics of the stochastic congestion game; see :mod:`mpg_envs.congestion.env` for the spec.

    Args:
        n_agents: N >= 1.
        n_layers: L >= 1 internal layers.
        width: w >= 1 vertices per layer (= number of actions).
        reward: f(load), see :func:`reward_table`.
        load: ``"edge"`` (agents choosing the same edge) or ``"vertex"`` (same next vertex).
        at_sink: ``"restart"`` (t -> s edge with constant reward) or ``"terminate"`` (``"dag"``
            only).
        restart_reward: Reward of the t -> s edge in restart mode (``"dag"`` only).
        slip: Probability that an agent's move follows a uniformly random out-edge instead of the
            chosen one (the reward still follows the chosen edge's load).
        graph: ``"dag"`` (``s -> L layers -> t``, start at s) or ``"ring"`` (the L layers form a
            cycle, no s or t, mu uniform over every state; with L = 1 and ``load="vertex"`` this
            is the game of paper 001's public code).

    Raises:
        ValueError: Bad parameters, or a graph over :data:`MAX_GRAPH_SIZE` (checked before
            anything is allocated).
    """

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
    ) -> None:
        N = V.positive_int("n_agents", n_agents, maximum=MAX_AGENTS)
        L = V.positive_int("n_layers", n_layers)
        w = V.positive_int("width", width)
        graph = V.one_of("graph", graph, GRAPHS)
        load = V.one_of("load", load, ("edge", "vertex"))
        at_sink = V.one_of("at_sink", at_sink, ("restart", "terminate"))
        slip = V.probability("slip", slip)
        restart_reward = V.finite_real("restart_reward", restart_reward)
        if graph == "ring" and (at_sink != "restart" or restart_reward != 0):
            raise ValueError(
                f"graph='ring' has no sink: at_sink and restart_reward apply to graph='dag' only "
                f"(got at_sink={at_sink!r}, restart_reward={restart_reward!r})"
            )
        ring = graph == "ring"
        n_edges = L * w * w if ring else (L - 1) * w * w + 2 * w + 1
        nv = L * w + (0 if ring else 2)
        if max(n_edges, nv * w) > MAX_GRAPH_SIZE:
            raise ValueError(
                f"n_layers={L}, width={w} give a graph of {nv:,} vertices and {n_edges:,} edges, over the "
                f"limit of {MAX_GRAPH_SIZE:,}; use fewer layers or a smaller width"
            )
        log10_states = math.log10(L) + N * math.log10(w)  # no huge power for huge N
        if log10_states > 19 or L * w**N >= _MAX_INDEX:
            count = (
                V.format_count(L * w**N + (0 if ring else 2))
                if log10_states < 30
                else f"~10^{log10_states:.0f}"
            )
            raise ValueError(
                f"{L} layers of width {w} with {N:,} agents give {count} states, over the limit of "
                f"{_MAX_INDEX:,} that int64 state indices can address; use fewer agents or a smaller width"
            )
        self.n_agents, self.n_layers, self.width, self.graph = N, L, w, graph
        self.load, self.at_sink = load, at_sink
        self.restart_reward, self.slip = float(restart_reward), float(slip)
        self.action_sizes = (w,) * N
        self.state_dim = N
        self.f = reward_table(reward, N)  # (N+1,)
        self.F = np.cumsum(self.f)  # Rosenthal: F(l) = sum_{k<=l} f(k), F(0) = 0
        self.n_vertices = nv
        self.own_observation_size = nv  # "own" mode: the agent's vertex
        inner = np.arange(L * w)
        off = 0 if ring else 1  # vertex id of the first layer's first vertex
        self.source, self.sink = (-1, -1) if ring else (0, nv - 1)
        # layer (1-based; 0 = s, L + 1 = t) and slot of each vertex
        self.layer_of = np.zeros(nv, np.int64)
        self.slot_of = np.zeros(nv, np.int64)
        self.layer_of[off : off + L * w] = 1 + inner // w
        self.slot_of[off : off + L * w] = inner % w
        if not ring:
            self.layer_of[-1] = L + 1
        # edges (tail, head) and the out-edge table edge_of[v, a] (action a takes out-edge a mod outdeg)
        a = np.arange(w)
        if ring:  # vertex v of layer l -> every vertex of layer l % L + 1; edge id v * w + k
            tails = np.repeat(inner, w)
            heads = ((inner // w + 1) % L * w)[:, None].repeat(w, 1).ravel() + np.tile(a, L * w)
            self.edge_of = inner[:, None] * w + a
        else:  # s -> layer 1 (ids 0..w-1), layer l -> l + 1 (w*w each), layer L -> t, t -> s or t
            mid = np.arange((L - 1) * w)  # vertices of layers 1..L-1, offset by 1
            tails = np.concatenate(
                [np.zeros(w, np.int64), np.repeat(1 + mid, w), 1 + (L - 1) * w + a, [nv - 1]]
            )
            heads = np.concatenate(
                [1 + a, (1 + (mid // w + 1) * w)[:, None].repeat(w, 1).ravel() + np.tile(a, (L - 1) * w),
                 np.full(w, nv - 1), [0 if at_sink == "restart" else nv - 1]]
            )  # fmt: skip
            last = w + (L - 1) * w * w  # first edge id into t
            self.edge_of = np.empty((nv, w), np.int64)
            self.edge_of[0] = a
            self.edge_of[1 : 1 + (L - 1) * w] = w + mid[:, None] * w + a
            self.edge_of[1 + (L - 1) * w : nv - 1] = (last + a)[:, None]
            self.edge_of[nv - 1] = n_edges - 1
        self.tail, self.head = tails.astype(np.int64), heads.astype(np.int64)
        self.n_edges = n_edges
        self.noise_probs = (
            tuple(np.array([1.0 - slip + slip / w] + [slip / w] * (w - 1)) for _ in range(N))
            if slip > 0 and w > 1
            else ()
        )
        self._place = w ** np.arange(N - 1, -1, -1, dtype=np.int64)  # (N,) base-w digits
        self._layer_size = w**N

    # ------------------------------------------------------------------ enumeration
    @property
    def n_states(self) -> int:
        return self.n_layers * self._layer_size + (0 if self.graph == "ring" else 2)

    def index(self, states: np.ndarray) -> np.ndarray:
        st = np.asarray(states, dtype=np.int64)
        ok = np.all((st >= 0) & (st < self.n_vertices), axis=1)
        st = np.where(ok[:, None], st, 0)
        layer = self.layer_of[st]  # (B, N)
        same = np.all(layer == layer[:, :1], axis=1)
        lay = layer[:, 0]
        code = (lay - 1) * self._layer_size + self.slot_of[st] @ self._place
        if self.graph == "ring":
            return np.where(ok & same, code, -1)
        idx = np.where(lay == 0, 0, np.where(lay == self.n_layers + 1, self.n_states - 1, 1 + code))
        return np.where(ok & same, idx, -1)

    def decode(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        if np.any((idx < 0) | (idx >= self.n_states)):
            raise ValueError(f"state indices must be in [0, {self.n_states})")
        ring = self.graph == "ring"
        inner = idx if ring else np.clip(idx - 1, 0, self.n_layers * self._layer_size - 1)
        layer, code = np.divmod(inner, self._layer_size)
        slots = (code[:, None] // self._place) % self.width
        st = (0 if ring else 1) + layer[:, None] * self.width + slots
        if ring:
            return st
        st[idx == 0] = self.source
        st[idx == self.n_states - 1] = self.sink
        return st

    def states(self) -> np.ndarray:
        return self.decode(np.arange(self.n_states))

    def initial_distribution(self) -> tuple[np.ndarray, np.ndarray]:
        if self.graph == "ring":  # uniform over every state
            return self.states(), np.full(self.n_states, 1.0 / self.n_states)
        return np.full((1, self.n_agents), self.source, np.int64), np.ones(1)

    def sample_initial(self, n: int, rng: np.random.Generator | int | None) -> np.ndarray:
        rng = V.generator(rng)
        if self.graph == "ring":  # a uniform state: a uniform layer, then a uniform vertex per agent
            layer = rng.integers(self.n_layers, size=(n, 1))
            return layer * self.width + rng.integers(self.width, size=(n, self.n_agents))
        return super().sample_initial(n, rng)

    def terminal(self, states: np.ndarray) -> np.ndarray:
        if self.at_sink == "restart":
            return np.zeros(len(states), bool)
        return np.all(np.asarray(states) == self.sink, axis=1)

    # ------------------------------------------------------------------ observations
    def state_features(self, states: np.ndarray) -> np.ndarray:
        """One-hot vertex of every agent, (B, N) -> (B, N * V) float32 (agent-major)."""
        st = np.asarray(states, dtype=np.int64)
        B, N = st.shape
        out = np.zeros((B, N, self.n_vertices), np.float32)
        out[np.arange(B)[:, None], np.arange(N), st] = 1.0
        return out.reshape(B, N * self.n_vertices)

    @property
    def n_state_features(self) -> int:
        """N * V."""
        return self.n_agents * self.n_vertices

    def own_observation(self, states: np.ndarray) -> np.ndarray:
        """Each agent's own vertex, (B, N) -> (B, N) int64 in [0, V)."""
        return np.asarray(states, dtype=np.int64)

    # ------------------------------------------------------------------ dynamics
    def chosen_edges(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Edge id each agent chooses, shape (B, N)."""
        return self.edge_of[states, actions]

    def _counts(self, keys: np.ndarray, n_keys: int) -> np.ndarray:
        """Per-row histogram of keys (B, N) over range(n_keys) -> (B, n_keys)."""
        B = len(keys)
        flat = (np.arange(B)[:, None] * n_keys + keys).ravel()
        return np.bincount(flat, minlength=B * n_keys).reshape(B, n_keys)

    def _resources(self, edges: np.ndarray) -> tuple[np.ndarray, int]:
        """The congestible resource of each choice: the edge, or its head vertex."""
        if self.load == "edge":
            return edges, self.n_edges
        return self.head[edges], self.n_vertices

    def loads(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Load of each agent's chosen resource, shape (B, N) int64."""
        res, n = self._resources(self.chosen_edges(states, actions))
        if len(res) * n <= _DENSE_COUNT_LIMIT:
            counts = self._counts(res, n)
            return np.take_along_axis(counts, res, axis=1)
        _, _, counts, group = row_counts(res, n)  # memory O(B N), not O(B x resources)
        return counts[group]

    def step(
        self, states: np.ndarray, actions: np.ndarray, noise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        rewards = self.f[self.loads(states, actions)]
        if self.graph == "dag":
            sink_reward = self.restart_reward if self.at_sink == "restart" else 0.0
            rewards = np.where(states == self.sink, sink_reward, rewards)
        taken = actions if noise.shape[1] == 0 else (actions + noise) % self.width
        return self.head[self.edge_of[states, taken]], rewards

    def potential(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Rosenthal's potential sum_r F(load_r) over resources; N*c on the t -> s edge."""
        res, n = self._resources(self.chosen_edges(states, actions))
        if len(res) * n <= _DENSE_COUNT_LIMIT:
            phi = self.F[self._counts(res, n)].sum(axis=1)
        else:
            rows, _, counts, _ = row_counts(res, n)
            phi = np.bincount(rows, weights=self.F[counts], minlength=len(res))
        if self.graph == "ring":
            return phi
        all_sink = np.all(states == self.sink, axis=1)
        sink_phi = self.n_agents * self.restart_reward if self.at_sink == "restart" else 0.0
        return np.where(all_sink, sink_phi, phi)
