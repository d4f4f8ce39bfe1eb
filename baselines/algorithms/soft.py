"""Report 002's exact soft value iteration as training algorithms: Balancing-Q, ROMMEO and
probabilistic fictitious play (PFP).

Each training iteration is one sweep ``q <- T q`` of the algorithm's soft Bellman operator
(:mod:`baselines.probabilistic`) on the joint soft Q of the two agents, shape (S, |A_0|, |A_1|),
starting from ``q = 0`` (so iteration 0 plays the priors and iteration k holds ``T^k 0``; the
fixed point functions :func:`~baselines.probabilistic.balancing_q` and
:func:`~baselines.probabilistic.rommeo` start from ``T 0 = r``). The policy the run tabulates,
evaluates (values, Nash gap, POA where the game has one) and checkpoints is the algorithm's
*marginal* product policy of the current ``q``; the state a checkpoint keeps is ``q`` itself, so a
resumed run equals an uninterrupted one bit for bit. Each evaluated iteration also logs the soft
value ``soft_value = mu . V_q`` (reward units; Balancing-Q: ``V^i / beta^i``) and the soft
Bellman residual ``soft_residual = max |T q - q|`` (``gamma / (1 - gamma)`` times it bounds the
distance of ``T q`` to the fixed point). ``train``'s L1 stop rule is refused: the marginal
policies can stand still while ``q`` moves (in the coordination game they are uniform at ``q = 0``
and at ``q = r``), so their L1 change is no convergence test; ``soft_residual`` is.

Everything is exact and deterministic: the seed and ``init`` do not matter. The model must have
two agents (an agent and its opponent, as the report writes them) and gamma < 1; the exact
estimator is the only one (these are not sampled algorithms). Priors are uniform; the Python API
takes others (``prior`` / ``prior_opponent``: nested lists, recorded in the run's config.json).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import numpy as np

from baselines.algorithms.base import Algorithm
from baselines.estimators import Estimate, Estimator, ExactEstimator
from baselines.policies.tabular import TabularPolicy, _entry
from baselines.probabilistic import _Balancing, _check_beta, _check_mode, _game, _Pfp, _Rommeo
from mpg_envs import _validate as V
from mpg_envs.core import Dynamics

__all__ = ["BalancingQ", "Rommeo", "Pfp", "SoftQPolicy", "SOFT_METRICS"]

#: The metrics every soft value-iteration run adds to its rows.
SOFT_METRICS = ("soft_value", "soft_residual")
_MODES = ("any", "cooperative", "competitive")
_BETA_HELP = "the agent's temperature beta^i (balancing_q: != 0; rommeo: > 0)"


class SoftQPolicy(TabularPolicy):
    """The marginal product policy of a joint soft Q (its only parameter, ``q``).

    Args:
        action_sizes: (|A_0|, |A_1|).
        n_rows: Model states S.

    Until an algorithm binds its operator (:meth:`bind`), the tables are uniform.
    """

    def __init__(self, action_sizes: tuple[int, ...], n_rows: int) -> None:
        self.obs_mode = "state"
        self.action_sizes = tuple(int(k) for k in action_sizes)
        self.q = np.zeros((int(n_rows), *self.action_sizes))
        self._policies = None  # q -> tables, set by bind()
        self._cache: tuple[np.ndarray, list[np.ndarray]] | None = None

    def bind(self, policies) -> None:
        """Set the map ``q (S, A_0, A_1) -> [pi_0, pi_1]`` the tables come from."""
        self._policies, self._cache = policies, None

    def tables(self) -> list[np.ndarray]:
        if self._cache is not None and self._cache[0] is self.q:
            return self._cache[1]
        if self._policies is None:
            tabs = [np.full((self.q.shape[0], k), 1.0 / k) for k in self.action_sizes]
        else:
            tabs = self._policies(self.q)
        self._cache = (self.q, tabs)
        return tabs

    def state_dict(self) -> dict[str, Any]:
        return {"q": self.q.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: a finite ``q`` of the current shape.

        Raises:
            ValueError: A missing entry, another shape, or a non-finite q.
        """
        q = V.real_array("q", _entry(state, "q"), what="a finite array")
        if q.shape != self.q.shape:
            raise ValueError(f"q must have shape {self.q.shape}, got shape {q.shape}")
        self.q, self._cache = q.copy(), None


def _check_prior_option(name: str, value: Any) -> Any:
    """None or JSON-serialisable nested lists (the run's config.json records them); the
    distribution itself is checked against the model when the run starts."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        raise V.ArgumentTypeError(
            f"{name} must be None (uniform) or nested lists of probabilities (a run's config.json records "
            f"it; pass array.tolist()), got a numpy array {V.show(value)}"
        )
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise V.ArgumentTypeError(
            f"{name} must be None (uniform) or nested lists of finite probabilities, got {V.show(value)}"
        ) from None
    if not isinstance(value, (list, tuple)):
        raise V.ArgumentTypeError(
            f"{name} must be None (uniform) or nested lists of probabilities, got {V.show(value)}"
        )
    return value


def _prior_field(who: str) -> Any:
    return dataclasses.field(
        default=None,
        metadata={"help": f"{who} prior (None: uniform; Python API only: nested lists)", "cli": False},
    )


@dataclasses.dataclass
class _SoftVI(Algorithm):
    """Shared machinery: the operator is bound to the model in :meth:`check`."""

    estimators: ClassVar[tuple[str, ...]] = ("exact",)
    policy_kind: ClassVar[str] = "soft_q"
    metric_fields: ClassVar[tuple[str, ...]] = SOFT_METRICS
    l1_stop: ClassVar[bool] = False  # the marginals can stand still while q moves

    def make_policy(self, dynamics: Dynamics, n_rows: int, rng, init, obs_mode) -> SoftQPolicy:
        sizes = tuple(dynamics.action_sizes)
        if len(sizes) != 2:
            raise ValueError(self._two_agents(len(sizes)))
        V.check_bytes(
            f"{self.name}'s joint soft Q tables ({n_rows:,} states x {sizes[0]:,} x {sizes[1]:,} actions)",
            8 * 8 * int(n_rows) * int(sizes[0]) * int(sizes[1]),
            advice="use a smaller game",
        )
        return SoftQPolicy(sizes, n_rows)

    def _two_agents(self, n: int) -> str:
        return (
            f"{self.name} supports exactly 2 agents (an agent and its opponent, as report 002 writes it), "
            f"got a game with N={n} agents: with more, the opponent's policy would be a distribution over "
            "the others' joint actions, not a product policy (use n_agents=2)"
        )

    def _op(self, game) -> Any:  # the _Balancing / _Rommeo operator object
        raise NotImplementedError

    def check(self, policy: SoftQPolicy, estimator: Estimator) -> None:
        if not isinstance(estimator, ExactEstimator):
            raise ValueError(
                f"{self.name} needs the exact estimator on the joint model, got {type(estimator).__name__}"
            )
        model = estimator.model
        if model.n_agents != 2:
            raise ValueError(self._two_agents(model.n_agents))
        game = _game(model, self.agent, self.name)  # gamma < 1, memory
        op = self._op(game)  # priors checked against the model here
        self._game_, self._opobj = game, op
        policy.bind(lambda q: self._policies(game.to_agent(q)))

    def _policies(self, q: np.ndarray) -> list[np.ndarray]:
        with np.errstate(over="ignore"):  # beta (q - max) -> -inf for a huge |beta|: exp gives its limit 0
            return self._opobj.policies(q)

    def _sweep(self, q: np.ndarray) -> np.ndarray:
        game = self._game_
        with np.errstate(over="ignore", invalid="ignore"):
            new = game.to_model(self._opobj.operator(game.to_agent(q)))
        if not np.isfinite(new).all():
            m = game.model
            raise ValueError(
                f"{self.name}'s soft Q overflowed: the rewards (max |r| = {float(np.abs(m.R).max())!r}) "
                f"divided by 1 - gamma = {1.0 - m.gamma!r} exceed the float range; rescale the rewards"
            )
        return np.ascontiguousarray(new)

    def update(self, policy: SoftQPolicy, estimator: Estimator) -> Estimate | None:
        """One exact sweep ``q <- T q`` (no estimate is computed: returns None)."""
        policy.q = self._sweep(policy.q)
        return None

    def metrics(self, policy: SoftQPolicy) -> dict[str, float]:
        """``soft_value`` (mu . V_q) and ``soft_residual`` (max |T q - q|) of the current q."""
        game, op = self._game_, self._opobj
        q = policy.q
        with np.errstate(over="ignore"):
            values = op.value(game.to_agent(q))
        residual = float(np.abs(self._sweep(q) - q).max())
        return {"soft_value": float(values @ game.model.mu), "soft_residual": residual}


@dataclasses.dataclass
class BalancingQ(_SoftVI):
    """Balancing-Q (report 002 §1.1.2): exact soft value iteration with temperatures beta^i
    (``beta``) and beta^-i (``beta_opponent``); same signs: the opponent helps the agent, opposite
    signs: it works against it (see :func:`baselines.probabilistic.balancing_q`)."""

    beta: float = dataclasses.field(default=1.0, metadata={"help": _BETA_HELP})
    beta_opponent: float = dataclasses.field(
        default=1.0, metadata={"help": "the opponent's temperature beta^-i != 0 (< 0: it minimises)"}
    )
    mode: str = dataclasses.field(
        default="any",
        metadata={
            "help": "any (any signs), cooperative (both > 0) or competitive (beta > 0 > beta_opponent)"
        },
    )
    agent: int = dataclasses.field(default=0, metadata={"help": "whose reward is the game's (0 or 1)"})
    prior: Any = _prior_field("the agent's")
    prior_opponent: Any = _prior_field("the opponent's")

    name: ClassVar[str] = "balancing_q"
    help: ClassVar[str] = (
        "Balancing-Q: one exact soft value-iteration sweep per iteration, temperatures beta^i, beta^-i "
        "(report 002; 2 agents)"
    )

    def __post_init__(self) -> None:
        self.beta = _check_beta("beta", self.beta)
        self.beta_opponent = _check_beta("beta_opponent", self.beta_opponent)
        if not (type(self.mode) is str and self.mode in _MODES):
            raise ValueError(f"mode must be one of {list(_MODES)}, got {V.show(self.mode)}")
        _check_mode(None if self.mode == "any" else self.mode, self.beta, self.beta_opponent)
        self.agent = V.integer("agent", self.agent, minimum=0, maximum=1, what="0 or 1")
        self.prior = _check_prior_option("prior", self.prior)
        self.prior_opponent = _check_prior_option("prior_opponent", self.prior_opponent)

    def _op(self, game) -> _Balancing:
        return _Balancing(game, self.beta, self.beta_opponent, self.prior, self.prior_opponent, None)


@dataclasses.dataclass
class Rommeo(_SoftVI):
    """ROMMEO (report 002 §1.1.1): exact soft value iteration with one temperature ``beta > 0``;
    the agent's conditional policy and its opponent model maximise the agent's reward together
    (see :func:`baselines.probabilistic.rommeo`). The tabulated policy is the marginal pair."""

    beta: float = dataclasses.field(default=1.0, metadata={"help": _BETA_HELP})
    agent: int = dataclasses.field(default=0, metadata={"help": "whose reward is the game's (0 or 1)"})
    prior: Any = _prior_field("the agent's (conditional)")
    prior_opponent: Any = _prior_field("the opponent's")

    name: ClassVar[str] = "rommeo"
    help: ClassVar[str] = (
        "ROMMEO: one exact soft value-iteration sweep per iteration, temperature beta > 0 (report 002; "
        "2 agents, cooperative)"
    )

    def __post_init__(self) -> None:
        b = _check_beta("beta", self.beta)
        if b < 0:
            raise ValueError(
                "beta must be > 0 for rommeo (its opponent model maximises the agent's reward; for an "
                "opponent that works against the agent use balancing_q with beta_opponent < 0), got "
                f"{self.beta!r}"
            )
        self.beta = b
        self.agent = V.integer("agent", self.agent, minimum=0, maximum=1, what="0 or 1")
        self.prior = _check_prior_option("prior", self.prior)
        self.prior_opponent = _check_prior_option("prior_opponent", self.prior_opponent)

    def _op(self, game) -> _Rommeo:
        return _Rommeo(game, self.beta, self.prior, self.prior_opponent)


@dataclasses.dataclass
class Pfp(BalancingQ):
    """Probabilistic fictitious play (report 002 §1.3, App. A.5): exact soft value iteration of
    eq. 50 -- the agent's conditional policy at temperature beta^i against an opponent model at
    beta^-i (see :func:`baselines.probabilistic.pfp`: ROMMEO when the temperatures are equal,
    Balancing-Q with eq. 25's nesting reversed otherwise). Options as :class:`BalancingQ`; the
    agent's prior may depend on the opponent's action (Python API)."""

    name: ClassVar[str] = "pfp"
    help: ClassVar[str] = (
        "probabilistic fictitious play: one exact soft value-iteration sweep per iteration, temperatures "
        "beta^i, beta^-i (report 002 §1.3; 2 agents)"
    )

    def _op(self, game) -> _Pfp:
        return _Pfp(game, self.beta, self.beta_opponent, self.prior, self.prior_opponent, None)
