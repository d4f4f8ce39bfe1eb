"""GMRES for Bellman systems (I - gamma P) x = b, several right-hand sides at once (private to exact).

Krylov methods need only products with P, and on many games they end after a handful of them:
the Krylov space of b under P is as large as the degree of P's minimal polynomial on b, which
is tiny for layered or periodic chains (in the congestion game, P_pi^2 has rank <= 4 whatever
the policy, so every solve ends after <= 6 products, for 514 or 2,050 states alike). A solve is
accepted only when its true residual, recomputed with one more product, is at round-off level,
so callers can fall back to a factorisation when the space does not close quickly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: A solve is accepted when max|b - (I - gamma P) x| <= RESIDUAL_TOL * max(max|x|, max|b|) per system.
RESIDUAL_TOL = 1e-13
_LS_TOL = 1e-14  # Arnoldi stops when the least-squares residual estimate is below this * |b|
_BREAKDOWN = 1e-13  # a new direction this small (relative to |(I - gamma P) v|) closes the space
_MAX_BASIS_ENTRIES = 1 << 24  # memory cap of the Krylov basis (128 MiB)
_CHECK_EVERY = 8  # without a closed space, test convergence every this many (block) products


def gmres(
    matvec: Callable[[np.ndarray], np.ndarray],
    b: np.ndarray,
    gamma: float,
    max_steps: int,
    stats: dict[str, int] | None = None,
) -> np.ndarray | None:
    """Solve (I - gamma P) x_j = b_j for every row b_j of b, or give up.

    One right-hand side: GMRES (Arnoldi with classical Gram-Schmidt, repeated when it cancels).
    Several: block GMRES over one shared Krylov space span{b, P b, P^2 b, ...}, dropping the
    directions that are already in the space (so m right-hand sides cost less than m solves, and
    repeated or dependent right-hand sides, e.g. agents with a common reward, cost nothing more).

    Args:
        matvec: P @ v for v (n,), and V (m, n) -> (m, n) with rows P @ v.
        b: Right-hand sides, shape (B, n).
        gamma: The discount.
        max_steps: Most products with P for one right-hand side (twice as many basis vectors for
            several).
        stats: If given, ``stats["products"]`` is set to the number of products with P (vectors)
            the solve took, the verification included.

    Returns:
        x (B, n), or None when the Krylov space did not yield a solution within the budget or a
        solution's true residual is not at round-off level.
    """
    if stats is not None:
        stats["products"] = 0
        plain = matvec

        def matvec(V: np.ndarray) -> np.ndarray:
            stats["products"] += 1 if V.ndim == 1 else V.shape[0]
            return plain(V)

    B, n = b.shape
    beta = np.linalg.norm(b, axis=1)
    if not beta.any():
        return np.zeros((B, n))
    live = np.flatnonzero(beta > 0)
    if live.size == 1:
        m = max(1, min(max_steps, n, _MAX_BASIS_ENTRIES // n - 1))
        xi = _gmres_one(matvec, b[live[0]], float(beta[live[0]]), gamma, m)
        if xi is None:
            return None
        x = np.zeros((B, n))
        x[live[0]] = xi
    else:
        x = _block_gmres(matvec, b, gamma, max(1, min(2 * max_steps, n, _MAX_BASIS_ENTRIES // (2 * n))))
        if x is None:
            return None
    return _verified(matvec, b, x, gamma, beta)


def _block_gmres(
    matvec: Callable[[np.ndarray], np.ndarray], b: np.ndarray, gamma: float, max_dim: int
) -> np.ndarray | None:
    """Block GMRES with deflation for right-hand sides b (B, n), at most max_dim basis vectors.

    Basis vectors are rows of Q; W holds their images (I - gamma P) q. The solution x = y Q
    minimises |b - y W| per right-hand side.
    """
    n = b.shape[1]
    Q = np.empty((max_dim, n))
    W = np.empty((max_dim, n))
    new = _orthonormal_rows(b, _BREAKDOWN * float(np.abs(b).max()) * np.sqrt(n))
    d = step = 0
    while True:
        k = new.shape[0]
        if d + k > max_dim:
            return None
        Q[d : d + k] = new
        W[d : d + k] = new - gamma * matvec(new)
        d += k
        step += 1
        C = W[d - k : d]  # (I - gamma P) new; outside span(Q) it is -gamma times the new directions
        size = float(np.linalg.norm(C, axis=1).max())
        for _ in range(2):
            C = C - (C @ Q[:d].T) @ Q[:d]
        new = _orthonormal_rows(C, _BREAKDOWN * size)
        closed = new.shape[0] == 0
        if closed or step % _CHECK_EVERY == 0 or d + new.shape[0] > max_dim:
            y = np.linalg.lstsq(W[:d].T, b.T, rcond=None)[0].T  # (B, d)
            x = y @ Q[:d]
            if closed:
                return x  # the space is invariant: x is the solution up to round-off (verified by the caller)
            rest = np.abs(b - y @ W[:d]).max(axis=1)
            if np.all(rest <= RESIDUAL_TOL * np.maximum(np.abs(x).max(axis=1), np.abs(b).max(axis=1))):
                return x


def _orthonormal_rows(C: np.ndarray, tol: float) -> np.ndarray:
    """Orthonormal rows spanning the rows of C, without the directions of singular value <= tol."""
    _, s, Vt = np.linalg.svd(C, full_matrices=False)
    return Vt[s > tol]


def _gmres_one(
    matvec: Callable[[np.ndarray], np.ndarray], b: np.ndarray, beta: float, gamma: float, m: int
) -> np.ndarray | None:
    """:func:`gmres` for one right-hand side b (n,) with norm beta > 0, at most m products."""
    n = b.shape[0]
    V = np.empty((m + 1, n))
    H = np.zeros((m + 1, m))
    V[0] = b / beta
    for j in range(m):
        Vj = V[: j + 1]
        w = V[j] - gamma * matvec(V[j])
        size = np.sqrt(w @ w)
        h = Vj @ w
        w -= h @ Vj
        hn = np.sqrt(w @ w)
        if hn < 0.7 * size:  # cancellation: orthogonalise once more
            h2 = Vj @ w
            w -= h2 @ Vj
            h += h2
            hn = np.sqrt(w @ w)
        H[: j + 1, j] = h
        H[j + 1, j] = hn
        if hn <= _BREAKDOWN * size:  # the Krylov space is invariant: the square system is exact
            rhs = np.zeros(j + 1)
            rhs[0] = beta
            return np.linalg.solve(H[: j + 1, : j + 1], rhs) @ Vj
        V[j + 1] = w / hn
        if (j + 1) % _CHECK_EVERY == 0 or j == m - 1:
            Q, R = np.linalg.qr(H[: j + 2, : j + 1])
            c = beta * Q[0]
            if np.linalg.norm(Q @ c - beta * _e1(j + 2)) <= _LS_TOL * beta:
                return np.linalg.solve(R, c) @ Vj
    return None


def _verified(
    matvec: Callable[[np.ndarray], np.ndarray], b: np.ndarray, x: np.ndarray, gamma: float, beta: np.ndarray
) -> np.ndarray | None:
    """x if every system's true residual is at round-off level (see RESIDUAL_TOL), else None."""
    todo = np.flatnonzero(beta > 0)
    xs = x[todo]
    r = b[todo] - (xs - gamma * (matvec(xs[0])[None] if len(todo) == 1 else matvec(xs)))
    scale = np.maximum(np.abs(xs).max(axis=1), np.abs(b[todo]).max(axis=1))
    if np.any(np.abs(r).max(axis=1) > RESIDUAL_TOL * scale):
        return None
    return x


def _e1(size: int) -> np.ndarray:
    e = np.zeros(size)
    e[0] = 1.0
    return e
