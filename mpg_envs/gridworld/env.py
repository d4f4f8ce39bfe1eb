"""Multi-task GridWorld (``mpg/MultiTaskGridWorld-v0``) and its single tasks (``mpg/GridWorldTask-v0``).

Paper 004 (Zeng et al., *A Decentralized Policy Gradient Approach to Multi-Task RL*), §2.2,
§5.1 and Fig. 2.

**Description.** N tasks, one agent per task; each agent lives in its own copy of a grid with
its own goals (+1, terminal) and obstacles (-1, terminal); rewards are paid on arrival, other
moves pay 0, terminal cells are absorbing. The PettingZoo env steps all tasks in parallel; an
agent is terminated when it reaches one of its task's terminal cells, the others go on. The
multi-task problem seeks **one shared policy** ``pi(a | cell)`` maximising
``sum_i V_i^pi(rho_i)`` (:func:`mpg_envs.exact.multitask_value`); agents that each learn their
own policy just solve their own task.

**Layouts** (``layout=``): named ones (``mpg_envs.gridworld.LAYOUTS``) -- ``"no_conflict"``,
``"resolvable_conflict"``, ``"unresolvable_conflict"`` (4 tasks), ``"start_top_left"`` and
``"start_top_right"`` (6 tasks; the start-state pair of Fig. 2 d/e) on 10x10 grids -- our
reconstruction of Fig. 2, whose picture is not in the paper's text; ``"chain_reversed"`` and
``"chain_slip"`` (the two 5-state, 2-task chains of §2.2; ``chain_p`` sets the second one's
p); or custom grids, one text string per task (``"S..#..G"``; ``.`` empty, ``S`` start, ``G``
goal, ``#`` obstacle, ``W`` wall; rows separated by newlines or ``/``). A grid has at most
``MAX_GRID_CELLS`` = 1,600 cells (its transition table is a dense (S, 4, S) array) and a layout's
tables together at most 0.5 GiB; larger ones are refused before anything is built.

**State.** The cell of every agent; model index ``ravel_multi_index(cells, (S,) * N)``. The joint
model ``env.unwrapped.model()`` exists for small layouts (the chains: 25 states); for 10x10 grids
it has ``100**N`` states and is refused with a clear error -- use the per-task models
``env.unwrapped.task_models()`` (one single-agent :class:`TabularModel` each, built from the same
dynamics) and :func:`mpg_envs.exact.multitask_value` / ``multitask_gradient``.

**Actions.** Grids: ``Discrete(4)``, 0 up, 1 down, 2 left, 3 right (off-grid or into a wall: stay);
chains: ``Discrete(2)``, 0 = L, 1 = R. With ``slip > 0`` a uniformly random action replaces the
chosen one with probability ``slip``, on grids and chains alike (the paper's chains have
``slip=0``).

**Episodes.** ``reset(options={"state": s})`` starts from a joint index or a cell per agent
(shape (N,)); a wall cannot start an episode. ``GridWorldTask-v0`` raises ``RuntimeError`` when
stepped after termination or truncation, until ``reset()``.

**Observations.** ``"own"`` (default) -- the agent's own cell, ``Discrete(S)``: what a shared
policy reads; ``"state"`` -- the joint index, ``Discrete(S**N)`` (over 65,536 values it warns: libraries that
one-hot a Discrete observation run out of memory); ``"vector"`` -- one-hot agent id
+ one-hot cell of every agent; ``"onehot"`` -- float32 one-hot of the joint index, shape
(S**N,), for joint models of at most ``MAX_ONEHOT_STATES`` = 65,536 states (the chains; refused
for the 10x10 layouts, 100**N states). ``state()`` is the one-hot cells of all agents. The
observations come from the dynamics: ``env.unwrapped.dynamics.observe(states, mode)`` gives them
for a batch of state descriptors (B, N), as the batched samplers and the tabulation of a policy
read them. ``GridWorldTask-v0`` takes ``observation="own"`` (default, the cell as an int),
``"state"`` (the same), ``"onehot"`` (one-hot cell, (S,)) or ``"vector"`` ((1 + S,)).

**Infos.** ``{"state": joint index, "cell": own cell}``.

**Potential certificate (measured, tests/test_gridworld.py).** With policies on the agent's own
cell (``observation="own"``) the tasks do not interact and the game is an exact MPG with potential
``sum_i V_i`` (``phi`` = sum of the tasks' expected rewards): both residuals ~1e-15 on the chain
layouts. With policies on the global state it is **not** an MPG: an agent's moves then depend on
where the other agents are, which couples the tasks; on ``chain_slip`` (p = 0.7, gamma = 0.9)
4-cycles sum to 1.59 on a value scale of 0.92 (3.42 on ``chain_reversed``).

**Closed forms (paper 004 App. A, pinned in tests).** First chain: the best shared policy takes L
in S_2, S_4 and L/R with probability 1/2 in S_3, worth ``2 gamma / (2 - gamma^2)``; both
deterministic choices in S_3 are worth ``gamma``. Second chain: always-L and always-R in S_3 are
worth ``gamma (-2 gamma^2 p + gamma^2 + 2p - 1) / (gamma^4 p^2 - gamma^4 p + gamma^2 - 1)`` and
the uniform choice ``gamma (2 - 4p) / (2 - gamma^2)``, all three stationary points of the softmax
objective (exact gradient 0). The paper's specialisations to gamma = sqrt(0.5),
``(2p - 1) / (8 sqrt(2) (p - 2)(p + 1))`` and ``(4 - 8p) / 3``, are wrong: substituting gamma^2 =
1/2 into its own general formulas gives ``sqrt(2) (2p - 1) / ((p - 2)(p + 1))`` and
``sqrt(2) (2 - 4p) / 3``, which the exact model reproduces (the paper's ordering conclusion still
holds).

**Arguments.** ``layout="no_conflict"``, ``slip=0.0`` (probability, every layout),
``chain_p=0.75`` (probability, used by ``"chain_slip"``, checked for every layout),
``gamma=0.95`` (in (0, 1)), ``observation="own"|"state"|"vector"|"onehot"``, ``max_cycles=100``,
``render_mode=None|"human"|"ansi"|"rgb_array"``. ``env.unwrapped.render_rgb(policy)`` draws a
shared policy's most likely path in every task (the paper's Fig. 2 as a picture).

**Version history.** v0: initial release; ``slip`` applies to the chain layouts too (it was
ignored there), walls refused as start cells, ``GridWorldTask-v0`` stops after truncation;
``observation="onehot"`` added (and ``observation=`` for ``GridWorldTask-v0``) without changing
the default observations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np

from mpg_envs import _validate as V
from mpg_envs.core import MAX_ONEHOT_STATES, MPGParallelEnv, _sample_step, build_model
from mpg_envs.gridworld.dynamics import MultiTaskDynamics
from mpg_envs.gridworld.tasks import Task, layout_tasks
from mpg_envs.model import TabularModel

_COLORS = {
    "bg": (255, 255, 255),
    "grid": (200, 200, 200),
    "wall": (70, 70, 70),
    "goal": (250, 210, 40),
    "obstacle": (220, 50, 50),
    "start": (190, 220, 250),
    "path": (150, 230, 150),
    "agent": (30, 60, 200),
}


def _check_gamma(gamma: float) -> float:
    return V.discount("gamma", gamma, allow_one=False, why="tasks may never terminate")


def _check_policy(task: Task, policy: Any) -> np.ndarray | None:
    """A shared policy for drawing: None or a finite (S, A) array."""
    if policy is None:
        return None
    shape = (task.n_cells, task.n_actions)
    p = V.real_array("policy", policy, what=f"an array of shape (S, A) = {shape}")
    if p.shape != shape:
        raise ValueError(f"policy must have shape (S, A) = {shape}, got {p.shape}")
    return p


def most_likely_path(task: Task, policy: np.ndarray | None, max_len: int | None = None) -> list[int]:
    """Cells visited from the likeliest start when taking the likeliest action and next cell.

    Args:
        task: The task.
        policy: Shared policy (S, A); None gives just the start cell.
        max_len: Stop after this many cells (default S); a repeated cell also stops the path.
    """
    policy = _check_policy(task, policy)
    if max_len is not None:
        max_len = V.positive_int("max_len", max_len)
    cell = int(task.start.argmax())
    path = [cell]
    if policy is None:
        return path
    for _ in range(max_len or task.n_cells):
        if task.terminal[cell]:
            break
        cell = int(task.P[cell, int(np.argmax(policy[cell]))].argmax())
        if cell in path:
            path.append(cell)
            break
        path.append(cell)
    return path


def draw_tasks(
    tasks: Sequence[Task],
    cells: Sequence[int] | None = None,
    policy: np.ndarray | None = None,
    cell_px: int = 26,
) -> np.ndarray:
    """Picture of the tasks side by side: walls, goals, obstacles, start, agents, policy paths.

    Args:
        tasks: Tasks to draw (same grid shape).
        cells: Current cell of each task's agent, or None.
        policy: Shared policy (S, A) whose most likely path is drawn in every task, or None.
        cell_px: Pixel size of a cell.

    Returns:
        RGB image (H, W, 3) uint8.
    """
    from mpg_envs import _raster as rz

    tasks = list(tasks)
    if not tasks or not all(isinstance(t, Task) for t in tasks):
        raise V.ArgumentTypeError(f"tasks must be a non-empty sequence of Task, got {V.show(tasks)}")
    policy = _check_policy(tasks[0], policy)
    cell_px = V.positive_int("cell_px", cell_px)
    H, W = tasks[0].shape
    pad, title = 12, 18
    tw, th = W * cell_px, H * cell_px
    img = rz.new_canvas(*_frame_shape(tasks, cell_px))
    for k, task in enumerate(tasks):
        x0, y0 = pad + k * (tw + pad), pad + title
        rz.draw_text(img, f"TASK {k + 1}", x0, 4, (0, 0, 0))
        path = set(most_likely_path(task, policy)) if policy is not None else set()
        for s in range(task.n_cells):
            r, c = divmod(s, W)
            cx, cy = x0 + c * cell_px, y0 + r * cell_px
            if task.walls[s]:
                color = _COLORS["wall"]
            elif s in task.goals:
                color = _COLORS["goal"]
            elif s in task.obstacles:
                color = _COLORS["obstacle"]
            elif s in path:
                color = _COLORS["path"]
            elif task.start[s] > 0:
                color = _COLORS["start"]
            else:
                color = _COLORS["bg"]
            rz.fill_rect(img, cx, cy, cx + cell_px, cy + cell_px, color)
            if s in path and (s in task.goals or s in task.obstacles):
                rz.draw_circle(img, cx + cell_px / 2, cy + cell_px / 2, cell_px / 3, _COLORS["path"], width=3)
        for i in range(H + 1):
            rz.draw_line(img, x0, y0 + i * cell_px, x0 + tw, y0 + i * cell_px, _COLORS["grid"])
        for j in range(W + 1):
            rz.draw_line(img, x0 + j * cell_px, y0, x0 + j * cell_px, y0 + th, _COLORS["grid"])
        if cells is not None:
            r, c = divmod(int(cells[k]), W)
            rz.fill_circle(
                img, x0 + (c + 0.5) * cell_px, y0 + (r + 0.5) * cell_px, cell_px / 4, _COLORS["agent"]
            )
    return img


def _frame_shape(tasks: Sequence[Task], cell_px: int = 26) -> tuple[int, int]:
    """(H, W) of :func:`draw_tasks`' picture."""
    H, W = tasks[0].shape
    pad, title = 12, 18
    return H * cell_px + 2 * pad + title, len(tasks) * (W * cell_px + pad) + pad


def _text_grid(task: Task, cell: int | None) -> str:
    H, W = task.shape
    chars = np.full(task.n_cells, ".")
    chars[task.start > 0] = "S"
    chars[task.walls] = "W"
    chars[task.goals] = "G"
    chars[task.obstacles] = "#"
    if cell is not None:
        chars[cell] = "A"
    return "\n".join("".join(chars[r * W : (r + 1) * W]) for r in range(H))


class MultiTaskGridWorldEnv(MPGParallelEnv):
    """PettingZoo parallel env of the multi-task GridWorld (see module docstring).

    ``model()`` is the joint model (small layouts only); :meth:`task_models` gives one model per
    task.
    """

    agents_finish_separately = True  # each agent ends in its own task's terminal cells
    metadata = {
        "render_modes": ["human", "ansi", "rgb_array"],
        "name": "multitask_gridworld_v0",
        "is_parallelizable": True,
        "render_fps": 4,
    }

    def __init__(
        self,
        layout: str | Sequence[str] = "no_conflict",
        slip: float = 0.0,
        chain_p: float = 0.75,
        gamma: float = 0.95,
        observation: str = "own",
        max_cycles: int = 100,
        render_mode: str | None = None,
    ) -> None:
        self.tasks = layout_tasks(layout, slip=slip, chain_p=chain_p)
        self.layout = layout
        dyn = MultiTaskDynamics(self.tasks)
        super().__init__(
            dyn,
            gamma=_check_gamma(gamma),
            max_cycles=max_cycles,
            observation=observation,
            render_mode=render_mode,
        )
        self._task_models: list[TabularModel] | None = None
        if observation == "state" and dyn.n_states > MAX_ONEHOT_STATES:  # not the default: say why
            gymnasium.logger.warn(
                f"observation='state' is Discrete({dyn.n_states:,}): libraries that one-hot a Discrete "
                f"observation (Stable-Baselines3, RLlib) allocate {dyn.n_states:,} floats per observation "
                "and run out of memory; use observation='own' (the cell: what a shared policy reads) or "
                "'vector' (one network for every agent: parameter sharing)"
            )

    def _frame_shape(self) -> tuple[int, int]:
        return _frame_shape(self.tasks)

    def task_models(self) -> list[TabularModel]:
        """One single-agent exact model per task (S cells, A actions), from the same dynamics."""
        if self._task_models is None:
            self._task_models = [
                build_model(
                    self.dynamics.task_dynamics(i), self.gamma, name=f"{self.metadata['name']}/task{i + 1}"
                )
                for i in range(self.dynamics.n_agents)
            ]
        return self._task_models

    def batch_extra_infos(self, states, prev_states, actions, rewards) -> dict[str, np.ndarray]:
        return {"cell": np.asarray(states, dtype=np.int64)}

    def render_ansi(self) -> str:
        cells = self._state[0]
        blocks = [
            f"task {i + 1}{' (done)' if t.terminal[cells[i]] else ''}\n{_text_grid(t, cells[i])}"
            for i, t in enumerate(self.tasks)
        ]
        return f"MultiTaskGridWorld-v0  step {self.num_steps}/{self.max_cycles}\n" + "\n\n".join(blocks)

    def render_rgb(self, policy: np.ndarray | None = None) -> np.ndarray:
        """Tasks side by side with agents; with ``policy`` (S, A), its most likely path per task."""
        cells = None if self._state is None else self._state[0]
        return draw_tasks(self.tasks, cells, policy)


def task_env_makers(
    layout: str | Sequence[str] = "no_conflict",
    slip: float = 0.0,
    chain_p: float = 0.75,
    gamma: float = 0.95,
    observation: str = "own",
    max_cycles: int = 100,
) -> list[Callable[[], GridWorldTaskEnv]]:
    """One Gymnasium env maker per agent of ``mpg/MultiTaskGridWorld-v0`` (its tasks, each a
    :class:`GridWorldTaskEnv` truncated at ``max_cycles``); arguments as
    :class:`MultiTaskGridWorldEnv`, checked here (one task env is built to check them)."""
    n = len(layout_tasks(layout, slip=slip, chain_p=chain_p))
    kw = dict(layout=layout, slip=slip, chain_p=chain_p, gamma=gamma, observation=observation)
    GridWorldTaskEnv(**kw, max_steps=V.positive_int("max_cycles", max_cycles))
    return [functools.partial(GridWorldTaskEnv, **kw, task=i, max_steps=int(max_cycles)) for i in range(n)]


def raw_env(**kwargs: Any):
    """The unwrapped AEC env, PettingZoo's convention (``parallel_env`` is the parallel one,
    ``env`` the AEC one with order enforcement)."""
    from mpg_envs.core import _CheckedAEC

    return _CheckedAEC(MultiTaskGridWorldEnv(**kwargs))


class GridWorldTaskEnv(gymnasium.Env):
    """One task of a layout as a Gymnasium env (``mpg/GridWorldTask-v0``).

    Observation (``observation=``, from the task's dynamics, ``dynamics.observe``): ``"own"``
    (default) -- the cell, ``Discrete(S)``, an int; ``"state"`` -- the same (the model index of a
    single task is its cell); ``"onehot"`` -- float32 one-hot cell, shape (S,); ``"vector"`` --
    float32 ``[1]`` (the one-hot id of the single agent) + one-hot cell, shape (1 + S,). Action
    ``Discrete(A)``; terminated on reaching a terminal cell, truncated after ``max_steps``.
    ``model()`` is the task's exact model.

    Through ``gymnasium.make`` the episode length is Gymnasium's: the registration has
    ``max_episode_steps=100`` (read by libraries from ``env.spec``) and Gymnasium's ``TimeLimit``
    truncates; pass ``gymnasium.make("mpg/GridWorldTask-v0", max_episode_steps=T)`` for another
    length (``max_steps`` there is refused: two limits would disagree). Its native vector env:
    ``gymnasium.make_vec("mpg/GridWorldTask-v0", num_envs=n, vectorization_mode="vector_entry_point")``
    (:class:`~mpg_envs.gridworld.vector.GridWorldTaskVectorEnv`).

    Args:
        layout: As for :class:`MultiTaskGridWorldEnv`.
        task: Which task (0-based).
        slip, chain_p, gamma: As for :class:`MultiTaskGridWorldEnv`.
        max_steps: Truncation horizon; None: none of its own (``gymnasium.make`` builds it so, and
            its ``TimeLimit`` wrapper truncates).
        render_mode: None, "ansi" or "rgb_array".
        observation: "own" (default), "state", "onehot" or "vector".
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        layout: str | Sequence[str] = "no_conflict",
        task: int = 0,
        slip: float = 0.0,
        chain_p: float = 0.75,
        gamma: float = 0.95,
        max_steps: int | None = 100,
        render_mode: str | None = None,
        observation: str = "own",
    ) -> None:
        tasks = layout_tasks(layout, slip=slip, chain_p=chain_p)
        task = V.integer(
            "task", task, minimum=0, maximum=len(tasks) - 1, what=f"an index in [0, {len(tasks)})"
        )
        modes = self.metadata["render_modes"]
        if render_mode is not None and not any(render_mode == m and type(render_mode) is str for m in modes):
            raise ValueError(f"render_mode must be None or one of {modes}, got {V.show(render_mode)}")
        max_steps = None if max_steps is None else V.positive_int("max_steps", max_steps)
        self.task = tasks[task]
        self.task_id = task
        self.dynamics = MultiTaskDynamics([self.task])
        self.gamma = _check_gamma(gamma)
        self.max_steps = max_steps
        self.render_mode = render_mode
        self.observation_mode = self.dynamics.check_observation_mode(observation, name="observation")
        self.observation_space = self.dynamics.observation_space(self.observation_mode)
        self.action_space = gymnasium.spaces.Discrete(self.task.n_actions)
        self._cell: np.ndarray | None = None
        self._t = 0
        self._ended = ""  # why the episode ended ("terminated" / "truncated"), "" while it runs
        self._model: TabularModel | None = None

    def model(self) -> TabularModel:
        """The task's exact single-agent model (same dynamics as ``step``)."""
        if self._model is None:
            self._model = build_model(self.dynamics, self.gamma, name=f"gridworld_task_v0/{self.task.name}")
        return self._model

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode; ``options={"state": cell}`` starts in a given non-wall cell."""
        seed = V.seed(seed)
        options = V.options_dict("options", options)
        super().reset(seed=seed)
        start = options.get("state")
        if start is None:
            self._cell = self.dynamics.sample_initial(1, self.np_random)
        else:
            S = self.task.n_cells
            cell = V.integer("options['state']", start, minimum=0, maximum=S - 1, what=f"a cell in [0, {S})")
            why = self.dynamics.start_error(np.array([cell]))
            if why:
                raise ValueError(f"options['state'] = {V.show(start)} cannot start an episode: {why}")
            self._cell = np.array([[cell]])
        self._t = 0
        self._ended = ""
        return self._observe(), {"cell": int(self._cell[0, 0])}

    def _observe(self) -> int | np.ndarray:
        """The agent's observation of the current cell: an int ("own", "state") or a float32 array."""
        # the model index of a single task's state is its cell
        obs = self.dynamics._observe(self._cell, self.observation_mode, self._cell[:, 0])[0, 0]
        return int(obs) if obs.ndim == 0 else obs

    def step(self, action: Any):
        """One move; after termination or truncation, call ``reset()`` before stepping again.

        Raises:
            RuntimeError: Before ``reset()`` or after the episode ended.
            TypeError / ValueError: A non-integer or out-of-range action.
        """
        if self._cell is None:
            raise RuntimeError("call reset() before step()")
        if isinstance(action, np.ndarray) and action.size == 1:
            action = action.reshape(())[()]
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
            raise TypeError(f"action must be an integer in [0, {self.task.n_actions}), got {V.show(action)}")
        if not 0 <= action < self.task.n_actions:
            raise ValueError(f"action must be in [0, {self.task.n_actions}), got {V.show(action)}")
        if self._ended or self.task.terminal[self._cell[0, 0]]:
            why = self._ended or "terminated"
            raise RuntimeError(f"step() called after the episode {why}; call reset()")
        nxt, rew = _sample_step(self.dynamics, self._cell, np.array([[action]], np.int64), self.np_random)
        self._cell = nxt
        self._t += 1
        cell = int(nxt[0, 0])
        terminated = bool(self.task.terminal[cell])
        truncated = self.max_steps is not None and self._t >= self.max_steps and not terminated
        self._ended = "terminated" if terminated else "truncated" if truncated else ""
        return self._observe(), float(rew[0, 0]), terminated, truncated, {"cell": cell}

    def render(self):
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode")
            return None
        cell = None if self._cell is None else int(self._cell[0, 0])
        if self.render_mode == "ansi":
            return _text_grid(self.task, cell)
        return draw_tasks([self.task], None if cell is None else [cell])


#: ``max_episode_steps`` of the ``mpg/GridWorldTask-v0`` registration (``GridWorldTaskEnv``'s default
#: ``max_steps``).
GYM_MAX_EPISODE_STEPS = 100


def gymnasium_entry(**kwargs: Any) -> GridWorldTaskEnv:
    """``gymnasium.make("mpg/GridWorldTask-v0", ...)``'s entry point: a :class:`GridWorldTaskEnv`
    without a time limit of its own, since ``gymnasium.make`` wraps it in ``TimeLimit`` with the
    registration's ``max_episode_steps`` (or the one passed to ``make``).

    Raises:
        ValueError: ``max_steps`` given (through ``gymnasium.make`` the length is
            ``max_episode_steps``; accepting both would let one silently cut the other).
    """
    if "max_steps" in kwargs:
        raise ValueError(
            f"gymnasium.make('mpg/GridWorldTask-v0') takes the episode length as max_episode_steps "
            f"(Gymnasium's TimeLimit; registered: {GYM_MAX_EPISODE_STEPS}), not max_steps="
            f"{V.show(kwargs['max_steps'])}: pass max_episode_steps={V.show(kwargs['max_steps'])} instead "
            "(max_steps is GridWorldTaskEnv's own argument when it is built directly)"
        )
    return GridWorldTaskEnv(max_steps=None, **kwargs)


__all__ = [
    "MultiTaskGridWorldEnv",
    "GridWorldTaskEnv",
    "GYM_MAX_EPISODE_STEPS",
    "gymnasium_entry",
    "raw_env",
    "draw_tasks",
    "most_likely_path",
]
