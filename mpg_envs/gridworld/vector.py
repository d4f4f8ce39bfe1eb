"""``mpg/GridWorldTask-v0`` as a native Gymnasium vector env (its ``vector_entry_point``).

``gymnasium.make_vec("mpg/GridWorldTask-v0", num_envs=1024, vectorization_mode="vector_entry_point",
layout=..., task=...)`` steps all copies with one call of the task's dynamics -- the same
``MultiTaskDynamics.step`` as the single env and the batched sampler, over an array of cells --
instead of a Python loop over 1024 env objects (``SyncVectorEnv``).

Semantics are Gymnasium 1.x's: ``autoreset_mode`` NEXT_STEP (the step after a copy terminates or is
truncated resets it, ignoring its action, and returns its first observation with reward 0 and both
flags false), one generator for the batch seeded by ``reset(seed=)``, observations batched from the
single env's space, ``infos["cell"]`` (num_envs,).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from mpg_envs import _validate as V
from mpg_envs.core import _sample_step
from mpg_envs.gridworld.env import GYM_MAX_EPISODE_STEPS, GridWorldTaskEnv
from mpg_envs.vector import check_batch_size

__all__ = ["GridWorldTaskVectorEnv"]


class GridWorldTaskVectorEnv(gymnasium.vector.VectorEnv):
    """``num_envs`` copies of one grid task, stepped together.

    Args:
        num_envs: Copies.
        layout, task, slip, chain_p, gamma, observation: As for
            :class:`~mpg_envs.gridworld.env.GridWorldTaskEnv`.
        max_steps: Truncation horizon when built directly (default 100).
        max_episode_steps: Gymnasium's name for it: ``make_vec`` always passes one (the
            registration's 100 unless given), so through ``make_vec`` pass ``max_episode_steps``.

    Raises:
        ValueError: Both ``max_steps`` and ``max_episode_steps`` given (through ``make_vec``: a
            ``max_steps`` argument, which the registration's ``max_episode_steps`` would overrule),
            or either not a positive integer.
        TooLargeError: The copies' arrays over the memory limit
            (:func:`mpg_envs.vector.check_batch_size`), before anything is allocated.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        layout: str | Sequence[str] = "no_conflict",
        task: int = 0,
        slip: float = 0.0,
        chain_p: float = 0.75,
        gamma: float = 0.95,
        max_steps: int | None = None,
        observation: str = "own",
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError("the vector GridWorldTask-v0 does not render; use the single env")
        self.num_envs = V.positive_int("num_envs", num_envs)
        if max_steps is not None and max_episode_steps is not None:
            raise ValueError(
                f"pass the episode length once: max_episode_steps={V.show(max_episode_steps)} (Gymnasium's "
                f"name, which make_vec always passes) and max_steps={V.show(max_steps)} are both given; "
                "through gymnasium.make_vec use max_episode_steps"
            )
        if max_episode_steps is not None:  # Gymnasium's name, checked under it (TimeLimit takes True as 1)
            max_episode_steps = V.positive_int("max_episode_steps", max_episode_steps)
        steps = next((x for x in (max_episode_steps, max_steps) if x is not None), GYM_MAX_EPISODE_STEPS)
        self.single = GridWorldTaskEnv(layout, task, slip, chain_p, gamma, steps, None, observation)
        single = self.single
        check_batch_size(single.dynamics, single.observation_mode, self.num_envs, "GridWorldTaskVectorEnv")
        self.dynamics = self.single.dynamics
        self.task = self.single.task
        self.max_steps = self.single.max_steps
        self.observation_mode = self.single.observation_mode
        self.single_observation_space = self.single.observation_space
        self.single_action_space = self.single.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._cells = np.zeros((self.num_envs, 1), np.int64)
        self._t = np.zeros(self.num_envs, np.int64)
        self._restart = np.zeros(self.num_envs, bool)
        self._started = False

    def _observe(self) -> np.ndarray:
        obs = self.dynamics._observe(self._cells, self.observation_mode, self._cells[:, 0])[:, 0]
        return obs if obs.ndim > 1 else obs.astype(np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start every copy (``seed`` seeds the batch's generator).

        ``options={"state": c}`` starts every copy in cell ``c`` (an int) or copy k in ``c[k]``
        (integers of shape (num_envs,)), as the single env's ``options``; no draw is made then.
        """
        seed = V.seed(seed)
        options = V.options_dict("options", options)
        if seed is not None or self._np_random is None:
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        start = options.get("state")
        if start is None:
            self._cells = self.dynamics.sample_initial(self.num_envs, self.np_random)
        else:
            self._cells = self._parse_start(start)
        self._t[:] = 0
        self._restart[:] = False
        self._started = True
        return self._observe(), {"cell": self._cells[:, 0].copy()}

    def _parse_start(self, start: Any) -> np.ndarray:
        """``options["state"]``: one cell for every copy or one per copy -> (num_envs, 1) int64."""
        from mpg_envs.vector import _int_array

        n, S = self.num_envs, self.task.n_cells
        what = f"a cell in [0, {S}) or integers of shape (num_envs,) = ({n},)"
        if V.is_integer(start):
            cells = np.full(n, V.integer("options['state']", start, minimum=0, maximum=S - 1, what=what))
        else:
            cells = _int_array("options['state']", start, (n,), what)
            out = (cells < 0) | (cells >= S)
            if out.any():
                raise ValueError(f"options['state'] must be {what}, got the cell {int(cells[out][0])}")
        for c in np.unique(cells).tolist():
            why = self.dynamics.start_error(np.array([c]))
            if why:
                raise ValueError(f"options['state']: cell {c} cannot start an episode: {why}")
        return cells.astype(np.int64)[:, None]

    def step(self, actions: Any):
        """One move of every copy; copies that ended at the previous step restart instead."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        a = np.asarray(actions)
        A = self.task.n_actions
        if a.shape != (self.num_envs,) or not np.issubdtype(a.dtype, np.integer) or a.dtype == bool:
            raise ValueError(f"actions must be {self.num_envs} integers in [0, {A}), got {V.show(actions)}")
        if a.min() < 0 or a.max() >= A:
            raise ValueError(f"actions must be in [0, {A}), got {V.show(actions)}")
        nxt, rew = _sample_step(self.dynamics, self._cells, a.astype(np.int64)[:, None], self.np_random)
        rewards = rew[:, 0].copy()
        t = self._t + 1
        restart = self._restart
        if restart.any():  # NEXT_STEP autoreset: these copies start again, their action ignored
            nxt[restart] = self.dynamics.sample_initial(int(restart.sum()), self.np_random)
            rewards[restart] = 0.0
            t[restart] = 0
        self._cells, self._t = nxt, t
        cell = nxt[:, 0]
        terminated = self.task.terminal[cell] & ~restart
        truncated = (t >= self.max_steps) & ~terminated & ~restart
        self._restart = terminated | truncated
        return self._observe(), rewards, terminated, truncated, {"cell": cell.copy()}
