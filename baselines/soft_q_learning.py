"""Sample-based Balancing-Q, ROMMEO and probabilistic fictitious play: tabular soft Q-learning
(report 002, §1.6.2) from episodes of the batched sampler.

§1.6.2 trains ``Q(s, a^i, a^-i)`` by regressing it on ``r + gamma V(s')`` (eqs. 63 and 66) with
``V`` the algorithm's soft value of Q (eq. 65: nested log-sum-exps). With discrete actions the
importance-sampled integrals of eqs. 62/65/67 are exact sums, so on a tabular model this is soft
Q-learning with the exact soft aggregate of :mod:`baselines.probabilistic`
(:func:`~baselines.probabilistic.balancing_q_operator`'s V for Balancing-Q, ROMMEO's, or
probabilistic fictitious play's): a stochastic approximation of the exact operator, whose fixed
point it converges to. The SVGD / actor parts of §1.6.2 are for continuous actions and are not
needed (the policies are the Gibbs policies of Q, computed exactly).

**One iteration.** Roll out ``episodes`` episodes of ``horizon`` steps at once with
:class:`baselines.sampler.BatchSampler` (the env's own dynamics) under the behaviour policy
``(1 - epsilon) pi_q + epsilon * uniform`` (the algorithm's current marginal product policy,
mixed for exploration), each episode starting in a uniformly drawn state (``starts="uniform"``,
exploring starts, so every state is learnt) or from mu (``starts="mu"``). Every transition
``(s, a, r_i, s')`` of the batch (terminal steps excluded) gives the target
``y = r_i + gamma V_q(s')`` with ``V_q`` from the Q *before* the batch; targets are averaged per
joint (s, a) over the batch (``numpy.bincount``, no Python loop over transitions), and each visited
entry moves ``q(s, a) <- q(s, a) + alpha (mean y - q(s, a))``.

**Step size.** ``alpha = (1 + (1 - gamma) (n(s, a) - 1)) ** -omega``, where ``n(s, a)`` counts
the batches in which (s, a) was visited (so the first visit sets q to the batch mean) and
``omega`` in (1/2, 1] (default 0.8; ``omega = 1`` is the "rescaled linear" step of Q-learning
analyses). The Robbins-Monro conditions ``sum alpha = inf``, ``sum alpha^2 < inf`` hold and the
operator is a gamma-contraction, so q converges to the exact fixed point almost surely
(asynchronous stochastic approximation, Tsitsiklis 1994) given every (s, a) is visited infinitely
often -- which exploring starts and ``epsilon > 0`` (or soft policies with full-support priors)
ensure. The plain ``n ** -omega`` converges far more slowly at gamma = 0.95 (error 8-19 after 200
batches where this schedule reaches 0.7-3.3, coordination and tug of war, beta = 2).

**Reproducibility.** All randomness comes from ``rng`` (a Generator or an int seed): the same seed
gives the same q on the same machine.

**Measured accuracy** (``tests/test_soft_q_learning.py``): after 800 batches of 32 episodes x 20
steps (defaults otherwise; ~1 s each), ``max |q - q*|`` over 20 seeds is 0.17-0.23 on average (at
most 0.36) on the coordination game N = 2 (``|q*|`` ~ 35-39) and 0.03-0.06 (at most 0.17) on the
tug of war with K = 3 (``|q*|`` ~ 17-24), for Balancing-Q, ROMMEO and PFP; the tests allow twice
the measured maximum.

Example::

    >>> from mpg_envs import coordination_v0
    >>> from baselines import probabilistic as prob
    >>> from baselines.soft_q_learning import sampled_balancing_q
    >>> env = coordination_v0.parallel_env(n_agents=2)
    >>> exact_q = prob.balancing_q(env.model(), 2.0, 2.0).q
    >>> sol = sampled_balancing_q(env, 2.0, 2.0, iterations=60, rng=0, target=exact_q)
    >>> sol.q.shape, sol.transitions
    ((4, 2, 2), 38400)
    >>> bool(sol.errors[-1] < 0.25 * sol.errors[0])
    True
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from baselines import probabilistic as prob
from baselines.sampler import BatchSampler
from mpg_envs import _validate as V
from mpg_envs._repr import concise_repr
from mpg_envs.core import MPGParallelEnv

__all__ = [
    "ALGORITHMS",
    "STARTS",
    "SoftQLearningResult",
    "sampled_balancing_q",
    "sampled_pfp",
    "sampled_rommeo",
    "soft_q_learning",
]

#: The algorithms whose soft value the learner backs up.
ALGORITHMS = ("balancing_q", "rommeo", "pfp")
#: Where episodes start: a uniformly drawn state (exploring starts) or the env's mu.
STARTS = ("uniform", "mu")


@dataclass(frozen=True, repr=False)
class SoftQLearningResult:
    """The learnt soft Q and its policies.

    Attributes:
        algo: ``"balancing_q"``, ``"rommeo"`` or ``"pfp"``.
        q: The learnt joint soft Q in reward units, model agent order, shape (S, A_0, A_1).
        policies: The algorithm's marginal product policy of ``q`` (model agent order).
        values: The algorithm's soft value of ``q``, shape (S,).
        iterations: Batches used.
        transitions: Transitions learnt from (terminal steps excluded).
        visits: Batches in which each joint (s, a) was visited, shape (S, A_0, A_1).
        errors: ``max |q - target|`` after each batch (only with ``target``; else None).
        converged: ``errors[-1] <= tol`` (only with ``target`` and ``tol``; else None).
        params: The algorithm's temperatures and the learner's settings.
    """

    algo: str
    q: np.ndarray
    policies: list[np.ndarray]
    values: np.ndarray
    iterations: int
    transitions: int
    visits: np.ndarray
    errors: np.ndarray | None
    converged: bool | None
    params: dict[str, Any]

    def __repr__(self) -> str:
        return concise_repr(
            self,
            algo=self.algo,
            iterations=self.iterations,
            transitions=self.transitions,
            final_error=None if self.errors is None else float(self.errors[-1]),
            converged=self.converged,
            values=self.values,
        )


def _unwrap_env(env: Any) -> MPGParallelEnv:
    base = getattr(env, "unwrapped", env)
    if not isinstance(base, MPGParallelEnv):
        raise V.ArgumentTypeError(
            "env must be an mpg_envs environment (e.g. coordination_v0.parallel_env(n_agents=2)), "
            f"got {V.show(env)}"
        )
    return base


def soft_q_learning(
    env: Any,
    algo: str,
    *,
    beta: float,
    beta_opponent: float | None = None,
    mode: str | None = None,
    agent: int = 0,
    prior: Any = None,
    prior_opponent: Any = None,
    iterations: int = 200,
    episodes: int = 32,
    horizon: int = 20,
    omega: float = 0.8,
    epsilon: float = 0.1,
    starts: str = "uniform",
    q0: Any = None,
    rng: np.random.Generator | int | None = None,
    target: Any = None,
    tol: float | None = None,
) -> SoftQLearningResult:
    """Tabular soft Q-learning of Balancing-Q, ROMMEO or probabilistic fictitious play (module
    docstring) from batched episodes of ``env``'s dynamics.

    Args:
        env: A 2-agent mpg_envs environment (its exact model's gamma, rewards and the algorithm's
            argument checks are used; episodes come from its dynamics).
        algo: One of :data:`ALGORITHMS`.
        beta, beta_opponent, mode, agent, prior, prior_opponent: The algorithm's arguments, as in
            :func:`baselines.probabilistic.balancing_q` / ``rommeo`` / ``pfp`` (ROMMEO takes no
            ``beta_opponent`` nor ``mode``).
        iterations: Batches (>= 1).
        episodes: Episodes per batch (>= 1), sampled at once.
        horizon: Steps per episode (>= 1). Every step is a bootstrapped transition, so the horizon
            adds no truncation bias.
        omega: Step-size exponent in (0.5, 1]: ``alpha = n(s, a) ** -omega``.
        epsilon: Exploration: the weight of the uniform policy in the behaviour policy, in [0, 1].
        starts: ``"uniform"`` (exploring starts) or ``"mu"``.
        q0: Starting joint Q in model order, (S, A_0, A_1) or (S, A); default zeros. Terminal
            states (absorbing, zero reward) are set to 0, their value at every fixed point.
        rng: A Generator, an int seed or None (fresh entropy): the only randomness.
        target: Optional joint Q to measure ``max |q - target|`` after every batch (e.g. the exact
            fixed point), shape as ``q0``.
        tol: With ``target``: stop as soon as ``max |q - target| <= tol`` (> 0).

    Returns:
        The :class:`SoftQLearningResult`.

    Raises:
        ValueError / TypeError: The bad argument, named -- the algorithm's own (N != 2,
            temperatures, priors, mode), sizes, ``omega``, ``epsilon``, ``starts``, ``q0``,
            ``target``, ``tol`` without ``target``; a soft Q that overflows (rewards too large);
            TooLargeError: batches over the memory limit.

    Warns:
        RuntimeWarning: Some non-terminal joint (s, a) was never visited (its q is q0's: not
            learnt), e.g. with ``starts="mu"`` and unreachable states or ``epsilon = 0``.
    """
    base = _unwrap_env(env)
    algo = V.one_of("algo", algo, ALGORITHMS)
    model = base.model()
    game = prob._game(model, agent, algo)
    if algo == "rommeo":
        if beta_opponent is not None or mode is not None:
            raise ValueError(
                "rommeo has one temperature and no mode (its opponent model maximises the agent's "
                f"reward): got beta_opponent={beta_opponent!r}, mode={mode!r}; pass None"
            )
        op = prob._Rommeo(game, beta, prior, prior_opponent)
    else:
        if beta_opponent is None:
            raise V.ArgumentTypeError(f"{algo} needs beta_opponent (a finite non-zero number), got None")
        cls = prob._Balancing if algo == "balancing_q" else prob._Pfp
        op = cls(game, beta, beta_opponent, prior, prior_opponent, mode)
    B = V.positive_int("episodes", episodes)
    T = V.positive_int("horizon", horizon)
    K = V.positive_int("iterations", iterations)
    omega = V.real("omega", omega, low=0.5, high=1.0, low_open=True, what="a number in (0.5, 1]")
    epsilon = V.probability("epsilon", epsilon)
    starts = V.one_of("starts", starts, STARTS)
    gen = V.generator(rng)
    S, ki, kj = game.shape
    A = ki * kj
    q = np.zeros((S, ki, kj)) if q0 is None else game.check_q(q0, "q0").copy()
    terminal = np.asarray(model.terminal, bool)
    q[terminal] = 0.0  # absorbing, zero-reward: their soft Q is 0 at every fixed point
    ref = None if target is None else game.check_q(target, "target")
    if tol is not None:
        if ref is None:
            raise ValueError(f"tol={tol!r} needs a target to measure the error against; pass target=")
        tol = V.real("tol", tol, low=0.0, low_open=True, what="a finite number > 0")
    V.check_bytes(
        f"soft Q-learning batches of (episodes, horizon) = ({B:,}, {T:,}) transitions"
        + ("" if ref is None else f" and the error history of {K:,} batches"),
        B * T * 8 * 12 + (0 if ref is None else 8 * K),
        advice="sample fewer or shorter episodes, or fewer iterations",
    )
    sampler = BatchSampler(base.dynamics, gen)
    sizes = model.action_sizes
    uniform = [np.full((S, k), 1.0 / k) for k in sizes]
    gamma = model.gamma
    visits = np.zeros(S * A, np.int64)
    errors: list[float] = []
    transitions, it = 0, 0
    while it < K:
        it += 1
        pols = [(1.0 - epsilon) * p + epsilon * u for p, u in zip(op.policies(q), uniform)]
        start = gen.integers(S, size=B) if starts == "uniform" else None
        ro = sampler.rollout(pols, B, T, start=start)
        alive = ro.alive
        s = ro.states[:, :T][alive]
        s_next = ro.states[:, 1:][alive]
        a = ro.actions[alive]  # (M, 2) model order
        own, other = (a[:, 0], a[:, 1]) if game.agent == 0 else (a[:, 1], a[:, 0])
        idx = (s * ki + own) * kj + other  # flat index on the agent's (S, A_i, A_-i) axes
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below
            y = ro.rewards[..., game.agent][alive] + gamma * op.value(q)[s_next]
            sums = np.bincount(idx, weights=y, minlength=S * A)
            counts = np.bincount(idx, minlength=S * A)
            seen = counts > 0
            visits[seen] += 1
            flat = q.reshape(-1)
            alpha = (1.0 + (1.0 - gamma) * (visits[seen] - 1.0)) ** -omega
            flat[seen] += alpha * (sums[seen] / counts[seen] - flat[seen])
        if not np.isfinite(flat[seen]).all():
            raise ValueError(
                f"{algo}'s sampled soft Q overflowed in batch {it}: the rewards (max |r| = "
                f"{float(np.abs(model.R).max())!r}) divided by 1 - gamma = {1.0 - gamma!r} exceed the float "
                "range; rescale the rewards"
            )
        transitions += int(idx.size)
        if ref is not None:
            errors.append(float(np.abs(q - ref).max()))
            if tol is not None and errors[-1] <= tol:
                break
    missed = (visits.reshape(S, A) == 0) & ~terminal[:, None]
    if missed.any():
        s_bad, a_bad = (int(x[0]) for x in np.nonzero(missed))
        warnings.warn(
            f"{algo}: {int(missed.sum())} joint (state, action) entries were never visited in {it} batches "
            f"(e.g. state {s_bad}, joint action {a_bad}); their q is still q0's. Use starts='uniform', "
            "epsilon > 0, or more episodes",
            RuntimeWarning,
            stacklevel=2,
        )
    return SoftQLearningResult(
        algo=algo,
        q=game.to_model(q),
        policies=op.policies(q),
        values=op.value(q),
        iterations=it,
        transitions=transitions,
        visits=game.to_model(visits.reshape(S, ki, kj)),
        errors=None if ref is None else np.asarray(errors),
        converged=None if tol is None else bool(errors[-1] <= tol),
        params=dict(
            beta=op.beta,
            beta_opponent=getattr(op, "beta_opp", None),
            agent=game.agent,
            episodes=B,
            horizon=T,
            omega=omega,
            epsilon=epsilon,
            starts=starts,
        ),
    )


def sampled_balancing_q(env: Any, beta: float, beta_opponent: float, **kwargs: Any) -> SoftQLearningResult:
    """Sample-based Balancing-Q: :func:`soft_q_learning` with ``algo="balancing_q"``."""
    return soft_q_learning(env, "balancing_q", beta=beta, beta_opponent=beta_opponent, **kwargs)


def sampled_rommeo(env: Any, beta: float, **kwargs: Any) -> SoftQLearningResult:
    """Sample-based ROMMEO: :func:`soft_q_learning` with ``algo="rommeo"``."""
    return soft_q_learning(env, "rommeo", beta=beta, **kwargs)


def sampled_pfp(env: Any, beta: float, beta_opponent: float, **kwargs: Any) -> SoftQLearningResult:
    """Sample-based probabilistic fictitious play: :func:`soft_q_learning` with ``algo="pfp"``."""
    return soft_q_learning(env, "pfp", beta=beta, beta_opponent=beta_opponent, **kwargs)
