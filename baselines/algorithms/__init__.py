"""Independent policy-gradient algorithms, one module each, each a dataclass of its hyperparameters.

* :class:`~baselines.algorithms.pg.IPG` -- policy gradient on tabular softmax logits;
* :class:`~baselines.algorithms.npg.INPG` -- natural policy gradient, ``theta += eta/(1-gamma) A``;
* :class:`~baselines.algorithms.npg_br.NPGBestResponse` -- paper 003's NPG-BR;
* :class:`~baselines.algorithms.ppg.ProjectedPG` -- projected gradient on direct parameters;
* :class:`~baselines.algorithms.neural.NeuralPG` -- exact-gradient PG of torch softmax networks
  (NN-PG with SGD, NN-Adam), and :class:`~baselines.algorithms.neural.Reinforce` -- sampled neural
  PG (REINFORCE with a baseline) on the batched sampler (both need torch);
* :class:`~baselines.algorithms.soft.BalancingQ`, :class:`~baselines.algorithms.soft.Rommeo` and
  :class:`~baselines.algorithms.soft.Pfp` -- report 002's exact soft value iteration, one sweep per
  iteration (two agents).

Every softmax algorithm takes ``log_barrier = lambda`` (paper 003 §3.2).
"""

from __future__ import annotations

from typing import Any

from baselines.algorithms.base import Algorithm, TabularAlgorithm, barrier_gradients
from baselines.algorithms.npg import INPG, npg_step
from baselines.algorithms.npg_br import NPGBestResponse
from baselines.algorithms.pg import IPG
from baselines.algorithms.ppg import ProjectedPG, project_simplex
from baselines.algorithms.soft import BalancingQ, Pfp, Rommeo

__all__ = [
    "Algorithm",
    "TabularAlgorithm",
    "IPG",
    "INPG",
    "NPGBestResponse",
    "ProjectedPG",
    "BalancingQ",
    "Rommeo",
    "Pfp",
    "ALGORITHMS",
    "make_algorithm",
    "algorithm_class",
    "project_simplex",
    "barrier_gradients",
    "npg_step",
]

_NEURAL = ("nn_pg", "reinforce")
_TABULAR = (IPG, INPG, NPGBestResponse, ProjectedPG, BalancingQ, Rommeo, Pfp)
ALGORITHMS: dict[str, type[Algorithm] | None] = {a.name: a for a in _TABULAR}
ALGORITHMS.update(dict.fromkeys(_NEURAL))  # imported on first use: they need torch


def algorithm_class(name: str) -> type[Algorithm]:
    """The class registered under ``name`` (importing the torch algorithms on demand)."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose from {sorted(ALGORITHMS)}")
    if ALGORITHMS[name] is None:
        from baselines.algorithms import neural

        ALGORITHMS.update({"nn_pg": neural.NeuralPG, "reinforce": neural.Reinforce})
    return ALGORITHMS[name]  # type: ignore[return-value]


def make_algorithm(name: str, **kwargs: Any) -> Algorithm:
    """Build an algorithm by name with its hyperparameters (unknown keys name the allowed ones)."""
    cls = algorithm_class(name)
    allowed = [f.name for f in cls.config_fields()]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"{name} has no option(s) {unknown}; its options: {allowed}")
    return cls(**kwargs)
