"""Indoor visual navigation on MiniWorld (the ``nav`` extra); see :mod:`mpg_envs.nav.env`.

Importing this package does not import MiniWorld; making an env does.
"""

from mpg_envs.nav.env import ENVIRONMENTS, N_ACTIONS, IndoorNavParallelEnv, make_env, parallel_env
from mpg_envs.nav.reward import depth_window_reward

__all__ = [
    "ENVIRONMENTS",
    "N_ACTIONS",
    "IndoorNavParallelEnv",
    "depth_window_reward",
    "make_env",
    "parallel_env",
]
