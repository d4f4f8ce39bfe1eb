"""Decentralized consensus policy gradient (paper 004): graphs, weights, DCPG and its backends.

``torch`` is needed only by the ``torch.distributed`` backend (:mod:`.distributed`).
"""

from baselines.consensus.dcpg import DCPGConfig, DCPGResult, SingleProcess, run_dcpg
from baselines.consensus.graphs import (
    GRAPHS,
    WEIGHTS,
    Graph,
    Spectrum,
    Topology,
    check_weights,
    complete,
    from_adjacency,
    lazy_metropolis,
    make_graph,
    make_weights,
    max_degree,
    metropolis_hastings,
    path,
    random_connected,
    ring,
    spectral,
    star,
)
from baselines.consensus.objective import TaskSet

__all__ = [
    "DCPGConfig",
    "DCPGResult",
    "SingleProcess",
    "run_dcpg",
    "TaskSet",
    "Graph",
    "GRAPHS",
    "ring",
    "path",
    "star",
    "complete",
    "random_connected",
    "from_adjacency",
    "make_graph",
    "WEIGHTS",
    "lazy_metropolis",
    "metropolis_hastings",
    "max_degree",
    "make_weights",
    "check_weights",
    "Spectrum",
    "spectral",
    "Topology",
]
