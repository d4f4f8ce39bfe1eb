"""Communication graphs and consensus weights (baselines.consensus.graphs) against hand-computed
matrices, the SVD, the ring's closed-form spectrum, reachability by matrix powers and the
consensus iteration W^k x itself."""

from __future__ import annotations

import re

import numpy as np
import pytest

from baselines.consensus.graphs import (
    GRAPHS,
    WEIGHTS,
    Graph,
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

NS = (1, 2, 3, 5, 8)
RING4 = np.array([[2, 1, 0, 1], [1, 2, 1, 0], [0, 1, 2, 1], [1, 0, 1, 2]]) / 4


def reachable(a: np.ndarray) -> bool:
    """Independent connectivity oracle: (I + A)^(N-1) has no zero entry."""
    n = len(a)
    return bool((np.linalg.matrix_power(np.eye(n) + a, max(n - 1, 1)) > 0).all())


def raises(match: str):
    return pytest.raises(ValueError, match=re.escape(match))


# --- graphs ----------------------------------------------------------------------------------------


def test_constructors_edges():
    assert ring(5).edges() == [(0, 1), (0, 4), (1, 2), (2, 3), (3, 4)]
    assert ring(2).edges() == [(0, 1)]
    assert ring(1).edges() == [] and ring(1).n == 1
    assert path(4).edges() == [(0, 1), (1, 2), (2, 3)]
    assert star(4, center=2).edges() == [(0, 2), (1, 2), (2, 3)]
    assert len(complete(5).edges()) == 10
    g = ring(6)
    assert g.neighbours(0).tolist() == [1, 5] and g.degrees.tolist() == [2] * 6
    assert star(5).degrees.tolist() == [4, 1, 1, 1, 1]


def test_graph_is_read_only_and_compares_by_value():
    g = ring(4)
    with pytest.raises(ValueError, match="read-only"):
        g.adjacency[0, 2] = True
    assert g == from_adjacency(ring(4).adjacency.astype(int), name="ring") and g != path(4)
    assert hash(g) == hash(ring(4))


@pytest.mark.parametrize("kind", GRAPHS)
@pytest.mark.parametrize("n", NS)
def test_make_graph_valid(kind, n):
    g = make_graph(kind, n, seed=3)
    a = g.adjacency
    assert a.shape == (n, n) and a.dtype == bool and not a.flags.writeable
    assert (a == a.T).all() and not np.diag(a).any() and reachable(a)
    assert make_graph(g, n) is g and make_graph(a.tolist(), n) == from_adjacency(a)


def test_random_connected_deterministic_and_seed_dependent():
    a = random_connected(8, 0.4, seed=0).adjacency
    np.testing.assert_array_equal(a, random_connected(8, 0.4, seed=0).adjacency)
    assert not np.array_equal(a, random_connected(8, 0.4, seed=1).adjacency)
    assert len({random_connected(8, 0.4, seed=s).adjacency.tobytes() for s in range(10)}) > 5


def test_random_connected_always_connected():
    for seed in range(50):
        assert reachable(random_connected(10, 0.2, seed).adjacency.astype(float))
    with raises("use a larger p"):
        random_connected(20, 0.01, seed=0)
    with raises("p must be in (0, 1]"):
        random_connected(5, 0.0)


def test_graph_errors():
    disconnected = np.kron(np.eye(2), [[0, 1], [1, 0]])
    with raises("graph is disconnected: components [0, 1] and [2, 3]"):
        from_adjacency(disconnected)
    with raises("components [0], [1] and [2]"):
        from_adjacency(np.zeros((3, 3)))
    with raises("not symmetric: a[1, 2] = True but a[2, 1] = False"):
        from_adjacency([[0, 1, 0], [1, 0, 1], [0, 0, 0]])
    with raises("self-loop at node 1"):
        from_adjacency([[0, 1], [1, 1]])
    with raises("got a[0, 1] = 2"):
        from_adjacency([[0, 2], [2, 0]])
    with raises("got a[0, 1] = 0.5"):
        from_adjacency([[0, 0.5], [0.5, 0]])
    with raises("square (N, N) array, got shape (2, 3)"):
        from_adjacency(np.zeros((2, 3)))
    with raises("at least one node"):
        from_adjacency(np.zeros((0, 0)))
    with raises("out of range"):
        ring(3).neighbours(3)


def test_make_graph_errors():
    with raises("unknown graph 'torus'; choose one of ring, path, star, complete, random"):
        make_graph("torus", 4)
    with raises("the graph has 4 nodes but n = 5"):
        make_graph(ring(4).adjacency, 5)
    with raises("the graph has 4 nodes but n = 3"):
        make_graph(ring(4), 3)
    for bad in (0, -2, True, 4.0, "4", None):
        with raises("n (the number of agents) must be"):
            make_graph("ring", bad)
    with raises("star center 4 out of range"):
        star(4, center=4)


# --- weights ---------------------------------------------------------------------------------------


def test_lazy_metropolis_hand_computed():
    np.testing.assert_array_equal(lazy_metropolis(ring(4)), RING4)
    w5 = np.where(ring(5).adjacency, 1 / 4, 0.0) + np.eye(5) / 2
    np.testing.assert_array_equal(lazy_metropolis(ring(5)), w5)
    star4 = np.array([[3, 1, 1, 1], [1, 5, 0, 0], [1, 0, 5, 0], [1, 0, 0, 5]]) / 6
    np.testing.assert_array_equal(lazy_metropolis(star(4)), star4)
    np.testing.assert_array_equal(lazy_metropolis(ring(1)), [[1.0]])


def test_other_weights_hand_computed():
    # path 0-1-2, degrees (1, 2, 1): MH gives 1/3 on both edges.
    mh = np.array([[2, 1, 0], [1, 1, 1], [0, 1, 2]]) / 3
    np.testing.assert_allclose(metropolis_hastings(path(3)), mh, atol=1e-15)
    # star of 4, d_max = 3: 1/4 per edge, center keeps 1/4, leaves 3/4.
    md = np.array([[1, 1, 1, 1], [1, 3, 0, 0], [1, 0, 3, 0], [1, 0, 0, 3]]) / 4
    np.testing.assert_array_equal(max_degree(star(4)), md)
    for method in WEIGHTS:
        np.testing.assert_array_equal(make_weights(ring(1), method), [[1.0]])


@pytest.mark.parametrize("kind", GRAPHS)
@pytest.mark.parametrize("method", WEIGHTS)
@pytest.mark.parametrize("n", NS)
def test_weights_assumption_1_and_spectrum(kind, method, n):
    g = make_graph(kind, n, seed=n)
    w = make_weights(g, method)
    assert w.dtype == np.float64 and not w.flags.writeable
    np.testing.assert_allclose(w.sum(axis=0), 1.0, atol=1e-14)
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-14)
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(w > 0, g.adjacency | np.eye(n, dtype=bool))
    assert (w >= 0).all()
    s = spectral(w)
    sv = np.linalg.svd(w, compute_uv=False)
    assert sv[0] == pytest.approx(1.0)
    assert s.sigma_2 == pytest.approx(sv[1] if n > 1 else 0.0, abs=1e-12)
    assert s.sigma_n == pytest.approx(sv[-1], abs=1e-12)
    assert s.sigma_2 < 1 - 1e-9 and s.gap == pytest.approx(1 - s.sigma_2)
    t = Topology.make(kind, n, method, seed=n)
    np.testing.assert_array_equal(t.weights, w)
    assert t.spectrum == s


@pytest.mark.parametrize("n", NS)
def test_ring_lazy_metropolis_closed_form(n):
    k = np.arange(1, n)
    expected = np.abs(0.5 + 0.5 * np.cos(2 * np.pi * k / n)).max() if n > 1 else 0.0
    assert spectral(lazy_metropolis(ring(n))).sigma_2 == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("kind", ["ring", "path", "star", "random"])
@pytest.mark.parametrize("method", WEIGHTS)
def test_consensus_at_the_predicted_rate(kind, method):
    n = 8
    w = make_weights(make_graph(kind, n, seed=1, p=0.4), method)
    s2 = spectral(w).sigma_2
    x = np.random.default_rng(0).normal(size=n)
    dev0 = np.linalg.norm(x - x.mean())
    y = x.copy()
    for k in range(1, 301):
        y = w @ y
        assert y.mean() == pytest.approx(x.mean(), abs=1e-12)
        assert np.linalg.norm(y - x.mean()) <= s2**k * dev0 * (1 + 1e-9) + 1e-13
    np.testing.assert_allclose(y, x.mean(), atol=1e-3 * dev0)
    # The rate is attained (sigma_2 is not an overestimate): the eigenvector of |lambda| = sigma_2.
    lam, vec = np.linalg.eigh(w)
    v = vec[:, np.argmin(np.abs(np.abs(lam) - s2))]
    assert np.linalg.norm(np.linalg.matrix_power(w, 10) @ v) == pytest.approx(s2**10, rel=1e-8)


# --- user matrices ---------------------------------------------------------------------------------


def test_check_weights_accepts_a_valid_user_matrix():
    w = check_weights(RING4.tolist(), ring(4))
    assert w.dtype == np.float64 and not w.flags.writeable
    np.testing.assert_array_equal(make_weights(ring(4), RING4), RING4)
    # A different valid W on the ring: 0.1 on every edge.
    w2 = np.where(ring(4).adjacency, 0.1, 0.0) + 0.8 * np.eye(4)
    t = Topology.make("ring", 4, w2)
    assert t.describe() == "ring of 4, custom, sigma_2 = 0.800, gap 0.200"


def test_check_weights_errors():
    g = ring(4)
    w = RING4.copy()
    w[0, 0] += 0.1
    with raises("row 0 sums to 1.1"):
        check_weights(w, g)
    w = RING4.copy()
    w[[0, 2], [2, 0]] = 0.1  # weight on the non-edge (0, 2), rows rebalanced on the diagonal
    w[0, 0] -= 0.1
    w[2, 2] -= 0.1
    with raises("W[0, 2] = 0.1 on a pair that is not an edge"):
        check_weights(w, g)
    w = RING4.copy()
    w[[1, 2], [2, 1]] = 0.0  # zero weight on the edge (1, 2)
    w[1, 1] += 0.25
    w[2, 2] += 0.25
    with raises("edge (1, 2) has weight 0"):
        check_weights(w, g)
    w = RING4.copy()
    w[[0, 1], [1, 0]] = -0.25
    w[0, 0] = w[1, 1] = 1.0
    with raises("negative W[0, 1] = -0.25"):
        check_weights(w, g)
    w = RING4.copy()
    w[0, 1], w[0, 3] = 0.3, 0.2
    with raises("not symmetric: W[0, 1] = 0.3 but W[1, 0] = 0.25"):
        check_weights(w, g)
    w = np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1.0]])
    with raises("W_ii must be > 0 (Assumption 1): W[0, 0] = 0"):
        check_weights(w, complete(3))
    with raises("non-finite W[0, 0] = nan"):
        check_weights(np.full((4, 4), np.nan), g)
    with raises("weights have shape (4, 3) but the graph (ring) has 4 nodes"):
        check_weights(np.zeros((4, 3)), g)
    with raises("weights have shape (3, 3) but the graph (ring) has 4 nodes"):
        check_weights(np.eye(3), g)
    with raises("unknown weights 'uniform'; choose one of lazy_metropolis, metropolis_hastings, max_degree"):
        make_weights(g, "uniform")


# --- topology --------------------------------------------------------------------------------------


def test_topology():
    t = Topology.make("ring", 4)
    assert t.describe() == "ring of 4, lazy Metropolis, sigma_2 = 0.500, gap 0.500"
    assert t.neighbour_weights(0) == [(1, 0.25), (3, 0.25)]
    assert Topology.make("star", 4).neighbour_weights(0) == [(1, 1 / 6), (2, 1 / 6), (3, 1 / 6)]
    assert Topology.make("ring", 1).neighbour_weights(0) == []
    assert Topology.make("path", 3, "max_degree").describe().startswith("path of 3, max-degree, ")
    assert Topology.make("complete", 3, "metropolis_hastings").describe() == (
        "complete of 3, Metropolis-Hastings, sigma_2 = 0.000, gap 1.000"
    )
    g = make_graph("random", 8, seed=2, p=0.4)
    t = Topology(g, lazy_metropolis(g), "lazy_metropolis")
    assert t.spectrum == spectral(t.weights)
    for i in range(8):
        assert [j for j, _ in t.neighbour_weights(i)] == g.neighbours(i).tolist()
    with raises("row 0 sums to"):
        Topology(ring(3), np.eye(3) * 2)
    assert isinstance(t.graph, Graph)


# --- hostile input -----------------------------------------------------------------------------------


def test_spectral_refuses_what_is_not_a_doubly_stochastic_square_matrix():
    with raises("square (N, N) matrix with N >= 1, got shape (2, 3)"):
        spectral(np.full((2, 3), 1 / 3))
    with raises("w must be finite, got W[1, 1] = nan"):
        spectral([[0.5, 0.5], [0.5, np.nan]])
    with raises("_2 holds only then): row 0 sums to 2"):
        spectral([[1.0, 1.0], [0.0, 1.0]])
    with raises("w must be an (N, N) array or nested list, got 'ab'"):
        spectral("ab")
    with raises("real (N, N) matrix, got dtype"):
        spectral(np.array([[1 + 1j]]))
    assert spectral([[1]]).sigma_2 == 0.0


def test_graph_sizes_are_refused_before_allocating():
    from mpg_envs import TooLargeError

    for build in (lambda: ring(10**5), lambda: random_connected(10**5, 0.5), lambda: complete(10**5),
                  lambda: path(10**5), lambda: star(10**5), lambda: make_graph("ring", 10**5)):  # fmt: skip
        with pytest.raises(TooLargeError, match=r"graph of 100,000 agents .* over the memory limit"):
            build()
    with pytest.raises(TooLargeError, match="over the memory limit"):
        make_weights(ring(10**4))  # the adjacency fits, its float64 weights and checks do not


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: random_connected(5, "0.5"), r"edge probability p must be in \(0, 1\], got '0.5' \(str\)"),
        (lambda: random_connected(5, float("nan")), r"edge probability p must be in \(0, 1\], got nan"),
        (lambda: random_connected(5, 0.5, seed="x"), "seed must be a non-negative int, got 'x'"),
        (lambda: random_connected(5, 0.5, seed=-1), "seed must be a non-negative int, got -1"),
        (lambda: random_connected(5, 0.5, max_tries=0), "max_tries must be a positive integer, got 0"),
        (lambda: Topology.make("random", 4, p="x"), "edge probability p must be in"),
        (lambda: ring(3).neighbours(1.5), r"i must be an agent index \(int\), got 1.5"),
        (lambda: ring(3).neighbours("1"), r"i must be an agent index \(int\), got '1'"),
        (lambda: star(4, center=1.5), r"center must be an agent index \(int\), got 1.5"),
        (lambda: star(4, center=True), r"center must be an agent index \(int\), got True"),
        (lambda: make_graph(None, 4), "graph must be one of ring, .* got None"),
        (lambda: make_graph(3, 4), "graph must be one of ring, .* got 3"),
        (lambda: from_adjacency("ab"), "adjacency must be an .N, N. array or nested list, got 'ab'"),
        (lambda: from_adjacency([[0, 1], [1]]), "adjacency must be an .N, N. array or nested list"),
        (lambda: from_adjacency([[0, np.nan], [np.nan, 0]]), r"boolean or 0/1, got a\[0, 1\] = nan"),
        (lambda: from_adjacency([[0, np.inf], [np.inf, 0]]), r"boolean or 0/1, got a\[0, 1\] = inf"),
        (lambda: from_adjacency([[0, 1], [1, 0]], name=3), "name must be a str, got 3"),
        (lambda: make_weights("ring"), "g must be a Graph .*, got 'ring'"),
        (lambda: lazy_metropolis(None), "g must be a Graph .*, got None"),
        (lambda: make_weights(ring(3), None), "weights must be a numeric .N, N. array, got None"),
        (lambda: check_weights(np.eye(3), ring(3), tol="x"), r"tol must be a number in \[0, inf\)"),
        (lambda: check_weights(np.full((3, 3), np.inf), ring(3)), r"non-finite W\[0, 0\] = inf"),
        (lambda: check_weights(np.eye(3), None), "g must be a Graph"),
        (lambda: Topology("ring", np.eye(3)), "g must be a Graph"),
        (lambda: Topology.make("ring", 3, weights=None), "weights must be a numeric"),
    ],
)
def test_wrong_arguments_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
