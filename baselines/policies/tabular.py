"""Tabular policies: one row of action probabilities per index observation (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from baselines.policies.base import INDEX_MODES, Policy, _sizes, observe_all
from mpg_envs import _validate as V
from mpg_envs.core import Dynamics
from mpg_envs.exact import check_policy_table


def _agent_arrays(name: str, value: Any) -> list[Any]:
    """One array per agent: a non-empty list or tuple (or a 3-d array), else a clear error."""
    if isinstance(value, np.ndarray) and value.ndim == 3:
        return list(value)
    if not isinstance(value, (list, tuple)) or not value:
        raise V.ArgumentTypeError(
            f"{name} must be a non-empty list with one 2-d array (n_rows, |A_i|) per agent, got "
            f"{V.show(value)}"
        )
    return list(value)


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
        self._tables = [self._check_table(i, t) for i, t in enumerate(_agent_arrays("tables", tables))]
        self.action_sizes = _sizes([t.shape[1] for t in self._tables])

    @staticmethod
    def _check_table(i: int, t: Any, shape: tuple[int, int] | None = None) -> np.ndarray:
        arr = V.real_array(f"policy of agent {i}", t, ndim=2, finite=False)
        if shape is not None and arr.shape != shape:
            raise ValueError(f"policy of agent {i} must have shape {shape}, got shape {arr.shape}")
        return check_policy_table(f"policy of agent {i}", arr, arr.shape[1])

    def tables(self) -> list[np.ndarray]:
        """The rows of every agent: N arrays (n_rows_i, |A_i|) float64."""
        return self._tables

    def probs(self, agent: int, obs: np.ndarray) -> np.ndarray:
        table = self.tables()[self._check_agent(agent)]
        idx = self._rows(agent, obs, len(table))
        return table[idx]

    def _rows(self, agent: int, obs: Any, n_rows: int) -> np.ndarray:
        """Index observations as row numbers in [0, n_rows), else a ValueError naming the value."""
        idx = V.int_array(f"observations of agent {agent}", obs)
        if idx.size and (idx.min() < 0 or idx.max() >= n_rows):
            bad = int(idx[(idx < 0) | (idx >= n_rows)].ravel()[0])
            raise ValueError(
                f"observation {bad} of agent {agent} is not a row of its table (rows 0..{n_rows - 1}; "
                f"obs_mode {self.obs_mode!r})"
            )
        return idx

    def table(self, dynamics: Dynamics, observations: np.ndarray | None = None) -> list[np.ndarray]:
        dyn = self.check_game(dynamics)
        tabs = self.tables()
        if self.obs_mode == "state" and observations is None:
            S = dyn.n_states
            for i, t in enumerate(tabs):
                if t.shape[0] != S:
                    raise ValueError(
                        f"policy of agent {i} has {t.shape[0]} rows; the model has S = {S} states"
                    )
            return list(tabs)
        obs = observe_all(dyn, self.obs_mode) if observations is None else observations
        obs = self._check_joint_obs(obs, rows=dyn.n_states)
        return [t[self._rows(i, obs[:, i], len(t))] for i, t in enumerate(tabs)]

    def state_dict(self) -> dict[str, Any]:
        return {f"table_{i}": t.copy() for i, t in enumerate(self._tables)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: ``table_i`` for every agent, of the current shapes.

        Raises:
            ValueError: A missing entry, another shape, or not a probability table.
        """
        tabs = [
            self._check_table(i, _entry(state, f"table_{i}"), t.shape) for i, t in enumerate(self._tables)
        ]
        self._tables = tabs


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
        self.logits = [_check_logits(i, th) for i, th in enumerate(_agent_arrays("logits", logits))]
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
        """Standard-normal logits (``"normal"``, paper 003) or zeros (``"uniform"``).

        Args:
            n_rows: Rows per agent (model states, or local observations).
            action_sizes: (|A_1|, ..., |A_N|).
            rng: The generator (an int seeds a new one).
            init: ``"normal"`` or ``"uniform"``.

        Raises:
            ValueError: Bad arguments, or tables too large for memory (before allocating them).
        """
        if init not in ("normal", "uniform"):
            raise ValueError(
                "a tabular policy's init must be 'normal' or 'uniform' ('torch' is for networks), "
                f"got {init!r}"
            )
        n_rows = V.positive_int("n_rows", n_rows)
        action_sizes = _sizes(action_sizes)
        rng = V.generator(rng)
        V.check_bytes(
            f"tabular policies of {n_rows:,} rows for action counts {V.show(action_sizes)}",
            3 * 8 * n_rows * sum(action_sizes),  # logits, their softmax and an update's copy
            advice="use fewer rows (a smaller game, or obs_mode 'own')",
        )
        return cls([rng.normal(size=(n_rows, k)) if init == "normal" else np.zeros((n_rows, k))
                    for k in action_sizes], **kw)  # fmt: skip

    def tables(self) -> list[np.ndarray]:
        return [softmax_rows(th) for th in self.logits]

    def state_dict(self) -> dict[str, Any]:
        return {f"logits_{i}": th.copy() for i, th in enumerate(self.logits)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: ``logits_i`` for every agent, of the current shapes.

        Raises:
            ValueError: A missing entry, another shape, or non-finite logits.
        """
        logits = []
        for i, th in enumerate(self.logits):
            new = _check_logits(i, _entry(state, f"logits_{i}"))
            if new.shape != th.shape:
                raise ValueError(f"logits_{i} must have shape {th.shape}, got shape {new.shape}")
            logits.append(new)
        self.logits = logits


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
        """Replace the probabilities (an algorithm's update); same shapes, row-stochastic.

        A non-finite table is kept as it is (a diverged update, which the training loop reports
        with its iteration).

        Raises:
            ValueError: Another number of agents or shapes.
        """
        tables = _agent_arrays("tables", tables)
        if len(tables) != len(self._tables):
            raise ValueError(f"expected one table per agent ({len(self._tables)}), got {len(tables)}")
        new = []
        for i, (t, old) in enumerate(zip(tables, self._tables)):
            arr = V.real_array(f"policy of agent {i}", t, ndim=2, finite=False)
            if arr.shape != old.shape:
                raise ValueError(f"policy of agent {i} must have shape {old.shape}, got shape {arr.shape}")
            new.append(arr)
        self._tables = new


def _entry(state: Any, key: str) -> Any:
    if not isinstance(state, dict) or key not in state:
        have = sorted(state)[:8] if isinstance(state, dict) else V.show(state)
        raise ValueError(f"state must be a dict from state_dict() with {key!r}; got {have}")
    return state[key]


def _check_logits(i: int, th: Any) -> np.ndarray:
    arr = V.real_array(f"logits of agent {i}", th, finite=True)
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"logits of agent {i} must be a 2-d array (n_rows, |A_i|), got shape {arr.shape}")
    return arr.copy()
