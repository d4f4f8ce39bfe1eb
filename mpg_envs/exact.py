"""Exact analysis of a :class:`~mpg_envs.model.TabularModel`: pure functions of (model, policy).

A *policy* is a sequence of N row-stochastic arrays, ``policies[i]`` of shape (S, |A_i|), in any
real dtype: float32 policies (torch's default) are held to the round-off of float32 and computed
in float64 (:func:`check_policy`). Functions that draw random policies take a
``numpy.random.Generator``, an int seed or None. Nash gaps are never negative (round-off of an
exact equilibrium is clipped to 0).
Everything is vectorised over states and joint actions (batched matrix products on the
(S, A_1, ..., A_N) view of joint arrays, sparse products); the only Python loops run over agents,
an agent's own actions, policy-iteration rounds, Krylov iterations or sampled certificate checks.

How it is computed (results are exact up to round-off either way): each model gets a cached
view of P chosen once (:mod:`mpg_envs._kernel`: state-independent, dense or sparse); Bellman
systems of up to 384 unknowns are solved by dense LU, larger ones by GMRES
(:mod:`mpg_envs._krylov`, accepted only at round-off-level residual) where a probe made once per
model says its Krylov spaces close quickly enough to beat a factorisation (the congestion game),
by LU otherwise (dense, or sparse where the factors stay sparse); policy iteration reuses a
factorisation when few states change action. The choices depend on the model only, never on
earlier calls. Calls on models with at most 1,024 states run on one BLAS thread.

Notation (papers 001 and 003): ``V_i(s)`` values, ``Q_i(s, a_i)`` marginal Q (expectation over
the other agents' actions), ``A_i = Q_i - V_i`` advantages, ``d_mu(s)`` discounted visitation,
``Phi(s) = E[sum_t gamma^t phi(s_t, a_t)]`` the potential value of the model's stage potential.

With ``gamma == 1`` values are expected totals until a terminal state; the model guarantees every
policy terminates.

Example::

    >>> import numpy as np, mpg_envs
    >>> from mpg_envs import exact
    >>> from mpg_envs.congestion_v0 import parallel_env
    >>> model = parallel_env(n_agents=2).model()
    >>> uniform = exact.uniform_policy(model)
    >>> exact.evaluate(model, uniform).shape
    (2, 10)
    >>> bool(exact.nash_gap(model, uniform).gap >= 0)
    True
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ParamSpec, TypeVar

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mpg_envs import _kernel as _k
from mpg_envs import _krylov
from mpg_envs import _validate as chk
from mpg_envs._repr import concise_repr
from mpg_envs.model import TabularModel

__all__ = [
    "Policy",
    "BestResponse",
    "NashGap",
    "SocialOptimum",
    "Certificate",
    "blas_scope",
    "check_policy",
    "check_policy_table",
    "uniform_policy",
    "random_policy",
    "softmax_policy",
    "joint_policy",
    "transition_matrix",
    "evaluate",
    "joint_q",
    "marginal_q",
    "advantages",
    "occupancy",
    "values_q_occupancy",
    "visitation",
    "potential_value",
    "best_response",
    "nash_gap",
    "social_optimum",
    "price_of_anarchy",
    "policy_gradient",
    "softmax_gradient",
    "l1_distance",
    "multitask_value",
    "multitask_gradient",
    "potential_residual",
    "cycle_residual",
    "MAX_CERTIFICATE_SAMPLES",
]

Policy = Sequence[np.ndarray]
_STOCH_TOL = 1e-8
#: Most random samples the potential certificates draw (each needs several exact evaluations).
MAX_CERTIFICATE_SAMPLES = 1_000_000
_DENSE_MAX = 3000  # never factor densely above this many states
_SPARSE_DENSITY = 0.3  # sparse LU when nnz(P_pi) <= this fraction of S^2 ...
_DENSE_LU_MIN = 384  # ... and above this many states (below, dense LU is faster: SuperLU's overhead)
_DIRECT_MAX = 384  # factor at once up to this many unknowns; above, try GMRES first
_KRYLOV_STEPS = 32  # most products with P_pi a GMRES solve may take before falling back to LU
_UPDATE_FRACTION = 8  # policy iteration reuses a factorisation while <= 1/8 of the states changed action
_UPDATE_MIN = 64  # ... for systems of at least this many unknowns (below, factoring is as cheap)
_TINY = 32  # systems of at most this many unknowns are solved without keeping factors
_PROBE = True  # probe each model once (_Plan); False: decide by the size thresholds alone (tests force paths)
_FILL_SPARSE = 0.05  # sparse LU for a dense-stored P_pi only when its factors fill <= this fraction of n^2
_PROBE_SEED = 20_231_129  # the generic policies of the per-model probe
_LU_PRODUCTS = 40  # a dense LU of n unknowns costs about n / 40 GMRES products with a dense P_pi
_QUICK_PRODUCTS = 8  # ... and a sparse LU whose factors stay sparse about this many (per right-hand side)


def _check_model(model: object, name: str = "model") -> TabularModel:
    if not isinstance(model, TabularModel):
        raise chk.ArgumentTypeError(f"{name} must be a mpg_envs.TabularModel, got {chk.show(model)}")
    return model


# ---------------------------------------------------------------------------- BLAS threads
_SMALL_DENSE = 1024  # exact calls on models with at most this many states run on one BLAS thread


@lru_cache(maxsize=1)
def _blas_controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # optional: without it BLAS keeps its own thread count
        return None
    return ThreadpoolController()


_blas_scope = threading.local()


@contextlib.contextmanager
def _one_blas_thread(n: int) -> Iterator[None]:
    """One BLAS thread for the products and factorisations of a model with n <= 1024 states.

    Multi-threaded OpenBLAS on matrices of a few hundred rows gains nothing when idle and, when
    another process competes for the cores, measured 100-300x slower (n = 256: 147 ms vs 0.46 ms).
    Nested uses are free: only the outermost one (per thread) changes the BLAS thread count.
    """
    ctl = _blas_controller() if n <= _SMALL_DENSE and not getattr(_blas_scope, "active", False) else None
    if ctl is None:
        yield
        return
    _blas_scope.active = True
    try:
        with ctl.limit(limits=1, user_api="blas"):
            yield
    finally:
        _blas_scope.active = False


def blas_scope(n_states: int) -> contextlib.AbstractContextManager[None]:
    """One BLAS thread for everything run inside, on models of ``n_states`` states (none above
    1,024, where threads pay off): set once for a whole run instead of by every exact call.

    Every public function of this module limits the BLAS threads itself for small models, which
    costs ~40 us per call (threadpoolctl) -- a third of a whole exact estimate on the coordination
    game. Inside this scope they skip it. The previous limit is restored on exit.

    Args:
        n_states: The largest number of states of the models used inside.

    Example:
        >>> with exact.blas_scope(model.n_states):   # doctest: +SKIP
        ...     for _ in range(1000):
        ...         exact.values_q_occupancy(model, policies)
    """
    return _one_blas_thread(chk.integer("n_states", n_states, minimum=0))


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _small_blas(fn: Callable[_P, _T]) -> Callable[_P, _T]:
    """Run ``fn(model, ...)`` under :func:`_one_blas_thread` for the model's number of states."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        model = args[0] if args else kwargs.get("model")
        if not isinstance(model, TabularModel):
            return fn(*args, **kwargs)  # let fn report the bad argument
        with _one_blas_thread(model.n_states):
            return fn(*args, **kwargs)

    return wrapper


# ---------------------------------------------------------------------------- policies
def check_policy(model: TabularModel, policies: Policy) -> list[np.ndarray]:
    """Validate a product policy and return it as float64 arrays.

    Row sums must be 1 within ``max(1e-8, 100 * eps * |A_i|)``, where ``eps`` is the machine epsilon
    of the policy's floating dtype: float64 policies are held to 1e-8, while float32 ones (torch's
    default, e.g. a softmax network's output) may be off by the round-off of their dtype. Policies
    in a lower precision than float64 are converted to float64 and their rows renormalised, so
    they give the same exact values as the float64 policy they approximate.

    Args:
        model: The model.
        policies: N arrays (S, |A_i|) of real probabilities (a list, a tuple, or an (N, S, |A|)
            array when every agent has |A| actions).

    Returns:
        N float64 arrays (S, |A_i|).

    Raises:
        ValueError / TypeError: Wrong number of agents, wrong shapes, bool or non-numeric entries,
            non-finite or negative entries, rows not summing to 1.
    """
    model = _check_model(model)
    N, S = model.n_agents, model.n_states
    what = f"a sequence of {N} arrays of shape (S, |A_i|), one per agent"
    if isinstance(policies, np.ndarray) and policies.dtype != object and policies.ndim != 3:
        raise ValueError(f"policies must be {what}, got an array of shape {policies.shape}")
    if isinstance(policies, (str, bytes, Mapping)) or not isinstance(policies, (Sequence, np.ndarray)):
        raise chk.ArgumentTypeError(f"policies must be {what}, got {chk.show(policies)}")
    if len(policies) != N:
        raise ValueError(f"expected one policy per agent ({N}), got {len(policies)}")
    return [
        check_policy_table(f"policy of agent {i}", p, k, n_rows=S)
        for i, (p, k) in enumerate(zip(policies, model.action_sizes))
    ]


def check_policy_table(name: str, table: Any, n_actions: int, n_rows: int | None = None) -> np.ndarray:
    """Validate one agent's policy table and return it as float64 (see :func:`check_policy`).

    Args:
        name: How the error messages call it (e.g. ``"policy of agent 0"``).
        table: Shape (n_rows, n_actions): one probability row per state (or per observation).
        n_actions: |A_i|.
        n_rows: Required number of rows; None accepts any number >= 1 (tables over observations).

    Returns:
        The table as float64 (rows renormalised when it was given in a lower precision).

    Raises:
        ValueError / TypeError: Wrong shape, bool or non-numeric entries, non-finite or negative
            entries, rows not summing to 1 within the dtype-aware tolerance.
    """
    k = n_actions
    if (
        type(table) is np.ndarray
        and table.dtype == np.float64
        and table.ndim == 2
        and table.shape[1] == k
        and table.shape[0] >= 1
        and (n_rows is None or table.shape[0] == n_rows)
        and np.isfinite(table).all()
        and table.min() >= 0
        and np.abs(table.sum(axis=1) - 1.0).max() <= _STOCH_TOL
    ):  # the common case, checked with three reductions
        return table
    shape = f"(S, |A_i|) = {(n_rows, k)}" if n_rows is not None else f"(n_observations, |A_i| = {k})"
    raw = np.asarray(table) if isinstance(table, np.ndarray) else None
    q = chk.real_array(name, table, finite=False, what=f"an array of probabilities of shape {shape}")
    if q.ndim != 2 or q.shape[1] != k or (n_rows is not None and q.shape[0] != n_rows) or q.shape[0] < 1:
        raise ValueError(f"{name} must have shape {shape}, got {q.shape}")
    if not np.all(np.isfinite(q)):
        s = int(np.flatnonzero(~np.isfinite(q).all(axis=1))[0])
        raise ValueError(f"{name} has NaN or infinite entries, e.g. row {s} = {q[s].tolist()}")
    if q.min() < 0:
        s, a = np.unravel_index(int(q.argmin()), q.shape)
        raise ValueError(
            f"{name} has negative probabilities (min {q.min():.3g}, row {int(s)} = {q[s].tolist()})"
        )
    low = chk.low_precision(raw)
    tol = float(chk.sum_tolerance(low, k, _STOCH_TOL))
    sums = q.sum(axis=1)
    dev = np.abs(sums - 1.0)
    if dev.max() > tol:
        s = int(dev.argmax())
        raise ValueError(
            f"{name} is not row-stochastic: row {s} sums to {float(sums[s])!r} (tolerance {tol:.2g})"
        )
    if low is not None:
        q = q / sums[:, None]
    return q


def uniform_policy(model: TabularModel) -> list[np.ndarray]:
    """Every agent uniform in every state."""
    model = _check_model(model)
    return [np.full((model.n_states, k), 1.0 / k) for k in model.action_sizes]


def softmax_policy(logits: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Tabular softmax: logits[i] (S, |A_i|) -> policies[i] (S, |A_i|)."""
    if isinstance(logits, (str, bytes, Mapping)) or not isinstance(logits, (Sequence, np.ndarray)):
        raise chk.ArgumentTypeError(f"logits must be a sequence of (S, |A_i|) arrays, got {chk.show(logits)}")
    out = []
    for i, th in enumerate(logits):
        name = f"logits of agent {i}"
        th = chk.real_array(name, th, ndim=2, finite=False, what="a 2-d array (S, |A_i|) of real numbers")
        bad = np.isnan(th) | np.isposinf(th)
        if bad.any() or (th.size and np.isneginf(th).all(axis=1).any()):
            s = int(np.flatnonzero(bad.any(axis=1) | np.isneginf(th).all(axis=1))[0])
            raise ValueError(
                f"{name} must be finite or -inf with a finite entry in every row, got row {s} = "
                f"{th[s].tolist()}"
            )
        z = np.exp(th - th.max(axis=1, keepdims=True))
        out.append(z / z.sum(axis=1, keepdims=True))
    return out


def random_policy(
    model: TabularModel,
    rng: np.random.Generator | int | None,
    *,
    deterministic: bool = False,
    obs_map: np.ndarray | None = None,
    agents: Sequence[int] | None = None,
) -> list[np.ndarray]:
    """A random product policy, optionally restricted to a policy class.

    Args:
        model: The model.
        rng: Generator, or an int seed (``np.random.default_rng(rng)``), or None (fresh entropy).
        deterministic: One-hot rows (a pure policy) instead of Dirichlet(1) rows.
        obs_map: Shape (N, S) ints in [0, S): agent i's policy is a table over observations
            ``obs_map[i, s]`` (e.g. own position only), lifted to states; None = global state.
        agents: Draw only these agents (others get None in the returned list).

    Returns:
        List of N arrays (S, |A_i|) (None for agents not drawn).
    """
    model = _check_model(model)
    rng = chk.generator(rng)
    deterministic = chk.flag("deterministic", deterministic)
    S = model.n_states
    obs_map = _check_obs_map(model, obs_map)
    agents = _check_agents(model, agents)
    out: list[np.ndarray] = [None] * model.n_agents  # type: ignore[list-item]
    for i in range(model.n_agents) if agents is None else agents:
        k = model.action_sizes[i]
        n_obs = S if obs_map is None else int(obs_map[i].max()) + 1
        if deterministic:
            table = np.eye(k)[rng.integers(k, size=n_obs)]
        else:
            table = rng.dirichlet(np.ones(k), size=n_obs)
        out[i] = table if obs_map is None else table[obs_map[i]]
    return out


def _check_obs_map(model: TabularModel, obs_map: np.ndarray | None) -> np.ndarray | None:
    """None, or ints of shape (N, S) in [0, S) (an observation label per agent and state)."""
    if obs_map is None:
        return None
    N, S = model.n_agents, model.n_states
    what = f"an integer array of shape (N, S) = {(N, S)} with observation labels in [0, {S})"
    om = chk.int_array("obs_map", obs_map, what=what)
    if om.shape != (N, S):
        raise ValueError(f"obs_map must be {what}, got shape {om.shape}")
    if om.size and (om.min() < 0 or om.max() >= S):
        i, s = np.unravel_index(int(om.argmin() if om.min() < 0 else om.argmax()), om.shape)
        raise ValueError(f"obs_map must be {what}, got obs_map[{int(i)}, {int(s)}] = {int(om[i, s])}")
    return om


def _check_agents(model: TabularModel, agents: Sequence[int] | None) -> list[int] | None:
    if agents is None:
        return None
    if isinstance(agents, (str, bytes)) or not isinstance(agents, (Sequence, np.ndarray)):
        raise chk.ArgumentTypeError(
            f"agents must be None or a sequence of agent indices, got {chk.show(agents)}"
        )
    N = model.n_agents
    return [
        chk.integer("agents", a, minimum=0, maximum=N - 1, what=f"agent indices in [0, {N})") for a in agents
    ]


def joint_policy(model: TabularModel, policies: Policy) -> np.ndarray:
    """Product distribution over joint actions, shape (S, A) (agent 0 most significant)."""
    pol = check_policy(model, policies)
    return _joint(pol)


def _joint(pol: Sequence[np.ndarray]) -> np.ndarray:
    return _k.joint(pol)


def _agent_mdp(
    model: TabularModel, pol: Sequence[np.ndarray], i: int, sides: tuple[np.ndarray, np.ndarray] | None = None
) -> tuple[_k.MDP, np.ndarray]:
    """Agent i's MDP when the others play their policies.

    Args:
        sides: The others' joint weights (before i (S, p), after i (S, q)) from
            :func:`mpg_envs._kernel.others`, if already computed.

    Returns:
        Its transitions P_i(s'|s, a_i) and rewards r_i(s, a_i) (S, |A_i|).
    """
    before, after = sides if sides is not None else _k.sides(pol, i)
    k = model.action_sizes[i]
    mdp = _k.kernel(model).induced(i, before, after)
    return mdp, _k.marginalize(model.R[i], before, after, k)


# ---------------------------------------------------------------------------- linear algebra
@_small_blas
def transition_matrix(model: TabularModel, policies: Policy) -> sp.csr_matrix:
    """State-to-state transition matrix under the policy, P_pi (S, S) sparse."""
    P_pi = _k.kernel(model).p_pi(_joint(check_policy(model, policies)))
    return sp.csr_matrix(P_pi)


#: A family of Bellman systems that share their structure: "policy" (P_pi of a joint policy with
#: the agents' expected rewards, or transposed with mu for the occupancy), ("agent", i) (agent
#: i's induced MDP under a deterministic policy of its own, with its reward: its best response)
#: or "team" (the team MDP under a deterministic joint policy, with the summed reward).
_Family = str | tuple[str, int]


class _Plan:
    """How the Bellman systems of one model are solved, probed once per model and family.

    A GMRES attempt pays off when the Krylov space of the right-hand side closes after fewer
    products than a factorisation costs, and a failed attempt is pure waste. Both sides are
    properties of the model's structure, not of one policy: the space closes quickly on layered
    or periodic chains (low-rank powers of P_pi) and where the rewards depend only on what a
    deterministic agent controls; products are expensive when the matrix is a dense array;
    factorisations are cheap when SuperLU's factors stay sparse. So :meth:`krylov` decides once
    per family of systems (see ``_Family``) and direction:

    * a sparse LU with sparse factors (:meth:`sparse_lu`; a random walk such as the tug of war:
      0.2 ms against 15 ms for a dense LU at 1,001 states): GMRES only if it closes within
      ``_QUICK_PRODUCTS`` products per right-hand side;
    * products with a dense array against a dense LU: GMRES only if it closes within about what
      the LU costs, n / ``_LU_PRODUCTS`` products (on a 5x5 two-task grid 32 failed products cost
      12 ms against 5 ms for the LU; on the congestion game every solve closes after <= 7);
    * sparse products against a dense or large sparse LU: GMRES for values and occupancies if it
      closes within the budget (on a 6x6 two-task grid with slip, 1,296 states, a failed attempt
      cost 8 ms against 22 ms for SuperLU); always tried for best responses and the team MDP,
      whose systems close or not depending on the actual deterministic policy (best responses on
      the multi-task grid close in 9-33 products, some not at all), which no generic one stands
      for, and where a failure costs a fraction of the factorisation.

    The probes are one GMRES solve on a *generic* member of the family -- random full-support
    tables for the stochastic policies, the greedy action of the responding agent for best
    responses, random actions for the team MDP, all from a fixed seed, with the family's
    right-hand sides from the model's rewards (or mu). Every decision depends on the model only,
    never on earlier calls: the same (model, policy) gives the same result whatever was computed
    before, and either path is exact up to round-off. ``_PROBE = False`` turns the probes off
    (sizes alone decide, as tests force each path).
    """

    def __init__(self, model: TabularModel, kern: _k.Kernel) -> None:
        self.model, self.kern = model, kern
        g = model.gamma
        self.keep: slice | np.ndarray = slice(None) if g < 1.0 else np.flatnonzero(~model.terminal)
        self.n = model.n_states if g < 1.0 else int(self.keep.size)
        self._krylov: dict[tuple[_Family, bool], bool] = {}
        self._sparse_lu: bool | None = None
        self._fill_probed = False

    def krylov(self, family: _Family, transpose: bool = False) -> bool:
        """Whether the family's systems in this direction try GMRES before a factorisation."""
        if not _PROBE:
            return True
        key = (family, bool(transpose) and family == "policy")
        got = self._krylov.get(key)
        if got is not None:
            return got
        S, n = self.model.n_states, self.n
        cheap_lu = bool(self.sparse_lu())
        # P_pi is a dense array up to DENSE_STATES_MAX states (CSR when its LU is sparse); every
        # matrix of a dense or state-independent kernel is dense; the others are CSR.
        dense_products = self.kern.kind != "sparse" or (
            family == "policy" and S <= _k.DENSE_STATES_MAX and not cheap_lu
        )
        if cheap_lu:  # SuperLU with sparse factors: cheaper than all but the quickest GMRES
            quick = _QUICK_PRODUCTS
        elif dense_products and n <= _DENSE_MAX:  # a dense LU costs ~n / 40 products with dense P
            quick = n / _LU_PRODUCTS
        elif family == "policy":  # sparse products against a large LU: any solve within the budget
            quick = np.inf
        else:  # best responses: whether they close depends on the responding agent's actual policy,
            self._krylov[key] = True  # which no generic one stands for; a failure costs a fraction of
            return True  # the large LU, so every solve may try
        P, b = self._generic(family, key[1])
        P = self._restrict(P)
        if not sp.issparse(P) and np.count_nonzero(P) <= _SPARSE_DENSITY * n * n:
            P = sp.csr_matrix(P)  # products in O(nnz): the probe as cheap as it can be
        if key[1]:
            P = P.T
        b = np.ascontiguousarray(b[:, self.keep])
        stats: dict[str, int] = {}
        with _one_blas_thread(0):
            x = _krylov.gmres(
                lambda V: P @ V if V.ndim == 1 else (P @ V.T).T, b, self.model.gamma, _KRYLOV_STEPS, stats
            )
        per_rhs = stats["products"] / max(1, np.count_nonzero(np.abs(b).max(axis=1)))
        got = self._krylov[key] = x is not None and per_rhs <= quick
        return got

    def sparse_lu(self) -> bool | None:
        """Whether a sparse, dense-stored system is factored sparsely; None: not probed for this
        model's size (above ``_kernel.DENSE_STATES_MAX`` states or at most ``_DENSE_LU_MIN``
        unknowns: the density rule of :meth:`_Solver._factor` decides)."""
        if not self._fill_probed and _PROBE:
            self._fill_probed = True
            n = self.n
            if _DENSE_LU_MIN < n and self.model.n_states <= _k.DENSE_STATES_MAX:
                Pc = sp.csc_matrix(self._restrict(self._generic("policy", False)[0]))
                Pc.sum_duplicates()
                if Pc.nnz > _SPARSE_DENSITY * n * n:
                    self._sparse_lu = False
                else:
                    lu = spla.splu((sp.identity(n, format="csc") - self.model.gamma * Pc).tocsc())
                    self._sparse_lu = lu.L.nnz + lu.U.nnz <= _FILL_SPARSE * n * n
        return self._sparse_lu

    def _generic(self, family: _Family, transpose: bool) -> tuple[np.ndarray | sp.spmatrix, np.ndarray]:
        """A generic member of the family (fixed seed): its matrix (S, S) and right-hand sides (k, S)."""
        model, kern = self.model, self.kern
        S = model.n_states
        states = np.arange(S)
        rng = np.random.default_rng(_PROBE_SEED)
        if family == "team":
            act = rng.integers(model.n_joint_actions, size=S)
            return kern.team_mdp().rows(act), model.R.sum(axis=0)[states, act][None]
        if family == "policy":
            W = rng.random((S, model.n_joint_actions))  # the size of any exact call's joint policy
            W += 0.5  # in [0.5, 1.5): full support
            W /= W.sum(axis=1, keepdims=True)
            return kern.p_pi(W), (model.mu[None] if transpose else _expected_reward(model.R, W).T)
        i = family[1]
        tables = [rng.random((S, k)) + 0.5 for k in model.action_sizes]
        before, after = _k.sides([t / t.sum(axis=1, keepdims=True) for t in tables], i)
        r_i = _k.marginalize(model.R[i], before, after, model.action_sizes[i])
        act = r_i.argmax(axis=1)  # greedy, as policy iteration's start and its answer are
        return kern.induced(i, before, after).rows(act), r_i[states, act][None]

    def _restrict(self, P: np.ndarray | sp.spmatrix) -> np.ndarray | sp.spmatrix:
        if isinstance(self.keep, slice):
            return P
        return P[self.keep][:, self.keep] if sp.issparse(P) else P[np.ix_(self.keep, self.keep)]


def _plan(model: TabularModel) -> _Plan:
    """The model's :class:`_Plan`, cached with the model's kernel."""
    kern = _k.kernel(model)
    plan = kern.solve_plan
    if plan is None:
        plan = kern.solve_plan = _Plan(model, kern)
    return plan


def _p_pi(model: TabularModel, pij: np.ndarray) -> np.ndarray | sp.spmatrix:
    """P_pi for a joint policy pij (S, A), stored as its solve will use it.

    A sparse kernel gives a dense (S, S) array up to ``_kernel.DENSE_STATES_MAX`` states; when the
    model's factors stay sparse (:meth:`_Plan.sparse_lu`), a CSR matrix is built instead: its
    GMRES products are cheaper, and converting the dense one would cost more than its sparse
    factorisation (3 ms against 0.2 ms on the 1,001-state tug of war).
    """
    kern = _k.kernel(model)
    if kern.kind == "sparse" and model.n_states > _DIRECT_MAX:
        plan = _plan(model)
        if plan.n > _DIRECT_MAX and plan.sparse_lu():
            return kern.p_pi(pij, sparse=True)
    return kern.p_pi(pij)


class _Solver:
    """Solves with (I - gamma P_pi) restricted to the states whose value is unknown.

    For gamma < 1 the full system is solved (terminal rows give x = 0 automatically). For
    gamma = 1 only the non-terminal block is, and terminal entries of solutions are 0.

    Up to ``_DIRECT_MAX`` unknowns the matrix is factored at once. Above, the model's
    :class:`_Plan` says, per family of systems, whether a solve first tries GMRES
    (:mod:`mpg_envs._krylov`, at most ``_KRYLOV_STEPS`` products with P_pi, accepted only at
    round-off-level residual): on layered or periodic chains the Krylov space closes after a few
    products, far cheaper than a factorisation of a few hundred states or more. Otherwise the
    matrix is factored (once) and every later solve uses the factors: sparse LU (SuperLU, COLAMD)
    when P_pi is large, or sparse with more than 384 states and factors that stay sparse (the
    plan's probe); dense LU otherwise. P_pi may be a dense array or a sparse matrix (whose rows
    may repeat a column; these add up).
    """

    def __init__(
        self, model: TabularModel, P_pi: np.ndarray | sp.spmatrix, family: _Family = "policy"
    ) -> None:
        g = self.gamma = model.gamma
        if g < 1.0:
            self.keep: slice | np.ndarray = slice(None)
            Pk = P_pi
        else:
            self.keep = np.flatnonzero(~model.terminal)
            Pk = P_pi[self.keep][:, self.keep] if sp.issparse(P_pi) else P_pi[np.ix_(self.keep, self.keep)]
        self.P = Pk
        self.n = n = Pk.shape[0]
        self.empty = n == 0
        self.family = family
        self.factored = False
        self.lu: Any = None
        self.tiny: np.ndarray | None = None  # I - gamma P_pi itself when it has <= _TINY unknowns
        self.plan = _plan(model) if n > _DIRECT_MAX else None
        if not self.empty and self.plan is None:
            self._factor()

    def _factor(self) -> None:
        Pk, n, g = self.P, self.n, self.gamma
        hint = self.plan.sparse_lu() if self.plan is not None and n <= _DENSE_MAX else None
        if hint is not None:
            self.sparse = hint  # the model's probe measured the fill of the factors
        else:
            nnz = Pk.nnz if sp.issparse(Pk) else np.count_nonzero(Pk)
            self.sparse = n > _DENSE_MAX or (n > _DENSE_LU_MIN and nnz <= _SPARSE_DENSITY * n * n)
        self.factored = True
        if self.sparse:
            Pc = sp.csc_matrix(Pk)
            Pc.sum_duplicates()  # rows of a kernel view may repeat a column
            self.lu = spla.splu((sp.identity(n, format="csc") - g * Pc).tocsc())
            return
        # I - gamma P in one fresh array (np.eye(n) - g * P allocates three: at 625 unknowns their
        # page faults cost a third of the LU)
        M = Pk.toarray() if sp.issparse(Pk) else np.array(Pk, dtype=float)
        M *= -g
        M.flat[:: n + 1] += 1.0
        if n <= _TINY:  # numpy's solve has less call overhead than scipy's factor-then-solve
            self.tiny = M
            return
        with _one_blas_thread(n):  # LAPACK factors M^T in place: M.T is Fortran-ordered, no copy
            self.lu = scipy.linalg.lu_factor(M.T, overwrite_a=True, check_finite=False)

    def solve(self, rhs: np.ndarray, transpose: bool = False) -> np.ndarray:
        """x with (I - gamma P_pi) x = rhs (transpose: x^T (I - gamma P_pi) = rhs^T); rhs (S,) or (S, k)."""
        x = np.zeros(rhs.shape)
        if self.empty:
            return x
        b = np.ascontiguousarray(rhs[self.keep])
        if not self.factored and self.plan.krylov(self.family, transpose):
            P = self.P.T if transpose else self.P

            def matvec(V: np.ndarray) -> np.ndarray:  # P @ v for a vector, P @ v_j for each row v_j
                return P @ V if V.ndim == 1 else (P @ V.T).T

            with _one_blas_thread(0):  # whatever n, the dense work is on (n, <= 64) Krylov bases
                sol = _krylov.gmres(matvec, b.reshape(self.n, -1).T, self.gamma, _KRYLOV_STEPS)
            if sol is not None:
                x[self.keep] = sol.T.reshape(b.shape)
                return x
        if not self.factored:  # no GMRES, or its space did not close: factor once, for every solve
            self._factor()
        x[self.keep] = self._lu_solve(b, transpose)
        return x

    def _lu_solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        """Solve with the factors, on the unknowns only: b (n,) or (n, k)."""
        if self.sparse:
            return self.lu.solve(b, trans="T" if transpose else "N")
        if self.tiny is not None:
            return np.linalg.solve(self.tiny.T if transpose else self.tiny, b)
        with _one_blas_thread(len(b)):  # the factors are those of M^T: transposed solves are plain
            return scipy.linalg.lu_solve(self.lu, b, trans=0 if transpose else 1, check_finite=False)

    def solve_with_rows(self, states: np.ndarray, rows: np.ndarray, rhs: np.ndarray) -> np.ndarray | None:
        """x with (I - gamma P') x = rhs, where P' is P_pi with the rows of ``states`` replaced.

        Uses the factors of (I - gamma P_pi) and the Sherman-Morrison-Woodbury identity: r changed
        rows cost r + 1 solves with the factors and an (r, r) system instead of a new factorisation
        (policy iteration's later rounds change few states). Returns None when this solver has no
        factors or the result's residual is not at round-off level (then build a new solver).

        Args:
            states: (r,) distinct non-terminal states whose rows change.
            rows: (r, S) their new rows of P'.
            rhs: (S,).
        """
        if self.empty or not self.factored:
            return None
        g, P = self.gamma, self.P
        pos = states if isinstance(self.keep, slice) else np.searchsorted(self.keep, states)
        new = rows[:, self.keep]
        old = P[pos].toarray() if sp.issparse(P) else P[pos]
        D = g * (new - old)  # (I - gamma P') = (I - gamma P_pi) - E D, E selecting the rows pos
        b = rhs[self.keep]
        E = np.zeros((self.n, pos.size))
        E[pos, np.arange(pos.size)] = 1.0
        YZ = self._lu_solve(np.column_stack([b, E]))
        y, Z = YZ[:, 0], YZ[:, 1:]
        xk = y + Z @ np.linalg.solve(np.eye(pos.size) - D @ Z, D @ y)
        Px = P @ xk
        Px[pos] = new @ xk
        res = np.abs(b - (xk - g * Px)).max()
        if res > _krylov.RESIDUAL_TOL * max(np.abs(xk).max(), np.abs(b).max()):
            return None
        x = np.zeros(rhs.shape)
        x[self.keep] = xk
        return x


def _solve(
    model: TabularModel, P_pi: np.ndarray | sp.spmatrix, rhs: np.ndarray, transpose: bool = False
) -> np.ndarray:
    """Solve (I - gamma P_pi) x = rhs (or the transposed system); see :class:`_Solver`."""
    return _Solver(model, P_pi).solve(rhs, transpose)


@_small_blas
def evaluate(model: TabularModel, policies: Policy) -> np.ndarray:
    """Values V_i(s) of every agent, shape (N, S)."""
    pol = check_policy(model, policies)
    return _evaluate(model, pol)


def _evaluate(
    model: TabularModel, pol: Sequence[np.ndarray], rewards: np.ndarray | None = None
) -> np.ndarray:
    """Values of each reward (k, S, A) (default: the agents' R) under a validated policy: (k, S)."""
    pij = _joint(pol)
    rewards = model.R if rewards is None else rewards
    r_pi = _expected_reward(rewards, pij)
    return _solve(model, _p_pi(model, pij), r_pi).T


def _expected_reward(rewards: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """sum_a pi(a|s) r_n(s, a) for rewards (n, S, A) and a joint policy pi (S, A): shape (S, n).

    One batched matrix-vector product per (n, s): ~2x faster than the equivalent einsum.
    """
    return np.matmul(rewards[:, :, None, :], pi[:, :, None])[:, :, 0, 0].T


@_small_blas
def joint_q(model: TabularModel, V: np.ndarray) -> np.ndarray:
    """Q_i(s, a) = r_i(s, a) + gamma * sum_s' P(s'|s,a) V_i(s') for values V (N, S): (N, S, A)."""
    model = _check_model(model)
    V = _check_values(model, V, "V")
    return model.R + model.gamma * _k.kernel(model).expect(V)


def _check_values(model: TabularModel, V: Any, name: str) -> np.ndarray:
    """Values of every agent, a finite float64 array of shape (N, S)."""
    N, S = model.n_agents, model.n_states
    V = chk.real_array(name, V, what=f"values of shape (N, S) = {(N, S)}")
    if V.shape != (N, S):
        raise ValueError(f"{name} must have shape (N, S) = {(N, S)}, got {V.shape}")
    return V


def _values_and_q(
    model: TabularModel, pol: Sequence[np.ndarray]
) -> tuple[np.ndarray, list[np.ndarray], _Solver]:
    """V (N, S), marginal Q_i (list of (S, |A_i|)) and the solver, for a validated policy."""
    kern = _k.kernel(model)
    before, after = _k.others(pol)
    pij = _k.outer(pol[0], after[0])
    solver = _Solver(model, _p_pi(model, pij))
    V = solver.solve(_expected_reward(model.R, pij)).T
    Q = model.R + model.gamma * kern.expect(V)
    sizes = model.action_sizes
    q = [_k.marginalize(Q[i], before[i], after[i], sizes[i]) for i in range(model.n_agents)]
    return V, q, solver


@_small_blas
def marginal_q(model: TabularModel, policies: Policy) -> list[np.ndarray]:
    """Marginal Q_i(s, a_i) = E_{a_-i ~ pi_-i}[Q_i(s, a_i, a_-i)], list of (S, |A_i|)."""
    return _values_and_q(model, check_policy(model, policies))[1]


@_small_blas
def advantages(model: TabularModel, policies: Policy) -> list[np.ndarray]:
    """A_i(s, a_i) = Q_i(s, a_i) - V_i(s), list of (S, |A_i|) (the INPG update direction)."""
    V, q, _ = _values_and_q(model, check_policy(model, policies))
    return [q[i] - V[i][:, None] for i in range(model.n_agents)]


@_small_blas
def occupancy(model: TabularModel, policies: Policy, mu: np.ndarray | None = None) -> np.ndarray:
    """Expected discounted visits sum_t gamma^t Pr(s_t = s), shape (S,).

    For gamma = 1, terminal states get 0 (they would be visited infinitely often).

    Args:
        model: The model.
        policies: The policy.
        mu: Initial distribution, shape (S,), non-negative and summing to 1; default the model's.
    """
    pol = check_policy(model, policies)
    mu = model.mu if mu is None else chk.distribution("mu", mu, model.n_states)
    return _solve(model, _p_pi(model, _joint(pol)), mu, transpose=True)


def visitation(model: TabularModel, policies: Policy, mu: np.ndarray | None = None) -> np.ndarray:
    """Discounted state visitation d_mu^pi(s) = (1 - gamma) * occupancy, shape (S,), sums to 1.

    For gamma = 1 it is the occupancy normalised over non-terminal states (undefined, and refused
    with a ValueError, when mu puts all its mass on terminal states).
    """
    occ = occupancy(model, policies, mu)
    if model.gamma < 1.0:
        return (1.0 - model.gamma) * occ
    total = occ.sum()
    if total <= 0:
        raise ValueError(
            "with gamma = 1 the visitation is normalised over non-terminal states, but mu puts all its "
            "mass on terminal states (the expected number of non-terminal visits is 0)"
        )
    return occ / total


@_small_blas
def potential_value(model: TabularModel, policies: Policy) -> np.ndarray:
    """Phi^pi(s) = E[sum_t gamma^t phi(s_t, a_t) | s_0 = s], shape (S,).

    Raises:
        ValueError: If the model has no stage potential ``phi``.
    """
    model = _check_model(model)
    if model.phi is None:
        raise ValueError("this model has no stage potential phi")
    pol = check_policy(model, policies)
    return _evaluate(model, pol, rewards=model.phi[None])[0]


@_small_blas
def values_q_occupancy(
    model: TabularModel, policies: Policy
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """V (N, S), marginal Q_i (list of (S, |A_i|)) and occupancy (S,) with one factorisation.

    Everything a policy-gradient step needs (advantages, softmax and direct gradients).
    """
    return _values_q_occupancy(model, check_policy(model, policies))


def _values_q_occupancy(model: TabularModel, pol: list[np.ndarray]):
    """:func:`values_q_occupancy` for policies already checked."""
    V, q, solver = _values_and_q(model, pol)
    return V, q, solver.solve(model.mu, transpose=True)


@_small_blas
def policy_gradient(model: TabularModel, policies: Policy) -> list[np.ndarray]:
    """Exact gradient of V_i(mu) w.r.t. agent i's tabular softmax logits theta_i (S, |A_i|).

    dV_i(mu)/dtheta_i[s, a] = occupancy(s) * pi_i(a|s) * A_i(s, a)  (paper 001 §3, eq. in
    Lemma 3.4, with occupancy = d_mu / (1 - gamma)).

    Returns:
        List of N arrays (S, |A_i|).
    """
    pol = check_policy(model, policies)
    V, q, occ = _values_q_occupancy(model, pol)
    return [softmax_gradient(occ, pol[i], q[i], V[i]) for i in range(model.n_agents)]


def softmax_gradient(occupancy: np.ndarray, policy: np.ndarray, q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """One agent's softmax policy gradient from its (exact or estimated) quantities.

    ``occupancy(s) * pi_i(a|s) * (Q_i(s, a) - V_i(s))`` (paper 001 Lemma 3.4, paper 003 Lemma 3.1).

    Args:
        occupancy: Discounted occupancy from mu, shape (S,).
        policy: pi_i, shape (S, |A_i|).
        q: Marginal Q_i, shape (S, |A_i|).
        v: V_i, shape (S,).

    Returns:
        dV_i(mu)/dtheta_i, shape (S, |A_i|).
    """
    return occupancy[:, None] * policy * (q - v[:, None])


def l1_distance(a: Policy, b: Policy) -> float:
    """Paper 001's L1-accuracy: (1/N) sum_i sum_s sum_a |pi_i(a|s) - pi'_i(a|s)|."""
    for name, x in (("a", a), ("b", b)):
        if isinstance(x, (str, bytes, Mapping)) or not isinstance(x, (Sequence, np.ndarray)):
            raise chk.ArgumentTypeError(f"{name} must be a sequence of per-agent policies, got {chk.show(x)}")
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"policies have different numbers of agents: {len(a)} vs {len(b)}")
    total = 0.0
    for i, (p, q) in enumerate(zip(a, b)):
        p = chk.real_array(f"policy of agent {i} in a", p)
        q = chk.real_array(f"policy of agent {i} in b", q)
        if p.shape != q.shape:
            raise ValueError(f"agent {i}: shapes differ, {p.shape} vs {q.shape}")
        total += float(np.abs(p - q).sum())
    return total / len(a)


# ---------------------------------------------------------------------------- multi-task
def _check_tasks(models: Sequence[TabularModel], policy: np.ndarray) -> np.ndarray:
    if isinstance(models, (str, bytes, Mapping)) or not isinstance(models, Sequence) or len(models) == 0:
        raise ValueError(
            f"models must be a non-empty sequence of single-agent models, got {chk.show(models)}"
        )
    first = _check_model(models[0], "models[0]")
    for k, m in enumerate(models):
        m = _check_model(m, f"models[{k}]")
        if m.n_agents != 1 or (m.n_states, m.action_sizes) != (first.n_states, first.action_sizes):
            raise ValueError(
                "multi-task models must be single-agent with one common state and action space: models[0] "
                f"has N=1, S={first.n_states}, A={first.action_sizes}, models[{k}] has N={m.n_agents}, "
                f"S={m.n_states}, A={m.action_sizes}"
            )
    return check_policy(first, [policy])[0]


def multitask_value(models: Sequence[TabularModel], policy: np.ndarray) -> float:
    """Paper 004's objective for one shared policy: sum_i V_i^pi(rho_i), rho_i = model i's mu.

    Args:
        models: One single-agent model per task (common S and A).
        policy: Shared policy, shape (S, A).
    """
    pol = _check_tasks(models, policy)
    return float(sum(_evaluate(m, [pol])[0] @ m.mu for m in models))


def multitask_gradient(models: Sequence[TabularModel], policy: np.ndarray) -> np.ndarray:
    """Gradient of :func:`multitask_value` w.r.t. the shared softmax logits, shape (S, A).

    The sum of each task's exact softmax policy gradient (paper 004 eq. 8 without the
    regulariser).
    """
    pol = _check_tasks(models, policy)
    return sum(policy_gradient(m, [pol])[0] for m in models)


# ---------------------------------------------------------------------------- best responses
@dataclass(frozen=True)
class BestResponse:
    """A deterministic best response of one agent.

    Attributes:
        agent: i.
        policy: One-hot policy, shape (S, |A_i|).
        value: Its value V_i(s) against the others' policies, shape (S,) (optimal in every state).
        iterations: Policy-iteration rounds.
    """

    agent: int
    policy: np.ndarray
    value: np.ndarray
    iterations: int

    def __repr__(self) -> str:
        return concise_repr(
            self, agent=self.agent, policy=self.policy, value=self.value, iterations=self.iterations
        )


def _policy_iteration(
    model: TabularModel,
    mdp: _k.MDP,
    r_sa: np.ndarray,
    start: np.ndarray,
    family: _Family,
    max_iter: int = 10_000,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Policy iteration on a single-agent MDP with K actions.

    Args:
        mdp: Its transitions (a view from :mod:`mpg_envs._kernel`); r_sa: (S, K) rewards;
            start: (S,) initial actions; family: which systems these are (see :class:`_Plan`).

    Returns:
        (actions (S,), values (S,), iterations).
    """
    S, K = r_sa.shape
    act = start.astype(np.int64)
    states = np.arange(S)
    base: _Solver | None = None  # the last factored matrix, for the actions base_act
    base_act = act
    last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # last round's V, switched states, gains
    for it in range(1, max_iter + 1):
        P_det, rhs = mdp.rows(act), r_sa[states, act]
        changed = np.flatnonzero(act != base_act)
        V = None
        if base is not None and base.n >= _UPDATE_MIN and changed.size <= base.n // _UPDATE_FRACTION:
            rows = P_det[changed]
            V = base.solve_with_rows(changed, rows.toarray() if sp.issparse(rows) else rows, rhs)
        if V is None:
            base, base_act = _Solver(model, P_det, family), act
            V = base.solve(rhs)
        if last is not None and np.all(V[last[1]] - last[0][last[1]] < 0.5 * last[2]):
            # A switch raises the value of each switched state by at least its gain; none rose so:
            # the gains were round-off between tied actions. Stop instead of cycling.
            return act, V, it
        Q = r_sa + model.gamma * mdp.expect(V)
        cur = Q[states, act]
        best = Q.argmax(axis=1)
        gain = Q[states, best] - cur
        tol = 1e-12 * max(1.0, float(np.abs(Q).max()))
        improve = gain > tol
        if model.gamma == 1.0:
            improve &= ~model.terminal
        if not improve.any():
            return act, V, it
        act = np.where(improve, best, act)
        last = V, improve, gain[improve]
    raise RuntimeError(f"policy iteration did not converge in {max_iter} rounds")


@_small_blas
def best_response(model: TabularModel, policies: Policy, agent: int) -> BestResponse:
    """Exact best response of ``agent`` to the others' policies (policy iteration).

    The returned deterministic policy is optimal from every state simultaneously.
    """
    pol = check_policy(model, policies)
    n = model.n_agents
    agent = chk.integer("agent", agent, minimum=0, maximum=n - 1, what=f"in [0, {n})")
    return _best_response(model, pol, agent)


def _best_response(
    model: TabularModel,
    pol: Sequence[np.ndarray],
    i: int,
    v_i: np.ndarray | None = None,
    sides: tuple[np.ndarray, np.ndarray] | None = None,
) -> BestResponse:
    """Policy iteration in agent i's induced MDP, started greedy w.r.t. v_i (S,) if given.

    ``sides`` are the others' joint weights around i (see :func:`_agent_mdp`), if already computed.
    """
    k = model.action_sizes[i]
    mdp, r_i = _agent_mdp(model, pol, i, sides)
    if v_i is None:
        start = pol[i].argmax(axis=1)
    else:
        start = (r_i + model.gamma * mdp.expect(v_i)).argmax(axis=1)
    act, V, it = _policy_iteration(model, mdp, r_i, start, ("agent", i))
    return BestResponse(i, np.eye(k)[act], V, it)


@dataclass(frozen=True)
class NashGap:
    """Per-agent best-response improvements.

    Every gap is >= 0: a best response never does worse, so the round-off of an exact equilibrium
    (e.g. -3e-13) is clipped to 0.

    Attributes:
        per_state: max(0, V_i^{BR_i, pi_-i}(s) - V_i^pi(s)), shape (N, S).
        at_mu: mu-weighted improvement per agent, shape (N,).
        worst_state: max over states per agent, shape (N,).
        best_responses: The N best responses.
    """

    per_state: np.ndarray
    at_mu: np.ndarray
    worst_state: np.ndarray
    best_responses: tuple[BestResponse, ...]

    @property
    def gap(self) -> float:
        """max_i [V_i^{BR}(mu) - V_i(mu)], the papers' Nash gap."""
        return float(self.at_mu.max())

    @property
    def worst(self) -> float:
        """max_i max_s improvement: the policy is an eps-Nash equilibrium (Def. 1) for eps >= this."""
        return float(self.worst_state.max())

    def __repr__(self) -> str:
        return concise_repr(
            self,
            gap=self.gap,
            worst=self.worst,
            at_mu=self.at_mu,
            worst_state=self.worst_state,
            per_state=self.per_state,
            best_responses=self.best_responses,
        )


@_small_blas
def nash_gap(model: TabularModel, policies: Policy, *, values: np.ndarray | None = None) -> NashGap:
    """How much each agent gains by best-responding, at mu and in the worst state.

    The gains are clipped at 0 (``per_state``, ``at_mu``, ``worst_state``, ``gap`` and ``worst``
    are never negative): a best response cannot do worse than the current policy, and the
    difference of two solves for an exact equilibrium is round-off of either sign.

    Args:
        model: The model.
        policies: The policy.
        values: ``evaluate(model, policies)`` (N, S) if the caller already has it (saves one
            evaluation); it is trusted, so passing values of another policy gives a wrong gap.
    """
    pol = check_policy(model, policies)
    V = _evaluate(model, pol) if values is None else _check_values(model, values, "values")
    before, after = _k.others(pol)
    brs = tuple(_best_response(model, pol, i, V[i], (before[i], after[i])) for i in range(model.n_agents))
    per_state = np.maximum(np.stack([br.value for br in brs]) - V, 0.0)
    return NashGap(per_state, per_state @ model.mu, per_state.max(axis=1), brs)


@dataclass(frozen=True)
class SocialOptimum:
    """Best product policy for the sum of values.

    Attributes:
        policies: Deterministic per-agent policies, list of (S, |A_i|).
        values: max_pi sum_i V_i(s), shape (S,).
        welfare: values @ mu.
    """

    policies: list[np.ndarray]
    values: np.ndarray
    welfare: float

    def __repr__(self) -> str:
        return concise_repr(self, welfare=self.welfare, values=self.values, policies=self.policies)


@_small_blas
def social_optimum(model: TabularModel) -> SocialOptimum:
    """max over product policies of sum_i V_i, by policy iteration on the team MDP.

    The team MDP's optimum is attained by a deterministic joint policy, which is a product policy.
    """
    model = _check_model(model)
    r = model.R.sum(axis=0)
    act, V, _ = _policy_iteration(model, _k.kernel(model).team_mdp(), r, r.argmax(axis=1), "team")
    per_agent = model.joint_actions[act]  # (S, N)
    pols = [np.eye(k)[per_agent[:, i]] for i, k in enumerate(model.action_sizes)]
    return SocialOptimum(pols, V, float(V @ model.mu))


@_small_blas
def price_of_anarchy(model: TabularModel, policies: Policy, optimum: SocialOptimum | None = None) -> float:
    """Paper 003 Def. 4.1: sum_i V_i^pi(mu) / max_pi' sum_i V_i^pi'(mu) (1 = socially optimal).

    Args:
        optimum: Precomputed :func:`social_optimum` (reuse it across many policies).

    Raises:
        ValueError: If the optimal welfare is not positive (the ratio is then meaningless).
    """
    model = _check_model(model)
    if optimum is not None and not isinstance(optimum, SocialOptimum):
        raise chk.ArgumentTypeError(
            f"optimum must be None or the SocialOptimum of social_optimum(model), got {chk.show(optimum)}"
        )
    opt = social_optimum(model) if optimum is None else optimum
    if opt.welfare <= 0:
        raise ValueError(f"price of anarchy needs a positive optimal welfare, got {opt.welfare!r}")
    V = evaluate(model, policies)
    return float((V @ model.mu).sum() / opt.welfare)


# ---------------------------------------------------------------------------- potential certificate
@dataclass(frozen=True)
class Certificate:
    """Result of a potential check.

    Attributes:
        max_residual: Largest |residual| over samples and states.
        residuals: Per-sample max over states, shape (n,).
        scale: max |V| seen, for judging the residual (relative = max_residual / scale).
        worst: Description of the worst sample (agents involved, state).
    """

    max_residual: float
    residuals: np.ndarray
    scale: float
    worst: dict

    @property
    def relative(self) -> float:
        return self.max_residual / max(self.scale, 1e-300)

    def __repr__(self) -> str:
        return concise_repr(
            self,
            max_residual=self.max_residual,
            relative=self.relative,
            scale=self.scale,
            residuals=self.residuals,
            worst=self.worst,
        )


def _sample_pair(model, rng, obs_map, agents, pure):
    """Base policy and an alternative for the given agents."""
    base = random_policy(model, rng, deterministic=pure, obs_map=obs_map)
    alt = random_policy(model, rng, deterministic=pure, obs_map=obs_map, agents=agents)
    return base, alt


@_small_blas
def potential_residual(
    model: TabularModel,
    rng: np.random.Generator | int | None,
    *,
    n_samples: int = 32,
    obs_map: np.ndarray | None = None,
) -> Certificate:
    """Residual of the MPG identity with the model's stage potential phi.

    For random policies pi and unilateral deviations pi_i -> pi'_i (half pure, half Dirichlet;
    restricted to the class given by ``obs_map``), measures
    ``max_s |[V_i(pi'_i, pi_-i) - V_i(pi)](s) - [Phi(pi'_i, pi_-i) - Phi(pi)](s)|`` with
    ``Phi = potential_value``. Zero for all deviations means Phi is an MPG potential.

    Args:
        model: The model (with ``phi``).
        rng: Generator, or an int seed (``np.random.default_rng(rng)``), or None (fresh entropy).
        n_samples: Number of random deviations, in [1, MAX_CERTIFICATE_SAMPLES].
        obs_map: Restrict policies to a class (see :func:`random_policy`).
    """
    model = _check_model(model)
    if model.phi is None:
        raise ValueError("this model has no stage potential phi; use cycle_residual")
    rng = chk.generator(rng)
    n_samples = chk.positive_int("n_samples", n_samples, maximum=MAX_CERTIFICATE_SAMPLES)
    obs_map = _check_obs_map(model, obs_map)
    res, scale, worst = np.zeros(n_samples), 0.0, {}
    with_phi = np.concatenate([model.R, model.phi[None]])
    for k in range(n_samples):
        i = int(rng.integers(model.n_agents))
        base, alt = _sample_pair(model, rng, obs_map, [i], pure=k % 2 == 0)
        dev = list(base)
        dev[i] = alt[i]
        Vb = _evaluate(model, base, rewards=with_phi)
        Vd = _evaluate(model, dev, rewards=with_phi)
        r = (Vd[i] - Vb[i]) - (Vd[-1] - Vb[-1])
        s = int(np.abs(r).argmax())
        res[k] = abs(r[s])
        scale = max(scale, float(np.abs(Vb[:-1]).max()), float(np.abs(Vd[:-1]).max()))
        if res[k] >= res.max():
            worst = {"agent": i, "state": s, "pure": k % 2 == 0}
    return Certificate(float(res.max()), res, scale, worst)


@_small_blas
def cycle_residual(
    model: TabularModel,
    rng: np.random.Generator | int | None,
    *,
    n_cycles: int = 32,
    obs_map: np.ndarray | None = None,
) -> Certificate:
    """Potential-free MPG test: sums of value changes around 4-cycles of unilateral deviations.

    For agents i != j, base policy pi and alternatives pi'_i, pi'_j, the cycle
    (pi_i, pi_j) -> (pi'_i, pi_j) -> (pi'_i, pi'_j) -> (pi_i, pi'_j) -> (pi_i, pi_j), each step
    scored by the deviating agent's value change, sums to zero in every state of an MPG (the
    potential differences telescope). A non-zero sum proves that **no** potential function
    exists for that policy class (Monderer & Shapley's 4-cycle condition).

    Args:
        model: The model.
        rng: Generator, or an int seed (``np.random.default_rng(rng)``), or None (fresh entropy).
        n_cycles: Number of random cycles (half with pure policies, half Dirichlet), in
            [1, MAX_CERTIFICATE_SAMPLES].
        obs_map: Restrict policies to a class (see :func:`random_policy`).

    Raises:
        ValueError: For a single-agent model.
    """
    model = _check_model(model)
    if model.n_agents < 2:
        raise ValueError(f"cycle_residual needs at least 2 agents, got a model with N={model.n_agents}")
    rng = chk.generator(rng)
    n_cycles = chk.positive_int("n_cycles", n_cycles, maximum=MAX_CERTIFICATE_SAMPLES)
    obs_map = _check_obs_map(model, obs_map)
    res, scale, worst = np.zeros(n_cycles), 0.0, {}
    for k in range(n_cycles):
        i, j = (int(x) for x in rng.choice(model.n_agents, size=2, replace=False))
        base, alt = _sample_pair(model, rng, obs_map, [i, j], pure=k % 2 == 0)

        profiles = []
        for di, dj in ((False, False), (True, False), (True, True), (False, True)):
            p = list(base)
            if di:
                p[i] = alt[i]
            if dj:
                p[j] = alt[j]
            profiles.append(_evaluate(model, p))
        V00, V10, V11, V01 = profiles
        cyc = (V10[i] - V00[i]) + (V11[j] - V10[j]) + (V01[i] - V11[i]) + (V00[j] - V01[j])
        s = int(np.abs(cyc).argmax())
        res[k] = abs(cyc[s])
        scale = max(scale, *(float(np.abs(V).max()) for V in (V00, V10, V11, V01)))
        if res[k] >= res.max():
            worst = {"agents": (i, j), "state": s, "pure": k % 2 == 0}
    return Certificate(float(res.max()), res, scale, worst)
