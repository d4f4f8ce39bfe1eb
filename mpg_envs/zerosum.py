"""Minimax oracle for two-player zero-sum games: matrix games by linear programming, discounted
zero-sum Markov games by Shapley's value iteration.

A model is *zero-sum* when ``R[1] = -R[0]`` (checked, :func:`check_zero_sum`). Agent 0 maximises
its value, agent 1 minimises it. The value of a matrix game ``M`` (rows: agent 0's actions, columns:
agent 1's) is ``max_x min_y x^T M y = min_y max_x x^T M y`` over mixed strategies (von Neumann);
:func:`solve_matrix_game` finds it with one ``scipy.optimize.linprog`` problem (HiGHS) and reads
agent 1's optimal strategy from the duals of the same problem. Both strategies come with a
certificate: ``lower = min_j (x^T M)_j`` is what agent 0's strategy guarantees, ``upper =
max_i (M y)_i`` what agent 1's concedes, and ``lower <= value <= upper`` exactly.

:func:`shapley` iterates Shapley's operator ``(T V)(s) = val[ R_0(s, ., .) + gamma sum_s' P(s' |
s, ., .) V(s') ]`` (one LP per state and sweep), a gamma-contraction in the sup norm whose fixed
point is the game's value ``V*``; the minimax strategies of the stage games at the fixed point are
stationary minimax policies of the Markov game.

These functions are for zero-sum games only. The package's MPG tools (potential values and
certificates, the price of anarchy) do not apply to such games; values, best responses and the
Nash gap (:mod:`mpg_envs.exact`) do: a product policy has Nash gap 0 exactly when both halves are
minimax policies.

Example::

    >>> import numpy as np
    >>> from mpg_envs import zerosum
    >>> sol = zerosum.solve_matrix_game([[1.0, -1.0], [-1.0, 1.0]])  # matching pennies
    >>> round(sol.value, 9), sol.row.round(6).tolist(), sol.col.round(6).tolist()
    (0.0, [0.5, 0.5], [0.5, 0.5])
    >>> from mpg_envs import tugofwar_v0
    >>> model = tugofwar_v0.parallel_env().model()
    >>> minimax = zerosum.shapley(model)
    >>> minimax.values.shape, len(minimax.policies)
    ((5,), 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linprog

from mpg_envs import _validate as V
from mpg_envs._fixedpoint import iterate_contraction
from mpg_envs._repr import concise_repr
from mpg_envs.model import TabularModel

__all__ = [
    "MatrixGameSolution",
    "MinimaxSolution",
    "ZERO_SUM_TOL",
    "check_zero_sum",
    "is_zero_sum",
    "shapley",
    "shapley_operator",
    "solve_matrix_game",
]

#: Largest |r_0 + r_1| (relative to max |r_0|, at least 1) a zero-sum model may have.
ZERO_SUM_TOL = 1e-12
#: Largest matrix game (rows x columns) :func:`solve_matrix_game` accepts.
MAX_MATRIX_ENTRIES = 1 << 20
#: Round-off floor of a sweep's change, relative to max(1, max |V|), and the sweeps spent on it
#: before the iteration stops (a ``tol`` below it cannot be met).
#: Relative round-off floor of a Shapley sweep's change (the LPs resolve ~1e-10; mpg_envs._fixedpoint).
_FLOOR = 1e-10


@dataclass(frozen=True)
class MatrixGameSolution:
    """Value and optimal mixed strategies of a zero-sum matrix game (agent 0 maximises).

    Attributes:
        value: The game's value, agent 0's payoff, ``(lower + upper) / 2``.
        row: Agent 0's optimal mixed strategy, shape (m,).
        col: Agent 1's optimal mixed strategy, shape (n,).
        lower: What ``row`` guarantees, ``min_j (row @ M)_j`` (<= the true value).
        upper: What ``col`` concedes, ``max_i (M @ col)_i`` (>= the true value).
    """

    value: float
    row: np.ndarray
    col: np.ndarray
    lower: float
    upper: float

    @property
    def gap(self) -> float:
        """``upper - lower`` (>= 0): how far the pair is from an exact saddle point."""
        return self.upper - self.lower

    def __repr__(self) -> str:
        return concise_repr(self, value=self.value, gap=self.gap, row=self.row, col=self.col)


def _check_matrix(payoff: Any, name: str = "payoff") -> np.ndarray:
    M = V.real_array(name, payoff, what="a finite 2-D array of real numbers (rows: agent 0's actions)")
    if M.ndim != 2 or M.shape[0] < 1 or M.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty 2-D array (m, n), got shape {M.shape}")
    if M.size > MAX_MATRIX_ENTRIES:
        raise ValueError(
            f"{name} has {M.size:,} entries, over the limit of {MAX_MATRIX_ENTRIES:,} (shape {M.shape})"
        )
    return M


def _solve(M: np.ndarray) -> MatrixGameSolution:
    """:func:`solve_matrix_game` without argument checks (M finite, (m, n))."""
    m, n = M.shape
    scale = float(np.abs(M).max())
    if scale == 0.0:
        return MatrixGameSolution(0.0, np.full(m, 1.0 / m), np.full(n, 1.0 / n), 0.0, 0.0)
    Ms = M / scale  # a well-scaled LP whatever the payoffs' magnitude
    # variables (x_1..x_m, v): maximise v s.t. v <= (x^T M)_j for every column j, sum x = 1, x >= 0
    c = np.zeros(m + 1)
    c[-1] = -1.0
    A_ub = np.hstack([-Ms.T, np.ones((n, 1))])
    A_eq = np.zeros((1, m + 1))
    A_eq[0, :m] = 1.0
    res = linprog(
        c,
        A_ub=A_ub,
        b_ub=np.zeros(n),
        A_eq=A_eq,
        b_eq=[1.0],
        bounds=[(0.0, None)] * m + [(None, None)],
        method="highs",
    )
    if res.status != 0:  # cannot happen for a finite matrix (the LP is feasible and bounded)
        raise RuntimeError(f"the matrix game's linear program failed: {res.message} (payoff shape {M.shape})")
    x = np.clip(res.x[:m], 0.0, None)
    x /= x.sum()
    y = np.clip(-np.asarray(res.ineqlin.marginals, dtype=float), 0.0, None)  # duals of v <= (x^T M)_j
    y = y / y.sum() if y.sum() > 0 else np.full(n, 1.0 / n)
    lower = float((x @ M).min())
    upper = float((M @ y).max())
    return MatrixGameSolution(0.5 * (lower + upper), x, y, lower, upper)


def solve_matrix_game(payoff: Any) -> MatrixGameSolution:
    """Value and optimal mixed strategies of a zero-sum matrix game, by one linear program.

    Agent 0 (rows) maximises ``x^T M y``, agent 1 (columns) minimises it. The LP (HiGHS) maximises
    ``v`` subject to ``v <= (x^T M)_j`` for every column, ``x`` a distribution; agent 1's optimal
    strategy is the dual of the column constraints. The payoffs are scaled by ``max |M|`` first.

    Args:
        payoff: Agent 0's payoffs, a finite real array of shape (m, n), at most
            :data:`MAX_MATRIX_ENTRIES` entries.

    Returns:
        The :class:`MatrixGameSolution` (``gap`` is round-off, ~1e-15 of ``max |M|``).

    Raises:
        ValueError / TypeError: Not a finite non-empty 2-D real array, or too large (named).
    """
    return _solve(_check_matrix(payoff))


# ---------------------------------------------------------------------------- zero-sum models
def _check_model(model: Any) -> TabularModel:
    if not isinstance(model, TabularModel):
        raise V.ArgumentTypeError(f"model must be a mpg_envs.TabularModel, got {V.show(model)}")
    return model


def is_zero_sum(model: TabularModel, tol: float = ZERO_SUM_TOL) -> bool:
    """Whether ``model`` has 2 agents with ``R[1] = -R[0]`` (up to ``tol`` x max(1, max |R[0]|))."""
    model = _check_model(model)
    tol = V.real("tol", tol, low=0.0, what="a finite number >= 0")
    if model.n_agents != 2:
        return False
    scale = max(1.0, float(np.abs(model.R[0]).max()))
    return bool(np.abs(model.R[0] + model.R[1]).max() <= tol * scale)


def check_zero_sum(model: TabularModel, what: str = "this function") -> TabularModel:
    """``model`` if it is a two-player zero-sum model (:func:`is_zero_sum`), else a clear error.

    Raises:
        ValueError: More or fewer than 2 agents, or ``R[0] + R[1] != 0`` (the message gives the
            largest |r_0 + r_1| and where it is).
    """
    model = _check_model(model)
    if model.n_agents != 2:
        raise ValueError(
            f"{what} needs a two-player zero-sum game, got a model with N={model.n_agents} agents"
        )
    if not is_zero_sum(model):
        err = np.abs(model.R[0] + model.R[1])
        s, a = np.unravel_index(int(err.argmax()), err.shape)
        raise ValueError(
            f"{what} needs a zero-sum game (R[1] = -R[0]), but |r_0 + r_1| = {float(err[s, a])!r} in state "
            f"{int(s)} under joint action {int(a)} (allowed: {ZERO_SUM_TOL:g} x max(1, max |r_0|))"
        )
    return model


def _stage_games(model: TabularModel, values: np.ndarray) -> np.ndarray:
    """``R_0(s, a_0, a_1) + gamma sum_s' P(s' | s, a) V(s')``, shape (S, A_0, A_1)."""
    S, (m, n) = model.n_states, model.action_sizes
    return (model.R[0] + model.gamma * (model.P @ values).reshape(S, m * n)).reshape(S, m, n)


def _sweep(model: TabularModel, values: np.ndarray) -> tuple[np.ndarray, list[MatrixGameSolution]]:
    games = _stage_games(model, values)
    sols = [_solve(g) for g in games]  # one LP per state
    new = np.array([sol.value for sol in sols])
    if model.terminal.any():
        new[model.terminal] = 0.0
    return new, sols


def shapley_operator(model: TabularModel, values: Any) -> np.ndarray:
    """One application of Shapley's operator: ``(T V)(s) = val[R_0(s) + gamma P(s) V]``, shape (S,).

    ``val`` is the value of the stage matrix game of each state (one LP each). T is a
    gamma-contraction in the sup norm (the value of a matrix game moves by at most the largest
    change of its entries).

    Args:
        model: A two-player zero-sum model.
        values: Agent 0's values, a finite array of shape (S,).

    Raises:
        ValueError: Not a zero-sum model, or values of the wrong shape or not finite.
    """
    model = check_zero_sum(model, "shapley_operator")
    v = V.real_array("values", values, what=f"a finite array of shape (S,) = ({model.n_states},)")
    if v.shape != (model.n_states,):
        raise ValueError(f"values must have shape (S,) = ({model.n_states},), got {v.shape}")
    return _sweep(model, v)[0]


@dataclass(frozen=True)
class MinimaxSolution:
    """The value and stationary minimax policies of a discounted zero-sum Markov game.

    Attributes:
        values: ``V*(s)``, agent 0's minimax value of every state, shape (S,) (agent 1's is
            ``-V*``); within ``error_bound`` of the exact fixed point in the sup norm.
        policies: ``[pi_0, pi_1]``, minimax strategies of the stage games at ``values``, shapes
            (S, A_0) and (S, A_1).
        value_at_mu: ``values @ mu``.
        iterations: Sweeps of Shapley's operator.
        residual: Sup-norm change of the last sweep.
        error_bound: ``gamma / (1 - gamma) * residual``, a bound on ``max_s |values - V*|``.
        converged: Whether ``error_bound <= tol``.
    """

    values: np.ndarray
    policies: list[np.ndarray]
    value_at_mu: float
    iterations: int
    residual: float
    error_bound: float
    converged: bool

    def __repr__(self) -> str:
        return concise_repr(
            self,
            value_at_mu=self.value_at_mu,
            iterations=self.iterations,
            error_bound=self.error_bound,
            converged=self.converged,
            values=self.values,
            policies=self.policies,
        )


def shapley(
    model: TabularModel, *, tol: float = 1e-9, max_iter: int = 100_000, values: Any = None
) -> MinimaxSolution:
    """Shapley's value iteration for a discounted two-player zero-sum Markov game.

    Iterates ``V_{k+1} = T V_k`` (:func:`shapley_operator`, one LP per state per sweep) from
    ``values`` (default 0) until ``gamma / (1 - gamma) * max_s |V_{k+1} - V_k| <= tol``, which
    guarantees ``max_s |V_{k+1} - V*| <= tol`` (contraction). The policies are the stage games'
    minimax strategies at the last values; with round-off-level LP duality gaps, no player gains
    more than ``2 gamma tol / (1 - gamma)`` by deviating (check with :func:`mpg_envs.exact.nash_gap`).

    Args:
        model: A two-player zero-sum model (``R[1] = -R[0]``) with ``gamma < 1``.
        tol: Sup-norm accuracy of ``values`` (in reward units), finite and > 0 (below ~1e-13 x
            the value scale it is beyond round-off and the iteration runs to ``max_iter``).
        max_iter: Most sweeps, a positive integer; if reached, the result has
            ``converged=False`` and a ``RuntimeWarning`` says how far it is. The same happens,
            early, when 50 sweeps make no progress at round-off level (a ``tol`` below what the
            LPs resolve, ~1e-10 x the value scale).
        values: Starting values (S,), default zeros.

    Returns:
        The :class:`MinimaxSolution`.

    Raises:
        ValueError: Not a zero-sum model, ``gamma = 1``, a bad ``tol``, ``max_iter`` or ``values``.
    """
    model = check_zero_sum(model, "shapley")
    if model.gamma >= 1.0:
        raise ValueError(
            "shapley needs a discount gamma < 1 (its stop rule uses the contraction factor), got "
            f"gamma={model.gamma!r}"
        )
    tol = V.real("tol", tol, low=0.0, low_open=True, what="a finite number > 0")
    max_iter = V.positive_int("max_iter", max_iter)
    S = model.n_states
    if values is None:
        v = np.zeros(S)
    else:
        v = V.real_array("values", values, what=f"a finite array of shape (S,) = ({S},)")
        if v.shape != (S,):
            raise ValueError(f"values must have shape (S,) = ({S},), got {v.shape}")
    g = model.gamma

    def overflow(it: int, new: np.ndarray) -> ValueError:
        return ValueError(
            f"shapley's values overflowed in sweep {it}: the rewards (max |r| = "
            f"{float(np.abs(model.R).max())!r}) divided by 1 - gamma = {1.0 - g!r} exceed the float "
            "range; rescale the rewards"
        )

    # round-off of the LPs sets the floor
    fp = iterate_contraction(lambda x: _sweep(model, x)[0], v, g, tol, max_iter, "shapley", overflow, _FLOOR)
    v, it, residual, bound, converged = fp.x, fp.iterations, fp.residual, fp.error_bound, fp.converged
    # minimax strategies of the stage games at the final values
    sols = _sweep(model, v)[1]
    pols = [np.stack([sol.row for sol in sols]), np.stack([sol.col for sol in sols])]
    return MinimaxSolution(v, pols, float(v @ model.mu), it, residual, bound, converged)
