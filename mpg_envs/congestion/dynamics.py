"""Vectorised dynamics of the stochastic congestion game (paper 001, Example 1 and §4.2).

Graph: a layered DAG ``s -> L layers of width w -> t``, fully connected between consecutive
layers. Vertex ids: ``s = 0``; vertex ``j`` of layer ``l`` (1-based) is ``1 + (l-1)*w + j``;
``t = 1 + L*w``. A state is the vertex of every agent, shape (N,). Because every agent moves one
edge per step, all agents are always in the same layer, so the reachable states are: all at s,
``w**N`` placements in each of the L layers, all at t -- ``2 + L*w**N`` states (514 for the
default graph with N = 8).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mpg_envs.core import Dynamics

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
    if isinstance(reward, str):
        if reward != "inverse":
            raise ValueError(f"reward must be 'inverse', a callable or {n_agents} numbers, got {reward!r}")
        vals = 1.0 / loads
    elif callable(reward):
        vals = np.asarray(reward(loads.astype(np.float64)), dtype=np.float64)
    else:
        vals = np.asarray(reward, dtype=np.float64)
    if vals.shape != (n_agents,) or not np.all(np.isfinite(vals)):
        raise ValueError(
            f"reward must give a finite f(l) for each load l = 1..{n_agents} (shape ({n_agents},)), "
            f"got {vals!r}"
        )
    return np.concatenate([[0.0], vals])


class CongestionDynamics(Dynamics):
    """Dynamics of the stochastic congestion game; see :mod:`mpg_envs.congestion.env` for the spec.

    Args:
        n_agents: N >= 1.
        n_layers: L >= 1 internal layers.
        width: w >= 1 vertices per layer (= number of actions).
        reward: f(load), see :func:`reward_table`.
        load: ``"edge"`` (agents choosing the same edge) or ``"vertex"`` (same next vertex).
        at_sink: ``"restart"`` (t -> s edge with constant reward) or ``"terminate"``.
        restart_reward: Reward of the t -> s edge in restart mode.
        slip: Probability that an agent's move follows a uniformly random out-edge instead of the
            chosen one (the reward still follows the chosen edge's load).
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
    ) -> None:
        for name, v in (("n_agents", n_agents), ("n_layers", n_layers), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if load not in ("edge", "vertex"):
            raise ValueError(f"load must be 'edge' or 'vertex', got {load!r}")
        if at_sink not in ("restart", "terminate"):
            raise ValueError(f"at_sink must be 'restart' or 'terminate', got {at_sink!r}")
        if not (isinstance(slip, (int, float, np.floating)) and 0.0 <= slip <= 1.0):
            raise ValueError(f"slip must be a probability in [0, 1], got {slip!r}")
        if not np.isfinite(restart_reward):
            raise ValueError(f"restart_reward must be finite, got {restart_reward!r}")
        N, L, w = int(n_agents), int(n_layers), int(width)
        if L * w**N >= _MAX_INDEX:
            raise ValueError(
                f"{L} layers of width {w} with {N} agents give {L * w**N + 2:.3e} states, too many "
                "to index with int64"
            )
        self.n_agents, self.n_layers, self.width = N, L, w
        self.load, self.at_sink = load, at_sink
        self.restart_reward, self.slip = float(restart_reward), float(slip)
        self.action_sizes = (w,) * N
        self.state_dim = N
        self.f = reward_table(reward, N)  # (N+1,)
        self.F = np.cumsum(self.f)  # Rosenthal: F(l) = sum_{k<=l} f(k), F(0) = 0
        V = L * w + 2
        self.n_vertices, self.source, self.sink = V, 0, V - 1
        # layer and slot of each vertex
        self.layer_of = np.array([0] + [1 + i // w for i in range(L * w)] + [L + 1], np.int64)
        self.slot_of = np.array([0] + [i % w for i in range(L * w)] + [0], np.int64)
        # edges: (tail, head); out-edge table edge_of[v, a] = out[v][a mod outdeg(v)]
        out: list[list[int]] = [[] for _ in range(V)]
        tails, heads = [], []

        def add(u: int, v: int) -> None:
            out[u].append(len(tails))
            tails.append(u)
            heads.append(v)

        for j in range(w):
            add(0, 1 + j)
        for layer in range(1, L):
            for j in range(w):
                for k in range(w):
                    add(1 + (layer - 1) * w + j, 1 + layer * w + k)
        for j in range(w):
            add(1 + (L - 1) * w + j, self.sink)
        add(self.sink, self.source if at_sink == "restart" else self.sink)
        self.tail, self.head = np.array(tails, np.int64), np.array(heads, np.int64)
        self.n_edges = len(tails)
        self.edge_of = np.array([[o[a % len(o)] for a in range(w)] for o in out], np.int64)  # (V, w)
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
        return 2 + self.n_layers * self._layer_size

    def index(self, states: np.ndarray) -> np.ndarray:
        st = np.asarray(states, dtype=np.int64)
        ok = np.all((st >= 0) & (st < self.n_vertices), axis=1)
        st = np.where(ok[:, None], st, 0)
        layer = self.layer_of[st]  # (B, N)
        same = np.all(layer == layer[:, :1], axis=1)
        lay = layer[:, 0]
        inner = 1 + (lay - 1) * self._layer_size + self.slot_of[st] @ self._place
        idx = np.where(lay == 0, 0, np.where(lay == self.n_layers + 1, self.n_states - 1, inner))
        return np.where(ok & same, idx, -1)

    def decode(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        if np.any((idx < 0) | (idx >= self.n_states)):
            raise ValueError(f"state indices must be in [0, {self.n_states})")
        inner = np.clip(idx - 1, 0, self.n_layers * self._layer_size - 1)
        layer, code = np.divmod(inner, self._layer_size)
        slots = (code[:, None] // self._place) % self.width
        st = 1 + layer[:, None] * self.width + slots
        st[idx == 0] = self.source
        st[idx == self.n_states - 1] = self.sink
        return st

    def states(self) -> np.ndarray:
        return self.decode(np.arange(self.n_states))

    def initial_distribution(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full((1, self.n_agents), self.source, np.int64), np.ones(1)

    def terminal(self, states: np.ndarray) -> np.ndarray:
        if self.at_sink == "restart":
            return np.zeros(len(states), bool)
        return np.all(np.asarray(states) == self.sink, axis=1)

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
        counts = self._counts(res, n)
        return np.take_along_axis(counts, res, axis=1)

    def step(
        self, states: np.ndarray, actions: np.ndarray, noise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        at_sink = states == self.sink
        rewards = self.f[self.loads(states, actions)]
        sink_reward = self.restart_reward if self.at_sink == "restart" else 0.0
        rewards = np.where(at_sink, sink_reward, rewards)
        taken = actions if noise.shape[1] == 0 else (actions + noise) % self.width
        return self.head[self.edge_of[states, taken]], rewards

    def potential(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Rosenthal's potential sum_r F(load_r) over resources; N*c on the t -> s edge."""
        res, n = self._resources(self.chosen_edges(states, actions))
        phi = self.F[self._counts(res, n)].sum(axis=1)
        all_sink = np.all(states == self.sink, axis=1)
        sink_phi = self.n_agents * self.restart_reward if self.at_sink == "restart" else 0.0
        return np.where(all_sink, sink_phi, phi)
