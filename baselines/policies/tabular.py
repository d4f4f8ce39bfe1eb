"""Tabular policies: one row of action probabilities per index observation (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from baselines.policies.base import INDEX_MODES, Policy, _sizes, observe_all
from mpg_envs.core import Dynamics
from mpg_envs.exact import check_policy_table

__all__ = ["TabularPolicy", "TabularSoftmaxPolicy", "TabularDirectPolicy", "softmax_rows", "softmax_vjp"]


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (R, K) logits, float64 (max-shifted)."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def softmax_vjp(probs: np.ndarray, grad_probs: np.ndarray) -> np.ndarray:
    """Chain rule through a row softmax: d f / d logits from d f / d probs, both (R, K).

    ``pi * (g - sum_b pi_b g_b)``; with ``g = occupancy * Q_i`` this is paper 001 / 003's softmax
    policy gradient ``occupancy * pi * A_i``.
    """
    return probs * (grad_probs - (probs * grad_probs).sum(axis=1, keepdims=True))


class TabularPolicy(Policy):
    """A table of action probabilities per agent over an index observation.

    Args:
        tables: N arrays (n_rows_i, |A_i|), row-stochastic.
        obs_mode: ``"state"`` (rows = model states) or ``"own"`` (rows = the agent's local index).
    """

    def __init__(self, tables: Sequence[np.ndarray], obs_mode: str = "state") -> None:
        if obs_mode not in INDEX_MODES:
            raise ValueError(
                f"a tabular policy reads an index observation {list(INDEX_MODES)}, got {obs_mode!r}"
            )
        self.obs_mode = obs_mode
        self._tables = [
            check_policy_table(f"policy of agent {i}", t, np.shape(t)[-1]) for i, t in enumerate(tables)
        ]
        self.action_sizes = _sizes([t.shape[1] for t in self._tables])

    def tables(self) -> list[np.ndarray]:
        """The rows of every agent: N arrays (n_rows_i, |A_i|) float64."""
        return self._tables

    def probs(self, agent: int, obs: np.ndarray) -> np.ndarray:
        return self.tables()[self._check_agent(agent)][np.asarray(obs, dtype=np.int64)]

    def table(self, dynamics: Dynamics, observations: np.ndarray | None = None) -> list[np.ndarray]:
        tabs = self.tables()
        if self.obs_mode == "state" and observations is None:
            S = dynamics.n_states
            for i, t in enumerate(tabs):
                if t.shape[0] != S:
                    raise ValueError(
                        f"policy of agent {i} has {t.shape[0]} rows; the model has S = {S} states"
                    )
            return list(tabs)
        obs = observe_all(dynamics, self.obs_mode) if observations is None else observations
        return [t[obs[:, i]] for i, t in enumerate(tabs)]

    def state_dict(self) -> dict[str, Any]:
        return {f"table_{i}": t.copy() for i, t in enumerate(self._tables)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._tables = [np.asarray(state[f"table_{i}"], dtype=np.float64) for i in range(self.n_agents)]


class TabularSoftmaxPolicy(TabularPolicy):
    """Tabular softmax: agent i's rows are ``softmax(logits[i])``.

    Args:
        logits: N arrays (n_rows, |A_i|) of real logits (copied).
        obs_mode: ``"state"`` or ``"own"``.
    """

    def __init__(self, logits: Sequence[np.ndarray], obs_mode: str = "state") -> None:
        if obs_mode not in INDEX_MODES:
            raise ValueError(
                f"a tabular policy reads an index observation {list(INDEX_MODES)}, got {obs_mode!r}"
            )
        self.obs_mode = obs_mode
        self.logits = [np.array(th, dtype=np.float64) for th in logits]
        for i, th in enumerate(self.logits):
            if th.ndim != 2 or th.shape[0] < 1 or th.shape[1] < 1 or not np.all(np.isfinite(th)):
                raise ValueError(
                    f"logits of agent {i} must be a finite 2-d array (n_rows, |A_i|), got shape {th.shape}"
                )
        self.action_sizes = _sizes([th.shape[1] for th in self.logits])

    @classmethod
    def init(
        cls,
        n_rows: int,
        action_sizes: Sequence[int],
        rng: np.random.Generator,
        init: str = "normal",
        **kw: Any,
    ) -> TabularSoftmaxPolicy:
        """Standard-normal logits (``"normal"``, paper 003) or zeros (``"uniform"``)."""
        if init not in ("normal", "uniform"):
            raise ValueError(
                "a tabular policy's init must be 'normal' or 'uniform' ('torch' is for networks), "
                f"got {init!r}"
            )
        return cls([rng.normal(size=(n_rows, k)) if init == "normal" else np.zeros((n_rows, k))
                    for k in action_sizes], **kw)  # fmt: skip

    def tables(self) -> list[np.ndarray]:
        return [softmax_rows(th) for th in self.logits]

    def state_dict(self) -> dict[str, Any]:
        return {f"logits_{i}": th.copy() for i, th in enumerate(self.logits)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.logits = [np.array(state[f"logits_{i}"], dtype=np.float64) for i in range(self.n_agents)]


class TabularDirectPolicy(TabularPolicy):
    """Direct parameters: the probabilities themselves (projected gradient keeps them on the simplex).

    Args:
        probs: N row-stochastic arrays (n_rows, |A_i|).
        obs_mode: ``"state"`` or ``"own"``.
    """

    @classmethod
    def init(
        cls,
        n_rows: int,
        action_sizes: Sequence[int],
        rng: np.random.Generator,
        init: str = "normal",
        **kw: Any,
    ) -> TabularDirectPolicy:
        """The softmax of standard-normal logits (``"normal"``) or uniform rows (``"uniform"``)."""
        soft = TabularSoftmaxPolicy.init(n_rows, action_sizes, rng, init)
        return cls(soft.tables(), **kw)

    def set_tables(self, tables: Sequence[np.ndarray]) -> None:
        """Replace the probabilities (an algorithm's update)."""
        self._tables = [np.asarray(t, dtype=np.float64) for t in tables]
