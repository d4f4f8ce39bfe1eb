"""Independent natural policy gradient on tabular softmax logits (paper 001 Lemma 2.1)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from baselines.algorithms.base import TabularAlgorithm
from baselines.estimators import Estimate, Estimator, estimate_own
from baselines.policies import TabularSoftmaxPolicy

__all__ = ["INPG", "npg_step"]


def npg_step(eta: float, gamma: float) -> float:
    """The advantage multiplier of ``theta += eta / (1 - gamma) * A`` (``eta`` when gamma = 1).

    Paper 003 writes NPG as ``theta += eta * A``: pass ``eta * (1 - gamma)`` for its convention.
    """
    return eta / (1.0 - gamma) if gamma < 1 else eta


@dataclasses.dataclass
class INPG(TabularAlgorithm):
    """``theta_i += eta / (1 - gamma) * A_i + eta * (log-barrier gradient)``."""

    name: ClassVar[str] = "inpg"
    help: ClassVar[str] = "independent natural policy gradient, theta += eta/(1-gamma) A (paper 001)"

    def update(self, policy: TabularSoftmaxPolicy, estimator: Estimator) -> Estimate:
        pol = policy.tables()
        est = estimate_own(estimator, pol)
        step = npg_step(self.eta, estimator.gamma)
        reg = self._barrier(pol)
        policy.logits = [
            th + step * a + self.eta * b for th, a, b in zip(policy.logits, est.advantages(), reg)
        ]
        return est
