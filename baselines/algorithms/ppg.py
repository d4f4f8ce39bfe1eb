"""Projected gradient ascent on direct policy parameters (Leonardos et al.; the "IPG" of paper
001's public code)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from baselines.algorithms.base import Algorithm, check_eta
from baselines.estimators import Estimate, Estimator, estimate_own
from baselines.policies import TabularDirectPolicy

__all__ = ["ProjectedPG", "project_simplex"]


def project_simplex(x: np.ndarray) -> np.ndarray:
    """Euclidean projection of every row of x (R, K) onto the probability simplex."""
    u = -np.sort(-x, axis=1)
    css = np.cumsum(u, axis=1) - 1.0
    k = np.arange(1, x.shape[1] + 1)
    rho = (u - css / k > 0).sum(axis=1)
    tau = css[np.arange(len(x)), rho - 1] / rho
    return np.maximum(x - tau[:, None], 0.0)


@dataclasses.dataclass
class ProjectedPG(Algorithm):
    """``pi_i <- Proj_simplex(pi_i + eta * dV_i/dpi_i)``.

    Args:
        eta: Step size eta > 0.
    """

    eta: float = dataclasses.field(default=0.1, metadata={"help": "step size eta > 0"})
    name: ClassVar[str] = "ppg"
    policy_kind: ClassVar[str] = "direct"
    help: ClassVar[str] = "projected gradient on direct probabilities (paper 001's code runs it as IPG)"

    def __post_init__(self) -> None:
        self.eta = check_eta("eta", self.eta)

    def make_policy(self, dynamics, n_rows, rng, init, obs_mode):
        return TabularDirectPolicy.init(n_rows, dynamics.action_sizes, rng, init, obs_mode=obs_mode)

    def update(self, policy: TabularDirectPolicy, estimator: Estimator) -> Estimate:
        pol = policy.tables()
        est = estimate_own(estimator, pol)
        policy.set_tables([project_simplex(p + self.eta * g) for p, g in zip(pol, est.direct_gradients())])
        return est
