"""Multi-task GridWorld (paper 004): tasks, layouts, dynamics, the PettingZoo and Gymnasium envs."""

from mpg_envs.gridworld.dynamics import MultiTaskDynamics
from mpg_envs.gridworld.env import GridWorldTaskEnv, MultiTaskGridWorldEnv, draw_tasks, most_likely_path
from mpg_envs.gridworld.tasks import (
    LAYOUTS,
    GridSpec,
    Task,
    chain_tasks,
    grid_task,
    layout_tasks,
    layout_text,
)

__all__ = [
    "LAYOUTS",
    "GridSpec",
    "GridWorldTaskEnv",
    "MultiTaskDynamics",
    "MultiTaskGridWorldEnv",
    "Task",
    "chain_tasks",
    "draw_tasks",
    "grid_task",
    "layout_tasks",
    "layout_text",
    "most_likely_path",
]
