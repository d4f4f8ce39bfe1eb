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
    "ExactMetrics",
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


class ExactMetrics:
    """The exact metrics of any policy on any registered env: one entry point for our runs and for
    every RL library (SB3, TorchRL, RLlib, BenchMARL).

    It picks the model itself: the env's joint exact model when it fits in memory; otherwise, for
    independent tasks (``MultiTaskGridWorld``) whose agents read only their own cell
    (``observation="own"``), one exact model per task (:class:`TaskwiseEvaluator`) -- each agent's
    value then depends only on its own task and policy, so every metric decomposes over the tasks
    exactly. A 10x10 layout with 4 tasks has 10^8 joint states (a 572 GiB joint model); its task
    models have 100 states each.

    A library tabulates its policy on :attr:`observations` (every agent's observation in every
    evaluated state, in the env's observation mode and as the env emits it) and passes the
    probabilities to :meth:`__call__`.

    Args:
        env: A registered id with an exact model, or a parallel env made from one
            (``pettingzoo.make("parallel", ...)``, wrapped or not).
        decompose: None (default) picks the joint model when it fits, else the per-task models;
            True forces the per-task models (independent tasks read on the agent's own cell:
            faster, and equal to the joint metrics, tests/test_exact_metrics.py); False forces
            the joint model.
        **env_kwargs: The env's arguments (with an id only).

    Raises:
        ValueError: Not an env with an exact model; ``decompose=True`` where the tasks are not
            independent or the agents read more than their cell; a joint model over the memory limit whose
            agents' observations couple the tasks (:class:`~mpg_envs.model.ModelTooLargeError`,
            naming the observation mode that decomposes).

    Example:
        >>> from baselines.evaluation import ExactMetrics
        >>> em = ExactMetrics("mpg/MultiTaskGridWorld-v0", layout="no_conflict", observation="own")
        >>> em.decomposed, em.observations.shape   # 100 cells x 4 agents, the cell index
        (True, (100, 4))
        >>> uniform = np.full(em.observations.shape + (4,), 0.25)   # (S, N, |A|)
        >>> round(em(uniform)["nash_gap"], 4) > 0
        True
    """

    def __init__(self, env: Any, *, decompose: bool | None = None, **env_kwargs: Any) -> None:
        import pettingzoo

        import mpg_envs
        from mpg_envs.core import MPGParallelEnv
        from mpg_envs.model import ModelTooLargeError

        if isinstance(env, str):
            mpg_envs.check_model_env(env)
            mpg_envs.check_env_kwargs(env, env_kwargs)
            env = pettingzoo.make("parallel", env, **env_kwargs)
        elif env_kwargs:
            raise ValueError("env_kwargs go with a registered id, not with an env")
        raw = getattr(env, "unwrapped", None)
        if not isinstance(raw, MPGParallelEnv):
            raise V.ArgumentTypeError(
                f"env must be a registered id or one of our parallel envs (pettingzoo.make), "
                f"got {V.show(env)}"
            )
        self.env = raw
        self.dynamics = dyn = raw.dynamics
        self.observation_mode: str = raw.observation_mode
        self.action_sizes: tuple[int, ...] = tuple(int(k) for k in dyn.action_sizes)
        self.n_agents = len(self.action_sizes)
        if decompose is not None:
            decompose = V.flag("decompose", decompose)
        if decompose and (not hasattr(raw, "task_models") or self.observation_mode != "own"):
            raise ValueError(
                "decompose=True needs independent tasks (MultiTaskGridWorld) whose agents read their "
                f"own cell (observation='own'); got {type(raw).__name__} with "
                f"observation={self.observation_mode!r}"
            )
        try:
            self.model: TabularModel | None = None if decompose else raw.model()
        except ModelTooLargeError as err:
            if decompose is False:
                raise
            if not hasattr(raw, "task_models"):
                raise
            if self.observation_mode != "own":
                raise ModelTooLargeError(
                    f"{err}. With observation={self.observation_mode!r} each agent's policy reads the "
                    "other agents' cells, which couples the tasks, so its exact metrics need that joint "
                    "model; with observation='own' (the agent's cell, what a shared multi-task policy "
                    "reads) they decompose over one exact model per task"
                ) from None
            self.model = None
        if self.model is not None:
            from baselines.policies.base import observe_all

            self.decomposed = False
            self.task_models: list[TabularModel] | None = None
            self.evaluator: Evaluator = JointEvaluator(self.model)
            self.observations = observe_all(dyn, self.observation_mode)
        else:
            self.decomposed = True
            self.task_models = raw.task_models()
            self.evaluator = TaskwiseEvaluator(self.task_models)
            cols = [dyn.task_dynamics(i) for i in range(self.n_agents)]
            self.observations = np.stack([d.observe(d.states(), "own")[:, 0] for d in cols], axis=1)

    @property
    def n_states(self) -> int:
        """S, the rows of :attr:`observations`: joint model states, or cells when decomposed."""
        return int(self.observations.shape[0])

    def fields(self) -> list[str]:
        """The metric names of a row, in order (``welfare`` last)."""
        return [*self.evaluator.fields(), "welfare"]

    def tables(self, probs: Any) -> list[np.ndarray]:
        """N float64 tables (S, |A_i|) from probabilities on :attr:`observations`.

        Args:
            probs: An array (S, N, A) (every agent has A actions), or N arrays (S, |A_i|); rows are
                renormalised (float32 networks sum to 1 within ~1e-7).

        Raises:
            ValueError: Wrong shapes, negative or non-finite entries, or an all-zero row.
        """
        S, N = self.n_states, self.n_agents
        if isinstance(probs, (list, tuple)):
            if len(probs) != N:
                raise ValueError(f"probs must hold one table per agent (N = {N}), got {len(probs)}")
            rows = [
                V.real_array(f"probs[{i}]", p, shape=(S, k))
                for i, (p, k) in enumerate(zip(probs, self.action_sizes))
            ]
        else:
            arr = V.real_array("probs", probs)
            if len(set(self.action_sizes)) != 1 or arr.shape != (S, N, self.action_sizes[0]):
                raise ValueError(
                    f"probs must have shape (S, N, A) = {(S, N, self.action_sizes[0])} (or be a list of N "
                    f"tables (S, |A_i|) for the action counts {self.action_sizes}), got shape {arr.shape}"
                )
            rows = [arr[:, i] for i in range(N)]
        out = []
        for i, p in enumerate(rows):
            p = np.asarray(p, dtype=np.float64)
            total = p.sum(axis=1, keepdims=True)
            if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(total <= 0):
                raise ValueError(f"agent {i}'s probabilities must be finite, >= 0, with positive row sums")
            out.append(p / total)
        return out

    def __call__(self, probs: Any) -> dict[str, float]:
        """The metrics of the policy whose probabilities on :attr:`observations` are ``probs``.

        Args:
            probs: As :meth:`tables`.

        Returns:
            ``nash_gap``, ``nash_gap_worst``, ``potential``, ``poa``, ``value_i`` per agent and
            ``welfare`` (their sum).
        """
        row = self.evaluator(self.tables(probs))
        row["welfare"] = welfare(row)
        return row

    def evaluate_policy(self, probs_fn: Any) -> dict[str, float]:
        """The metrics of a policy given as a function of observations.

        Args:
            probs_fn: Called once with :attr:`observations` (S, N, ...) as the env emits them;
                returns probabilities (S, N, A) (or N tables (S, |A_i|)).
        """
        return self(probs_fn(self.observations))
