"""Iterating a gamma-contraction to a sup-norm tolerance, written once for Shapley's value
iteration (:mod:`mpg_envs.zerosum`) and the soft value iterations of :mod:`baselines.probabilistic`.

The stop rule ``gamma / (1 - gamma) * ||x_{k+1} - x_k|| <= tol`` bounds the distance of the
result to the fixed point. A ``tol`` below what float64 (or an LP solver) resolves would otherwise
run to ``max_iter``: after ``STALL_SWEEPS`` sweeps without progress at the round-off floor
(``floor x`` the scale of x) the iteration stops and warns.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["FixedPoint", "iterate_contraction", "STALL_SWEEPS"]

#: Sweeps without progress at the round-off floor after which the iteration stops.
STALL_SWEEPS = 50


@dataclass
class FixedPoint:
    """What :func:`iterate_contraction` reached.

    Attributes:
        x: The last iterate.
        iterations: Sweeps made.
        residual: Sup-norm change of the last sweep.
        error_bound: ``gamma / (1 - gamma) * residual`` >= the distance to the fixed point.
        converged: ``error_bound <= tol``.
        contraction: Largest ratio of successive sweep changes seen while the changes exceed 1e-9
            x the scale of x (0 if fewer than two sweeps).
    """

    x: np.ndarray
    iterations: int
    residual: float
    error_bound: float
    converged: bool
    contraction: float


def iterate_contraction(
    operator: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    gamma: float,
    tol: float,
    max_iter: int,
    name: str,
    overflow: Callable[[int, np.ndarray], ValueError],
    floor: float,
    stacklevel: int = 2,
) -> FixedPoint:
    """Iterate ``x <- operator(x)`` from ``x0`` until ``gamma / (1 - gamma) ||dx|| <= tol``.

    Args:
        operator: A gamma-contraction in the sup norm.
        x0: The start.
        gamma: Its factor, < 1.
        tol: The accuracy wanted, > 0.
        max_iter: Most sweeps.
        name: Names the algorithm in the warning.
        overflow: ``overflow(sweep, new)`` is the error raised when a sweep is not finite.
        floor: Relative round-off floor of a sweep's change.
        stacklevel: Of the warning, counted from the caller of this function.

    Returns:
        The :class:`FixedPoint`; a ``RuntimeWarning`` says why when it has not converged.
    """
    factor = gamma / (1.0 - gamma)
    x = x0
    residual, prev, ratio, it, stall, low, best = math.inf, None, 0.0, 0, 0, 0.0, math.inf
    while it < max_iter:
        it += 1
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
            new = operator(x)
        if not np.isfinite(new).all():
            raise overflow(it, new)
        diff = float(np.abs(new - x).max())
        if prev is not None and prev > 0 and diff > 1e-9 * max(1.0, float(np.abs(new).max())):
            ratio = max(ratio, diff / prev)
        prev, residual, x = diff, diff, new
        if factor * residual <= tol:
            break
        low = floor * max(1.0, float(np.abs(x).max()))
        if residual < best:
            best, stall = residual, 0
        elif residual <= low:  # no progress at round-off level
            stall += 1
        if stall >= STALL_SWEEPS:  # round-off: further sweeps cannot get closer
            break
    bound = factor * residual
    converged = bound <= tol
    if not converged:
        why = (
            f"reached the round-off floor (sweep changes <= {low:.3g}) after {it} sweeps"
            if stall >= STALL_SWEEPS
            else f"stopped after max_iter={max_iter} sweeps"
        )
        warnings.warn(
            f"{name} {why} with error bound {bound:.3g} > tol={tol:g}; raise tol (or max_iter)",
            RuntimeWarning,
            stacklevel=stacklevel + 1,
        )
    return FixedPoint(x, it, residual, bound, converged, ratio)
