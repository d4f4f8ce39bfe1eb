"""``mpg/TugOfWar-v0``: versioned entry points (``parallel_env``, ``env``, ``raw_env``).

See :mod:`mpg_envs.tugofwar.env` for the full documentation.
"""

from __future__ import annotations

from typing import Any

from pettingzoo import AECEnv

from mpg_envs.core import to_aec
from mpg_envs.tugofwar import env as _impl
from mpg_envs.tugofwar.env import TugOfWarEnv, raw_env

__doc__ = _impl.__doc__
__all__ = ["parallel_env", "env", "raw_env", "TugOfWarEnv"]


def parallel_env(**kwargs: Any) -> TugOfWarEnv:
    """The PettingZoo parallel env; keyword arguments as in :class:`TugOfWarEnv`."""
    return TugOfWarEnv(**kwargs)


def env(**kwargs: Any) -> AECEnv:
    """The AEC version (``parallel_to_aec`` of :func:`parallel_env`, order enforced, each action
    checked when it is given)."""
    return to_aec(parallel_env(**kwargs))
