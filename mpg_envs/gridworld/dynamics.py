"""Vectorised dynamics of N independent tasks stepped in parallel (one agent per task).

A state is the cell of every agent, shape (N,); the joint index is
``np.ravel_multi_index(cells, (S,) * N)``. Each agent's move depends only on its own cell, action
and noise (its task's compiled next-cell table, see :meth:`Task.compiled`); it is paid its task's
arrival reward and is done when it reaches one of its task's terminal cells. The joint state is
terminal when every agent is done.

The same class with a single task is the dynamics of one task: :meth:`task_dynamics` builds it,
so the per-task exact models come from this code too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mpg_envs import _validate as V
from mpg_envs.core import MAX_AGENTS, Dynamics
from mpg_envs.gridworld.tasks import Task
from mpg_envs.model import ravel_actions, unravel_actions

_MAX_INDEX = 1 << 62


class MultiTaskDynamics(Dynamics):
    """N tasks with a common cell and action space, stepped in lock-step.

    Args:
        tasks: The tasks (same number of cells and actions).
    """

    def __init__(self, tasks: Sequence[Task]) -> None:
        tasks = list(tasks)
        if not tasks:
            raise ValueError("need at least one task")
        bad = next((t for t in tasks if not isinstance(t, Task)), None)
        if bad is not None:
            raise V.ArgumentTypeError(f"tasks must be Task objects, got {V.show(bad)}")
        S, A = tasks[0].n_cells, tasks[0].n_actions
        if any(t.n_cells != S or t.n_actions != A for t in tasks):
            raise ValueError("all tasks must share the number of cells and of actions")
        N = len(tasks)
        if N > MAX_AGENTS:
            raise ValueError(f"{N:,} tasks (one agent each) are over the limit of {MAX_AGENTS:,} agents")
        log10_states = N * math.log10(S)
        if log10_states > 19 or S**N >= _MAX_INDEX:
            count = V.format_count(S**N) if log10_states < 30 else f"~10^{log10_states:.0f}"
            raise ValueError(
                f"{N:,} tasks of {S:,} cells give {count} joint states, over the limit of {_MAX_INDEX:,} "
                "that int64 state indices can address; use fewer tasks or smaller grids"
            )
        self.tasks = tasks
        self.n_agents, self.n_cells = N, S
        self.own_observation_size = S  # "own" mode: the agent's cell (what a shared policy reads)
        self.action_sizes = (A,) * N
        self.state_dim = N
        compiled = [t.compiled() for t in tasks]
        K = max(len(p) for _, p in compiled)
        self.next_cell = np.stack(
            [
                np.concatenate([nx, np.repeat(nx[..., -1:], K - nx.shape[2], axis=2)], axis=2)
                for nx, _ in compiled
            ]
        )  # (N, S, A, K)
        self.noise_probs = tuple(p for _, p in compiled)
        self.cell_terminal = np.stack([t.terminal for t in tasks])  # (N, S)
        self.arrival = np.stack([t.reward for t in tasks])  # (N, S)
        probs = np.zeros((N, K))
        for i, (_, p) in enumerate(compiled):
            probs[i, : len(p)] = p
        # expected arrival reward of (cell, action), 0 in terminal cells: (N, S, A)
        exp_r = np.einsum(
            "nk,nsak->nsa",
            probs,
            np.take_along_axis(
                np.broadcast_to(self.arrival[:, None, None, :], (N, S, A, S)), self.next_cell, axis=3
            ),
        )
        self.expected_reward = np.where(self.cell_terminal[:, :, None], 0.0, exp_r)
        self._agents = np.arange(N)

    def task_dynamics(self, i: int) -> MultiTaskDynamics:
        """The dynamics of task i alone (a single-agent game)."""
        return MultiTaskDynamics([self.tasks[i]])

    # ------------------------------------------------------------------ enumeration
    @property
    def n_states(self) -> int:
        return self.n_cells**self.n_agents

    def index(self, states: np.ndarray) -> np.ndarray:
        st = np.asarray(states, dtype=np.int64)
        ok = np.all((st >= 0) & (st < self.n_cells), axis=1)
        idx = ravel_actions(np.where(ok[:, None], st, 0), (self.n_cells,) * self.n_agents)
        return np.where(ok, idx, -1)

    def decode(self, indices: np.ndarray) -> np.ndarray:
        idx = np.asarray(indices, dtype=np.int64)
        return unravel_actions(idx, (self.n_cells,) * self.n_agents)

    def states(self) -> np.ndarray:
        return self.decode(np.arange(self.n_states))

    def initial_distribution(self) -> tuple[np.ndarray, np.ndarray]:
        supports = [np.flatnonzero(t.start) for t in self.tasks]
        grids = np.meshgrid(*supports, indexing="ij")
        st = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
        p = np.prod([self.tasks[i].start[st[:, i]] for i in range(self.n_agents)], axis=0)
        return st, p

    def start_error(self, state: np.ndarray) -> str | None:
        """Walls are model states (absorbing, never entered) but no agent can start in one."""
        for i, (task, cell) in enumerate(zip(self.tasks, np.asarray(state).tolist())):
            if task.walls[cell]:
                r, c = divmod(int(cell), task.shape[1])
                return f"agent_{i}'s cell {cell} (row {r}, column {c}) is a wall of its task"
        return None

    def sample_initial(self, n: int, rng: np.random.Generator | int | None) -> np.ndarray:
        """Each task's start cell drawn independently, shape (n, N)."""
        rng = V.generator(rng)
        return np.stack([rng.choice(self.n_cells, size=n, p=t.start) for t in self.tasks], axis=1)

    def agent_terminal(self, states: np.ndarray) -> np.ndarray:
        return self.cell_terminal[self._agents, states]

    def terminal(self, states: np.ndarray) -> np.ndarray:
        return np.all(self.agent_terminal(states), axis=1)

    # ------------------------------------------------------------------ observations
    def state_features(self, states: np.ndarray) -> np.ndarray:
        """One-hot cell of every agent, (B, N) -> (B, N * S) float32 (agent-major)."""
        st = np.asarray(states, dtype=np.int64)
        B, N = st.shape
        out = np.zeros((B, N, self.n_cells), np.float32)
        out[np.arange(B)[:, None], np.arange(N), st] = 1.0
        return out.reshape(B, N * self.n_cells)

    @property
    def n_state_features(self) -> int:
        """N * S (S cells per task)."""
        return self.n_agents * self.n_cells

    def own_observation(self, states: np.ndarray) -> np.ndarray:
        """Each agent's own cell, (B, N) -> (B, N) int64 in [0, S)."""
        return np.asarray(states, dtype=np.int64)

    # ------------------------------------------------------------------ dynamics
    def step(
        self, states: np.ndarray, actions: np.ndarray, noise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        nxt = self.next_cell[self._agents, states, actions, noise]
        done = self.cell_terminal[self._agents, states]
        rewards = np.where(done, 0.0, self.arrival[self._agents, nxt])
        return nxt, rewards

    def potential(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Sum of the tasks' expected rewards: the tasks do not interact, so Phi = sum_i V_i."""
        return self.expected_reward[self._agents, states, actions].sum(axis=1)
