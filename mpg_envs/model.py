"""The exact tabular model shared by every environment.

A :class:`TabularModel` is a frozen, validated bundle of arrays describing a finite Markov game
(notation of the papers, see DESIGN §3)::

    n_agents, action_sizes       N and (|A_1|, ..., |A_N|)
    P        scipy.sparse CSR (S*A, S)   row s*A + a is P(. | s, a), a = joint action index
    R        (N, S, A)                   r_i(s, a)
    mu       (S,)                        initial-state distribution
    gamma    float in (0, 1]             discount; 1 only if every policy reaches `terminal`
    terminal (S,) bool                   absorbing zero-reward states
    phi      (S, A) or None              one-step (stage-game) potential

Joint actions are indexed with ``np.ravel_multi_index(actions, action_sizes)`` (agent 0 is the most
significant digit).  Every array is made read-only on construction.

Models are built from an environment's vectorised dynamics by :func:`mpg_envs.core.build_model`;
they can also be written by hand, e.g. for a small identical-interest game::

    >>> import numpy as np, scipy.sparse as sp
    >>> from mpg_envs.model import TabularModel
    >>> P = sp.csr_matrix(np.full((4, 1), 1.0))          # one state, 2x2 joint actions
    >>> R = np.array([[[1.0, 0.0, 0.0, 2.0]]] * 2)       # shared reward, shape (2, 1, 4)
    >>> m = TabularModel(n_agents=2, action_sizes=(2, 2), P=P, R=R, mu=np.ones(1), gamma=0.9)
    >>> m.n_states, m.n_joint_actions
    (1, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from math import prod
from typing import Any

import numpy as np
import scipy.sparse as sp

from mpg_envs import _validate as V

__all__ = ["TabularModel", "ModelTooLargeError", "ravel_actions", "unravel_actions"]

_ATOL = 1e-9


class ModelTooLargeError(V.TooLargeError):
    """Raised before allocating a model whose transition table would exceed the size limit."""


_NUMPY_MAX_DIMS = 32  # np.ravel_multi_index / np.unravel_index handle at most 64 dimensions


def unravel_actions(joint: Any, sizes: tuple[int, ...]) -> np.ndarray:
    """Joint indices (...) -> per-agent digits (..., N) int64, agent 0 most significant.

    The same as ``np.unravel_index`` for any number of agents (NumPy's stops at 64).
    """
    idx = np.asarray(joint, dtype=np.int64)
    if len(sizes) <= _NUMPY_MAX_DIMS:
        return np.stack(np.unravel_index(idx, sizes), axis=-1).astype(np.int64)
    out = np.zeros((*idx.shape, len(sizes)), np.int64)
    rem = idx.copy()
    for i in range(len(sizes) - 1, -1, -1):
        if sizes[i] > 1:
            rem, out[..., i] = np.divmod(rem, sizes[i])
    return out


def ravel_actions(actions: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """Per-agent digits (..., N) -> joint indices (...) int64 (``np.ravel_multi_index`` for any N)."""
    a = np.asarray(actions, dtype=np.int64)
    if len(sizes) <= _NUMPY_MAX_DIMS:
        return np.asarray(np.ravel_multi_index(tuple(np.moveaxis(a, -1, 0)), sizes), dtype=np.int64)
    idx = np.zeros(a.shape[:-1], np.int64)
    for i, k in enumerate(sizes):
        if k > 1:
            idx = idx * k + a[..., i]
    return idx


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _action_sizes(value: Any, n: int) -> tuple[int, ...]:
    """``action_sizes``: a sequence of n positive ints (NumPy ints accepted), as a tuple of ints."""
    what = f"a sequence of {n} positive integers (one per agent)"
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise V.ArgumentTypeError(f"action_sizes must be {what}, got {V.show(value)}")
    items = list(np.asarray(value).ravel()) if isinstance(value, np.ndarray) else list(value)
    if not all(V.is_integer(k) for k in items):
        raise V.ArgumentTypeError(f"action_sizes must be {what}, got {V.show(value)}")
    sizes = tuple(int(k) for k in items)
    if len(sizes) != n or min(sizes, default=0) < 1:
        raise ValueError(f"action_sizes must hold {n} positive integers (one per agent), got {V.show(value)}")
    return sizes


def _transition_matrix(value: Any, A: int, sizes: tuple[int, ...]) -> sp.csr_matrix:
    """``P`` as a validated float64 CSR matrix of shape (S*A, S) with rows summing to 1.

    Rows must sum to 1 within 1e-9, or, for float32/float16 input, within the round-off of that
    dtype (:func:`mpg_envs._validate.sum_tolerance`); such rows are renormalised in float64.
    """
    if sp.issparse(value):
        if value.dtype == bool or not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
            raise V.ArgumentTypeError(
                f"P must hold real probabilities, got a sparse matrix of dtype {value.dtype}"
            )
        P = sp.csr_matrix(value, dtype=np.float64, copy=True)
    else:
        P = sp.csr_matrix(V.real_array("P", value, ndim=2, finite=False, what="a 2-d array (S*A, S)"))
    if P.shape[0] % A != 0 or P.shape[0] // A != P.shape[1]:
        raise ValueError(
            f"P must have shape (S*A, S) with A={V.format_count(A)} joint actions (action_sizes "
            f"{sizes}), got {P.shape}"
        )
    P.sum_duplicates()
    bad = np.flatnonzero(~np.isfinite(P.data) | (P.data < 0))
    if bad.size:
        k = int(bad[0])
        row = int(np.searchsorted(P.indptr, k, side="right") - 1)
        s, a = divmod(row, A)
        raise ValueError(
            f"P has negative or non-finite entries, e.g. P[{row}, {int(P.indices[k])}] = "
            f"{float(P.data[k])!r} (state {s}, joint action {a})"
        )
    P.eliminate_zeros()
    row_sums = np.asarray(P.sum(axis=1)).ravel()
    low = V.low_precision(value)  # float32 input: rows may be off by its round-off, then renormalised
    bad = np.flatnonzero(np.abs(row_sums - 1.0) > V.sum_tolerance(low, np.diff(P.indptr), _ATOL))
    if bad.size:
        s, a = divmod(int(bad[0]), A)
        raise ValueError(
            f"P rows must sum to 1; {bad.size} rows do not, e.g. state {s}, joint action {a}: "
            f"sum = {float(row_sums[bad[0]])!r}"
        )
    if low is not None:
        P.data /= np.repeat(row_sums, np.diff(P.indptr))
    return P


def _state_table(value: Any, S: int) -> np.ndarray:
    """``states``: S distinct integer rows, shape (S, d)."""
    st = np.asarray(value)
    if st.ndim != 2 or st.shape[0] != S:
        raise ValueError(f"states must have shape (S, d) with S={S}, got {st.shape}")
    if st.dtype == bool or not np.issubdtype(st.dtype, np.integer):
        raise V.ArgumentTypeError(
            f"states must be an integer array (S, d), got dtype {st.dtype}: {V.show(value)}"
        )
    if S > 1:
        order = np.lexsort(st.T[::-1])
        same = np.all(st[order[1:]] == st[order[:-1]], axis=1)
        if same.any():
            k = int(np.flatnonzero(same)[0])
            i, j = sorted((int(order[k]), int(order[k + 1])))
            raise ValueError(
                f"states must be distinct (one row per model state), but rows {i} and {j} are both "
                f"{st[i].tolist()}"
            )
    return st


@dataclass(frozen=True, eq=False)
class TabularModel:
    """Exact model of a finite N-agent Markov game.

    Args:
        n_agents: Number of agents N >= 1.
        action_sizes: Per-agent action counts (|A_1|, ..., |A_N|).
        P: Transition matrix, shape (S*A, S), any scipy sparse format or dense array.
        R: Rewards r_i(s, a), shape (N, S, A).
        mu: Initial-state distribution, shape (S,).
        gamma: Discount factor in (0, 1].
        terminal: Absorbing zero-reward states, shape (S,) bool; default none.
        phi: One-step potential phi(s, a), shape (S, A), or None.
        states: Optional table of the environment's state descriptors, shape (S, d) int, so that
            :meth:`state_index` / :meth:`state_of` convert between model indices and env states.
        name: Free-form label (the env id that built the model).

    Raises:
        ValueError: On any inconsistency (shapes, negative or non-normalised probabilities,
            non-absorbing terminal states, ``gamma == 1`` with a policy that never terminates).
    """

    n_agents: int
    action_sizes: tuple[int, ...]
    P: sp.csr_matrix
    R: np.ndarray
    mu: np.ndarray
    gamma: float
    terminal: np.ndarray | None = None
    phi: np.ndarray | None = None
    states: np.ndarray | None = None
    name: str = ""
    n_states: int = field(init=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        n = V.positive_int("n_agents", self.n_agents)
        sizes = _action_sizes(self.action_sizes, n)
        set_(self, "n_agents", n)
        set_(self, "action_sizes", sizes)
        A = prod(sizes)

        P = _transition_matrix(self.P, A, sizes)
        S = P.shape[1]
        for arr in (P.data, P.indices, P.indptr):
            arr.setflags(write=False)
        set_(self, "P", P)
        set_(self, "n_states", S)

        R = V.real_array("R", self.R, what=f"an array of real numbers of shape (N, S, A) = {(n, S, A)}")
        if R.shape != (n, S, A):
            raise ValueError(f"R must have shape (N, S, A) = {(n, S, A)}, got {R.shape}")
        set_(self, "R", _readonly(R))

        set_(self, "mu", _readonly(V.distribution("mu", self.mu, S, tol=_ATOL)))

        gamma = V.discount("gamma", self.gamma)
        set_(self, "gamma", gamma)

        term = np.zeros(S, bool) if self.terminal is None else np.asarray(self.terminal)
        if term.dtype != bool:
            raise V.ArgumentTypeError(
                f"terminal must be a bool array of shape ({S},), got dtype {term.dtype}: "
                f"{V.show(self.terminal)}"
            )
        if term.shape != (S,):
            raise ValueError(f"terminal must be a bool array of shape ({S},), got shape {term.shape}")
        set_(self, "terminal", _readonly(term))
        ts = np.flatnonzero(term)
        if ts.size:
            rows = (ts[:, None] * A + np.arange(A)).ravel()
            stay = np.asarray(P[rows, np.repeat(ts, A)]).ravel()
            leak = np.flatnonzero(np.abs(stay - 1.0) > _ATOL)
            if leak.size:
                s, a = divmod(int(rows[leak[0]]), A)
                raise ValueError(
                    "terminal states must be absorbing: P(s | s, a) = 1 for every a, but terminal state "
                    f"{s} stays with probability {float(stay[leak[0]])!r} under joint action {a}"
                )
            nz = np.argwhere(R[:, ts, :] != 0)
            if nz.size:
                i, k, a = (int(x) for x in nz[0])
                raise ValueError(
                    "terminal states must have zero reward for every agent and action, got "
                    f"R[{i}, {int(ts[k])}, {a}] = {float(R[i, ts[k], a])!r}"
                )

        if self.phi is not None:
            phi = V.real_array("phi", self.phi, what=f"a finite array of shape (S, A) = {(S, A)}")
            if phi.shape != (S, A):
                raise ValueError(
                    f"phi must be a finite array of shape (S, A) = {(S, A)}, got shape {phi.shape}"
                )
            set_(self, "phi", _readonly(phi))
        if self.states is not None:
            set_(self, "states", _readonly(_state_table(self.states, S)))
        if not isinstance(self.name, str):
            raise V.ArgumentTypeError(f"name must be a str, got {V.show(self.name)}")

        if gamma == 1.0:
            trap = self._non_terminating_set()
            if trap.size:
                raise ValueError(
                    "gamma = 1 needs every policy to reach a terminal state, but some policy can "
                    f"stay forever among {trap.size} non-terminal states (e.g. state {int(trap[0])}); "
                    "use gamma < 1"
                )

    # ------------------------------------------------------------------ sizes and conversions
    @property
    def n_joint_actions(self) -> int:
        """A = prod(action_sizes)."""
        return prod(self.action_sizes)

    @cached_property
    def joint_actions(self) -> np.ndarray:
        """All joint actions as per-agent actions, shape (A, N), row a = unravel(a)."""
        return _readonly(unravel_actions(np.arange(self.n_joint_actions), self.action_sizes))

    def joint_index(self, actions: Any) -> np.ndarray | int:
        """Per-agent actions -> joint action index.

        Args:
            actions: Shape (N,) or (B, N) integer actions.

        Returns:
            An int for a single joint action, else shape (B,) int64.
        """
        a = np.asarray(actions)
        if a.shape[-1:] != (self.n_agents,):
            raise ValueError(
                f"actions must have trailing dimension N={self.n_agents}, got shape {a.shape}: "
                f"{V.show(actions)}"
            )
        if a.dtype == bool or not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"actions must be integers, got dtype {a.dtype}: {V.show(actions)}")
        sizes = np.asarray(self.action_sizes)
        if np.any(a < 0) or np.any(a >= sizes):
            raise ValueError(
                f"actions out of range for action_sizes {self.action_sizes}, got {V.show(actions)}"
            )
        idx = ravel_actions(a, self.action_sizes)
        return int(idx) if a.ndim == 1 else idx

    def agent_actions(self, joint: Any) -> np.ndarray:
        """Joint action index (int or (B,)) -> per-agent actions, shape (N,) or (B, N)."""
        j = np.asarray(joint)
        if (
            j.dtype == bool
            or not np.issubdtype(j.dtype, np.integer)
            or np.any(j < 0)
            or np.any(j >= self.n_joint_actions)
        ):
            raise ValueError(
                f"joint action indices must be integers in [0, {self.n_joint_actions}), got {V.show(joint)}"
            )
        return self.joint_actions[j]

    @cached_property
    def _state_lookup(self) -> dict[tuple[int, ...], int]:
        if self.states is None:
            raise ValueError("this model has no state table (built without `states`)")
        return {tuple(row.tolist()): i for i, row in enumerate(self.states)}

    def state_index(self, state: Any) -> int:
        """The env's state descriptor (shape (d,)) -> model state index."""
        arr = np.asarray(state)
        if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"state {V.show(state)} is not a state of this model (states are integer rows)")
        key = tuple(arr.ravel().tolist())
        try:
            return self._state_lookup[key]
        except KeyError:
            raise ValueError(f"state {key} is not a state of this model") from None

    def state_of(self, index: int) -> np.ndarray:
        """Model state index -> the env's state descriptor, shape (d,)."""
        if self.states is None:
            raise ValueError("this model has no state table (built without `states`)")
        i = V.integer(
            "state index", index, minimum=0, maximum=self.n_states - 1, what=f"in [0, {self.n_states})"
        )
        return self.states[i]

    # ------------------------------------------------------------------ derived structure
    def _non_terminating_set(self) -> np.ndarray:
        """Largest set C of non-terminal states from which some joint action stays inside C.

        A stationary policy avoids termination forever with positive probability iff this set is
        non-empty (a closed recurrent class avoiding `terminal` picks, in each of its states, an
        action whose successors stay inside the class).

        Computed backwards from the terminal states in time linear in nnz(P): a (state, action)
        row *leaks* once some successor with probability above 1e-9 has left C, and a state
        leaves C once all its actions leak. (Recomputing ``P @ outside`` every round would cost
        O(S * nnz(P)) on a long chain.)

        Returns:
            Indices of C, shape (|C|,).
        """
        A, S = self.n_joint_actions, self.n_states
        Pc = self.P.tocsc()
        keep = Pc.data > _ATOL
        col = np.repeat(np.arange(S), np.diff(Pc.indptr))
        indptr = np.concatenate([[0], np.cumsum(np.bincount(col[keep], minlength=S))])
        rows_of = Pc.indices[keep]  # column s: rows_of[indptr[s]:indptr[s + 1]] reach s
        inside = ~self.terminal
        leaks = np.zeros(S * A, bool)
        safe_actions = np.full(S, A, np.int64)
        frontier = np.flatnonzero(self.terminal)
        while frontier.size:
            lo, hi = indptr[frontier], indptr[frontier + 1]
            if frontier.size == 1:
                rows = rows_of[lo[0] : hi[0]]
            else:
                n = hi - lo
                rows = rows_of[np.repeat(lo - np.cumsum(n) + n, n) + np.arange(n.sum())]
            rows = np.unique(rows[~leaks[rows]])
            leaks[rows] = True
            touched = rows // A
            np.subtract.at(safe_actions, touched, 1)
            touched = np.unique(touched)
            frontier = touched[inside[touched] & (safe_actions[touched] == 0)]
            inside[frontier] = False
        return np.flatnonzero(inside)

    def __repr__(self) -> str:
        return (
            f"TabularModel({self.name or 'unnamed'}: N={self.n_agents}, S={self.n_states}, "
            f"A={self.n_joint_actions} {self.action_sizes}, gamma={self.gamma}, "
            f"nnz(P)={self.P.nnz}, terminal={int(self.terminal.sum())}, "
            f"phi={'yes' if self.phi is not None else 'no'})"
        )
