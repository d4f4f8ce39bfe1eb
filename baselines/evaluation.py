"""Exact metrics of a policy, and when a training loop computes them.

An evaluator turns the tabulated policy (one (S, |A_i|) table per agent) into the metrics a run
logs: the exact Nash gap at mu and in the worst state, the potential, the price of anarchy and
every agent's value. :class:`JointEvaluator` works on the joint model; :class:`TaskwiseEvaluator`
on independent per-agent models (multi-task games whose joint model is too large).

:func:`evaluation_iterations` spreads evaluations over a run: every ``every`` iterations plus
log-spaced early ones, always the first and the last, so that exact metrics stay a small part of
a run whatever its length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mpg_envs import _validate as V
from mpg_envs import exact
from mpg_envs.model import TabularModel

__all__ = [
    "Evaluator",
    "JointEvaluator",
    "TaskwiseEvaluator",
    "evaluation_iterations",
    "evaluation_count",
    "welfare",
    "METRICS",
]

#: Metrics every evaluator returns (plus ``value_i`` per agent).
METRICS = ("nash_gap", "nash_gap_worst", "potential", "poa")


def _log_points(iters: int) -> list[int]:
    pts, scale = [], 1
    while scale <= iters:
        pts.extend(m * scale for m in (1, 2, 3, 5, 7) if m * scale <= iters)
        scale *= 10
    return pts


def _check_schedule(iters: Any, every: Any, log: Any) -> tuple[int, int, bool]:
    iters = V.integer("iters", iters, minimum=0)
    every = V.positive_int("every", every)
    return iters, every, V.flag("log", log)


def evaluation_count(iters: int, every: int, log: bool = True) -> int:
    """How many iterations :func:`evaluation_iterations` returns (without building them).

    Args:
        iters, every, log: As :func:`evaluation_iterations`.

    Returns:
        The count, an exact Python int.
    """
    iters, every, log = _check_schedule(iters, every, log)
    pts = set(_log_points(iters)) if log else set()
    pts.add(iters)
    return iters // every + 1 + sum(1 for p in pts if p % every)


def evaluation_iterations(iters: int, every: int, log: bool = True) -> np.ndarray:
    """The iterations in [0, iters] at which a run computes exact metrics.

    Args:
        iters: The last iteration (>= 0).
        every: Every ``every`` iterations (>= 1).
        log: Also 1, 2, 3, 5, 7 times every power of ten (the same points whatever ``iters``, so an
            extended run evaluates where a longer one would have).

    Returns:
        Sorted unique int64 iterations, always including 0 and ``iters``.

    Raises:
        ValueError: Bad arguments, or more iterations than fit in memory
            (:class:`~mpg_envs.TooLargeError`, before building them).
    """
    n = evaluation_count(iters, every, log)
    iters, every, log = _check_schedule(iters, every, log)
    V.check_bytes(
        f"the {n:,} evaluated iterations of iters={iters:,}, every={every:,}",
        3 * 8 * n,
        advice="raise every, or lower iters",
    )
    extra = np.array([iters, *(_log_points(iters) if log else [])], dtype=np.int64)
    return np.union1d(np.arange(0, iters + 1, every, dtype=np.int64), extra)


def welfare(row: dict[str, float]) -> float:
    """The sum of the agents' values ``value_i`` of an evaluator's row."""
    return float(sum(v for k, v in row.items() if k.startswith("value_")))


class Evaluator:
    """Metrics of a tabulated policy (see the module docstring)."""

    n_agents: int

    def fields(self) -> list[str]:
        """The metric names, in the order of the metrics CSV."""
        return [*METRICS, *(f"value_{i}" for i in range(self.n_agents))]

    def __call__(self, tables: Sequence[np.ndarray]) -> dict[str, float]:
        raise NotImplementedError


class JointEvaluator(Evaluator):
    """Metrics on the joint exact model.

    Args:
        model: The model; ``tables[i]`` has shape (S, |A_i|).
    """

    def __init__(self, model: TabularModel) -> None:
        from baselines.estimators import check_model

        self.model = check_model(model)
        self.n_agents = model.n_agents
        self._optimum: exact.SocialOptimum | None = None

    def __call__(self, tables: Sequence[np.ndarray]) -> dict[str, float]:
        m = self.model
        if self._optimum is None:
            self._optimum = exact.social_optimum(m)
        gap = exact.nash_gap(m, tables)
        V = exact.evaluate(m, tables) @ m.mu
        positive = self._optimum.welfare > 0
        row = {
            "nash_gap": float(gap.gap),
            "nash_gap_worst": float(gap.worst),
            "potential": float(exact.potential_value(m, tables) @ m.mu)
            if m.phi is not None
            else float("nan"),
            "poa": exact.price_of_anarchy(m, tables, optimum=self._optimum) if positive else float("nan"),
        }
        row.update({f"value_{i}": float(v) for i, v in enumerate(V)})
        return row


class TaskwiseEvaluator(Evaluator):
    """Metrics when agent i acts alone in its own model (independent tasks).

    The Nash gap is each agent's best-response gain in its own task; the potential and the
    welfare are the sum of the task values; the POA divides it by the sum of the tasks' optima.

    Args:
        models: One single-agent model per agent; ``tables[i]`` has shape (S_i, |A_i|).
    """

    def __init__(self, models: Sequence[TabularModel]) -> None:
        from baselines.estimators import check_models

        self.models = check_models(models)
        self.n_agents = len(self.models)
        self._optimum = None

    def __call__(self, tables: Sequence[np.ndarray]) -> dict[str, float]:
        if self._optimum is None:
            self._optimum = sum(exact.social_optimum(m).welfare for m in self.models)
        gaps = [exact.nash_gap(m, [t]) for m, t in zip(self.models, tables)]
        V = np.array([float(exact.evaluate(m, [t])[0] @ m.mu) for m, t in zip(self.models, tables)])
        row = {
            "nash_gap": float(max(g.gap for g in gaps)),
            "nash_gap_worst": float(max(g.worst for g in gaps)),
            "potential": float(V.sum()),
            "poa": float(V.sum() / self._optimum) if self._optimum > 0 else float("nan"),
        }
        row.update({f"value_{i}": float(v) for i, v in enumerate(V)})
        return row
