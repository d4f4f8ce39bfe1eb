"""mpg-envs: Markov potential game and multi-task RL environments with exact tabular models.

Importing the package registers every environment in PettingZoo's registry under the ``mpg``
namespace::

    >>> import pettingzoo, mpg_envs
    >>> env = pettingzoo.make("parallel", "mpg/Congestion-v0", n_agents=4)
    >>> model = env.unwrapped.model()
    >>> model.n_states
    34
"""

from __future__ import annotations

import gymnasium
import pettingzoo

from mpg_envs import exact
from mpg_envs._validate import TooLargeError
from mpg_envs.model import ModelTooLargeError, TabularModel

__version__ = "0.1.0"
__all__ = [
    "ENV_IDS",
    "GYM_IDS",
    "ModelTooLargeError",
    "TabularModel",
    "TooLargeError",
    "exact",
    "__version__",
    "congestion_v0",
    "coordination_v0",
    "distancing_v0",
    "multitask_gridworld_v0",
]

#: Registered PettingZoo ids -> versioned module.
ENV_IDS = {
    "mpg/Congestion-v0": "mpg_envs.congestion_v0",
    "mpg/Coordination-v0": "mpg_envs.coordination_v0",
    "mpg/Distancing-v0": "mpg_envs.distancing_v0",
    "mpg/MultiTaskGridWorld-v0": "mpg_envs.multitask_gridworld_v0",
}
#: Registered Gymnasium (single-agent) ids -> entry point.
GYM_IDS = {
    "mpg/GridWorldTask-v0": "mpg_envs.gridworld.env:gymnasium_entry",
}
#: Their native vector envs (``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``).
GYM_VECTOR_IDS = {
    "mpg/GridWorldTask-v0": "mpg_envs.gridworld.vector:GridWorldTaskVectorEnv",
}


def _register() -> None:
    from mpg_envs.gridworld.env import GYM_MAX_EPISODE_STEPS

    for env_id, module in ENV_IDS.items():
        if env_id not in pettingzoo.parallel_registry:
            pettingzoo.register("parallel", env_id, entry_point=f"{module}:parallel_env")
        if env_id not in pettingzoo.aec_registry:
            pettingzoo.register("aec", env_id, entry_point=f"{module}:env")
    for env_id, entry in GYM_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(
                env_id,
                entry_point=entry,
                vector_entry_point=GYM_VECTOR_IDS.get(env_id),
                max_episode_steps=GYM_MAX_EPISODE_STEPS,
            )


_register()

# The versioned env modules (``help(mpg_envs.distancing_v0)`` is the env's documentation).
from mpg_envs import (  # noqa: E402
    congestion_v0,
    coordination_v0,
    distancing_v0,
    multitask_gridworld_v0,
)
