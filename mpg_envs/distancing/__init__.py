"""Distancing game (paper 001 §4.1): dynamics and PettingZoo env."""

from mpg_envs.distancing.dynamics import DistancingDynamics
from mpg_envs.distancing.env import DistancingEnv

__all__ = ["DistancingDynamics", "DistancingEnv"]
