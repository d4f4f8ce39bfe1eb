"""Tug of war: a two-player zero-sum stochastic matching-pennies game (dynamics and PettingZoo env)."""

from mpg_envs.tugofwar.dynamics import TugOfWarDynamics
from mpg_envs.tugofwar.env import TugOfWarEnv

__all__ = ["TugOfWarDynamics", "TugOfWarEnv"]
