"""The ``torch.distributed`` backend of DCPG: one process (rank) per task, neighbour exchange only.

Launch one process per task with ``torchrun`` (gloo backend, CPU)::

    torchrun --nproc-per-node 4 -m baselines dcpg --backend dist --layout no_conflict --iters 1000
    torchrun --nproc-per-node 4 -m baselines dcpg --backend dist --env mpg/IndoorNav-v0  # a world per rank

Rank i holds agent i's logits, computes its local gradient from its own task, and in each
consensus step sends its logits to and receives from its graph neighbours only (point-to-point
``isend``/``irecv``), then forms ``sum_j W_ij theta_j``. Exact metrics gather every agent's logits
on rank 0 at the evaluated iterations only; rank 0 writes ``metrics.csv`` and ``final.npz``, every
rank writes its own checkpoint files, and a killed run resumes (relaunch with ``--resume RUN_DIR``)
from the latest iteration that every rank saved.

On several machines, start the same command on each with a rendezvous endpoint, e.g. two hosts with
three tasks each (six tasks)::

    torchrun --nnodes 2 --nproc-per-node 3 --rdzv-backend c10d \\
        --rdzv-endpoint HOST0:29400 --rdzv-id dcpg1 \\
        -m baselines dcpg --backend dist --layout start_top_left --out /shared/runs

(``--out`` must be a folder every host can write: the run folder is shared.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from baselines.consensus.graphs import Topology

__all__ = ["DistributedBackend"]


class DistributedBackend:
    """One DCPG agent per ``torch.distributed`` rank.

    Args:
        topology: The communication graph and weights (the same on every rank).
        communicate: False: no exchange (W = I, the single-agent baselines).

    Raises:
        ValueError: If the number of ranks differs from the number of agents.
    """

    def __init__(self, topology: Topology, communicate: bool = True) -> None:
        import torch
        import torch.distributed as dist

        from baselines.threads import torch_threads

        torch_threads()  # one thread per rank unless the user chose (torchrun sets OMP_NUM_THREADS)
        if not dist.is_initialized():
            dist.init_process_group("gloo")
        self._dist, self._torch = dist, torch
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.n_agents = topology.graph.n
        if self.world_size != self.n_agents:
            raise ValueError(
                f"launch one process per task: the run has {self.n_agents} tasks but there are "
                f"{self.world_size} ranks (torchrun --nproc-per-node {self.n_agents} ...)"
            )
        self.agents = np.array([self.rank])
        self.is_main = self.rank == 0
        if communicate:
            self.self_weight = float(topology.weights[self.rank, self.rank])
            self.neighbours = sorted(topology.neighbour_weights(self.rank))
        else:
            self.self_weight, self.neighbours = 1.0, []

    def mix(self, thetas: np.ndarray) -> np.ndarray:
        """sum_j W_ij theta_j for this rank's agent: (1, ...) -> (1, ...)."""
        return self.finish_mix(self.start_mix(thetas))

    def start_mix(self, thetas: np.ndarray) -> Any:
        """Post the sends to and receives from the neighbours (non-blocking)."""
        if not self.neighbours:
            return thetas, None, []
        torch, dist = self._torch, self._dist
        mine = torch.from_numpy(np.array(thetas[0], copy=True))  # the caller may change thetas
        bufs = {j: torch.empty_like(mine) for j, _ in self.neighbours}
        reqs = [dist.isend(mine, j) for j, _ in self.neighbours]
        reqs += [dist.irecv(bufs[j], j) for j, _ in self.neighbours]
        return thetas, bufs, reqs

    def finish_mix(self, pending: Any) -> np.ndarray:
        """Wait for the exchange and form the weighted sum."""
        thetas, bufs, reqs = pending
        if bufs is None:
            return thetas.copy()
        for r in reqs:
            r.wait()
        out = self.self_weight * thetas[0]
        for j, w in self.neighbours:
            out = out + w * bufs[j].numpy()
        return out[None]

    def gather(self, thetas: np.ndarray) -> np.ndarray | None:
        """Every agent's logits (N, S, A) on rank 0, None on the others."""
        torch, dist = self._torch, self._dist
        mine = torch.from_numpy(np.ascontiguousarray(thetas[0]))
        bufs = [torch.empty_like(mine) for _ in range(self.world_size)] if self.is_main else None
        dist.gather(mine, bufs, dst=0)
        return np.stack([b.numpy() for b in bufs]) if self.is_main else None

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        box = [obj]
        self._dist.broadcast_object_list(box, src=0)
        return box[0]

    def common_iteration(self, available: set[int]) -> int | None:
        """The latest checkpoint iteration every rank has (None: none)."""
        sets: list[Any] = [None] * self.world_size
        self._dist.all_gather_object(sets, sorted(available))
        common = set.intersection(*[set(s) for s in sets])
        return max(common) if common else None

    def barrier(self) -> None:
        self._dist.barrier()
