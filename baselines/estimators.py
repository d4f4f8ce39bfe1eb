"""Estimators of the quantities policy-gradient methods need, behind one interface.

An :class:`Estimate` holds, for the current product policy, every agent's state values, marginal
Q-values and the discounted state occupancy from mu. From these every update direction follows:

* advantages ``A_i = Q_i - V_i`` (INPG, NPG-BR: theta_i += eta / (1 - gamma) * A_i),
* softmax policy gradients ``dV_i(mu)/dtheta_i[s, a] = occ(s) * pi_i(a|s) * A_i(s, a)`` (IPG),
* direct-parameter gradients ``dV_i(mu)/dpi_i(a|s) = occ(s) * Q_i(s, a)`` (projected PG).

:class:`ExactEstimator` computes them from the model; :class:`~baselines.sampler.SampledEstimator`
estimates them by Monte Carlo from batched rollouts of the env's own dynamics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from mpg_envs import _validate as V
from mpg_envs import exact
from mpg_envs._repr import concise_repr
from mpg_envs.model import TabularModel

__all__ = [
    "Estimate",
    "Estimator",
    "ExactEstimator",
    "TaskwiseExactEstimator",
    "check_model",
    "check_models",
    "estimate_own",
]


def check_model(model: Any, name: str = "model") -> TabularModel:
    """``model`` if it is a :class:`~mpg_envs.model.TabularModel` (``env.model()``), else a clear error."""
    if not isinstance(model, TabularModel):
        raise V.ArgumentTypeError(
            f"{name} must be a mpg_envs TabularModel (env.unwrapped.model()), got {V.show(model)}"
        )
    return model


def check_models(models: Any) -> list[TabularModel]:
    """A non-empty list of :class:`~mpg_envs.model.TabularModel`, else a clear error."""
    if not isinstance(models, (list, tuple)) or not models:
        raise V.ArgumentTypeError(f"models must be a non-empty list of TabularModel, got {V.show(models)}")
    return [check_model(m, f"models[{i}]") for i, m in enumerate(models)]


@dataclass(frozen=True)
class Estimate:
    """Per-agent value information for one product policy.

    Attributes:
        v: V_i(s), shape (N, S).
        q: Marginal Q_i(s, a_i), list of N arrays (S, |A_i|).
        occupancy: Expected discounted visits sum_t gamma^t Pr(s_t = s) from mu, shape (S,), or
            (N, S) when every agent has its own (independent tasks).
        mu_values: V_i(mu), shape (N,).
    """

    v: np.ndarray
    q: list[np.ndarray]
    occupancy: np.ndarray
    mu_values: np.ndarray

    def __repr__(self) -> str:
        return concise_repr(self, mu_values=self.mu_values, v=self.v, q=self.q, occupancy=self.occupancy)

    def occupancy_of(self, agent: int) -> np.ndarray:
        """Agent ``agent``'s discounted occupancy, shape (S,)."""
        return self.occupancy if self.occupancy.ndim == 1 else self.occupancy[agent]

    def advantages(self) -> list[np.ndarray]:
        """A_i(s, a_i) = Q_i - V_i, list of (S, |A_i|)."""
        return [q - self.v[i][:, None] for i, q in enumerate(self.q)]

    def softmax_gradients(self, policies: Sequence[np.ndarray]) -> list[np.ndarray]:
        """dV_i(mu)/dtheta_i for tabular softmax logits, list of (S, |A_i|)."""
        return [
            exact.softmax_gradient(self.occupancy_of(i), p, q, self.v[i])
            for i, (p, q) in enumerate(zip(policies, self.q))
        ]

    def direct_gradients(self) -> list[np.ndarray]:
        """dV_i(mu)/dpi_i(a|s) for direct parameters (the gradient through any policy's table),
        list of (S, |A_i|)."""
        return [self.occupancy_of(i)[:, None] * q for i, q in enumerate(self.q)]


class Estimator(Protocol):
    """Anything that turns a product policy into an :class:`Estimate`."""

    gamma: float

    def estimate(self, policies: Sequence[np.ndarray]) -> Estimate:
        """Estimate for ``policies`` (list of N arrays (S, |A_i|))."""
        ...


def estimate_own(estimator: Estimator, policies: Sequence[np.ndarray]) -> Estimate:
    """``estimator.estimate(policies)`` for policy tables this package's algorithms made.

    Tables an algorithm computes itself (softmax rows of its logits, projections onto the simplex,
    a policy object's ``tables()``) are valid by construction, so the estimator's
    ``estimate_trusted`` path skips the per-call validation of every entry (``exact.check_policy``:
    three reductions per agent, ~10 us for 2 agents and ~35 us for 8, against ~35 us for a whole
    exact estimate on the 2-agent coordination game). It still checks what costs nothing (types,
    dtypes, shapes) and falls back to the validating :meth:`~Estimator.estimate` -- which names a
    bad entry -- when the result is not finite (a policy that diverged to NaN). Estimators
    without that path (a user's) get :meth:`~Estimator.estimate`. User input goes through
    ``estimate`` itself, which validates every call.
    """
    fast = getattr(estimator, "estimate_trusted", None)
    return fast(policies) if fast is not None else estimator.estimate(policies)


def _float_tables(policies: Sequence[np.ndarray], shapes: Sequence[tuple[int, int]]) -> bool:
    """Whether ``policies`` are float64 arrays of exactly these shapes (attribute reads only)."""
    if not isinstance(policies, (list, tuple)) or len(policies) != len(shapes):
        return False
    return all(
        type(p) is np.ndarray and p.dtype == np.float64 and p.shape == shape
        for p, shape in zip(policies, shapes)
    )


class ExactEstimator:
    """Exact quantities from the model (one linear solve per call).

    Args:
        model: The env's :class:`TabularModel`.
    """

    def __init__(self, model: TabularModel) -> None:
        self.model = check_model(model)
        self.gamma = model.gamma
        self._shapes = [(model.n_states, k) for k in model.action_sizes]

    def estimate(self, policies: Sequence[np.ndarray]) -> Estimate:
        m = self.model
        v, q, occ = exact.values_q_occupancy(m, policies)  # checks the policies
        return Estimate(v=v, q=q, occupancy=occ, mu_values=v @ m.mu)

    def estimate_trusted(self, policies: Sequence[np.ndarray]) -> Estimate:
        """:meth:`estimate` without validating the entries, for tables an algorithm of this
        package made (see :func:`estimate_own`); the same result for valid tables."""
        m = self.model
        if not _float_tables(policies, self._shapes):
            return self.estimate(policies)
        try:
            with exact._one_blas_thread(m.n_states):  # free inside a run's exact.blas_scope
                v, q, occ = exact._values_q_occupancy(m, list(policies))
        except (ValueError, ArithmeticError, RuntimeError):
            return self.estimate(policies)  # raises the validation's error for a bad table
        mu_values = v @ m.mu
        if not np.isfinite(mu_values).all():
            return self.estimate(policies)
        return Estimate(v=v, q=q, occupancy=occ, mu_values=mu_values)


class TaskwiseExactEstimator:
    """Exact quantities when every agent acts alone in its own model (independent tasks).

    Agent i's table has one row per state of its task model; the estimate stacks the per-task
    values (N, S) and occupancies (N, S), so every task must have the same number of states
    (true of the multi-task GridWorld layouts: every task lives on the same grid).

    Args:
        models: One single-agent :class:`TabularModel` per agent.
        gamma: Their common discount.
    """

    def __init__(self, models: Sequence[TabularModel]) -> None:
        self.models = check_models(models)
        if any(m.n_agents != 1 for m in self.models):
            raise ValueError(
                "models must be one single-agent TabularModel per agent, got agent counts "
                f"{[m.n_agents for m in self.models]}"
            )
        sizes = {m.n_states for m in self.models}
        gammas = {m.gamma for m in self.models}
        if len(sizes) != 1 or len(gammas) != 1:
            raise ValueError(
                f"the task models must share S and gamma, got S in {sorted(sizes)}, gamma in {gammas}"
            )
        self.gamma = self.models[0].gamma

    def estimate(self, policies: Sequence[np.ndarray]) -> Estimate:
        if len(policies) != len(self.models):
            raise ValueError(f"expected one policy per task ({len(self.models)}), got {len(policies)}")
        return self._stack([exact.values_q_occupancy(m, [p]) for m, p in zip(self.models, policies)])

    def estimate_trusted(self, policies: Sequence[np.ndarray]) -> Estimate:
        """:meth:`estimate` without validating the entries, for tables an algorithm of this
        package made (see :func:`estimate_own`); the same result for valid tables."""
        shapes = [(m.n_states, m.action_sizes[0]) for m in self.models]
        if not _float_tables(policies, shapes):
            return self.estimate(policies)
        try:
            with exact._one_blas_thread(self.models[0].n_states):
                parts = [exact._values_q_occupancy(m, [p]) for m, p in zip(self.models, policies)]
        except (ValueError, ArithmeticError, RuntimeError):
            return self.estimate(policies)
        est = self._stack(parts)
        return est if np.isfinite(est.mu_values).all() else self.estimate(policies)

    def _stack(self, parts: list) -> Estimate:
        v = np.stack([p[0][0] for p in parts])
        occ = np.stack([p[2] for p in parts])
        mu_values = np.array([vi @ m.mu for vi, m in zip(v, self.models)])
        return Estimate(v=v, q=[p[1][0] for p in parts], occupancy=occ, mu_values=mu_values)
