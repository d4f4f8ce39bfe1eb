"""Policies as objects: tabular softmax and direct (numpy) and torch softmax networks
(:mod:`baselines.policies.neural`, imported on demand so that the tabular baselines need no torch).

Every policy can act on a batch of observations and be tabulated into the (S, |A_i|) tables that
:mod:`mpg_envs.exact` takes (:meth:`Policy.table`), which gives any policy an exact Nash gap,
POA and potential.
"""

from baselines.policies.base import INDEX_MODES, OBS_MODES, Policy, observe_all
from baselines.policies.tabular import (
    TabularDirectPolicy,
    TabularPolicy,
    TabularSoftmaxPolicy,
    softmax_rows,
    softmax_vjp,
)

__all__ = [
    "Policy",
    "OBS_MODES",
    "INDEX_MODES",
    "observe_all",
    "TabularPolicy",
    "TabularSoftmaxPolicy",
    "TabularDirectPolicy",
    "softmax_rows",
    "softmax_vjp",
]
