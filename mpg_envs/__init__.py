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

from collections.abc import Callable
from typing import Any

import gymnasium
import pettingzoo

from mpg_envs import _validate as V
from mpg_envs import exact
from mpg_envs._validate import TooLargeError
from mpg_envs.model import ModelTooLargeError, TabularModel

__version__ = "0.1.0"
__all__ = [
    "ENV_IDS",
    "GYM_IDS",
    "NAV_ENV_IDS",
    "NAV_GYM_IDS",
    "ModelTooLargeError",
    "TabularModel",
    "TooLargeError",
    "check_env_kwargs",
    "check_model_env",
    "task_env_makers",
    "MULTITASK_IDS",
    "exact",
    "__version__",
    "congestion_v0",
    "coordination_v0",
    "distancing_v0",
    "multitask_gridworld_v0",
    "tugofwar_v0",
    "zerosum",
]

#: Registered PettingZoo ids -> versioned module.
ENV_IDS = {
    "mpg/Congestion-v0": "mpg_envs.congestion_v0",
    "mpg/Coordination-v0": "mpg_envs.coordination_v0",
    "mpg/Distancing-v0": "mpg_envs.distancing_v0",
    "mpg/MultiTaskGridWorld-v0": "mpg_envs.multitask_gridworld_v0",
    "mpg/TugOfWar-v0": "mpg_envs.tugofwar_v0",
}
#: Registered Gymnasium (single-agent) ids -> entry point.
GYM_IDS = {
    "mpg/GridWorldTask-v0": "mpg_envs.gridworld.env:gymnasium_entry",
}
#: Their native vector envs (``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``).
GYM_VECTOR_IDS = {
    "mpg/GridWorldTask-v0": "mpg_envs.gridworld.vector:GridWorldTaskVectorEnv",
}

#: Registered envs without a tabular model (rendered 3D navigation, the ``nav`` extra; MiniWorld is
#: imported only when one is made). Kept apart from :data:`ENV_IDS`/:data:`GYM_IDS`, whose envs all
#: have exact models and cheap construction.
NAV_ENV_IDS = {
    "mpg/IndoorNav-v0": "mpg_envs.nav.env",
}
NAV_GYM_IDS = {
    "mpg/IndoorNav-Hallway-v0": "mpg_envs.nav.env:hallway_entry",
    "mpg/IndoorNav-Rooms-v0": "mpg_envs.nav.env:rooms_entry",
    "mpg/IndoorNav-Hall-v0": "mpg_envs.nav.env:hall_entry",
    "mpg/IndoorNav-Pyramid-v0": "mpg_envs.nav.env:pyramid_entry",
}
NAV_MAX_CYCLES = 500
#: Multi-task PettingZoo ids (one agent per task, the agents independent) -> the function that gives
#: one Gymnasium env maker per task (:func:`task_env_makers`).
MULTITASK_IDS = {
    "mpg/MultiTaskGridWorld-v0": "mpg_envs.gridworld.env:task_env_makers",
    "mpg/IndoorNav-v0": "mpg_envs.nav.env:task_env_makers",
}


def task_env_makers(env_id: str, **env_kwargs: Any) -> list[Callable[[], gymnasium.Env]]:
    """The tasks of a multi-task env, one Gymnasium env maker per agent (agent i's task).

    Checks the arguments without building the envs (a maker builds one when called; a rendered
    env's maker needs its extra only then), so that each process of a distributed run builds only
    its own tasks.

    Args:
        env_id: A key of :data:`MULTITASK_IDS`, e.g. ``"mpg/IndoorNav-v0"``.
        **env_kwargs: The PettingZoo env's keyword arguments (``max_cycles`` is each task's step
            limit).

    Returns:
        N callables, each returning a fresh ``gymnasium.Env``.

    Raises:
        ValueError: Unknown id or keyword arguments, or bad values (named).

    Example:
        >>> import mpg_envs
        >>> makers = mpg_envs.task_env_makers("mpg/MultiTaskGridWorld-v0", layout="no_conflict")
        >>> env = makers[1]()  # agent 1's task as a Gymnasium env
    """
    import importlib
    import inspect

    if not isinstance(env_id, str) or env_id not in MULTITASK_IDS:
        raise ValueError(f"env must be a multi-task env id, one of {sorted(MULTITASK_IDS)}; got {env_id!r}")
    module, attr = MULTITASK_IDS[env_id].split(":")
    fn = getattr(importlib.import_module(module), attr)
    allowed = list(inspect.signature(fn).parameters)
    unknown = sorted(set(env_kwargs) - set(allowed), key=str)
    if unknown:
        raise ValueError(f"unknown env keyword argument(s) {unknown} for {env_id}; allowed: {allowed}")
    return fn(**env_kwargs)


class _RegisteredCreator:
    """The creator ``pettingzoo.make`` calls for one of our ids (``"module:attr"`` in its repr).

    The ids are registered with their env's default ``max_cycles``, so ``make`` always passes one
    -- except for ``make(..., max_cycles=-1)``, PettingZoo's "no time limit", for which it passes
    none and the env would silently keep its default. Our envs always truncate after
    ``max_cycles >= 1`` steps, so a call without ``max_cycles`` is refused here.
    """

    def __init__(self, env_id: str, module: str, attr: str, default: int) -> None:
        self.env_id, self.module, self.attr, self.default = env_id, module, attr, default

    def __repr__(self) -> str:
        return f"{self.module}:{self.attr}"

    def __call__(self, **kwargs: object) -> object:
        import importlib

        if "max_cycles" not in kwargs:
            raise ValueError(
                f"pettingzoo.make({self.env_id!r}) reached the env without max_cycles: PettingZoo's make "
                f"drops max_cycles=-1 (its 'no time limit'), and {self.env_id} always truncates after "
                f"max_cycles >= 1 steps; pass a positive max_cycles (registered default: {self.default})"
            )
        return getattr(importlib.import_module(self.module), self.attr)(**kwargs)


def check_model_env(env_id: Any, name: str = "env") -> str:
    """``env_id`` if it is a registered env with an exact model (a key of :data:`ENV_IDS`).

    Raises:
        ValueError: Another value; for a navigation env, the message says it has no exact model
            and how to train on it (``dcpg --env``).
    """
    if isinstance(env_id, str) and env_id in ENV_IDS:
        return env_id
    if isinstance(env_id, str) and (env_id in NAV_ENV_IDS or env_id in NAV_GYM_IDS):
        raise ValueError(
            f"{name} {env_id!r} is rendered 3D navigation without an exact tabular model, which this "
            f"needs; train on it with `python -m baselines dcpg --env mpg/IndoorNav-v0` (DCPG with CNN "
            f"policies); envs with exact models: {sorted(ENV_IDS)}"
        )
    raise ValueError(f"unknown {name} {V.show(env_id)}; registered: {sorted(ENV_IDS)}")


def check_env_kwargs(env_id: str, env_kwargs: dict) -> None:
    """Refuse keyword arguments a registered PettingZoo env does not take, listing those it does.

    Args:
        env_id: A registered id, e.g. ``"mpg/Congestion-v0"`` (a key of :data:`ENV_IDS`).
        env_kwargs: The keyword arguments meant for its constructor.

    Raises:
        ValueError: ``env_id`` is not registered, or some keys are unknown (the message lists the
            allowed ones).
    """
    import importlib
    import inspect
    import typing

    check_model_env(env_id, "env id")
    module = importlib.import_module(ENV_IDS[env_id])
    env_class = typing.get_type_hints(module.parallel_env)["return"]
    allowed = [p for p in inspect.signature(env_class.__init__).parameters if p != "self"]
    unknown = sorted(set(env_kwargs) - set(allowed), key=str)
    if unknown:
        raise ValueError(f"unknown env keyword argument(s) {unknown} for {env_id}; allowed: {allowed}")


def _default_max_cycles(module: str) -> int:
    """The ``max_cycles`` default of a versioned module's env class."""
    import importlib
    import inspect

    from mpg_envs.core import MPGParallelEnv

    mod = importlib.import_module(module)
    cls = next(v for v in vars(mod).values() if inspect.isclass(v) and issubclass(v, MPGParallelEnv))
    return int(inspect.signature(cls).parameters["max_cycles"].default)


def _register() -> None:
    from mpg_envs.gridworld.env import GYM_MAX_EPISODE_STEPS

    defaults = [(env_id, module, _default_max_cycles(module)) for env_id, module in ENV_IDS.items()]
    defaults += [(env_id, module, NAV_MAX_CYCLES) for env_id, module in NAV_ENV_IDS.items()]
    for env_id, module, default in defaults:
        for kind, registry, attr in (
            ("parallel", pettingzoo.parallel_registry, "parallel_env"),
            ("aec", pettingzoo.aec_registry, "env"),
        ):
            if env_id not in registry:
                creator = _RegisteredCreator(env_id, module, attr, default)
                pettingzoo.register(kind, env_id, entry_point=creator, max_cycles=default)
    for env_id, entry in NAV_GYM_IDS.items():
        if env_id not in gymnasium.registry:
            # the env truncates itself (max_episode_steps=500, a keyword of the env)
            gymnasium.register(env_id, entry_point=entry)
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
    tugofwar_v0,
    zerosum,
)
