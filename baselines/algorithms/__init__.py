"""Independent policy-gradient algorithms on tabular policies (papers 001 and 003).

Every algorithm updates per-agent parameters from an :class:`~baselines.estimators.Estimate`
(exact or sampled, the estimator is swappable):

* :class:`IPG` -- independent policy gradient on softmax logits, ``theta_i += eta * dV_i/dtheta_i``
  (paper 001 IPG, paper 003 eq. 3);
* :class:`INPG` -- independent natural policy gradient, ``theta_i += eta / (1 - gamma) * A_i``
  (paper 001 Lemma 2.1);
* :class:`NPGBestResponse` -- paper 003 §3.3: every agent runs K NPG steps against the others'
  fixed policies, only the agent with the largest gain in its own value keeps its update;
* :class:`ProjectedPG` -- projected gradient ascent on direct (probability) parameters, as in the
  distancing experiments of Leonardos et al. and paper 001.

``log_barrier = lambda > 0`` adds paper 003 §3.2's regulariser
``lambda * sum_i mean_{s, a} log pi_i(a|s)`` (its plain gradient
``lambda / (|S| |A_i|) * (1 - |A_i| pi_i(a|s))`` on the logits, for every softmax algorithm).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from baselines.estimators import Estimate, Estimator
from mpg_envs.exact import softmax_policy

__all__ = ["Algorithm", "IPG", "INPG", "NPGBestResponse", "ProjectedPG", "ALGORITHMS", "make_algorithm"]

Params = list[np.ndarray]


@dataclass
class Algorithm(ABC):
    """Base class: a step size, an optional log-barrier weight, a parameterisation.

    Args:
        eta: Step size (> 0).
        log_barrier: Weight lambda >= 0 of the log-barrier regulariser (softmax algorithms).
    """

    eta: float = 0.1
    log_barrier: float = 0.0
    parameterization: ClassVar[str] = "softmax"
    name: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if not np.isfinite(self.eta) or self.eta <= 0:
            raise ValueError(f"eta must be a positive step size, got {self.eta!r}")
        if not np.isfinite(self.log_barrier) or self.log_barrier < 0:
            raise ValueError(f"log_barrier must be >= 0, got {self.log_barrier!r}")
        if self.log_barrier > 0 and self.parameterization != "softmax":
            raise ValueError(f"{self.name} uses direct parameters; log_barrier applies to softmax algorithms")

    def policies(self, params: Sequence[np.ndarray]) -> Params:
        """Parameters -> product policy (list of (S, |A_i|))."""
        if self.parameterization == "softmax":
            return softmax_policy(params)
        return [np.asarray(p, dtype=np.float64) for p in params]

    def init_params(
        self, n_states: int, action_sizes: Sequence[int], rng: np.random.Generator, init: str = "normal"
    ) -> Params:
        """Initial parameters: ``"normal"`` standard-normal logits (paper 003) or ``"uniform"``.

        For direct parameters ``"normal"`` means the softmax of standard-normal logits.
        """
        if init not in ("normal", "uniform"):
            raise ValueError(f"init must be 'normal' or 'uniform', got {init!r}")
        logits = [
            rng.normal(size=(n_states, k)) if init == "normal" else np.zeros((n_states, k))
            for k in action_sizes
        ]
        return logits if self.parameterization == "softmax" else softmax_policy(logits)

    def _barrier(self, policies: Sequence[np.ndarray]) -> list[np.ndarray]:
        if self.log_barrier == 0:
            return [np.zeros_like(p) for p in policies]
        return [self.log_barrier / p.size * (1.0 - p.shape[1] * p) for p in policies]

    @abstractmethod
    def update(self, params: Params, estimator: Estimator) -> tuple[Params, Estimate]:
        """One iteration: new parameters and the estimate of the current policy it used."""


@dataclass
class IPG(Algorithm):
    """Independent policy gradient on softmax logits."""

    name: ClassVar[str] = "ipg"

    def update(self, params: Params, estimator: Estimator) -> tuple[Params, Estimate]:
        pol = self.policies(params)
        est = estimator.estimate(pol)
        grads = est.softmax_gradients(pol)
        reg = self._barrier(pol)
        return [th + self.eta * (g + b) for th, g, b in zip(params, grads, reg)], est


@dataclass
class INPG(Algorithm):
    """Independent natural policy gradient: theta_i += eta / (1 - gamma) * A_i."""

    name: ClassVar[str] = "inpg"

    def update(self, params: Params, estimator: Estimator) -> tuple[Params, Estimate]:
        pol = self.policies(params)
        est = estimator.estimate(pol)
        step = self.eta / (1.0 - estimator.gamma) if estimator.gamma < 1 else self.eta
        reg = self._barrier(pol)
        return [th + step * a + self.eta * b for th, a, b in zip(params, est.advantages(), reg)], est


@dataclass
class NPGBestResponse(Algorithm):
    """Paper 003 §3.3 (NPG-BR): K inner NPG steps per agent, only the max-gain agent moves.

    Args:
        inner_steps: K >= 1 inner NPG steps of each agent against the others' fixed policies.
    """

    inner_steps: int = 5
    name: ClassVar[str] = "npg_br"

    def __post_init__(self) -> None:
        super().__post_init__()
        if (
            isinstance(self.inner_steps, bool)
            or not isinstance(self.inner_steps, (int, np.integer))
            or self.inner_steps < 1
        ):
            raise ValueError(f"inner_steps (K) must be a positive integer, got {self.inner_steps!r}")

    def update(self, params: Params, estimator: Estimator) -> tuple[Params, Estimate]:
        pol = self.policies(params)
        est0 = estimator.estimate(pol)
        step = self.eta / (1.0 - estimator.gamma) if estimator.gamma < 1 else self.eta
        best_gain, best_i, best_theta = -np.inf, 0, params[0]
        for i in range(len(params)):
            th = params[i].copy()
            trial = list(params)
            for _ in range(self.inner_steps):
                trial[i] = th
                p = self.policies(trial)
                est = estimator.estimate(p)
                th = th + step * est.advantages()[i] + self.eta * self._barrier([p[i]])[0]
            trial[i] = th
            gain = estimator.estimate(self.policies(trial)).mu_values[i] - est0.mu_values[i]
            if gain > best_gain:
                best_gain, best_i, best_theta = gain, i, th
        new = list(params)
        new[best_i] = best_theta
        return new, est0


def project_simplex(x: np.ndarray) -> np.ndarray:
    """Euclidean projection of every row of x (S, K) onto the probability simplex."""
    u = -np.sort(-x, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    k = np.arange(1, x.shape[1] + 1)
    rho = (u - css / k > 0).sum(axis=1)
    tau = css[np.arange(len(x)), rho - 1] / rho
    return np.maximum(x - tau[:, None], 0.0)


@dataclass
class ProjectedPG(Algorithm):
    """Projected gradient ascent on direct policy parameters: pi_i <- Proj(pi_i + eta * dV_i/dpi_i)."""

    parameterization: ClassVar[str] = "direct"
    name: ClassVar[str] = "ppg"

    def update(self, params: Params, estimator: Estimator) -> tuple[Params, Estimate]:
        pol = self.policies(params)
        est = estimator.estimate(pol)
        return [project_simplex(p + self.eta * g) for p, g in zip(pol, est.direct_gradients())], est


ALGORITHMS: dict[str, type[Algorithm]] = {a.name: a for a in (IPG, INPG, NPGBestResponse, ProjectedPG)}


def make_algorithm(name: str, **kwargs) -> Algorithm:
    """Build an algorithm by name (``ipg``, ``inpg``, ``npg_br``, ``ppg``)."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    return ALGORITHMS[name](**kwargs)
