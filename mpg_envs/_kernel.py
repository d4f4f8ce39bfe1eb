"""Fast views of a model's transitions and products over joint actions (private to :mod:`mpg_envs.exact`).

The exact analysis needs four operations on P (S*A, S), each vectorised over states and joint
actions: the state-to-state matrix of a policy, ``P_pi[s, s'] = sum_a pi(a|s) P(s'|s, a)``;
expected next values ``sum_s' P(s'|s, a) V(s')``; agent i's induced MDP against the others'
policies, ``P_i(s'|s, a_i) = sum_{a_-i} pi_-i(a_-i|s) P(s'|s, a_i, a_-i)``; and single-agent MDP
views (rows of a deterministic policy, expected next values per action) for policy iteration.

:func:`kernel` picks, once per model (cached while the model lives), the cheapest exact storage:

* ``stateless`` -- P(.|s, a) does not depend on s (e.g. the coordination game, where the next
  local states depend on the actions only): one (A, S) table, ``P_pi = pi @ P_a``.
* ``dense`` -- a dense (S, A, S) copy when it is small or P is dense (e.g. the distancing game,
  2 states x 65,536 joint actions): batched matrix products, no sparse bookkeeping.
* ``sparse`` -- the model's CSR matrix (e.g. the congestion game, one next state per row):
  products by weighting P's entries and summing them into (s, s') bins.

Every path computes the same sums (only the order of floating-point additions differs).

Products over agents use the (S, A_1, ..., A_N) tensor view of a joint array (agent 0 most
significant): ``joint`` multiplies per-agent tables, ``marginalize`` contracts every agent but one
with two batched matrix products (the agents before i, then the agents after i).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from math import prod

import numpy as np
import scipy.sparse as sp

from mpg_envs.model import TabularModel

#: Largest dense copy of P (S*A*S entries, 32 MiB) or of an induced MDP (S*|A_i|*S) kept as an array.
DENSE_P_MAX = 1 << 22
#: P_pi is a dense (S, S) array up to this many states (a sparse CSR matrix above).
DENSE_STATES_MAX = 1024
_WIDE = 16  # outer(): a broadcast multiply is efficient when its inner dimension has this many entries
_DENSE_SMALL = 1 << 16  # a dense copy of P is always used below this many entries
_ACTIONS_CACHE_MAX = 1 << 23  # sparse kind: cache each agent's action per entry up to N * nnz(P) <= this


# ---------------------------------------------------------------------------- products over agents
def outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise outer product: a (S, p), b (S, q) -> (S, p*q), index p_index*q + q_index."""
    S, p = a.shape
    q = b.shape[1]
    if q >= _WIDE or q >= p:
        return (a[:, :, None] * b[:, None, :]).reshape(S, p * q)
    out = np.empty((S, p, q))  # few wide columns: q multiplies with a long inner loop each
    for c in range(q):
        np.multiply(a, b[:, c : c + 1], out=out[:, :, c])
    return out.reshape(S, p * q)


def joint(pol: Sequence[np.ndarray]) -> np.ndarray:
    """Product distribution over joint actions of per-agent tables (S, |A_i|): shape (S, prod |A_i|).

    Folded from the last agent so that every broadcast multiply has a long inner dimension.
    """
    out = pol[-1]
    for p in reversed(pol[:-1]):
        out = outer(p, out)
    return out


def others(pol: Sequence[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per agent i, the joint tables of the agents before and after i.

    Returns:
        (before, after): ``before[i]`` (S, prod |A_j| for j < i) and ``after[i]`` (S, prod |A_j|
        for j > i); an agent with nobody on that side gets ones of shape (S, 1).
    """
    S, N = pol[0].shape[0], len(pol)
    ones = np.ones((S, 1))
    after = [ones] * N
    for i in range(N - 2, -1, -1):
        after[i] = pol[i + 1] if i == N - 2 else outer(pol[i + 1], after[i + 1])
    before = [ones] * N
    for i in range(1, N):
        before[i] = pol[0] if i == 1 else outer(before[i - 1], pol[i - 1])
    return before, after


def sides(pol: Sequence[np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
    """Agent i's entry of :func:`others`: (joint of the agents before i, joint of those after i)."""
    ones = np.ones((pol[0].shape[0], 1))
    return (joint(pol[:i]) if i > 0 else ones), (joint(pol[i + 1 :]) if i < len(pol) - 1 else ones)


def marginalize(X: np.ndarray, before: np.ndarray, after: np.ndarray, k: int) -> np.ndarray:
    """sum_{a_-i} before(s, a_<i) after(s, a_>i) X(s, a, ...) for agent i with k actions.

    Args:
        X: Shape (S, A) or (S, A, T), joint actions in the middle axis.
        before: (S, p), the joint weight of the agents before i (ones (S, 1) if none).
        after: (S, q), the joint weight of the agents after i (ones (S, 1) if none).
        k: |A_i|, with A = p * k * q.

    Returns:
        Shape (S, k) or (S, k, T).
    """
    S = X.shape[0]
    T = X.shape[2] if X.ndim == 3 else 1
    p, q = before.shape[1], after.shape[1]
    Z = X.reshape(S, p, k * q * T)
    if p > 1:
        Z = np.matmul(before[:, None, :], Z)  # (S, 1, k*q*T)
    Z = Z.reshape(S, k, q, T)
    if q > 1:
        Z = np.matmul(Z[..., 0], after[:, :, None]) if T == 1 else np.matmul(after[:, None, None, :], Z)
    return Z.reshape((S, k) if X.ndim == 2 else (S, k, T))


# ---------------------------------------------------------------------------- single-agent MDP views
class DenseMDP:
    """A single-agent MDP with transitions P (S, K, S) as a dense array."""

    def __init__(self, P: np.ndarray) -> None:
        self.P = P
        self.n_states, self.n_actions = P.shape[:2]

    def rows(self, act: np.ndarray) -> np.ndarray:
        """P(s'|s, act[s]) for a deterministic policy act (S,): shape (S, S)."""
        return self.P[np.arange(self.n_states), act]

    def expect(self, v: np.ndarray) -> np.ndarray:
        """sum_s' P(s'|s, a) v(s') for v (S,): shape (S, K)."""
        S, K = self.n_states, self.n_actions
        return (self.P.reshape(S * K, -1) @ v).reshape(S, K)


class SparseMDP:
    """A single-agent MDP with transitions P (S*K, S) as CSR, row s*K + a."""

    def __init__(self, P: sp.csr_matrix, n_states: int) -> None:
        self.P = P
        self.n_states, self.n_actions = n_states, P.shape[0] // n_states

    def rows(self, act: np.ndarray) -> sp.csr_matrix:
        """P(s'|s, act[s]) for a deterministic policy act (S,): CSR (S, S)."""
        return self.P[np.arange(self.n_states) * self.n_actions + act]

    def expect(self, v: np.ndarray) -> np.ndarray:
        """sum_s' P(s'|s, a) v(s') for v (S,): shape (S, K)."""
        return (self.P @ v).reshape(self.n_states, self.n_actions)


class StatelessMDP:
    """A single-agent MDP whose transitions P_a (K, S) do not depend on the current state."""

    def __init__(self, Pa: np.ndarray, n_states: int) -> None:
        self.Pa = Pa
        self.n_states, self.n_actions = n_states, Pa.shape[0]

    def rows(self, act: np.ndarray) -> np.ndarray:
        """P(s'|act[s]) for a deterministic policy act (S,): shape (S, S)."""
        return self.Pa[act]

    def expect(self, v: np.ndarray) -> np.ndarray:
        """sum_s' P(s'|a) v(s') for v (S,), the same in every state: shape (S, K)."""
        return np.broadcast_to(self.Pa @ v, (self.n_states, self.n_actions))


class EntryMDP:
    """Agent i's induced MDP on a sparse P, computed from P's entries on demand.

    Nothing of size S*|A_i|*S is built. :meth:`expect` is P @ v (nnz) followed by a marginalisation
    over the others' actions; :meth:`rows` keeps the entries of the chosen actions, weighted by the
    others' policies, as a CSR matrix (whose rows may repeat a column; repeated entries add up).
    """

    def __init__(self, kern: Kernel, i: int, before: np.ndarray, after: np.ndarray) -> None:
        self.kern, self.before, self.after = kern, before, after
        self.n_states, self.n_actions = kern.n_states, kern.sizes[i]
        self.i = i

    def rows(self, act: np.ndarray) -> sp.csr_matrix:
        """P_i(s'|s, act[s]) for a deterministic policy act (S,): CSR (S, S), repeated columns adding up.

        (A dense copy would cost more to fill than the Krylov products it could speed up.)
        """
        kern, S, k = self.kern, self.n_states, self.n_actions
        P = kern.P
        p, q = self.before.shape[1], self.after.shape[1]
        if kern._rows is None:  # one entry per row of P: the chosen rows form a (S, p, 1, q) slab
            states = np.arange(S)
            cols = P.indices.reshape(S, p, k, q).transpose(0, 2, 1, 3)[states, act].ravel()
            data = outer(self.before, self.after).ravel()
            if not kern.unit:
                data *= P.data.reshape(S, p, k, q).transpose(0, 2, 1, 3)[states, act].ravel()
            return sp.csr_matrix((data, cols, np.arange(0, S * p * q + 1, p * q)), shape=(S, S))
        action = kern._agent_actions(self.i)
        sel = np.flatnonzero(action == act[kern._state])
        rows = kern._rows[sel]
        s, a = np.divmod(rows, kern.n_actions)
        w = P.data[sel] * self.before[s, a // (k * q)] * self.after[s, a % q]
        indptr = np.zeros(S + 1, np.int64)
        np.cumsum(np.bincount(s, minlength=S), out=indptr[1:])
        return sp.csr_matrix((w, P.indices[sel], indptr), shape=(S, S))

    def expect(self, v: np.ndarray) -> np.ndarray:
        """sum_s' P_i(s'|s, a_i) v(s') for v (S,): shape (S, K)."""
        kern = self.kern
        Pv = kern.expect(v[None])[0]
        return marginalize(Pv, self.before, self.after, self.n_actions)


MDP = DenseMDP | SparseMDP | StatelessMDP | EntryMDP


# ---------------------------------------------------------------------------- the model's kernel
class Kernel:
    """The cheapest exact storage of a model's P and the products the exact analysis needs.

    Attributes:
        kind: ``"stateless"``, ``"dense"`` or ``"sparse"`` (see the module docstring).
        n_states, n_actions: S and A (joint actions).
        sizes: (|A_1|, ..., |A_N|).
    """

    def __init__(self, model: TabularModel) -> None:
        S, A = model.n_states, model.n_joint_actions
        P = model.P
        self.n_states, self.n_actions, self.sizes = S, A, model.action_sizes
        self.P = P
        self.Pa: np.ndarray | None = None  # (A, S), stateless
        self.P3: np.ndarray | None = None  # (S, A, S), dense
        self.unit = False  # sparse with exactly one entry, 1, per row (deterministic transitions)
        self._next: np.ndarray | None = None
        self._rows: np.ndarray | None = None  # (nnz,) row s*A + a of each entry of P, sparse
        self._state: np.ndarray | None = None  # (nnz,) state s of each entry, sparse
        self._pair: np.ndarray | None = None  # (nnz,) s*S + s' of each entry, sparse with dense P_pi
        if _stateless(P, S, A) and A * S <= DENSE_P_MAX and S <= DENSE_STATES_MAX:
            self.kind = "stateless"
            self.Pa = P[:A].toarray()
        elif S * A * S <= max(_DENSE_SMALL, 8 * P.nnz) and S * A * S <= DENSE_P_MAX:
            self.kind = "dense"
            self.P3 = P.toarray().reshape(S, A, S)
        else:
            self.kind = "sparse"
            counts = np.diff(P.indptr)
            # row s*A + a of each entry of P; None when every row has exactly one entry (row = entry)
            self._rows = None if np.all(counts == 1) else np.repeat(np.arange(S * A), counts)
            self._state = (np.arange(S * A) // A if self._rows is None else self._rows // A).astype(np.int64)
            # deterministic transitions: P @ v is a gather v[next state]
            self.unit = self._rows is None and bool(np.all(P.data == 1.0))
            self._next = P.indices.astype(np.intp) if self.unit else None  # (S*A,) next state
            if S <= DENSE_STATES_MAX:
                self._pair = self._state * S + P.indices
        self._actions: dict[int, np.ndarray] = {}  # agent -> _agent_actions(agent)
        #: How :mod:`mpg_envs.exact` solves this model's Bellman systems (its ``_Plan``, probed once).
        self.solve_plan: object | None = None

    # -- policies
    def p_pi(self, pi: np.ndarray, sparse: bool = False) -> np.ndarray | sp.csr_matrix:
        """P_pi[s, s'] = sum_a pi(a|s) P(s'|s, a) for a joint policy pi (S, A).

        Args:
            pi: The joint policy.
            sparse: CSR whatever the number of states, for the sparse kind (the other kinds
                compute a dense array anyway).

        Returns:
            Dense (S, S) up to DENSE_STATES_MAX states (unless ``sparse``), else CSR (S, S).
        """
        S, A = self.n_states, self.n_actions
        if self.kind == "stateless":
            return pi @ self.Pa
        if self.kind == "dense":
            return np.matmul(pi[:, None, :], self.P3)[:, 0, :]
        w = self._weigh(pi)
        if self._pair is not None and not sparse:
            return np.bincount(self._pair, weights=w, minlength=S * S).reshape(S, S)
        M = sp.csr_matrix((w, self.P.indices.copy(), self.P.indptr[::A].copy()), shape=(S, S))
        M.sum_duplicates()  # in place, hence the copies of P's read-only index arrays
        return M

    def expect(self, V: np.ndarray) -> np.ndarray:
        """sum_s' P(s'|s, a) V[n, s'] for values V (n, S): shape (n, S, A)."""
        S, A = self.n_states, self.n_actions
        n = V.shape[0]
        if self.kind == "stateless":
            return np.broadcast_to((self.Pa @ V.T).T[:, None, :], (n, S, A))
        if self.kind == "dense":
            return (self.P3.reshape(S * A, S) @ V.T).T.reshape(n, S, A)
        if self.unit:
            return (V[0][self._next] if n == 1 else V[:, self._next]).reshape(n, S, A)
        return np.ascontiguousarray((self.P @ V.T).T).reshape(n, S, A)

    def team_mdp(self) -> MDP:
        """The MDP over joint actions (one controller choosing a in A)."""
        if self.kind == "stateless":
            return StatelessMDP(self.Pa, self.n_states)
        if self.kind == "dense":
            return DenseMDP(self.P3)
        return SparseMDP(self.P, self.n_states)

    def induced(self, i: int, before: np.ndarray, after: np.ndarray) -> MDP:
        """Agent i's MDP when the others play ``before`` (S, p) and ``after`` (S, q) (see :func:`others`).

        Returns:
            P_i(s'|s, a_i): a :class:`DenseMDP` (S, |A_i|, S) for the stateless and dense kinds, an
            :class:`EntryMDP` for the sparse kind.
        """
        S, k = self.n_states, self.sizes[i]
        p, q = before.shape[1], after.shape[1]
        if self.kind == "dense":
            return DenseMDP(marginalize(self.P3, before, after, k))
        if self.kind == "stateless":
            w = outer(before, after)  # (S, p*q)
            Pa = self.Pa.reshape(p, k, q, S)
            out = np.empty((S, k, S))
            for a in range(k):  # a loop over agent i's own actions
                out[:, a] = w @ Pa[:, a].reshape(p * q, S)
            return DenseMDP(out)
        return EntryMDP(self, i, before, after)

    def _weigh(self, w: np.ndarray) -> np.ndarray:
        """P's entries times w(s, a) (S, A) of their row (sparse kind): shape (nnz,)."""
        flat = w.ravel()
        return self.P.data * (flat if self._rows is None else flat[self._rows])

    def _agent_actions(self, i: int) -> np.ndarray:
        """Agent i's action a_i in the joint action of each entry of P (sparse kind), shape (nnz,).

        Cached for models with at most _ACTIONS_CACHE_MAX entries over all agents.
        """
        got = self._actions.get(i)
        if got is None:
            _, k, q = split(self.sizes, i)
            got = (self._rows % self.n_actions // q) % k
            if got.size * len(self.sizes) <= _ACTIONS_CACHE_MAX:
                self._actions[i] = got
        return got


def _stateless(P: sp.csr_matrix, S: int, A: int) -> bool:
    """Whether every state's block of rows of P (S*A, S) is the same (P(.|s, a) independent of s)."""
    if S < 2:
        return False
    starts = P.indptr[::A]
    per_state = np.diff(starts)
    if np.any(per_state != per_state[0]) or not np.array_equal(
        np.diff(P.indptr).reshape(S, A), np.broadcast_to(np.diff(P.indptr[: A + 1]), (S, A))
    ):
        return False
    m = int(per_state[0])
    idx, data = P.indices[: S * m].reshape(S, m), P.data[: S * m].reshape(S, m)
    return bool(np.array_equal(idx, np.broadcast_to(idx[0], idx.shape))) and bool(
        np.array_equal(data, np.broadcast_to(data[0], data.shape))
    )


_KERNELS: weakref.WeakKeyDictionary[TabularModel, Kernel] = weakref.WeakKeyDictionary()


def kernel(model: TabularModel) -> Kernel:
    """The model's :class:`Kernel`, built on first use and cached while the model lives."""
    k = _KERNELS.get(model)
    if k is None:
        k = _KERNELS[model] = Kernel(model)
    return k


def split(sizes: tuple[int, ...], i: int) -> tuple[int, int, int]:
    """Joint-action layout around agent i: (prod of sizes before i, |A_i|, prod after i)."""
    return prod(sizes[:i]), sizes[i], prod(sizes[i + 1 :])
