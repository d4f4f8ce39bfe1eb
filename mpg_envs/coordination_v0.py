"""``mpg/Coordination-v0``: versioned entry points (``parallel_env``, ``env``, ``raw_env``).

See :mod:`mpg_envs.coordination.env` for the full documentation.
"""

from __future__ import annotations

from typing import Any

from pettingzoo import AECEnv

from mpg_envs.coordination import env as _impl
from mpg_envs.coordination.env import CoordinationEnv, raw_env
from mpg_envs.core import to_aec

__doc__ = _impl.__doc__
__all__ = ["parallel_env", "env", "raw_env", "CoordinationEnv"]


def parallel_env(**kwargs: Any) -> CoordinationEnv:
    """The PettingZoo parallel env; keyword arguments as in :class:`CoordinationEnv`."""
    return CoordinationEnv(**kwargs)


def env(**kwargs: Any) -> AECEnv:
    """The AEC version (``parallel_to_aec`` of :func:`parallel_env`, order enforced, each action
    checked when it is given)."""
    return to_aec(parallel_env(**kwargs))
