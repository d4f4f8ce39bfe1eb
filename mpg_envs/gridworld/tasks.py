"""Single-agent tabular tasks for multi-task RL (paper 004): grids, chains and named layouts.

A :class:`Task` is a small MDP over ``S`` cells and ``A`` actions with rewards paid on *arrival*
(+1 goal, -1 obstacle, 0 otherwise) and absorbing zero-reward terminal cells. Every task of a
multi-task problem shares the state and action spaces (one shared policy ``pi(a | cell)``).

Grid text format (one string per task, rows separated by newlines or ``/``)::

    .  empty        S  start (uniform over all S; none = uniform over free non-terminal cells)
    G  goal (+1, terminal)     #  obstacle (-1, terminal)     W  wall (cannot be entered)

Actions on grids: 0 up, 1 down, 2 left, 3 right; moving off the grid or into a wall stays put.
With ``slip > 0`` a uniformly random action replaces the chosen one with probability ``slip``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mpg_envs import _validate as V
from mpg_envs._repr import Raw, concise_repr

__all__ = [
    "Task",
    "GridSpec",
    "grid_task",
    "chain_tasks",
    "LAYOUTS",
    "layout_tasks",
    "layout_text",
    "GRID_ACTIONS",
]

GRID_ACTIONS = ("up", "down", "left", "right")
#: Most cells of a grid task: its transition table is a dense (S, 4, S) array (S = 1,600, a 40x40
#: grid: 82 MB, about 0.5 GB and 1 s to compile with slip).
MAX_GRID_CELLS = 1_600
#: Most memory the dense transition tables of one layout's tasks may take together.
MAX_TASK_TABLE_BYTES = 2**29
_MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]])
_CHARS = set(".SG#W")


def _task_array(task: str, name: str, value: object, **kw: object) -> np.ndarray:
    """:func:`mpg_envs._validate.real_array`, its message prefixed with the task's name."""
    try:
        return V.real_array(name, value, **kw)
    except ValueError as err:
        raise type(err)(f"task {task!r}: {err}") from None


@dataclass(frozen=True, eq=False)
class Task:
    """One task: a tabular single-agent MDP with arrival rewards.

    Attributes:
        P: Transition probabilities P(s' | s, a), shape (S, A, S).
        reward: Reward for arriving in s' from a non-terminal state, shape (S,).
        terminal: Absorbing zero-reward cells, shape (S,) bool.
        start: Initial distribution, shape (S,).
        shape: (rows, cols) used to draw the task (a chain is one row).
        walls: Cells that can never be occupied, shape (S,) bool.
        action_names: Names of the A actions.
        name: Label.
    """

    P: np.ndarray
    reward: np.ndarray
    terminal: np.ndarray
    start: np.ndarray
    shape: tuple[int, int]
    walls: np.ndarray = field(default=None)  # type: ignore[assignment]
    action_names: tuple[str, ...] = GRID_ACTIONS
    name: str = ""

    def __repr__(self) -> str:
        return concise_repr(
            self,
            name=self.name,
            shape=Raw(f"{self.shape[0]}x{self.shape[1]}"),
            states=self.P.shape[0],
            actions=self.action_names,
            goals=int((self.terminal & (self.reward > 0)).sum()),
            P=self.P,
        )

    def __post_init__(self) -> None:
        P = _task_array(self.name, "P", self.P, what="an array of probabilities (S, A, S)")
        if P.ndim != 3 or P.shape[0] != P.shape[2]:
            raise ValueError(f"task {self.name!r}: P must have shape (S, A, S), got {P.shape}")
        S, A, _ = P.shape
        dev = np.abs(P.sum(axis=2) - 1)
        if np.any(P < 0) or np.any(dev > 1e-9):
            s, a = np.unravel_index(
                int(dev.argmax() if dev.max() > 1e-9 else P.min(axis=2).argmin()), dev.shape
            )
            raise ValueError(
                f"task {self.name!r}: P(. | s, a) must be probability vectors, got P[{s}, {a}] = "
                f"{P[s, a].tolist()}"
            )
        term = np.asarray(self.terminal, dtype=bool)
        walls = np.zeros(S, bool) if self.walls is None else np.asarray(self.walls, dtype=bool)
        start = _task_array(self.name, "start", self.start)
        reward = _task_array(self.name, "reward", self.reward, finite=False)
        for nm, arr in (("reward", reward), ("terminal", term), ("start", start), ("walls", walls)):
            if arr.shape != (S,):
                raise ValueError(f"task {self.name!r}: {nm} must have shape ({S},), got {arr.shape}")
        if not np.all(np.isfinite(reward)):
            raise ValueError(f"task {self.name!r}: rewards must be finite")
        if start.min() < 0 or abs(start.sum() - 1) > 1e-9:
            raise ValueError(
                f"task {self.name!r}: start must be a probability vector, got {V.show(self.start)}"
            )
        if np.any(start[term | walls] > 0):
            raise ValueError(
                f"task {self.name!r}: the start distribution puts mass on a terminal or wall cell"
            )
        ts = np.flatnonzero(term)
        if np.any(P[ts, :, ts] != 1.0):
            raise ValueError(f"task {self.name!r}: terminal cells must be absorbing")
        shape = tuple(self.shape) if isinstance(self.shape, (tuple, list)) else ()
        if len(shape) != 2 or not all(V.is_integer(x) for x in shape):
            raise ValueError(f"task {self.name!r}: shape must be (rows, cols), got {V.show(self.shape)}")
        object.__setattr__(self, "shape", (int(shape[0]), int(shape[1])))
        if len(self.action_names) != A or self.shape[0] * self.shape[1] != S:
            raise ValueError(f"task {self.name!r}: shape/action_names do not match S={S}, A={A}")
        for k, v in (("P", P), ("reward", reward), ("terminal", term), ("start", start), ("walls", walls)):
            v.setflags(write=False)
            object.__setattr__(self, k, v)

    @property
    def n_cells(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    @property
    def goals(self) -> np.ndarray:
        """Terminal cells with a positive arrival reward, indices."""
        return np.flatnonzero(self.terminal & (self.reward > 0))

    @property
    def obstacles(self) -> np.ndarray:
        """Terminal cells with a negative arrival reward, indices."""
        return np.flatnonzero(self.terminal & (self.reward < 0))

    def compiled(self) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic next-cell table driven by one categorical noise variable.

        Every row P(. | s, a) is sampled by inverse CDF from one shared uniform; cutting [0, 1] at
        the union of all rows' CDF breakpoints gives K intervals, each mapped to one next cell per
        row. This represents any P exactly.

        Returns:
            next_cell (S, A, K) int64 and noise probabilities (K,).
        """
        cdf = np.round(np.cumsum(self.P, axis=2), 12)
        cuts = np.unique(np.concatenate([[0.0, 1.0], cdf.ravel()]))
        cuts = cuts[(cuts >= 0.0) & (cuts <= 1.0)]
        probs = np.diff(cuts)
        mids = (cuts[:-1] + cuts[1:]) / 2
        nxt = (cdf[:, :, None, :] <= mids[None, None, :, None]).sum(axis=3)
        return np.minimum(nxt, self.n_cells - 1).astype(np.int64), probs


# --------------------------------------------------------------------------------------- grids
@dataclass(frozen=True)
class GridSpec:
    """A grid task by coordinates; validated on construction.

    Attributes:
        shape: (rows, cols).
        goals, obstacles, walls, starts: Tuples of (row, col) cells. No start = uniform over the
            free non-terminal cells.
        name: Label.
    """

    shape: tuple[int, int]
    goals: tuple[tuple[int, int], ...] = ()
    obstacles: tuple[tuple[int, int], ...] = ()
    walls: tuple[tuple[int, int], ...] = ()
    starts: tuple[tuple[int, int], ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        shape = tuple(self.shape) if isinstance(self.shape, (tuple, list)) else ()
        if len(shape) != 2 or not all(V.is_integer(x) for x in shape):
            raise V.ArgumentTypeError(
                f"grid {self.name!r}: shape must be (rows, cols), got {V.show(self.shape)}"
            )
        H, W = (int(x) for x in shape)
        if H < 1 or W < 1:
            raise ValueError(f"grid {self.name!r}: shape must be positive, got {self.shape}")
        _check_cells(H * W, f"grid {self.name!r} of {H}x{W}")
        kinds = {"goal": self.goals, "obstacle": self.obstacles, "wall": self.walls, "start": self.starts}
        seen: dict[tuple[int, int], str] = {}
        for kind, cells in kinds.items():
            for rc in cells:
                if not (isinstance(rc, (tuple, list)) and len(rc) == 2 and all(V.is_integer(x) for x in rc)):
                    raise ValueError(
                        f"grid {self.name!r}: a {kind} must be a (row, col) pair of ints, got {V.show(rc)}"
                    )
                r, c = (int(x) for x in rc)
                if not (0 <= r < H and 0 <= c < W):
                    raise ValueError(f"grid {self.name!r}: {kind} {tuple(rc)} is outside the {H}x{W} grid")
                if tuple(rc) in seen:
                    raise ValueError(
                        f"grid {self.name!r}: cell {tuple(rc)} is both a {seen[tuple(rc)]} and a {kind}"
                    )
                seen[tuple(rc)] = kind

    @classmethod
    def from_text(cls, text: str, name: str = "") -> GridSpec:
        """Parse the text format (see module docstring)."""
        if not isinstance(text, str):
            raise V.ArgumentTypeError(f"grid {name!r}: a grid layout must be a str, got {V.show(text)}")
        rows = [r.strip() for r in text.replace("/", "\n").strip().splitlines() if r.strip()]
        if not rows:
            raise ValueError(f"grid {name!r}: empty layout")
        _check_cells(sum(len(r) for r in rows), f"grid {name!r} of {len(rows)}x{len(rows[0])}")
        width = len(rows[0])
        if any(len(r) != width for r in rows):
            raise ValueError(f"grid {name!r}: rows have different lengths {[len(r) for r in rows]}")
        bad = sorted({ch for r in rows for ch in r} - _CHARS)
        if bad:
            raise ValueError(f"grid {name!r}: unknown characters {bad}; allowed: . S G # W")
        cells: dict[str, list[tuple[int, int]]] = {ch: [] for ch in "SG#W"}
        for i, r in enumerate(rows):
            for j, ch in enumerate(r):
                if ch != ".":
                    cells[ch].append((i, j))
        return cls(
            (len(rows), width),
            goals=tuple(cells["G"]),
            obstacles=tuple(cells["#"]),
            walls=tuple(cells["W"]),
            starts=tuple(cells["S"]),
            name=name,
        )

    def to_text(self) -> str:
        """The layout in the text format, rows joined by newlines."""
        H, W = self.shape
        g = np.full((H, W), ".")
        for ch, cells in (("G", self.goals), ("#", self.obstacles), ("W", self.walls), ("S", self.starts)):
            for r, c in cells:
                g[r, c] = ch
        return "\n".join("".join(row) for row in g)

    def task(self, slip: float = 0.0) -> Task:
        """Compile to a :class:`Task` (4 moves, arrival rewards, optional slip)."""
        slip = V.probability("slip", slip)
        H, W = self.shape
        S = H * W

        def mask(cells) -> np.ndarray:
            m = np.zeros(S, bool)
            for r, c in cells:
                m[r * W + c] = True
            return m

        goal, obst, wall = mask(self.goals), mask(self.obstacles), mask(self.walls)
        term = goal | obst
        rc = np.stack(np.divmod(np.arange(S), W), axis=1)  # (S, 2)
        tgt = rc[:, None, :] + _MOVES[None]  # (S, 4, 2)
        inside = (tgt[..., 0] >= 0) & (tgt[..., 0] < H) & (tgt[..., 1] >= 0) & (tgt[..., 1] < W)
        flat = np.where(inside, tgt[..., 0] * W + tgt[..., 1], 0)
        dest = np.where(inside & ~wall[flat], flat, np.arange(S)[:, None])  # (S, 4)
        dest[term | wall] = np.flatnonzero(term | wall)[:, None]  # absorbing (walls never entered)
        move = np.zeros((S, 4, S))
        np.put_along_axis(move, dest[..., None], 1.0, axis=2)
        P = (1 - slip) * move + slip * move.mean(axis=1, keepdims=True)
        P[term | wall] = move[term | wall]
        if self.starts:
            start = mask(self.starts).astype(float)
        else:
            start = (~(term | wall)).astype(float)
            if start.sum() == 0:
                raise ValueError(
                    f"grid {self.name!r}: no free cell to start from in {V.show(self.to_text())}"
                )
        reward = np.where(goal, 1.0, np.where(obst, -1.0, 0.0))
        return Task(P, reward, term, start / start.sum(), (H, W), walls=wall, name=self.name)


def grid_task(text: str, slip: float = 0.0, name: str = "") -> Task:
    """A grid :class:`Task` from the text format."""
    return GridSpec.from_text(text, name=name).task(slip)


# --------------------------------------------------------------------------------------- chains
def chain_tasks(variant: str = "reversed", p: float = 0.75, slip: float = 0.0) -> list[Task]:
    """The two 5-state, 2-task chains of paper 004 §2.2 (actions 0 = L, 1 = R; start S_3).

    Task 1 pays +1 for reaching S_1 and -1 for S_5; task 2 the reverse; both are absorbing.

    Args:
        variant: ``"reversed"`` (first example: L/R move deterministically, except that task 2
            reverses them in S_2 and S_4) or ``"slip"`` (second example: in S_2 and S_4 the move
            ignores the action, task 1 going left with prob. 1 - p, task 2 with prob. p).
        p: The second example's probability, in (0.5, 1] in the paper (any [0, 1] accepted).
        slip: Probability that a uniformly random action replaces the chosen one (0 in the
            paper), as on grids.
    """
    if not (isinstance(variant, str) and variant in ("reversed", "slip")):
        raise ValueError(f"chain variant must be 'reversed' or 'slip', got {V.show(variant)}")
    p = V.probability("p", p)
    slip = V.probability("slip", slip)
    S, L, R = 5, 0, 1
    tasks = []
    for k in range(2):
        P = np.zeros((S, 2, S))
        P[0, :, 0] = P[4, :, 4] = 1.0
        for s in (1, 2, 3):
            P[s, L, s - 1] = P[s, R, s + 1] = 1.0
        if variant == "reversed" and k == 1:
            for s in (1, 3):
                P[s] = P[s, ::-1]
        if variant == "slip":
            left = 1 - p if k == 0 else p
            for s in (1, 3):
                P[s, :, :] = 0.0
                P[s, :, s - 1], P[s, :, s + 1] = left, 1 - left
        reward = np.array([1.0, 0, 0, 0, -1.0]) * (1 if k == 0 else -1)
        term = np.array([True, False, False, False, True])
        start = np.eye(S)[2]
        P[~term] = (1 - slip) * P[~term] + slip * P[~term].mean(axis=1, keepdims=True)
        tasks.append(
            Task(P, reward, term, start, (1, S), action_names=("L", "R"), name=f"chain_{variant}_{k + 1}")
        )
    return tasks


# --------------------------------------------------------------------------------------- layouts
# Our reconstruction of paper 004 Fig. 2 (the figure is not in the text): 10x10 grids, one task per
# agent, goals G_i and obstacles per task; start top-left unless stated.
_GOALS = [(1, 8), (8, 8), (8, 1), (4, 4)]
_OBST = [
    [(0, 5), (1, 5), (2, 5)],
    [(6, 7), (6, 8), (6, 9)],
    [(7, 3), (8, 3), (9, 3)],
    [(3, 3), (3, 4), (3, 5)],
]


def _specs(goals, obstacles, start, name) -> list[GridSpec]:
    return [
        GridSpec((10, 10), goals=(g,), obstacles=tuple(o), starts=(start,), name=f"{name}_{i + 1}")
        for i, (g, o) in enumerate(zip(goals, obstacles))
    ]


def _named(name: str) -> list[GridSpec]:
    obst = [list(o) for o in _OBST]
    goals = list(_GOALS)
    if name == "no_conflict":
        return _specs(goals, obst, (0, 0), name)
    if name == "resolvable_conflict":  # an obstacle of task 2 is the goal of task 3
        obst[1].append(goals[2])
        return _specs(goals, obst, (0, 0), name)
    if name == "unresolvable_conflict":  # goal of task 2 is an obstacle of task 3 and vice versa
        obst[1].append(goals[2])
        obst[2].append(goals[1])
        return _specs(goals, obst, (0, 0), name)
    if name in ("start_top_left", "start_top_right"):  # Fig. 2 (d) / (e): six tasks
        # task 5 (goal near the top-right corner) blocks the left column and task 6's goal: from
        # the top-left start, collecting everything needs a detour to the right first.
        goals += [(0, 7), (9, 0)]
        obst += [[(9, 0), (5, 0), (5, 1)], []]
        start = (0, 0) if name == "start_top_left" else (0, 9)
        return _specs(goals, obst, start, name)
    raise KeyError(name)


#: Named layouts -> short description.
LAYOUTS = {
    "no_conflict": "Fig. 2(a): 4 tasks, no task's obstacle is another's goal",
    "resolvable_conflict": "Fig. 2(b): 4 tasks, an obstacle of task 2 is the goal of task 3",
    "unresolvable_conflict": "Fig. 2(c): 4 tasks, goals of tasks 2 and 3 are each other's obstacles",
    "start_top_left": "Fig. 2(d): 6 tasks, start in the top-left corner",
    "start_top_right": "Fig. 2(e): the same 6 tasks, start in the top-right corner",
    "chain_reversed": "§2.2 first example: 2 five-state chains, actions reversed in S2/S4 of task 2",
    "chain_slip": "§2.2 second example: 2 five-state chains, action-independent moves in S2/S4",
}


def layout_tasks(layout: str | Sequence[str], slip: float = 0.0, chain_p: float = 0.75) -> list[Task]:
    """Tasks of a named layout, or of custom grids given as one text string per task.

    Args:
        layout: A name in :data:`LAYOUTS` or a non-empty sequence of grid strings (one per task).
        slip: Probability that a uniformly random action replaces the chosen one (every layout).
        chain_p: The ``"chain_slip"`` layout's p (validated for every layout).

    Raises:
        ValueError: Unknown name, malformed text, too many cells or tasks, tasks with different grid
            shapes, or a slip / chain_p that is not a probability.
    """
    slip = V.probability("slip", slip)
    chain_p = V.probability("chain_p", chain_p)
    if isinstance(layout, str):
        if layout == "chain_reversed":
            return chain_tasks("reversed", slip=slip)
        if layout == "chain_slip":
            return chain_tasks("slip", chain_p, slip=slip)
        if layout not in LAYOUTS:
            raise ValueError(
                f"unknown layout {layout!r}; named layouts: {sorted(LAYOUTS)}, "
                "or pass one grid string per task"
            )
        return [spec.task(slip) for spec in _named(layout)]
    what = "a layout name or a non-empty sequence of grid strings, one per task"
    if not isinstance(layout, Sequence) or isinstance(layout, bytes):
        raise V.ArgumentTypeError(f"layout must be {what}, got {V.show(layout)}")
    texts = list(layout)
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if not texts or bad is not None:
        detail = f" (item {V.show(bad)} is not a str)" if texts else ""
        raise ValueError(f"layout must be {what}, got {V.show(layout)}{detail}")
    from mpg_envs.core import MAX_AGENTS

    if len(texts) > MAX_AGENTS:
        raise ValueError(
            f"a custom layout has one task per agent, at most {MAX_AGENTS:,}; got {len(texts):,}"
        )
    specs = [GridSpec.from_text(t, name=f"task_{i + 1}") for i, t in enumerate(texts)]
    shapes = {spec.shape for spec in specs}
    if len(shapes) > 1:
        raise ValueError(f"all tasks must share one grid shape (one state space), got {sorted(shapes)}")
    H, W = specs[0].shape
    nbytes = len(specs) * (H * W) ** 2 * len(GRID_ACTIONS) * 8
    if nbytes > MAX_TASK_TABLE_BYTES:
        raise ValueError(
            f"{len(specs):,} tasks of {H * W:,} cells need {nbytes / 2**30:.1f} GiB of dense (S, 4, S) "
            f"transition tables, over the limit of {MAX_TASK_TABLE_BYTES / 2**30:.1f} GiB; use fewer tasks "
            "or smaller grids"
        )
    return [spec.task(slip) for spec in specs]


def _check_cells(n_cells: int, what: str) -> None:
    if n_cells > MAX_GRID_CELLS:
        raise ValueError(
            f"{what} has {n_cells:,} cells, over the limit of {MAX_GRID_CELLS:,} (a task's transition "
            "table is a dense (S, 4, S) array); use a smaller grid"
        )


def layout_text(layout: str) -> list[str]:
    """The text form of a named grid layout, one string per task."""
    if layout not in LAYOUTS or layout.startswith("chain"):
        raise ValueError(f"layout_text needs a named grid layout, got {layout!r}")
    return [spec.to_text() for spec in _named(layout)]
