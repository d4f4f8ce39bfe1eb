"""Stochastic congestion game (paper 001, Example 1): dynamics and PettingZoo env."""

from mpg_envs.congestion.dynamics import CongestionDynamics
from mpg_envs.congestion.env import CongestionEnv

__all__ = ["CongestionDynamics", "CongestionEnv"]
