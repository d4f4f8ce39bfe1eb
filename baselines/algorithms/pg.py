"""Independent policy gradient on tabular softmax logits (paper 001 IPG, paper 003 eq. 3)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from baselines.algorithms.base import TabularAlgorithm
from baselines.estimators import Estimate, Estimator, estimate_own
from baselines.policies import TabularSoftmaxPolicy

__all__ = ["IPG"]


@dataclasses.dataclass
class IPG(TabularAlgorithm):
    """``theta_i += eta * (dV_i/dtheta_i + log-barrier gradient)``."""

    name: ClassVar[str] = "ipg"
    help: ClassVar[str] = "independent policy gradient, tabular softmax (paper 001, paper 003 eq. 3)"

    def update(self, policy: TabularSoftmaxPolicy, estimator: Estimator) -> Estimate:
        pol = policy.tables()
        est = estimate_own(estimator, pol)
        grads = est.softmax_gradients(pol)
        reg = self._barrier(pol)
        policy.logits = [th + self.eta * (g + b) for th, g, b in zip(policy.logits, grads, reg)]
        return est
