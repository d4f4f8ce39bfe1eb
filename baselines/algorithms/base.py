"""The algorithm interface: a typed config (the dataclass fields) and an in-place update of a policy.

An :class:`Algorithm` is a dataclass whose fields are its hyperparameters (CleanRL style: every
algorithm owns its config; ``python -m baselines train`` generates its options from them). It makes
the policy it trains (:meth:`make_policy`) and updates it in place from an estimator
(:meth:`update`), returning the estimate of the policy it started from. Optimiser state, if any,
goes through :meth:`state_dict` so that a resumed run ends bit-identical.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from baselines.estimators import Estimate, Estimator
from baselines.policies import Policy
from mpg_envs.core import Dynamics

__all__ = ["Algorithm", "TabularAlgorithm", "barrier_gradients", "check_eta", "check_lambda"]


def check_eta(name: str, value: Any, *, positive: bool = True) -> float:
    """A finite real step size (> 0, or >= 0 with ``positive=False``); bools are refused."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if ok:
        v = float(value)
        ok = np.isfinite(v) and (v > 0 if positive else v >= 0)
    if not ok:
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


def check_lambda(value: Any) -> float:
    """The log-barrier weight lambda >= 0."""
    return check_eta("log_barrier", value, positive=False)


def barrier_gradients(weight: float, policies: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Gradient of ``weight * mean_{s,a} log pi_i(a|s)`` w.r.t. tabular softmax logits, per agent.

    ``weight / (|S| |A_i|) * (1 - |A_i| pi_i(a|s))`` (paper 003 §3.2); zeros when ``weight = 0``.
    """
    if weight == 0:
        return [np.zeros_like(p) for p in policies]
    return [weight / p.size * (1.0 - p.shape[1] * p) for p in policies]


@dataclasses.dataclass
class Algorithm(ABC):
    """Base class of every algorithm; subclasses are dataclasses whose fields are their config.

    Class attributes:
        name: Registry name (``--algo``).
        policy_kind: ``"softmax"``, ``"direct"``, ``"neural"`` or ``"soft_q"``.
        help: One line for ``python -m baselines list``.
        estimators: The estimators (``train``'s names) the algorithm works with; None: any.
        metric_fields: Columns the algorithm adds to every evaluated row (:meth:`metrics`).
        l1_stop: Whether ``train``'s L1 stop rule is a convergence test for it.

    A field whose metadata has ``"cli": False`` is a Python-API-only option (no ``train`` flag).
    """

    name: ClassVar[str] = ""
    estimators: ClassVar[tuple[str, ...] | None] = None
    policy_kind: ClassVar[str] = "softmax"
    help: ClassVar[str] = ""
    metric_fields: ClassVar[tuple[str, ...]] = ()
    l1_stop: ClassVar[bool] = True

    @abstractmethod
    def make_policy(
        self, dynamics: Dynamics, n_rows: int, rng: np.random.Generator, init: str, obs_mode: str
    ) -> Policy:
        """The initial policy.

        Args:
            dynamics: The env's dynamics (action sizes, observation shapes).
            n_rows: Rows of a tabular policy (the estimator's state count).
            rng: Generator of the initial parameters (seeded from the run's seed).
            init: ``"normal"`` (N(0, 1) parameters, paper 003) or ``"uniform"``.
            obs_mode: The observation mode the policy reads.
        """

    @abstractmethod
    def update(self, policy: Policy, estimator: Estimator) -> Estimate:
        """One iteration, in place; returns the estimate of the policy before the update."""

    def check(self, policy: Policy, estimator: Estimator) -> None:  # noqa: B027 (nothing by default)
        """Refuse, before a run starts, a policy or estimator this algorithm cannot train with, or
        updates too large for memory (nothing to check by default).

        Raises:
            ValueError: Naming what does not fit.
        """

    def metrics(self, policy: Policy) -> dict[str, float]:
        """The :attr:`metric_fields` of the current policy, at an evaluated iteration (none by default)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Optimiser state to checkpoint (none by default)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 (no state by default)
        """Restore :meth:`state_dict`."""

    @classmethod
    def config_fields(cls) -> list[dataclasses.Field]:
        """The hyperparameters: the dataclass fields."""
        return list(dataclasses.fields(cls))


@dataclasses.dataclass
class TabularAlgorithm(Algorithm):
    """Softmax tabular algorithms: a step size and an optional log barrier.

    Args:
        eta: Step size eta > 0.
        log_barrier: Weight lambda >= 0 of paper 003's log-barrier regulariser.
    """

    eta: float = dataclasses.field(default=0.1, metadata={"help": "step size eta > 0"})
    log_barrier: float = dataclasses.field(
        default=0.0, metadata={"help": "log-barrier weight lambda >= 0 (paper 003 §3.2)"}
    )

    def __post_init__(self) -> None:
        self.eta = check_eta("eta", self.eta)
        self.log_barrier = check_lambda(self.log_barrier)

    def make_policy(self, dynamics, n_rows, rng, init, obs_mode):
        from baselines.policies import TabularSoftmaxPolicy

        return TabularSoftmaxPolicy.init(n_rows, dynamics.action_sizes, rng, init, obs_mode=obs_mode)

    def _barrier(self, policies: Sequence[np.ndarray]) -> list[np.ndarray]:
        return barrier_gradients(self.log_barrier, policies)
