"""Communication graphs and consensus weights for decentralized optimisation.

Zeng et al., "A decentralized policy gradient approach to multi-task reinforcement learning",
Assumption 1: the weight matrix W (N, N) is doubly stochastic, ``W_ii > 0``, and ``W_ij > 0`` iff
agents i and j are connected (else 0). Theorem 1's rate constant is the spectral gap ``1 - sigma_2``
(``sigma_2`` the second largest singular value of W); the step-size bound (10) also involves the
smallest singular value ``sigma_N``.

* :class:`Graph`: a connected undirected graph; built by :func:`ring`, :func:`path`, :func:`star`,
  :func:`complete`, :func:`random_connected`, :func:`from_adjacency` or :func:`make_graph`.
* Weights: :func:`lazy_metropolis` (the paper's), :func:`metropolis_hastings`, :func:`max_degree`,
  or a user matrix checked by :func:`check_weights`; :func:`make_weights` takes either.
* :func:`spectral` gives ``sigma_2``, ``sigma_N`` and the gap; :class:`Topology` bundles all three.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mpg_envs import _validate as V

__all__ = [
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


def _components(adj: np.ndarray) -> list[list[int]]:
    """Connected components of a boolean adjacency, each sorted, ordered by smallest node."""
    unseen, comps = set(range(len(adj))), []
    while unseen:
        frontier = comp = {min(unseen)}
        while frontier:
            frontier = set(np.flatnonzero(adj[sorted(frontier)].any(axis=0)).tolist()) - comp
            comp = comp | frontier
        unseen -= comp
        comps.append(sorted(comp))
    return comps


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


@dataclass(frozen=True, eq=False)
class Graph:
    """A connected undirected graph on agents 0..N-1 (no self-loops).

    Args:
        adjacency: (N, N) bool (or 0/1) array, symmetric with a zero diagonal; stored as a
            read-only bool copy.
        name: A label, e.g. "ring".

    Raises:
        ValueError: If the adjacency is not square, empty, not 0/1, not symmetric, has a self-loop
            or is disconnected (the message names the offending entry or the components).
    """

    adjacency: np.ndarray
    name: str = "custom"

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, n={self.n}, edges={int(np.asarray(self.adjacency).sum()) // 2})"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise V.ArgumentTypeError(f"name must be a str, got {V.show(self.name)}")
        a = _matrix("adjacency", self.adjacency)
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise ValueError(f"adjacency must be a square (N, N) array, got shape {a.shape}")
        if a.shape[0] < 1:
            raise ValueError("a graph needs at least one node (N >= 1), got an empty adjacency")
        _check_graph_bytes(a.shape[0], "the adjacency checks")
        if a.dtype != bool:
            if not np.issubdtype(a.dtype, np.number):
                raise ValueError(f"adjacency must be boolean or 0/1, got dtype {a.dtype}")
            bad = np.argwhere((a != 0) & (a != 1))
            if len(bad):
                i, j = bad[0]
                raise ValueError(f"adjacency must be boolean or 0/1, got a[{i}, {j}] = {a[i, j].item()!r}")
        a = np.array(a, dtype=bool)
        loops = np.flatnonzero(np.diag(a))
        if len(loops):
            raise ValueError(f"self-loop at node {loops[0]}: a[{loops[0]}, {loops[0]}] must be False")
        bad = np.argwhere(a != a.T)
        if len(bad):
            i, j = bad[0]
            raise ValueError(
                f"adjacency is not symmetric: a[{i}, {j}] = {a[i, j]} but a[{j}, {i}] = {a[j, i]}"
            )
        comps = _components(a)
        if len(comps) > 1:
            raise ValueError(
                f"graph is disconnected: components {_join([str(c) for c in comps])} "
                "(consensus needs every agent to reach every other)"
            )
        a.flags.writeable = False
        object.__setattr__(self, "adjacency", a)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return self.name == other.name and np.array_equal(self.adjacency, other.adjacency)

    def __hash__(self) -> int:
        return hash((self.name, self.adjacency.shape, self.adjacency.tobytes()))

    @property
    def n(self) -> int:
        """The number of agents N."""
        return self.adjacency.shape[0]

    @property
    def degrees(self) -> np.ndarray:
        """The degrees (N,) int64 (self excluded)."""
        return self.adjacency.sum(axis=1, dtype=np.int64)

    def neighbours(self, i: int) -> np.ndarray:
        """The sorted neighbours (int64) of agent ``i`` (``i`` itself excluded)."""
        i = V.integer("i", i, what="an agent index (int)")
        if not 0 <= i < self.n:
            raise ValueError(f"agent {i} out of range for a graph of {self.n} nodes")
        return np.flatnonzero(self.adjacency[i])

    def edges(self) -> list[tuple[int, int]]:
        """The edges as pairs (i, j) with i < j, in lexicographic order."""
        return [(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(self.adjacency, 1)))]


def _matrix(name: str, value: Any) -> np.ndarray:
    """``np.asarray(value)`` with a clear error for ragged, string or missing input."""
    if value is None or isinstance(value, (str, bytes, dict)):
        raise V.ArgumentTypeError(f"{name} must be an (N, N) array or nested list, got {V.show(value)}")
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as err:
        raise V.ArgumentTypeError(f"{name} must be an (N, N) array or nested list ({err})") from None


#: Bytes per node pair that a graph and its weights take at their peak (the dense bool adjacency
#: and its checks; the float64 weights, their checks and the spectrum's decomposition).
_GRAPH_PAIR_BYTES = 8
_WEIGHT_PAIR_BYTES = 64


def _check_graph_bytes(n: int, what: str = "the adjacency", per_pair: int = _GRAPH_PAIR_BYTES) -> None:
    V.check_bytes(
        f"{what} of a graph of {n:,} agents (dense (N, N) arrays)",
        per_pair * n * n,
        advice="use fewer agents",
    )


def _check_n(n: Any, per_pair: int = _GRAPH_PAIR_BYTES) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise V.ArgumentTypeError(f"n (the number of agents) must be a positive int, got {V.show(n)}")
    if n < 1:
        raise ValueError(f"n (the number of agents) must be >= 1, got {n}")
    _check_graph_bytes(int(n), per_pair=per_pair)
    return int(n)


def _from_edges(n: int, pairs: list[tuple[int, int]], name: str) -> Graph:
    a = np.zeros((n, n), dtype=bool)
    for i, j in pairs:
        a[i, j] = a[j, i] = True
    return Graph(a, name)


def ring(n: int) -> Graph:
    """The ring i ~ i +- 1 (mod n) of the paper (n = 2: one edge; n = 1: no edge)."""
    n = _check_n(n)
    return _from_edges(n, [(i, (i + 1) % n) for i in range(n) if n > 1], "ring")


def path(n: int) -> Graph:
    """The path 0 - 1 - ... - (n-1)."""
    n = _check_n(n)
    return _from_edges(n, [(i, i + 1) for i in range(n - 1)], "path")


def star(n: int, center: int = 0) -> Graph:
    """The star with every other agent connected to ``center`` only."""
    n = _check_n(n)
    center = V.integer("center", center, what="an agent index (int)")
    if not 0 <= center < n:
        raise ValueError(f"star center {center} out of range for n = {n}")
    return _from_edges(n, [(center, j) for j in range(n) if j != center], "star")


def complete(n: int) -> Graph:
    """The complete graph (every pair connected)."""
    n = _check_n(n)
    return Graph(~np.eye(n, dtype=bool), "complete")


def random_connected(n: int, p: float, seed: Any = 0, max_tries: int = 1000) -> Graph:
    """An Erdos-Renyi G(n, p) graph, redrawn until connected (deterministic for a seed).

    Args:
        n: The number of agents.
        p: The edge probability, in (0, 1].
        seed: A non-negative int seed of ``np.random.default_rng``.
        max_tries: Draws before giving up.

    Raises:
        ValueError: If p is outside (0, 1] or no draw in ``max_tries`` is connected.
    """
    n = _check_n(n, per_pair=16)  # the uniform draws (float64) and the bool adjacency
    V.real("edge probability p", p, low=0.0, high=1.0, low_open=True, what="in (0, 1]")
    V.integer("seed", seed, minimum=0, what="a non-negative int")
    max_tries = V.positive_int("max_tries", max_tries)
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        upper = np.triu(rng.random((n, n)) < p, 1)
        a = upper | upper.T
        if len(_components(a)) == 1:
            return Graph(a, f"random(p={p}, seed={seed})")
    raise ValueError(f"no connected G(n={n}, p={p}) in {max_tries} draws (seed {seed}); use a larger p")


def from_adjacency(a: Any, name: str = "custom") -> Graph:
    """A :class:`Graph` from an (N, N) bool or 0/1 array or nested list (validated)."""
    return Graph(_matrix("adjacency", a), name)


#: The graph names :func:`make_graph` accepts.
GRAPHS = ("ring", "path", "star", "complete", "random")


def make_graph(spec: str | np.ndarray | Graph, n: int, seed: Any = 0, p: float = 0.5) -> Graph:
    """A graph from a name in :data:`GRAPHS`, an adjacency (array or nested list) or a :class:`Graph`.

    Args:
        spec: The name, adjacency or graph.
        n: The number of agents (must match an adjacency or graph given as ``spec``).
        seed: Seed of the "random" graph.
        p: Edge probability of the "random" graph.
    """
    n = _check_n(n)
    if isinstance(spec, str):
        if spec == "random":
            return random_connected(n, p, seed)
        builders = {"ring": ring, "path": path, "star": star, "complete": complete}
        if spec not in builders:
            raise ValueError(f"unknown graph {spec!r}; choose one of {', '.join(GRAPHS)} or an adjacency")
        return builders[spec](n)
    if spec is None or V.is_real(spec) or isinstance(spec, (bool, bytes, dict)):
        raise V.ArgumentTypeError(
            f"graph must be one of {', '.join(GRAPHS)}, an (N, N) adjacency or a Graph, got {V.show(spec)}"
        )
    g = spec if isinstance(spec, Graph) else from_adjacency(spec)
    if g.n != n:
        raise ValueError(f"the graph has {g.n} nodes but n = {n}")
    return g


def _fill_diagonal(off: np.ndarray) -> np.ndarray:
    w = off + np.diag(1.0 - off.sum(axis=1))
    w.flags.writeable = False
    return w


def _graph(g: Any) -> Graph:
    if not isinstance(g, Graph):
        raise V.ArgumentTypeError(
            f"g must be a Graph (ring, path, star, complete, random_connected, from_adjacency), "
            f"got {V.show(g)}"
        )
    _check_graph_bytes(g.n, "the weights", _WEIGHT_PAIR_BYTES)
    return g


def lazy_metropolis(g: Graph) -> np.ndarray:
    """Lazy Metropolis weights (Olshevsky 2014, the paper's): W_ij = 1 / (2 max(d_i, d_j)) on edges.

    Returns:
        W (N, N) float64, read-only; the diagonal is 1 - sum_{j != i} W_ij (>= 1/2).
    """
    d = _graph(g).degrees
    return _fill_diagonal(g.adjacency / (2.0 * np.maximum(np.maximum.outer(d, d), 1)))


def metropolis_hastings(g: Graph) -> np.ndarray:
    """Metropolis-Hastings weights: W_ij = 1 / (1 + max(d_i, d_j)) on edges, the rest on the diagonal.

    Returns:
        W (N, N) float64, read-only.
    """
    d = _graph(g).degrees
    return _fill_diagonal(g.adjacency / (1.0 + np.maximum.outer(d, d)))


def max_degree(g: Graph) -> np.ndarray:
    """Max-degree weights: W_ij = 1 / (1 + d_max) on edges, W_ii = 1 - d_i / (1 + d_max).

    Returns:
        W (N, N) float64, read-only.
    """
    return _fill_diagonal(_graph(g).adjacency / (1.0 + g.degrees.max()))


WEIGHTS: dict[str, Callable[[Graph], np.ndarray]] = {
    "lazy_metropolis": lazy_metropolis,
    "metropolis_hastings": metropolis_hastings,
    "max_degree": max_degree,
}
_LABELS = {"lazy_metropolis": "lazy Metropolis", "metropolis_hastings": "Metropolis-Hastings"}


def check_weights(w: Any, g: Graph, tol: float = 1e-10) -> np.ndarray:
    """Check that ``w`` satisfies Assumption 1 on ``g``.

    Args:
        w: The (N, N) weights.
        g: The graph.
        tol: Tolerance of the symmetry and the row and column sums. Off-graph entries must be
            exactly 0 and edge weights > 0 (no tolerance: they say who talks to whom).

    Returns:
        A read-only float64 copy of ``w``.

    Raises:
        ValueError: Naming the offending entry, pair, row or column.
    """
    g = _graph(g)
    tol = V.real("tol", tol, low=0.0)
    if w is None or isinstance(w, (str, bytes, dict)):
        raise V.ArgumentTypeError(f"weights must be a numeric (N, N) array, got {V.show(w)}")
    try:
        w = np.array(w, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"weights must be a numeric (N, N) array: {err}") from None
    if w.shape != (g.n, g.n):
        raise ValueError(f"weights have shape {w.shape} but the graph ({g.name}) has {g.n} nodes")
    for mask, what in ((~np.isfinite(w), "non-finite"), (w < 0, "negative")):
        if mask.any():
            i, j = np.argwhere(mask)[0]
            raise ValueError(f"weights must be finite and >= 0: {what} W[{i}, {j}] = {w[i, j]}")
    bad = np.argwhere(np.abs(w - w.T) > tol)
    if len(bad):
        i, j = bad[0]
        raise ValueError(f"weights are not symmetric: W[{i}, {j}] = {w[i, j]} but W[{j}, {i}] = {w[j, i]}")
    for axis, what in ((1, "row"), (0, "column")):
        sums = w.sum(axis=axis)
        bad = np.flatnonzero(np.abs(sums - 1.0) > tol)
        if len(bad):
            k = bad[0]
            raise ValueError(f"weights must be doubly stochastic: {what} {k} sums to {sums[k]:.12g}")
    zero_diag = np.flatnonzero(np.diag(w) <= 0)
    if len(zero_diag):
        i = zero_diag[0]
        raise ValueError(f"W_ii must be > 0 (Assumption 1): W[{i}, {i}] = {w[i, i]}")
    off = np.argwhere((w != 0) & ~g.adjacency & ~np.eye(g.n, dtype=bool))
    if len(off):
        i, j = off[0]
        raise ValueError(f"weight W[{i}, {j}] = {w[i, j]} on a pair that is not an edge of the graph")
    missing = np.argwhere((w <= 0) & g.adjacency)
    if len(missing):
        i, j = missing[0]
        raise ValueError(f"edge ({i}, {j}) has weight 0; Assumption 1 needs W_ij > 0 on every edge")
    w.flags.writeable = False
    return w


def make_weights(g: Graph, method_or_matrix: str | np.ndarray = "lazy_metropolis") -> np.ndarray:
    """Weights on ``g`` from a name in :data:`WEIGHTS` or a user matrix (checked by :func:`check_weights`)."""
    g = _graph(g)
    if isinstance(method_or_matrix, str):
        if method_or_matrix not in WEIGHTS:
            raise ValueError(f"unknown weights {method_or_matrix!r}; choose one of {', '.join(WEIGHTS)}")
        return WEIGHTS[method_or_matrix](g)
    return check_weights(method_or_matrix, g)


@dataclass(frozen=True)
class Spectrum:
    """Singular values of W that set the consensus rate.

    Attributes:
        sigma_2: The second largest singular value, ||W - 11^T / N||_2 (0.0 for N = 1).
        sigma_n: The smallest singular value.
    """

    sigma_2: float
    sigma_n: float

    @property
    def gap(self) -> float:
        """The spectral gap 1 - sigma_2 (Theorem 1's constant)."""
        return 1.0 - self.sigma_2


def spectral(w: np.ndarray, tol: float = 1e-10) -> Spectrum:
    """The :class:`Spectrum` of a doubly stochastic W (N, N).

    Raises:
        ValueError: ``w`` is not a finite, square, doubly stochastic matrix (rows and columns sum
            to 1 within ``tol``), naming what is wrong.
    """
    a = _matrix("w", w)
    if a.dtype.kind not in "biuf":
        raise V.ArgumentTypeError(f"w must be a real (N, N) matrix, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] < 1:
        raise ValueError(f"w must be a square (N, N) matrix with N >= 1, got shape {a.shape}")
    n = a.shape[0]
    _check_graph_bytes(n, "the spectrum", _WEIGHT_PAIR_BYTES)
    w = a.astype(np.float64)
    if not np.isfinite(w).all():
        i, j = np.argwhere(~np.isfinite(w))[0]
        raise ValueError(f"w must be finite, got W[{i}, {j}] = {w[i, j]}")
    for axis, what in ((1, "row"), (0, "column")):
        sums = w.sum(axis=axis)
        bad = np.flatnonzero(np.abs(sums - 1.0) > tol)
        if len(bad):
            raise ValueError(
                f"w must be doubly stochastic (sigma_2 = ||W - 11^T/N||_2 holds only then): {what} "
                f"{bad[0]} sums to {sums[bad[0]]:.12g}"
            )
    sigma_2 = float(np.linalg.norm(w - 1.0 / n, 2)) if n > 1 else 0.0
    return Spectrum(sigma_2, float(np.linalg.svd(w, compute_uv=False)[-1]))


@dataclass(frozen=True, eq=False)
class Topology:
    """A graph, its validated weights and their spectrum.

    Args:
        graph: The graph.
        weights: W (N, N), checked by :func:`check_weights` and stored read-only.
        method: The weights' name (for :meth:`describe`).
    """

    graph: Graph
    weights: np.ndarray
    method: str = "custom"
    spectrum: Spectrum = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.method, str):
            raise V.ArgumentTypeError(f"method must be a str, got {V.show(self.method)}")
        object.__setattr__(self, "weights", check_weights(self.weights, self.graph))
        object.__setattr__(self, "spectrum", spectral(self.weights))

    @classmethod
    def make(
        cls,
        graph_spec: str | np.ndarray | Graph,
        n: int,
        weights: str | np.ndarray = "lazy_metropolis",
        seed: Any = 0,
        p: float = 0.5,
    ) -> Topology:
        """Build from :func:`make_graph`'s and :func:`make_weights`' arguments."""
        g = make_graph(graph_spec, n, seed=seed, p=p)
        method = weights if isinstance(weights, str) else "custom"
        return cls(g, make_weights(g, weights), method)

    def __repr__(self) -> str:
        return f"Topology({self.describe()})"

    def describe(self) -> str:
        """A one-line summary, e.g. "ring of 4, lazy Metropolis, sigma_2 = 0.500, gap 0.500"."""
        label = _LABELS.get(self.method, self.method.replace("_", "-"))
        s = self.spectrum
        return f"{self.graph.name} of {self.graph.n}, {label}, sigma_2 = {s.sigma_2:.3f}, gap {s.gap:.3f}"

    def neighbour_weights(self, i: int) -> list[tuple[int, float]]:
        """The pairs (j, W_ij) over j != i with W_ij > 0 (the neighbours agent i averages with)."""
        return [(int(j), float(self.weights[i, j])) for j in self.graph.neighbours(i)]
