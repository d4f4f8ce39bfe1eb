"""Paper 003 §3.3: approximate best-response natural policy gradient (NPG-BR)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from baselines.algorithms.base import TabularAlgorithm
from baselines.algorithms.npg import npg_step
from baselines.estimators import Estimate, Estimator, estimate_own
from baselines.policies import TabularSoftmaxPolicy
from baselines.policies.tabular import softmax_rows

__all__ = ["NPGBestResponse", "MAX_INNER_STEPS"]

#: Largest K (paper 003 uses a handful; every outer iteration spends N (K + 1) + 1 estimates).
MAX_INNER_STEPS = 10_000


@dataclasses.dataclass
class NPGBestResponse(TabularAlgorithm):
    """Every agent runs K inner NPG steps against the others' fixed policies; only the agent with
    the largest gain in its own value keeps its update.

    Paper 003's eq. (5) writes the inner step as ``theta += A`` (no step size); here it is
    ``eta / (1 - gamma) * A`` like :class:`~baselines.algorithms.npg.INPG` (eq. 5 is
    ``eta = 1 - gamma``). Every outer iteration spends N (K + 1) + 1 estimates.
    """

    inner_steps: int = dataclasses.field(default=5, metadata={"help": "NPG-BR inner steps K >= 1"})
    name: ClassVar[str] = "npg_br"
    help: ClassVar[str] = (
        "NPG best response: K inner NPG steps per agent, the max-gain agent moves (paper 003)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        k = self.inner_steps
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"inner_steps (K) must be a positive integer, got {k!r}")
        if k > MAX_INNER_STEPS:  # N (K + 1) + 1 estimates per iteration: a run would never end
            raise ValueError(
                f"inner_steps (K) must be a positive integer of at most {MAX_INNER_STEPS:,}, got {k!r}"
            )
        self.inner_steps = int(k)

    def update(self, policy: TabularSoftmaxPolicy, estimator: Estimator) -> Estimate:
        params = policy.logits
        est0 = estimate_own(estimator, [softmax_rows(th) for th in params])
        step = npg_step(self.eta, estimator.gamma)
        best_gain, best_i, best_theta = -np.inf, 0, params[0]
        for i in range(len(params)):
            th = params[i].copy()
            trial = list(params)
            for _ in range(self.inner_steps):
                trial[i] = th
                p = [softmax_rows(t) for t in trial]
                est = estimate_own(estimator, p)
                th = th + step * est.advantages()[i] + self.eta * self._barrier([p[i]])[0]
                if not np.isfinite(th).all():
                    raise FloatingPointError(
                        f"the inner NPG steps of agent {i} overflowed (eta {self.eta:g})"
                    )
            trial[i] = th
            gain = estimate_own(estimator, [softmax_rows(t) for t in trial]).mu_values[i] - est0.mu_values[i]
            if gain > best_gain:
                best_gain, best_i, best_theta = gain, i, th
        new = list(params)
        new[best_i] = best_theta
        policy.logits = new
        return est0
