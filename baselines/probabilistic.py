"""Exact soft value iteration for the probabilistic two-agent algorithms of seed report 002:
Balancing-Q (§1.1.2, eqs. 15-25, App. A.2/A.4) and ROMMEO (§1.1.1, eqs. 1-14, App. A.1/A.3).

For discrete states and actions every integral of the report is a sum, so on an exact tabular
model each algorithm's soft Bellman operator can be applied exactly (numpy, vectorised over states
and joint actions) and iterated to its fixed point. Each function returns the agents' *marginal*
product policy (arrays (S, |A_i|) in model agent order), which :mod:`mpg_envs.exact` evaluates
(values, Nash gap, price of anarchy) like any other baseline's, plus the fixed point itself.

Two agents, as the report writes them: the *agent* i (``agent=``, default 0) and its *opponent*
-i (the other agent). Both operators work on a joint soft Q of shape (S, A_i, A_-i) built on the
agent's reward r_i; the report never uses r_-i (for the opponent's incentives Balancing-Q uses the
sign of its temperature, ROMMEO assumes it shares r_i). Models with N != 2 agents are refused:
treating "the others" as one opponent would make the opponent's policy a distribution over their
*joint* actions, which the marginal product policy that :mod:`mpg_envs.exact` measures cannot
represent without dropping its correlations.

**Units.** Everything here is in reward units: ``q`` is the soft Q measured like r_i, and the
values are ``V = V^i / beta^i`` for Balancing-Q (eq. 25's ``V*``) and ``V = V_report / beta`` for
ROMMEO (the report's ROMMEO multiplies the reward by beta, eq. 3, so its Q is ``beta * q``).
The stop rule and ``tol`` are therefore comparable across temperatures.

**Soft aggregates.** ``soft_beta(x; p) = (1 / beta) log sum_a p(a) exp(beta x(a))`` for a prior
``p``: a soft maximum for beta > 0, a soft minimum for beta < 0, the prior mean as beta -> 0, the
max (min) over the prior's support as beta -> +inf (-inf). It is computed as
``m + log1p(sum_a p(a) expm1(beta (x(a) - m))) / beta`` with ``m`` the max (beta > 0) or min
(beta < 0) over the support, which neither overflows for large |beta| nor loses the mean for small
|beta|. Each aggregate is monotone and moves by exactly c when x moves by c, so both operators
are gamma-contractions in the sup norm for *any* signs of the temperatures.

**Balancing-Q** (temperatures ``beta`` = beta^i, ``beta_opponent`` = beta^-i, non-zero):
``q = r_i + gamma P V`` with ``V(s) = soft_{beta^i}[a_i](soft_{beta^-i}[a_-i](q(s, a_i, a_-i)))``
(eq. 25 with the discount restored, see below), the agent's policy (eq. 24)
``pi(a_i | s) ~ p_i(a_i | s) exp(beta^i g(s, a_i))`` with ``g = soft_{beta^-i}[a_-i] q`` (eq. 20's
``Q^i = beta^i g``), and the opponent's policy ``rho(a_-i | s) ~ p_-i(a_-i | s) exp(beta^-i h(s,
a_-i))`` with ``h = soft_{beta^i}[a_i] q`` (eq. 21's ``Q^-i = beta^-i h``). Same signs
(``mode="cooperative"``): both maximise r_i; opposite signs (``mode="competitive"``, beta^i > 0 >
beta^-i): the opponent minimises it, as in a zero-sum game.

**ROMMEO** (one temperature ``beta > 0``): ``q = r_i + gamma P V`` with
``V(s) = soft_beta[a_-i](c(s, a_-i))``, ``c(s, a_-i) = soft_beta[a_i](q(s, a_i, a_-i))`` under the
conditional prior ``p_i(a_i | s, a_-i)``; the conditional policy (eq. 13)
``pi(a_i | s, a_-i) = p_i(a_i | s, a_-i) exp(beta (q - c))`` and the opponent model
``rho(a_-i | s) = p_-i(a_-i | s) exp(beta (c - V))``. Their product is the soft-optimal *joint*
policy of the team problem with reward r_i: ROMMEO's opponent model helps the agent, which is why
it only suits cooperative games. The marginal product policy returned is
``(sum_{a_-i} rho pi, rho)``.

**What the report gets wrong (and what is computed instead).**

1. *Missing discount.* Eqs. 24-25 (Balancing-Q's "Bellman" equation), eq. 26 (ROMMEO's operator),
   eq. 33 and eq. 157 omit gamma, while eqs. 27 and 34 claim a gamma-contraction and eq. 14 and
   App. A.3.1 carry gamma. Both operators here carry gamma (without it they are not contractions
   for gamma < 1 and have no fixed point in a game without terminal states).
2. *Eq. 33 / 157 back up V^i, not V^i / beta^i.* The value there is
   ``log sum p exp((beta^i / beta^-i) log sum p exp(beta^-i Q))`` = ``V^i = beta^i V``, in units of
   ``beta^i`` x reward, which eq. 25 divides by beta^i. Backed up as written, a shift of Q by eps
   shifts V^i by ``beta^i eps``, so the operator is a ``gamma |beta^i|``-contraction at best, not a
   gamma-contraction; App. A.4.1's proof gets gamma only by writing ``exp(beta^-i Q + eps)`` for
   ``exp(beta^-i (Q + eps))`` (and for beta^-i < 0 its first inequality points the wrong way; the
   result holds because the two sign flips cancel). Here V = V^i / beta^i is backed up
   (``tests/test_probabilistic.py`` measures both factors).
3. *Eq. 25's last line, ``V* = V^i / beta^i = V^-i / beta^-i``, is false unless beta^i =
   beta^-i.* The two sides nest the soft aggregates in opposite orders (agent outside vs opponent
   outside); with opposite signs they are a soft max-min and a soft min-max, which differ whenever
   the stage game has no pure saddle point (matching pennies: -> -1 and +1 as beta grows). Both
   are returned (``values`` and ``opponent_values``); only the agent's is backed up (eq. 22/A.2.2
   derive the message from the agent's side).
4. *"Balancing-Q reaches the minimax value" holds for pure strategies only.* As beta^i -> +inf
   and beta^-i = -beta^i the fixed point tends to the *pure-strategy* max-min value of the Markov
   game, ``V(s) = max_{a_i} min_{a_-i} q(s, a_i, a_-i)``, which equals the minimax value ``V*`` of
   :func:`mpg_envs.zerosum.shapley` only where the stage games have pure saddle points. In games
   that need mixing (matching pennies, ``mpg/TugOfWar-v0``) it is strictly below ``V*``, and the
   marginal policies do not tend to the minimax strategies either: in the tug of war the agent's
   tends to uniform and the opponent's to pure tails (the minimax strategies play heads with
   probability 0.43-0.46), a pair with worst-state Nash gap ~19 (``V*`` ranges over -1.5..6.0).
   Measured in the tests and in ``benchmarks/bench_soft.py``.
5. *Eqs. 14, 26 and A.3.1 put the prior inside the exponential* (``exp(Q P_prior)``); the
   normaliser is ``log sum_a P_prior(a) exp(Q(a))`` (eqs. 8-9, the derivation in A.1.2).
6. *Eqs. 28 and 35 weight step t by gamma^(t-n+1)*; the recursion they expand (A.3.3) gives
   gamma^(t-n). Eq. 35 also starts with ``beta R`` where Balancing-Q's Q is in reward units.

7. *The value Balancing-Q backs up is not the value of the policies it plays.* App. A.2.1-A.2.2
   derive the message ``V^i / beta^i`` with a *conditional* opponent ``rho(a_-i | s, a_i)``, but
   eq. 24 plays marginal policies; the soft Q of that product policy under the same objective
   (:func:`balancing_q_soft_q`) is lower than the fixed point (by 0.28-0.32 on a random 4-state game
   at beta = 1.5). ROMMEO has no such gap (App. A.3.2 holds: :func:`rommeo_soft_q` of its policies
   is its fixed point).
8. *Improvement steps.* ROMMEO's policy step (eq. 29) never lowers the soft Q (App. A.3.3, checked);
   its opponent step (eq. 31) with eq. 30's log-sum-exp does so only together with the policy step
   -- with an arbitrary pi kept (A.3.4's "arbitrary pi_s") it can lower the value (measured at
   beta = 4); the step with the soft value of a_-i under the current pi always improves.
   Balancing-Q's opponent step moves the value in the direction of the sign of beta^-i (eq. 37)
   unconditionally when it uses the agent's actual pi; eq. 36's step (a soft max over a_i) needs
   eq. 38's assumption and moves it the wrong way in both signs without it (pinned in the tests).

Out of scope here: the report's later sections (hierarchical MARL §2, EM §3, belief §4, imitation
§5) are brainstorms without algorithms to test.

Example::

    >>> from mpg_envs import coordination_v0, exact
    >>> from baselines.probabilistic import balancing_q
    >>> model = coordination_v0.parallel_env(n_agents=2).model()
    >>> sol = balancing_q(model, beta=20.0, beta_opponent=20.0, mode="cooperative")
    >>> [p.shape for p in sol.policies], sol.converged
    ([(4, 2), (4, 2)], True)
    >>> bool(exact.nash_gap(model, sol.policies).gap < 0.1)
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from mpg_envs import _validate as V
from mpg_envs import exact
from mpg_envs._fixedpoint import iterate_contraction
from mpg_envs._repr import concise_repr
from mpg_envs.model import TabularModel

__all__ = [
    "BETA_MIN",
    "MODES",
    "BalancingQResult",
    "PfpResult",
    "RommeoResult",
    "balancing_q",
    "balancing_q_operator",
    "balancing_q_policies",
    "balancing_q_soft_q",
    "pfp",
    "pfp_operator",
    "pfp_policies",
    "pfp_soft_q",
    "rommeo",
    "rommeo_operator",
    "rommeo_policies",
    "rommeo_soft_q",
    "soft_aggregate",
]

#: Modes of :func:`balancing_q`: the signs its temperatures must have (``None``: any non-zero).
MODES = (None, "cooperative", "competitive")
#: Smallest |beta| accepted: below it ``beta * (q - m)`` can fall into the subnormal range and the
#: soft aggregate would lose the prior mean it tends to (use a prior policy directly instead).
BETA_MIN = 1e-100
_PRIOR_TOL = 1e-9
#: Round-off floor of a sweep's change, relative to max(1, max |q|), and the sweeps spent on it
#: before the iteration stops (a ``tol`` below it cannot be met in float64).
#: Relative round-off floor of a soft value-iteration sweep's change (see mpg_envs._fixedpoint).
_FLOOR = 1e-12


# ---------------------------------------------------------------------------- the soft aggregate
def _soft(x: np.ndarray, prior: np.ndarray, beta: float, axis: int) -> np.ndarray:
    """``(1/beta) log sum_a prior(a) exp(beta x(a))`` along ``axis`` (prior broadcast to x)."""
    support = prior > 0
    if beta > 0:
        m = np.where(support, x, -np.inf).max(axis=axis, keepdims=True)
    else:
        m = np.where(support, x, np.inf).min(axis=axis, keepdims=True)
    with np.errstate(over="ignore"):  # a huge |beta|: -inf, whose weight is exactly 0
        y = beta * (np.where(support, x, m) - m)  # <= 0, 0 at the extreme
    s = (prior * np.expm1(y)).sum(axis=axis, keepdims=True)
    return np.squeeze(m + np.log1p(s) / beta, axis=axis)


def _gibbs(x: np.ndarray, prior: np.ndarray, beta: float, axis: int) -> np.ndarray:
    """``prior(a) exp(beta x(a)) / sum`` along ``axis``: the policy of the soft aggregate."""
    support = prior > 0
    if beta > 0:
        m = np.where(support, x, -np.inf).max(axis=axis, keepdims=True)
    else:
        m = np.where(support, x, np.inf).min(axis=axis, keepdims=True)
    with np.errstate(over="ignore"):  # a huge |beta|: exp(-inf) = 0
        w = prior * np.exp(beta * (np.where(support, x, m) - m))
    return w / w.sum(axis=axis, keepdims=True)


def soft_aggregate(x: Any, prior: Any, beta: float) -> float:
    """``(1/beta) log sum_a prior(a) exp(beta x(a))`` of one vector, computed stably.

    A soft maximum for beta > 0, a soft minimum for beta < 0; tends to the prior mean as beta -> 0
    and to the max (min) over the prior's support as beta -> +inf (-inf).

    Args:
        x: A finite real vector (K,).
        prior: A probability vector (K,).
        beta: A finite non-zero temperature with |beta| >= :data:`BETA_MIN`.
    """
    x = V.real_array("x", x, what="a finite real vector")
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x must be a non-empty vector, got shape {x.shape}")
    p = V.distribution("prior", prior, x.size, tol=_PRIOR_TOL)
    b = _check_beta("beta", beta)
    return float(_soft(x, p, b, axis=0))


# ---------------------------------------------------------------------------- argument checks
def _check_beta(name: str, value: Any) -> float:
    b = V.real(name, value, what=f"a finite non-zero number with |{name}| >= {BETA_MIN:g}")
    if abs(b) < BETA_MIN:
        raise ValueError(
            f"{name} must be a finite non-zero number with |{name}| >= {BETA_MIN:g} (smaller temperatures "
            f"lose the prior mean to underflow; pass the prior itself as the policy), got {V.show(value)}"
        )
    return b


def _check_model(model: Any, algo: str) -> TabularModel:
    if not isinstance(model, TabularModel):
        raise V.ArgumentTypeError(f"model must be a mpg_envs.TabularModel, got {V.show(model)}")
    if model.n_agents != 2:
        raise ValueError(
            f"{algo} supports exactly 2 agents (an agent and its opponent), got a model with "
            f"N={model.n_agents} agents ({model.name or 'unnamed'}): with more, the opponent's policy would "
            "be a distribution over the others' joint actions, not the product policy exact analysis takes"
        )
    if model.gamma >= 1.0:
        raise ValueError(
            f"{algo} needs a discount gamma < 1 (its soft Bellman operator is a gamma-contraction), got "
            f"gamma={model.gamma!r}"
        )
    return model


def _check_prior(name: str, value: Any, S: int, k: int, cond: int | None) -> np.ndarray:
    """A prior over k actions: None (uniform), (k,), (S, k) or, with ``cond``, (S, cond, k) rows
    (the distribution along the last axis). Returns float64 of shape (S, k) or (S, cond, k)."""
    shapes = [(k,), (S, k)] + ([(S, cond, k)] if cond is not None else [])
    if value is None:
        return np.full((S, k), 1.0 / k)
    what = "a probability table of shape " + " or ".join(str(s) for s in shapes) + " (rows sum to 1)"
    p = V.real_array(name, value, what=what)
    if p.shape not in shapes:
        raise ValueError(f"{name} must be {what}, got shape {p.shape}: {V.show(value)}")
    if p.min() < 0:
        idx = np.unravel_index(int(p.argmin()), p.shape)
        raise ValueError(
            f"{name} must be non-negative (a probability table), got {name}[{', '.join(map(str, idx))}] = "
            f"{float(p[idx])!r}"
        )
    sums = p.sum(axis=-1)
    bad = np.abs(sums - 1.0) > _PRIOR_TOL * k
    if bad.any():
        idx = np.unravel_index(int(np.argmax(bad)), sums.shape)
        where = f"{name}[{', '.join(map(str, idx))}]" if idx else name
        raise ValueError(
            f"{name} must be a probability table whose rows sum to 1, but {where} sums to "
            f"{float(sums[idx])!r}: {V.show(value)}"
        )
    p = p / sums[..., None]
    if p.shape == (k,):
        p = np.broadcast_to(p, (S, k))
    return np.ascontiguousarray(p)


def _check_mode(mode: Any, beta: float, beta_opponent: float) -> str | None:
    if not any(mode is m or (type(mode) is str and mode == m) for m in MODES):
        raise ValueError(f"mode must be one of {list(MODES)}, got {V.show(mode)}")
    if mode == "cooperative":
        for name, b in (("beta", beta), ("beta_opponent", beta_opponent)):
            if b < 0:
                raise ValueError(
                    f"{name} must be > 0 in mode='cooperative' (both agents maximise the agent's reward), "
                    f"got {b!r}"
                )
    elif mode == "competitive":
        if beta < 0:
            raise ValueError(
                f"beta must be > 0 in mode='competitive' (the agent maximises its reward), got {beta!r}"
            )
        if beta_opponent > 0:
            raise ValueError(
                "beta_opponent must be < 0 in mode='competitive' (the opponent minimises the agent's "
                f"reward), got {beta_opponent!r}"
            )
    return mode


def _check_iteration(tol: Any, max_iter: Any) -> tuple[float, int]:
    return (
        V.real("tol", tol, low=0.0, low_open=True, what="a finite number > 0"),
        V.positive_int("max_iter", max_iter),
    )


# ---------------------------------------------------------------------------- shared machinery
@dataclass(frozen=True, repr=False)
class _Game:
    """The agent's view of a 2-player model: rewards and expectations on (S, A_i, A_-i) axes."""

    model: TabularModel
    agent: int

    @property
    def shape(self) -> tuple[int, int, int]:
        S, (a0, a1) = self.model.n_states, self.model.action_sizes
        return (S, a0, a1) if self.agent == 0 else (S, a1, a0)

    def to_agent(self, x: np.ndarray) -> np.ndarray:
        """(S, A) or (S, A_0, A_1) in model order -> (S, A_i, A_-i)."""
        S, (a0, a1) = self.model.n_states, self.model.action_sizes
        x = x.reshape(S, a0, a1)
        return x if self.agent == 0 else x.transpose(0, 2, 1)

    def to_model(self, x: np.ndarray) -> np.ndarray:
        """(S, A_i, A_-i) -> (S, A_0, A_1)."""
        return x if self.agent == 0 else x.transpose(0, 2, 1)

    def reward(self) -> np.ndarray:
        return self.to_agent(self.model.R[self.agent])

    def backup(self, values: np.ndarray) -> np.ndarray:
        """r_i + gamma sum_s' P(s' | s, a) V(s'), shape (S, A_i, A_-i)."""
        m = self.model
        nxt = np.asarray(m.P @ values)
        return self.reward() + m.gamma * self.to_agent(nxt)

    def order(self, own: np.ndarray, other: np.ndarray) -> list[np.ndarray]:
        """The agent's and the opponent's policies in model agent order."""
        return [own, other] if self.agent == 0 else [other, own]

    def check_q(self, q: Any, name: str = "q") -> np.ndarray:
        """A joint Q in model order, (S, A_0, A_1) or (S, A), -> (S, A_i, A_-i)."""
        S, (a0, a1) = self.model.n_states, self.model.action_sizes
        what = f"a finite array of shape (S, A_0, A_1) = {(S, a0, a1)} or (S, A) = {(S, a0 * a1)}"
        arr = V.real_array(name, q, what=what)
        if arr.shape not in ((S, a0, a1), (S, a0 * a1)):
            raise ValueError(f"{name} must be {what}, got shape {arr.shape}")
        return self.to_agent(arr)


def _game(model: Any, agent: Any, algo: str) -> _Game:
    model = _check_model(model, algo)
    agent = V.integer("agent", agent, minimum=0, maximum=1, what="0 or 1 (the agent whose reward is used)")
    V.check_bytes(
        f"{algo}'s soft Q tables (a few arrays of shape (S, A) = "
        f"({model.n_states:,}, {model.n_joint_actions:,}))",
        8 * 8 * int(model.n_states) * int(model.n_joint_actions),
        advice="use a smaller game",
    )
    return _Game(model, agent)


def _iterate(
    game: _Game, operator, q0: np.ndarray | None, tol: float, max_iter: int, algo: str
) -> tuple[np.ndarray, int, float, float, bool, float]:
    """Iterate ``q <- operator(q)`` from q0 (default r_i) until gamma/(1-gamma) ||dq|| <= tol
    (:func:`mpg_envs._fixedpoint.iterate_contraction`).

    Returns (q, iterations, residual, error bound, converged, largest observed contraction ratio).
    """
    g = game.model.gamma

    def overflow(it: int, new: np.ndarray) -> ValueError:
        return ValueError(
            f"{algo}'s soft Q overflowed to {float(new[~np.isfinite(new)].flat[0])!r} in sweep {it}: the "
            f"rewards (max |r| = {float(np.abs(game.model.R).max())!r}) divided by 1 - gamma = "
            f"{1.0 - g!r} exceed the float range; rescale the rewards"
        )

    q0 = game.reward().copy() if q0 is None else q0
    fp = iterate_contraction(operator, q0, g, tol, max_iter, algo, overflow, _FLOOR, stacklevel=3)
    return fp.x, fp.iterations, fp.residual, fp.error_bound, fp.converged, fp.contraction


@dataclass(frozen=True, repr=False)
class _SoftResult:
    policies: list[np.ndarray]
    q: np.ndarray
    values: np.ndarray
    iterations: int
    residual: float
    error_bound: float
    converged: bool
    contraction: float

    #: The arguments a result's repr shows first.
    _params: ClassVar[tuple[str, ...]] = ()

    def __repr__(self) -> str:
        return concise_repr(
            self,
            **{k: getattr(self, k) for k in self._params},
            iterations=self.iterations,
            error_bound=self.error_bound,
            converged=self.converged,
            values=self.values,
            policies=self.policies,
        )


# ---------------------------------------------------------------------------- Balancing-Q
@dataclass(frozen=True, repr=False)
class BalancingQResult(_SoftResult):
    """The fixed point of Balancing-Q's soft Bellman operator and its policies.

    Attributes:
        policies: The marginal product policy in model agent order, ``[pi_0, pi_1]`` of shapes
            (S, |A_0|), (S, |A_1|): the agent's ``pi`` (eq. 24) and the opponent's ``rho``.
        q: The joint soft Q in reward units, shape (S, A_0, A_1) (model agent order).
        values: ``V = V^i / beta^i`` (agent's nesting, the backed-up value), shape (S,).
        opponent_values: ``V^-i / beta^-i`` (opponent's nesting), shape (S,); equal to ``values``
            only when beta = beta_opponent (eq. 25 claims always).
        iterations: Sweeps of the operator.
        residual: Sup-norm change of q in the last sweep.
        error_bound: ``gamma / (1 - gamma) * residual`` >= ``max |q - q*|``.
        converged: ``error_bound <= tol``.
        contraction: Largest ratio ``||q_{k+1} - q_k|| / ||q_k - q_{k-1}||`` seen while the steps
            exceed 1e-9 x the scale of q (<= gamma up to round-off; 0 if the first sweep converged).
        beta, beta_opponent, agent: The arguments.
    """

    opponent_values: np.ndarray
    beta: float
    beta_opponent: float
    agent: int
    _params: ClassVar[tuple[str, ...]] = ("beta", "beta_opponent", "agent")


class _Balancing:
    def __init__(self, game, beta, beta_opponent, prior, prior_opponent, mode):
        self.game = game
        S, ki, kj = game.shape
        self.beta = _check_beta("beta", beta)
        self.beta_opp = _check_beta("beta_opponent", beta_opponent)
        _check_mode(mode, self.beta, self.beta_opp)
        self.p_i = _check_prior("prior", prior, S, ki, None)  # (S, A_i)
        self.p_j = _check_prior("prior_opponent", prior_opponent, S, kj, None)  # (S, A_-i)

    def inner(self, q: np.ndarray) -> np.ndarray:
        """g(s, a_i) = soft_{beta^-i} over a_-i."""
        return _soft(q, self.p_j[:, None, :], self.beta_opp, axis=2)

    def value(self, q: np.ndarray) -> np.ndarray:
        return _soft(self.inner(q), self.p_i, self.beta, axis=1)

    def opponent_value(self, q: np.ndarray) -> np.ndarray:
        h = _soft(q, self.p_i[:, :, None], self.beta, axis=1)
        return _soft(h, self.p_j, self.beta_opp, axis=1)

    def operator(self, q: np.ndarray) -> np.ndarray:
        return self.game.backup(self.value(q))

    def policies(self, q: np.ndarray) -> list[np.ndarray]:
        pi = _gibbs(self.inner(q), self.p_i, self.beta, axis=1)
        h = _soft(q, self.p_i[:, :, None], self.beta, axis=1)
        rho = _gibbs(h, self.p_j, self.beta_opp, axis=1)
        return self.game.order(pi, rho)


def balancing_q_operator(
    model: TabularModel,
    q: Any,
    beta: float,
    beta_opponent: float,
    *,
    agent: int = 0,
    prior: Any = None,
    prior_opponent: Any = None,
) -> np.ndarray:
    """One application of Balancing-Q's soft Bellman operator (module docstring), shape (S, A_0, A_1).

    ``(T q)(s, a) = r_i(s, a) + gamma sum_s' P(s' | s, a) V_q(s')`` with ``V_q =
    soft_{beta}[a_i] soft_{beta_opponent}[a_-i] q``: a gamma-contraction in the sup norm for any
    signs of the temperatures.

    Args:
        model: A 2-agent model with gamma < 1.
        q: A joint soft Q in model agent order, (S, A_0, A_1) or (S, A).
        beta, beta_opponent, agent, prior, prior_opponent: As in :func:`balancing_q`.
    """
    game = _game(model, agent, "balancing_q")
    op = _Balancing(game, beta, beta_opponent, prior, prior_opponent, None)
    return game.to_model(op.operator(game.check_q(q)))


def balancing_q_policies(
    model: TabularModel,
    q: Any,
    beta: float,
    beta_opponent: float,
    *,
    agent: int = 0,
    prior: Any = None,
    prior_opponent: Any = None,
) -> list[np.ndarray]:
    """Balancing-Q's marginal product policy (eq. 24) for a joint soft Q, in model agent order."""
    game = _game(model, agent, "balancing_q")
    op = _Balancing(game, beta, beta_opponent, prior, prior_opponent, None)
    return op.policies(game.check_q(q))


def balancing_q(
    model: TabularModel,
    beta: float,
    beta_opponent: float,
    *,
    mode: str | None = None,
    agent: int = 0,
    prior: Any = None,
    prior_opponent: Any = None,
    tol: float = 1e-10,
    max_iter: int = 1_000_000,
    q0: Any = None,
) -> BalancingQResult:
    """Balancing-Q by exact soft value iteration to the fixed point (report 002, §1.1.2).

    Args:
        model: A 2-agent model with gamma < 1 (the agent's reward ``R[agent]`` is the game's).
        beta: The agent's temperature beta^i, finite, |beta| >= :data:`BETA_MIN` (large: greedy;
            small: close to the prior).
        beta_opponent: The opponent's temperature beta^-i (same sign: it helps the agent; opposite
            sign: it works against the agent).
        mode: ``None`` (any signs), ``"cooperative"`` (both > 0) or ``"competitive"`` (``beta > 0 >
            beta_opponent``); a temperature of the wrong sign for the mode is refused.
        agent: Whose reward and policy is "the agent" (0 or 1); the other agent is the opponent.
        prior: The agent's prior ``P_prior(a_i | s)``: None (uniform), (|A_i|,) or (S, |A_i|),
            rows summing to 1.
        prior_opponent: The opponent's prior, likewise (|A_-i|,) or (S, |A_-i|).
        tol: Stop when ``gamma / (1 - gamma) * max |q_{k+1} - q_k| <= tol`` (then ``q`` is within
            ``tol`` of the fixed point in the sup norm, reward units).
        max_iter: Most sweeps; if reached, ``converged=False`` and a ``RuntimeWarning``. The same
            happens, early, when 50 sweeps make no progress at round-off level (a ``tol`` below
            what float64 resolves, ~1e-12 x the scale of q).
        q0: Starting joint Q in model order (S, A_0, A_1) or (S, A); default ``R[agent]``.

    Returns:
        The :class:`BalancingQResult`.

    Raises:
        ValueError / TypeError: The bad argument, named: N != 2, gamma = 1, a zero, non-finite or
            wrong-signed temperature, priors that are not distributions, bad tol/max_iter/q0.
    """
    game = _game(model, agent, "balancing_q")
    op = _Balancing(game, beta, beta_opponent, prior, prior_opponent, mode)
    tol, max_iter = _check_iteration(tol, max_iter)
    start = None if q0 is None else game.check_q(q0, "q0")
    q, it, res, bound, conv, ratio = _iterate(game, op.operator, start, tol, max_iter, "balancing_q")
    return BalancingQResult(
        policies=op.policies(q),
        q=game.to_model(q),
        values=op.value(q),
        iterations=it,
        residual=res,
        error_bound=bound,
        converged=conv,
        contraction=ratio,
        opponent_values=op.opponent_value(q),
        beta=op.beta,
        beta_opponent=op.beta_opp,
        agent=game.agent,
    )


# ---------------------------------------------------------------------------- ROMMEO
@dataclass(frozen=True, repr=False)
class RommeoResult(_SoftResult):
    """The fixed point of ROMMEO's soft Bellman operator and its policies.

    Attributes:
        policies: The marginal product policy in model agent order: the agent's marginal
            ``sum_{a_-i} rho(a_-i | s) pi(a_i | s, a_-i)`` and the opponent model ``rho``.
        q: The joint soft Q in reward units (the report's Q divided by beta), (S, A_0, A_1).
        values: ``V`` in reward units (the report's V* / beta), shape (S,).
        conditional: The agent's conditional policy ``pi(a_i | s, a_-i)``, shape (S, A_-i, A_i)
            (rows over a_i sum to 1).
        opponent: The opponent model ``rho(a_-i | s)``, shape (S, A_-i).
        joint: The joint policy ``rho pi`` in model order, shape (S, A_0, A_1) (correlated: not the
            product of its marginals in general).
        iterations, residual, error_bound, converged, contraction: As in
            :class:`BalancingQResult`.
        beta, agent: The arguments.
    """

    conditional: np.ndarray
    opponent: np.ndarray
    joint: np.ndarray
    beta: float
    agent: int
    _params: ClassVar[tuple[str, ...]] = ("beta", "agent")


class _Rommeo:
    def __init__(self, game, beta, prior, prior_opponent):
        self.game = game
        S, ki, kj = game.shape
        b = _check_beta("beta", beta)
        if b < 0:
            raise ValueError(
                f"beta must be > 0 for ROMMEO (its opponent model maximises the agent's reward; for an "
                f"opponent that works against the agent use balancing_q with beta_opponent < 0), got {b!r}"
            )
        self.beta = b
        p = _check_prior("prior", prior, S, ki, kj)  # (S, A_i) or (S, A_-i, A_i)
        self.p_cond = p[:, :, None] if p.ndim == 2 else p.transpose(0, 2, 1)  # -> (S, A_i, 1 | A_-i)
        self.p_j = _check_prior("prior_opponent", prior_opponent, S, kj, None)

    def conditional_value(self, q: np.ndarray) -> np.ndarray:
        """c(s, a_-i) = soft_beta over a_i under p(a_i | s, a_-i): the report's Q*(s, a^-i) / beta."""
        return _soft(q, np.broadcast_to(self.p_cond, q.shape), self.beta, axis=1)

    def value(self, q: np.ndarray) -> np.ndarray:
        return _soft(self.conditional_value(q), self.p_j, self.beta, axis=1)

    def operator(self, q: np.ndarray) -> np.ndarray:
        return self.game.backup(self.value(q))

    def parts(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(conditional pi (S, A_i, A_-i), rho (S, A_-i), marginal pi (S, A_i))."""
        cond = _gibbs(q, np.broadcast_to(self.p_cond, q.shape), self.beta, axis=1)
        rho = _gibbs(self.conditional_value(q), self.p_j, self.beta, axis=1)
        marginal = np.einsum("sij,sj->si", cond, rho)
        return cond, rho, marginal

    def policies(self, q: np.ndarray) -> list[np.ndarray]:
        _, rho, marginal = self.parts(q)
        return self.game.order(marginal, rho)


def rommeo_operator(
    model: TabularModel, q: Any, beta: float, *, agent: int = 0, prior: Any = None, prior_opponent: Any = None
) -> np.ndarray:
    """One application of ROMMEO's soft Bellman operator (eq. 14 with the prior outside the
    exponential, in reward units), shape (S, A_0, A_1): a gamma-contraction in the sup norm.

    Args:
        model: A 2-agent model with gamma < 1.
        q: A joint soft Q in model agent order, (S, A_0, A_1) or (S, A).
        beta, agent, prior, prior_opponent: As in :func:`rommeo`.
    """
    game = _game(model, agent, "rommeo")
    op = _Rommeo(game, beta, prior, prior_opponent)
    return game.to_model(op.operator(game.check_q(q)))


def rommeo_policies(
    model: TabularModel, q: Any, beta: float, *, agent: int = 0, prior: Any = None, prior_opponent: Any = None
) -> list[np.ndarray]:
    """ROMMEO's marginal product policy for a joint soft Q, in model agent order."""
    game = _game(model, agent, "rommeo")
    return _Rommeo(game, beta, prior, prior_opponent).policies(game.check_q(q))


def rommeo(
    model: TabularModel,
    beta: float,
    *,
    agent: int = 0,
    prior: Any = None,
    prior_opponent: Any = None,
    tol: float = 1e-10,
    max_iter: int = 1_000_000,
    q0: Any = None,
) -> RommeoResult:
    """ROMMEO by exact soft value iteration to the fixed point (report 002, §1.1.1, eqs. 13-14).

    Args:
        model: A 2-agent model with gamma < 1 (the agent's reward ``R[agent]`` is the game's).
        beta: The temperature, > 0 (|beta| >= :data:`BETA_MIN`, finite).
        agent: Whose reward and conditional policy is "the agent" (0 or 1).
        prior: The agent's conditional prior ``P_prior(a_i | s, a_-i)``: None (uniform),
            (|A_i|,), (S, |A_i|) or (S, |A_-i|, |A_i|), rows (last axis) summing to 1.
        prior_opponent: ``P_prior(a_-i | s)``: None, (|A_-i|,) or (S, |A_-i|).
        tol, max_iter, q0: As in :func:`balancing_q`.

    Returns:
        The :class:`RommeoResult`.

    Raises:
        ValueError / TypeError: The bad argument, named (N != 2, gamma = 1, beta <= 0 or not
            finite, priors that are not distributions, bad tol/max_iter/q0).
    """
    game = _game(model, agent, "rommeo")
    op = _Rommeo(game, beta, prior, prior_opponent)
    tol, max_iter = _check_iteration(tol, max_iter)
    start = None if q0 is None else game.check_q(q0, "q0")
    q, it, res, bound, conv, ratio = _iterate(game, op.operator, start, tol, max_iter, "rommeo")
    cond, rho, marginal = op.parts(q)
    joint = game.to_model(cond * rho[:, None, :])
    return RommeoResult(
        policies=game.order(marginal, rho),
        q=game.to_model(q),
        values=op.value(q),
        iterations=it,
        residual=res,
        error_bound=bound,
        converged=conv,
        contraction=ratio,
        conditional=cond.transpose(0, 2, 1).copy(),
        opponent=rho,
        joint=joint,
        beta=op.beta,
        agent=game.agent,
    )


# ---------------------------------------------------------------------------- probabilistic fictitious play
@dataclass(frozen=True, repr=False)
class PfpResult(_SoftResult):
    """The fixed point of probabilistic fictitious play's soft Bellman operator (eq. 50) and its
    policies.

    Attributes:
        policies: The marginal product policy in model agent order: the agent's marginal
            ``sum_{a_-i} rho(a_-i | s) pi(a_i | s, a_-i)`` and the opponent model ``rho``.
        q: The joint soft Q in reward units (the report's Q^i divided by beta^i), (S, A_0, A_1).
        values: ``V = soft_{beta^-i}[a_-i] c`` in reward units (eq. 50's ``(beta^i / beta^-i)
            V^-i`` divided by beta^i), shape (S,).
        conditional: The agent's conditional policy ``pi(a_i | s, a_-i)`` (eq. 42), shape
            (S, A_-i, A_i) (rows over a_i sum to 1).
        opponent: The opponent model ``rho(a_-i | s)`` (eq. 46), shape (S, A_-i).
        joint: The joint policy ``rho pi`` in model order, shape (S, A_0, A_1).
        iterations, residual, error_bound, converged, contraction: As in
            :class:`BalancingQResult`.
        beta, beta_opponent, agent: The arguments.
    """

    conditional: np.ndarray
    opponent: np.ndarray
    joint: np.ndarray
    beta: float
    beta_opponent: float
    agent: int
    _params: ClassVar[tuple[str, ...]] = ("beta", "beta_opponent", "agent")


class _Pfp:
    """Eq. 50 in reward units: ``V = soft_{beta^-i}[a_-i] soft_{beta^i}[a_i | a_-i] q``."""

    def __init__(self, game, beta, beta_opponent, prior, prior_opponent, mode):
        self.game = game
        S, ki, kj = game.shape
        self.beta = _check_beta("beta", beta)
        self.beta_opp = _check_beta("beta_opponent", beta_opponent)
        _check_mode(mode, self.beta, self.beta_opp)
        p = _check_prior("prior", prior, S, ki, kj)  # (S, A_i) or (S, A_-i, A_i)
        self.p_cond = p[:, :, None] if p.ndim == 2 else p.transpose(0, 2, 1)  # -> (S, A_i, 1 | A_-i)
        self.p_j = _check_prior("prior_opponent", prior_opponent, S, kj, None)

    def conditional_value(self, q: np.ndarray) -> np.ndarray:
        """c(s, a_-i) = soft_{beta^i} over a_i under p(a_i | s, a_-i): eq. 42's Q^i(s, a^-i) / beta^i."""
        return _soft(q, np.broadcast_to(self.p_cond, q.shape), self.beta, axis=1)

    def value(self, q: np.ndarray) -> np.ndarray:
        return _soft(self.conditional_value(q), self.p_j, self.beta_opp, axis=1)

    def operator(self, q: np.ndarray) -> np.ndarray:
        return self.game.backup(self.value(q))

    def parts(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(conditional pi (S, A_i, A_-i), rho (S, A_-i), marginal pi (S, A_i))."""
        cond = _gibbs(q, np.broadcast_to(self.p_cond, q.shape), self.beta, axis=1)
        rho = _gibbs(self.conditional_value(q), self.p_j, self.beta_opp, axis=1)
        return cond, rho, np.einsum("sij,sj->si", cond, rho)

    def policies(self, q: np.ndarray) -> list[np.ndarray]:
        _, rho, marginal = self.parts(q)
        return self.game.order(marginal, rho)


def pfp_operator(
    model: TabularModel,
    q: Any,
    beta: float,
    beta_opponent: float,
    *,
    agent: int = 0,
    prior: Any = None,
    prior_opponent: Any = None,
) -> np.ndarray:
    """One application of probabilistic fictitious play's soft Bellman operator (eq. 50 with the
    opponent model of eq. 46 substituted, in reward units), shape (S, A_0, A_1).

    ``(T q)(s, a) = r_i(s, a) + gamma sum_s' P(s' | s, a) V_q(s')`` with ``V_q =
    soft_{beta_opponent}[a_-i] soft_{beta}[a_i | a_-i] q``: a gamma-contraction in the sup norm for
    any signs of the temperatures.

    Args:
        model: A 2-agent model with gamma < 1.
        q: A joint soft Q in model agent order, (S, A_0, A_1) or (S, A).
        beta, beta_opponent, agent, prior, prior_opponent: As in :func:`pfp`.
    """
    game = _game(model, agent, "pfp")
    op = _Pfp(game, beta, beta_opponent, prior, prior_opponent, None)
    return game.to_model(op.operator(game.check_q(q)))


def pfp_policies(
    model: TabularModel,
    q: Any,
    beta: float,
    beta_opponent: float,
    *,
    agent: int = 0,
    prior: Any = None,
    prior_opponent: Any = None,
) -> list[np.ndarray]:
    """Probabilistic fictitious play's marginal product policy for a joint soft Q, model order."""
    game = _game(model, agent, "pfp")
    return _Pfp(game, beta, beta_opponent, prior, prior_opponent, None).policies(game.check_q(q))


def pfp(
    model: TabularModel,
    beta: float,
    beta_opponent: float,
    *,
    mode: str | None = None,
    agent: int = 0,
    prior: Any = None,
    prior_opponent: Any = None,
    tol: float = 1e-10,
    max_iter: int = 1_000_000,
    q0: Any = None,
) -> PfpResult:
    """Probabilistic fictitious play (report 002, §1.3, App. A.5) by exact soft value iteration.

    **What is computed.** The agent plays ROMMEO's *conditional* policy (eq. 42)
    ``pi(a_i | s, a_-i) = p_i(a_i | s, a_-i) exp(beta^i (q - c))`` with
    ``c(s, a_-i) = soft_{beta^i}[a_i | a_-i] q``; the opponent model is Balancing-Q's Gibbs policy
    with its own temperature (eq. 46, the report's ``(beta^-i / beta^i) Q^i(s, a^-i)`` is
    ``beta^-i c``): ``rho(a_-i | s) = p_-i(a_-i | s) exp(beta^-i (c - V))`` with
    ``V = soft_{beta^-i}[a_-i] c``; and the Q backs up that V (eq. 50):
    ``q = r_i + gamma P V``. In reward units (the report's Q^i is ``beta^i q``) eq. 50's
    ``(beta^i / beta^-i) V^-i`` is ``beta^i V``, so the report's equation is consistent and, with
    the discount, a gamma-contraction for any signs of the temperatures (each soft aggregate is
    monotone and commutes with adding a constant); the fixed point is unique.

    **The reading chosen.** §1.3 says the agent and the opponent model are trained "by
    alternating", with the opponent model as the agent's next prior over a_-i. Alternating the
    agent's step (eq. 42 with ``rho`` in place of P_prior(a_-i | s)) and the opponent step (eq. 46)
    while eq. 46 keeps the *fixed* prior ``p_-i`` is exactly the value iteration of eq. 50 above:
    this is what is computed. The other reading -- eq. 46's prior replaced by the latest ``rho``
    too, i.e. rounds ``rho_{k+1} = pfp(model, beta, beta_opponent, prior_opponent=rho_k).opponent``
    -- is not a new fixed point: ``rho_k ~ p_-i exp(beta^-i sum_{m<k} c_m)``, so the opponent's
    regularisation fades and the rounds converge to the *unregularised-opponent* limit
    ``|beta_opponent| -> inf`` of this function (measured: within 0.02 after 10 rounds, 0 to 4
    decimals after 50, on the tug of war and the coordination game at beta = 2, |beta^-i| = 1;
    pinned in ``tests/test_pfp.py``). Run that loop to get it; it is not a separate function.

    **How it reconciles ROMMEO and Balancing-Q** (each pinned in ``tests/test_probabilistic.py``):

    - ``beta_opponent == beta``: it *is* ROMMEO (same operator, conditional policy, opponent model).
    - Priors independent of a_-i and ``beta_opponent == beta``: it is also Balancing-Q (same fixed
      point, same marginal policies: the nested soft aggregates commute when the temperatures are
      equal).
    - Otherwise it is Balancing-Q with the nesting *reversed*: its V is Balancing-Q's
      ``opponent_values`` nesting (``V^-i / beta^-i``, the right side of eq. 25), backed up. The
      opponent model has Balancing-Q's form (eq. 21/24); the agent's policy is ROMMEO's
      conditional one. The report calls this "almost the same as Balancing-Q"; the difference is
      exactly eq. 25's false equality: by the mixed-mean (Minkowski) inequality the fixed points
      are ordered, ``q_BalancingQ <= q_PFP`` when ``beta >= beta_opponent`` (equality iff equal).
    - Competitive (``beta > 0 > beta_opponent``): the opponent moves first and the agent answers
      having seen a_-i, so as beta -> inf, beta_opponent = -beta the fixed point tends to the
      *pure min-max* (upper) value ``min_{a_-i} max_{a_i} q`` of the Markov game: above the
      minimax value ``V*`` of :func:`mpg_envs.zerosum.shapley` wherever the stage games need
      mixing, as Balancing-Q's pure max-min is below it. Its marginal policies are not minimax
      policies either (the conditional policy is a best response to an action it is shown).
      Unlike Balancing-Q, the fixed point *is* the soft value of the policies it plays
      (:func:`pfp_soft_q`), for any signs.

    Args:
        model: A 2-agent model with gamma < 1 (the agent's reward ``R[agent]`` is the game's).
        beta: The agent's temperature beta^i, finite, |beta| >= :data:`BETA_MIN`.
        beta_opponent: The opponent's temperature beta^-i (same sign: it helps the agent;
            opposite sign: it works against the agent).
        mode: ``None`` (any signs), ``"cooperative"`` (both > 0) or ``"competitive"`` (``beta > 0 >
            beta_opponent``); a temperature of the wrong sign for the mode is refused.
        agent: Whose reward and conditional policy is "the agent" (0 or 1).
        prior: The agent's conditional prior ``P_prior(a_i | s, a_-i)``: None (uniform),
            (|A_i|,), (S, |A_i|) or (S, |A_-i|, |A_i|), rows (last axis) summing to 1.
        prior_opponent: ``P_prior(a_-i | s)``: None, (|A_-i|,) or (S, |A_-i|).
        tol, max_iter, q0: As in :func:`balancing_q`.

    Returns:
        The :class:`PfpResult`.

    Raises:
        ValueError / TypeError: The bad argument, named (N != 2, gamma = 1, a zero, non-finite or
            wrong-signed temperature, priors that are not distributions, bad tol/max_iter/q0).

    Example::

        >>> from mpg_envs import tugofwar_v0, zerosum
        >>> from baselines.probabilistic import balancing_q, pfp
        >>> model = tugofwar_v0.parallel_env().model()
        >>> kw = dict(beta=50.0, beta_opponent=-50.0, mode="competitive")
        >>> upper, lower = pfp(model, **kw).values, balancing_q(model, **kw).values
        >>> minimax = zerosum.shapley(model).values
        >>> bool((lower < minimax).all() and (minimax < upper).all())
        True
    """
    game = _game(model, agent, "pfp")
    op = _Pfp(game, beta, beta_opponent, prior, prior_opponent, mode)
    tol, max_iter = _check_iteration(tol, max_iter)
    start = None if q0 is None else game.check_q(q0, "q0")
    q, it, res, bound, conv, ratio = _iterate(game, op.operator, start, tol, max_iter, "pfp")
    cond, rho, marginal = op.parts(q)
    return PfpResult(
        policies=game.order(marginal, rho),
        q=game.to_model(q),
        values=op.value(q),
        iterations=it,
        residual=res,
        error_bound=bound,
        converged=conv,
        contraction=ratio,
        conditional=cond.transpose(0, 2, 1).copy(),
        opponent=rho,
        joint=game.to_model(cond * rho[:, None, :]),
        beta=op.beta,
        beta_opponent=op.beta_opp,
        agent=game.agent,
    )


# ---------------------------------------------------------------------------- soft policy evaluation
def _log_ratio(pol: np.ndarray, prior: np.ndarray, name: str) -> np.ndarray:
    """log(pol / prior) where pol > 0 (0 elsewhere); refuses pol > 0 where prior = 0 (infinite KL)."""
    bad = (pol > 0) & (prior <= 0)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} puts probability {float(pol[idx])!r} at index {idx} where its prior is 0: the KL "
            "regulariser is infinite there; give the prior positive mass on every action the policy uses"
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pol > 0, np.log(np.where(pol > 0, pol, 1.0) / np.where(prior > 0, prior, 1.0)), 0.0)


def _soft_evaluate(game: _Game, joint: np.ndarray, bonus: np.ndarray) -> np.ndarray:
    """Soft Q of a (possibly correlated) joint policy: q = r_i + gamma P V with
    V(s) = sum_a joint(s, a) (q(s, a) + bonus(s, a)); arrays on (S, A_i, A_-i) axes."""
    m = game.model
    S = m.n_states
    J = game.to_model(joint).reshape(S, -1)  # (S, A) model order
    A = J.shape[1]
    r = game.reward()
    r_pi = (joint * (r + bonus)).sum(axis=(1, 2))
    rows = np.repeat(np.arange(S), A)
    B = sp.csr_matrix((J.ravel(), (rows, np.arange(S * A))), shape=(S, S * A))
    P_pi = sp.csc_matrix(B @ m.P)
    values = spla.spsolve(sp.identity(S, format="csc") - m.gamma * P_pi, r_pi)
    return game.backup(np.atleast_1d(values))


def rommeo_soft_q(
    model: TabularModel,
    conditional: Any,
    opponent: Any,
    beta: float,
    *,
    agent: int = 0,
    prior: Any = None,
    prior_opponent: Any = None,
) -> np.ndarray:
    """ROMMEO's soft Q of a policy pair, ``Q^{pi, rho}`` of eq. 28 (in reward units, with the
    discount gamma^(t-n), not the report's gamma^(t-n+1)), shape (S, A_0, A_1).

    ``q = r_i + gamma P V`` with ``V(s) = E_{a_-i ~ rho, a_i ~ pi}[q - (log(pi / p_i) +
    log(rho / p_-i)) / beta]``, solved exactly (one sparse linear system). At ROMMEO's fixed point
    it equals the fixed point's q (App. A.3.2); the improvement steps of App. A.3.3-A.3.4 are
    checked against it in ``tests/test_probabilistic.py``.

    Args:
        model, beta, agent, prior, prior_opponent: As in :func:`rommeo`.
        conditional: ``pi(a_i | s, a_-i)``, shape (S, |A_-i|, |A_i|), rows summing to 1.
        opponent: ``rho(a_-i | s)``, shape (S, |A_-i|).

    Raises:
        ValueError: A policy that is not a distribution, or puts mass where its prior has none.
    """
    game = _game(model, agent, "rommeo")
    op = _Rommeo(game, beta, prior, prior_opponent)
    S, ki, kj = game.shape
    cond = _check_prior("conditional", conditional, S, ki, kj)
    cond = cond[:, :, None] if cond.ndim == 2 else cond.transpose(0, 2, 1)  # (S, A_i, A_-i | 1)
    cond = np.broadcast_to(cond, (S, ki, kj))
    rho = _check_prior("opponent", opponent, S, kj, None)
    bonus = (
        -(
            _log_ratio(cond, np.broadcast_to(op.p_cond, (S, ki, kj)), "conditional")
            + _log_ratio(rho, op.p_j, "opponent")[:, None, :]
        )
        / op.beta
    )
    return game.to_model(_soft_evaluate(game, cond * rho[:, None, :], bonus))


def balancing_q_soft_q(
    model: TabularModel,
    policies: Any,
    beta: float,
    beta_opponent: float,
    *,
    agent: int = 0,
    prior: Any = None,
    prior_opponent: Any = None,
) -> np.ndarray:
    """Balancing-Q's soft Q of a product policy under its objective (eq. 17), shape (S, A_0, A_1).

    ``q = r_i + gamma P V`` with ``V(s) = E_{pi x rho}[q - log(pi / p_i) / beta - log(rho / p_-i) /
    beta_opponent]`` (eq. 35 in reward units, discount gamma^(t-n)), solved exactly.

    Args:
        model, beta, beta_opponent, agent, prior, prior_opponent: As in :func:`balancing_q`.
        policies: The product policy in model agent order, ``[pi_0, pi_1]``.
    """
    game = _game(model, agent, "balancing_q")
    op = _Balancing(game, beta, beta_opponent, prior, prior_opponent, None)
    pol = exact.check_policy(model, policies)
    pi, rho = (pol[0], pol[1]) if game.agent == 0 else (pol[1], pol[0])
    bonus = (
        -_log_ratio(pi, op.p_i, "the agent's policy")[:, :, None] / op.beta
        - _log_ratio(rho, op.p_j, "the opponent's policy")[:, None, :] / op.beta_opp
    )
    return game.to_model(_soft_evaluate(game, pi[:, :, None] * rho[:, None, :], bonus))


def pfp_soft_q(
    model: TabularModel,
    conditional: Any,
    opponent: Any,
    beta: float,
    beta_opponent: float,
    *,
    agent: int = 0,
    prior: Any = None,
    prior_opponent: Any = None,
) -> np.ndarray:
    """Probabilistic fictitious play's soft Q of a policy pair, shape (S, A_0, A_1).

    ``q = r_i + gamma P V`` with ``V(s) = E_{a_-i ~ rho, a_i ~ pi}[q - log(pi / p_i) / beta -
    log(rho / p_-i) / beta_opponent]`` (eq. 49 in reward units), solved exactly. At :func:`pfp`'s
    fixed point it equals the fixed point's q, for any signs of the temperatures.

    Args:
        model, beta, beta_opponent, agent, prior, prior_opponent: As in :func:`pfp`.
        conditional: ``pi(a_i | s, a_-i)``, shape (S, |A_-i|, |A_i|), rows summing to 1.
        opponent: ``rho(a_-i | s)``, shape (S, |A_-i|).

    Raises:
        ValueError: A policy that is not a distribution, or puts mass where its prior has none.
    """
    game = _game(model, agent, "pfp")
    op = _Pfp(game, beta, beta_opponent, prior, prior_opponent, None)
    S, ki, kj = game.shape
    cond = _check_prior("conditional", conditional, S, ki, kj)
    cond = cond[:, :, None] if cond.ndim == 2 else cond.transpose(0, 2, 1)  # (S, A_i, A_-i | 1)
    cond = np.broadcast_to(cond, (S, ki, kj))
    rho = _check_prior("opponent", opponent, S, kj, None)
    bonus = (
        -_log_ratio(cond, np.broadcast_to(op.p_cond, (S, ki, kj)), "conditional") / op.beta
        - _log_ratio(rho, op.p_j, "opponent")[:, None, :] / op.beta_opp
    )
    return game.to_model(_soft_evaluate(game, cond * rho[:, None, :], bonus))
