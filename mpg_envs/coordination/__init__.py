"""Coordination game (paper 003, §5 and Appendix G): dynamics and PettingZoo env."""

from mpg_envs.coordination.dynamics import CoordinationDynamics
from mpg_envs.coordination.env import CoordinationEnv

__all__ = ["CoordinationDynamics", "CoordinationEnv"]
