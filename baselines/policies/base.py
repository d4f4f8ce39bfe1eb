"""The policy interface every baseline trains: a product policy over one observation mode.

In the spirit of OpenSpiel's ``Policy`` / ``TabularPolicy`` and Stable-Baselines3's policy classes, a
:class:`Policy` maps each agent's observation to a distribution over its actions, acts on a batch,
and can be **tabulated**: evaluated on the observation of every model state to give the
(S, |A_i|) float64 tables that :mod:`mpg_envs.exact` takes. Tabulation is the bridge that lets any
policy -- tabular, a torch network, a user's own -- be measured exactly (Nash gap, POA, potential).

Observation modes are those of the env's dynamics (``Dynamics.observe``): ``"state"`` (the model
state index), ``"own"`` (the agent's local index), ``"vector"`` (float features with the agent's
one-hot id) and ``"onehot"`` (one-hot of the model state index).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from mpg_envs import _validate as V
from mpg_envs.core import Dynamics

__all__ = ["Policy", "OBS_MODES", "INDEX_MODES", "observe_all", "check_dynamics"]

OBS_MODES = ("state", "own", "vector", "onehot")
#: Modes whose observation is an integer index (a tabular policy is a table over it).
INDEX_MODES = ("state", "own")


def check_dynamics(dynamics: Any, name: str = "dynamics") -> Dynamics:
    """``dynamics`` if it is a :class:`~mpg_envs.core.Dynamics`, else a ValueError naming it (an
    env id, None or an env object are common mistakes: pass ``env.unwrapped.dynamics``)."""
    if not isinstance(dynamics, Dynamics):
        raise V.ArgumentTypeError(
            f"{name} must be an env's mpg_envs.core.Dynamics (env.unwrapped.dynamics), got "
            f"{V.show(dynamics)} ({type(dynamics).__name__})"
        )
    return dynamics


def observe_all(dynamics: Dynamics, mode: str) -> np.ndarray:
    """Every model state's observation for every agent, ``dynamics.observe(states(), mode)``.

    Returns:
        (S, N) int64 for index modes, (S, N, F) float32 for feature modes.
    """
    return check_dynamics(dynamics).observe(dynamics.states(), mode)


class Policy(ABC):
    """A product policy: agent i acts on its own observation with probabilities ``probs(i, obs)``.

    Attributes:
        action_sizes: (|A_1|, ..., |A_N|).
        obs_mode: The observation mode every agent reads (see the module docstring).
    """

    action_sizes: tuple[int, ...]
    obs_mode: str

    @property
    def n_agents(self) -> int:
        """N."""
        return len(self.action_sizes)

    @abstractmethod
    def probs(self, agent: int, obs: np.ndarray) -> np.ndarray:
        """Agent ``agent``'s action distribution for a batch of its observations.

        Args:
            agent: i in [0, N).
            obs: Shape (B,) int for index modes, (B, F) float for feature modes.

        Returns:
            Shape (B, |A_i|) float64, rows summing to 1.
        """

    def table(self, dynamics: Dynamics, observations: np.ndarray | None = None) -> list[np.ndarray]:
        """The policy on every model state: N float64 arrays (S, |A_i|) for :mod:`mpg_envs.exact`.

        Args:
            dynamics: The env's dynamics (its states and observation function); its agents and
                action counts must be the policy's.
            observations: ``observe_all(dynamics, self.obs_mode)`` if already computed.

        Raises:
            ValueError: Dynamics of another game (agents, actions), observations of the wrong
                shape, or a ``probs`` of the wrong shape.
        """
        self.check_game(dynamics)
        obs = observe_all(dynamics, self.obs_mode) if observations is None else observations
        obs = self._check_joint_obs(obs, rows=dynamics.n_states)
        return [self._probs_checked(i, obs[:, i]) for i in range(self.n_agents)]

    def check_game(self, dynamics: Any) -> Dynamics:
        """``dynamics`` if its agents and action counts are the policy's, else a ValueError."""
        dyn = check_dynamics(dynamics)
        if tuple(int(k) for k in dyn.action_sizes) != tuple(self.action_sizes):
            raise ValueError(
                f"dynamics of a game with action counts {tuple(dyn.action_sizes)} (N = {dyn.n_agents}); "
                f"this policy has N = {self.n_agents} agents with {tuple(self.action_sizes)} actions"
            )
        return dyn

    def _check_joint_obs(self, obs: Any, rows: int | None = None) -> np.ndarray:
        """A batch of joint observations (B, N) or (B, N, ...) for this policy."""
        arr = None if obs is None or isinstance(obs, (str, bytes, dict)) else np.asarray(obs)
        if arr is None or arr.dtype == object or arr.dtype.kind in "USVb":
            dims = "B, N" if self.obs_mode in INDEX_MODES else "B, N, F"
            raise V.ArgumentTypeError(f"observations must be a numpy array ({dims}), got {V.show(obs)}")
        want = 2 if self.obs_mode in INDEX_MODES else 3
        if arr.ndim != want or arr.shape[1] != self.n_agents or (rows is not None and arr.shape[0] != rows):
            b = "B" if rows is None else f"S = {rows}"
            f = ", F" if want == 3 else ""
            raise ValueError(
                f"observations must have shape ({b}, N = {self.n_agents}{f}) for obs_mode "
                f"{self.obs_mode!r}, got shape {arr.shape}"
            )
        return arr

    def _probs_checked(self, agent: int, obs: np.ndarray) -> np.ndarray:
        """``probs`` with its shape checked: (B, |A_i|), whatever a subclass returns."""
        p = np.asarray(self.probs(agent, obs))
        want = (len(obs), self.action_sizes[agent])
        if p.shape != want:
            raise ValueError(
                f"agent {agent}'s probabilities have shape {p.shape}; its {self.action_sizes[agent]} actions "
                f"need {want} (a network with the wrong number of outputs?)"
            )
        return p

    def act(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Sample every agent's action for a batch of joint observations.

        Args:
            obs: Shape (B, N) for index modes, (B, N, F) for feature modes.
            rng: The generator (one uniform per episode and agent; an int seeds a new one, None a
                fresh one from OS entropy, as ``np.random.default_rng``).

        Returns:
            Actions, shape (B, N) int64.
        """
        obs = self._check_joint_obs(obs)
        rng = V.generator(rng)
        B = obs.shape[0]
        u = rng.random((B, self.n_agents))
        out = np.empty((B, self.n_agents), np.int64)
        for i in range(self.n_agents):
            cdf = np.cumsum(self._probs_checked(i, obs[:, i]), axis=1)
            out[:, i] = np.minimum((u[:, i : i + 1] >= cdf[:, :-1]).sum(axis=1), self.action_sizes[i] - 1)
        return out

    # ------------------------------------------------------------------ parameters
    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything that defines the policy, as arrays (for checkpoints)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def _check_agent(self, agent: int) -> int:
        if (
            isinstance(agent, bool)
            or not isinstance(agent, (int, np.integer))
            or not 0 <= agent < self.n_agents
        ):
            raise ValueError(f"agent must be an integer in [0, {self.n_agents}), got {agent!r}")
        return int(agent)


def _sizes(action_sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(action_sizes)
    if not sizes or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in sizes):
        raise ValueError(
            f"action_sizes must be a non-empty sequence of positive integers, got {action_sizes!r}"
        )
    return tuple(int(k) for k in sizes)
