"""Decentralized consensus policy gradient (paper 004, Algorithm 1) for tabular and neural policies.

N agents, one per task of a multi-task GridWorld, each keep their own parameters ``theta_i`` of one
shared policy -- tabular logits (S, A) of ``pi(a | cell)`` (§5.1), or a network on what the agent
sees of its task (``policy="mlp"``, §5.2; :mod:`baselines.consensus.policies`) -- and exchange them
only with their neighbours on a communication graph (:mod:`baselines.consensus.graphs`). Every
iteration k each agent

1. sends ``theta_i^k`` to its neighbours and receives theirs;
2. computes ``g_i^k``, the gradient of its local regularised objective ``L_i^lambda(theta_i^k;
   mu_i) = V_i(mu_i) - lambda RE(pi)`` (eqs. 6-8) from its own task only: **exact** (the task's
   model) or **montecarlo** (REINFORCE from ``episodes`` rollouts of ``horizon`` steps in its own
   task, the paper's §5.1), or for networks **a2c** / **ppo** (local critics, never shared);
3. updates ``theta_i^{k+1} = sum_j W_ij theta_j^k + alpha_k g_i^k`` (eq. 9), with ``alpha_k = alpha
   / (k + 1)^alpha_decay`` -- or the mixed point plus an Adam step of g_i (``optimizer="adam"``, the
   paper's §5.2), or plus PPO's epochs.

``gradient_at="mixed"`` evaluates ``g_i`` at the mixed point ``sum_j W_ij theta_j^k`` instead
(combine-then-adapt; with ``W = 11^T / N`` its average iterate is exactly centralised gradient
ascent on ``(1/N) sum_i L_i^lambda``). ``communicate=False`` gives the single-agent baselines SA-i:
the same training with ``W = I``.

The algorithm is written once over the *local* agents of a backend: the single-process backend
holds all N agents' logits stacked (N, S, A) and mixes them with one product by W; the
``torch.distributed`` backend (:mod:`baselines.consensus.distributed`) holds one agent per rank and
exchanges with graph neighbours only. Agent i draws from its own generator, seeded by
``(seed, i)``, in the same order in both, so both give the same iterates to round-off.

Runs are folders (``config.json``, ``metrics.csv``, ``checkpoints/``, ``final.npz``) resumable
after a kill at any moment: every agent checkpoints its own logits and generator, and a resumed
run restarts from the latest iteration that every agent saved.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baselines.consensus.graphs import Topology
from baselines.consensus.objective import (
    TaskSet,
    outcome_flops,
    regularizer_gradient,
    relative_entropy,
    softmax_logits,
)
from baselines.runs import _RESTART as _TRAIN_RESTART
from baselines.runs import (
    TMP_SUFFIX,
    DamagedRunError,
    RunFolder,
    atomic_savez,
    changed_entries,
    config_record,
    run_name,
)
from baselines.sampler import returns_to_go
from mpg_envs import _validate as V
from mpg_envs._repr import Raw, concise_repr
from mpg_envs.exact import blas_scope

__all__ = [
    "DCPGConfig",
    "DCPGResult",
    "SingleProcess",
    "LocalAgents",
    "AgentStates",
    "run_dcpg",
    "load_dcpg_config",
    "cli_layout",
    "prepare",
    "check_sizes",
    "montecarlo_gradients",
    "agent_generator",
    "describe_end",
    "diverged_at",
    "GRADIENTS",
]

GRADIENTS = ("exact", "montecarlo", "a2c", "ppo")
#: The largest ``ppo_epochs`` (passes over one batch of episodes per iteration; PPO uses 3-10).
MAX_PPO_EPOCHS = 1000
#: The largest ``iters`` (far beyond any run that ends; bounds the evaluation schedule).
MAX_ITERS = 10**12
#: The largest ``success_horizon``: the success rates cost log2(H) products of (S, S) matrices
#: beyond a few S steps, and ``survived`` counts up to H steps exactly in float64 below 2^53.
MAX_SUCCESS_HORIZON = 10**12
#: Floating-point operations one evaluation's success rates may take (``success_horizon`` and
#: the grid's cells set it); above, the run is refused before it starts.
MAX_SUCCESS_FLOPS = 10**11
POLICIES = ("tabular", "mlp")
OPTIMIZERS = ("sgd", "adam")
CONFIG_KIND = "dcpg"


@dataclass
class DCPGConfig:
    """Everything that defines a DCPG run (the CLI's ``dcpg`` options)."""

    layout: str | list[str] = field(
        default="no_conflict",
        metadata={"help": "MultiTaskGridWorld layout name, or one grid string per task"},
    )
    slip: float = field(
        default=0.0, metadata={"help": "probability that a random action replaces the chosen one"}
    )
    gamma: float = field(default=0.95, metadata={"help": "discount of every task, in (0, 1)"})
    chain_p: float = field(default=0.75, metadata={"help": "p of the chain_slip layout"})
    graph: str = field(
        default="ring",
        metadata={"help": "communication graph: ring (paper 004), path, star, complete, random"},
    )
    graph_p: float = field(default=0.5, metadata={"help": "edge probability of the random graph"})
    weights: str = field(
        default="lazy_metropolis",
        metadata={"help": "mixing weights: lazy_metropolis (paper 004), metropolis_hastings, max_degree"},
    )
    communicate: bool = field(
        default=True, metadata={"help": "false: no communication (W = I), the single-agent baselines SA-i"}
    )
    lam: float = field(default=0.0, metadata={"help": "relative-entropy weight lambda >= 0 (eqs. 6-8)"})
    alpha: float = field(default=1.0, metadata={"help": "step size alpha > 0"})
    alpha_decay: float = field(
        default=0.0, metadata={"help": "alpha_k = alpha / (k + 1)^alpha_decay (0: constant)"}
    )
    gradient: str = field(
        default="montecarlo",
        metadata={
            "help": "local gradient: montecarlo (REINFORCE, every-visit Monte Carlo returns; paper 004 "
            "§5.1), exact, or for policy=mlp a2c / ppo (§5.2)"
        },
    )
    policy: str = field(
        default="tabular",
        metadata={"help": "tabular (softmax logits per cell, §5.1) or mlp (a network on task features)"},
    )
    features: str = field(
        default="local",
        metadata={"help": "mlp input: local (egocentric window + position) or onehot (the cell)"},
    )
    view: int = field(default=2, metadata={"help": "mlp local features: window radius r, (2r+1)^2 cells"})
    hidden: str = field(default="64,64", metadata={"help": "mlp hidden widths (tanh), e.g. 64,64"})
    optimizer: str = field(
        default="sgd",
        metadata={
            "help": "sgd: theta_i = mixed + alpha g_i (eq. 9); adam: mixed + an Adam step of g_i with "
            "step size alpha (paper 004 §5.2: 1e-4)"
        },
    )
    critic_lr: float = field(default=1e-3, metadata={"help": "a2c/ppo: the local critic's Adam step size"})
    ppo_epochs: int = field(default=4, metadata={"help": "ppo: optimisation epochs per batch of episodes"})
    clip: float = field(default=0.2, metadata={"help": "ppo: clipping epsilon (paper 004: 0.2)"})
    gradient_at: str = field(
        default="own",
        metadata={
            "help": "own: g_i at theta_i^k (eq. 9); mixed: at sum_j W_ij theta_j^k (combine-then-adapt)"
        },
    )
    episodes: int = field(default=1, metadata={"help": "montecarlo: episodes per agent per iteration"})
    horizon: int = field(default=100, metadata={"help": "montecarlo: steps per episode"})
    train_start: str = field(
        default="task",
        metadata={
            "help": "mu_i: task (each task's own start rho_i) or uniform (every free, non-terminal cell)"
        },
    )
    init: str = field(
        default="zeros", metadata={"help": "initial logits, equal for all agents: zeros (uniform) or normal"}
    )
    iters: int = field(default=1000, metadata={"help": "iterations (paper 004: 1000 training episodes)"})
    seed: int = field(default=0, metadata={"help": "seed of every agent's stream (seed, agent)"})
    eval_every: int = field(default=50, metadata={"help": "exact metrics every k iterations"})
    eval_log: bool = field(default=True, metadata={"help": "also at 1, 2, 3, 5, 7, 10, 15, ... and the last"})
    success_horizon: int = field(default=100, metadata={"help": "steps of the exact success rate"})
    checkpoint_every: int = field(default=100, metadata={"help": "checkpoint every k iterations"})
    out: str = field(default="runs", metadata={"help": "directory that receives run folders"})

    def validate(self) -> None:
        """Check every field; ``ValueError`` naming the bad one."""
        self.normalized()

    def normalized(self) -> DCPGConfig:
        """A checked copy whose numbers are Python ints and floats and whose ``out`` is a str (what
        config.json holds); ``ValueError`` naming the first bad field."""
        v: dict[str, Any] = {}
        for name in ("slip", "chain_p"):
            v[name] = V.probability(name, getattr(self, name))
        v["graph_p"] = V.real("graph_p", self.graph_p, low=0.0, high=1.0, low_open=True)
        v["gamma"] = V.discount("gamma", self.gamma, allow_one=False)
        for name, options in (("gradient", GRADIENTS), ("policy", POLICIES), ("optimizer", OPTIMIZERS)):
            V.one_of(name, getattr(self, name), options)
        for name in ("graph", "weights", "hidden", "features"):
            if not isinstance(getattr(self, name), str):
                raise V.ArgumentTypeError(f"{name} must be a str, got {V.show(getattr(self, name))}")
        if self.policy == "mlp":
            from baselines.consensus.policies import FEATURES
            from baselines.policies.neural import parse_hidden

            V.one_of("features", self.features, FEATURES)
            parse_hidden(self.hidden, 1)
        elif self.gradient in ("a2c", "ppo"):
            raise ValueError(f"gradient={self.gradient!r} trains a critic network: use policy='mlp'")
        V.one_of("gradient_at", self.gradient_at, ("own", "mixed"))
        V.one_of("train_start", self.train_start, ("task", "uniform"))
        V.one_of("init", self.init, ("zeros", "normal"))
        v["communicate"] = V.flag("communicate", self.communicate)
        v["eval_log"] = V.flag("eval_log", self.eval_log)
        for name in ("episodes", "horizon", "eval_every", "checkpoint_every", "view"):
            v[name] = V.positive_int(name, getattr(self, name))
        v["ppo_epochs"] = V.positive_int("ppo_epochs", self.ppo_epochs, maximum=MAX_PPO_EPOCHS)
        v["iters"] = V.integer("iters", self.iters, minimum=1, maximum=MAX_ITERS)
        v["seed"] = V.integer("seed", self.seed, minimum=0)
        v["success_horizon"] = V.positive_int(
            "success_horizon", self.success_horizon, maximum=MAX_SUCCESS_HORIZON
        )
        if not isinstance(self.out, (str, Path)):
            raise V.ArgumentTypeError(f"out must be a folder path (str), got {V.show(self.out)}")
        v["out"] = str(self.out)
        v["lam"] = V.real("lam", self.lam, low=0.0)
        for name in ("alpha", "critic_lr", "clip"):
            v[name] = V.real(name, getattr(self, name), low=0.0, low_open=True)
        v["alpha_decay"] = V.real("alpha_decay", self.alpha_decay, low=0.0)
        if not isinstance(self.layout, str):
            v["layout"] = list(self.layout) if isinstance(self.layout, (list, tuple)) else self.layout
        return dataclasses.replace(self, **v)


_GRID_CHARS = frozenset(".SGW#/\n\r\t ")


def cli_layout(values: Sequence[str]) -> str | list[str]:
    """The ``layout`` of the CLI's ``--layout`` values: one value is a layout name unless it is
    written in grid characters only (``.SGW#``, rows split by ``/``: ``S.G`` is a one-task grid);
    several values are one grid string per task."""
    values = list(values)
    if len(values) == 1 and not set(values[0]) <= _GRID_CHARS:
        return values[0]
    return values


def load_config(data: Any, source: str | Path, cls: type, kind: str, label: str) -> Any:
    """A config dataclass ``cls`` from its JSON form (config.json, named ``source`` in errors),
    whose ``kind`` must be ``kind``; unknown and missing keys are refused
    (:class:`~baselines.runs.DamagedRunError`, saying it is not a ``label`` run config)."""
    if not isinstance(data, dict):
        raise DamagedRunError(f"{source}: not a run config (a JSON object); start a new run")
    known = {f.name for f in dataclasses.fields(cls)}
    body = {k: v for k, v in data.items() if k != "kind"}
    extra, missing = sorted(set(body) - known), sorted(known - set(body))
    if data.get("kind") != kind or extra or missing:
        raise DamagedRunError(
            f"{source}: not a {label} run config (kind {data.get('kind')!r}, unknown keys {extra}, missing "
            f"keys {missing}); restore the file or start a new run"
        )
    return cls(**body)


def load_dcpg_config(data: dict[str, Any], source: str | Path = "config.json") -> DCPGConfig:
    """A config from its JSON form (``config.json``, named ``source`` in errors); unknown and
    missing keys are refused (:class:`~baselines.runs.DamagedRunError`)."""
    return load_config(data, source, DCPGConfig, CONFIG_KIND, "DCPG")


@dataclass
class DCPGResult:
    """What a finished run returns.

    Attributes:
        run_dir: The run folder.
        thetas: Every agent's final parameters, shape (N, S, A) tabular or (N, d) mlp (on the main
            process; None elsewhere).
        metrics: Rows of metrics.csv.
        policies: The averaged parameters' policy in every task, shape (N, S, A) (main process).
    """

    run_dir: Path
    thetas: np.ndarray | None
    metrics: list[dict[str, float]]
    policies: np.ndarray | None = None

    @property
    def policy(self) -> np.ndarray:
        """The averaged agents' shared policy softmax(mean_i theta_i), shape (S, A) (tabular runs)."""
        if self.policies is None or not np.allclose(self.policies, self.policies[:1]):
            raise ValueError("this run's policy differs between tasks (policy='mlp'): use .policies")
        return self.policies[0]

    def describe_end(self) -> str:
        """How the run ended, for the console (see :func:`describe_end`)."""
        return describe_end(self.metrics)

    def __repr__(self) -> str:
        last = self.metrics[-1] if self.metrics else {}
        return concise_repr(
            self,
            run_dir=str(self.run_dir),
            end=describe_end(self.metrics),
            objective=last.get("objective"),
            consensus_error=last.get("consensus_error"),
            thetas=self.thetas,
            policies=self.policies,
            metrics=Raw(f"{len(self.metrics)} rows"),
        )


def diverged_at(metrics: Sequence[dict[str, float]]) -> int | None:
    """The first evaluated iteration whose objective or consensus error is not finite (the
    parameters overflowed: the step size is too large), or None."""
    for row in metrics:
        if not (np.isfinite(row["objective"]) and np.isfinite(row["consensus_error"])):
            return int(row["iteration"])
    return None


def describe_end(metrics: Sequence[dict[str, float]]) -> str:
    """``"ran k iterations"``, or, when the parameters overflowed, ``"diverged: ..."`` with the
    first evaluated iteration whose metrics are not finite (DCPG has no stop rule: such a run
    continues to ``iters`` without a usable policy)."""
    if not metrics:
        return "no iterations"
    k = diverged_at(metrics)
    end = int(metrics[-1]["iteration"])
    if k is None:
        return f"ran {end} iterations"
    return (
        f"diverged: the metrics are not finite from iteration {k} on (the parameters overflowed; "
        f"lower --alpha); ran {end} iterations"
    )


def agent_generator(seed: int, agent: int) -> np.random.Generator:
    """Agent ``agent``'s own stream, the same in every backend."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(agent),)))


def _alpha(cfg: DCPGConfig, k: int) -> float:
    if not cfg.alpha_decay:
        return cfg.alpha
    try:
        return cfg.alpha / float(k + 1) ** float(cfg.alpha_decay)  # floats: an int power is exact
    except OverflowError:  # (k + 1)^alpha_decay beyond float range: the step is 0 to double precision
        return 0.0


# ------------------------------------------------------------------------------ local gradients
def sample_episodes(
    dynamics,
    pi: np.ndarray,
    rngs: Sequence[np.random.Generator],
    mu: np.ndarray,
    episodes: int,
    horizon: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Episodes of every local agent in its own task under tabulated policies.

    Agent j runs ``episodes`` episodes of at most ``horizon`` steps in task j of ``dynamics``
    (stepped by the env's own :meth:`MultiTaskDynamics.step`), drawing its start cells, action
    uniforms and transition noise from ``rngs[j]`` in that order (backend-independent).

    Args:
        dynamics: A ``MultiTaskDynamics`` of the local agents' tasks (n tasks).
        pi: Each agent's policy in its task, shape (n, S, A).
        rngs: n generators.
        mu: Start distributions, shape (n, S).
        episodes: B >= 1.
        horizon: T >= 1.

    Returns:
        ``states``, ``actions`` (T', B, n) int, ``rewards`` (T', B, n), ``alive`` (T', B, n) bool
        (the step was taken before the episode ended); T' <= T stops when every episode has ended.
    """
    n, S, A = pi.shape
    B, T = int(episodes), int(horizon)
    cdf = np.cumsum(pi[:, :, :-1], axis=2)  # (n, S, A - 1)
    K = dynamics.next_cell.shape[3]
    ncdf = np.full((n, max(K - 1, 1)), np.inf)
    for j, p in enumerate(dynamics.noise_probs):
        ncdf[j, : len(p) - 1] = np.cumsum(p[:-1])
    starts = np.empty((B, n), np.int64)
    u_act = np.empty((T, B, n))
    u_noise = np.empty((T, B, n))
    for j, rng in enumerate(rngs):  # each agent's draws, in a fixed order (backend-independent)
        starts[:, j] = rng.choice(S, size=B, p=mu[j])
        u_act[:, :, j] = rng.random((B, T)).T
        u_noise[:, :, j] = rng.random((B, T)).T
    agents = np.arange(n)
    term = dynamics.cell_terminal.ravel()  # (n * S,): row j * S + s
    cdf_rows = cdf.reshape(n * S, A - 1)
    noisy = K > 1
    zero_noise = np.zeros((B, n), np.int64)
    states = np.empty((T, B, n), np.int64)
    actions = np.empty((T, B, n), np.int64)
    rewards = np.zeros((T, B, n))
    alive = np.zeros((T, B, n), bool)
    s = starts
    offset = agents * S
    steps = T
    for t in range(T):  # T vectorised steps of every local agent's episodes
        row = s + offset
        live = ~term[row]
        if not live.any():
            steps = t
            break
        a = (u_act[t][..., None] >= cdf_rows[row]).sum(axis=2)
        k = (u_noise[t][..., None] >= ncdf[None]).sum(axis=2) if noisy else zero_noise
        nxt, r = dynamics.step(s, a, k)
        states[t], actions[t], rewards[t], alive[t] = s, a, r, live
        s = nxt
    return states[:steps], actions[:steps], rewards[:steps], alive[:steps]


def discounted_weights(rewards: np.ndarray, alive: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Every-visit Monte Carlo returns ``G_t`` and the policy-gradient weights ``gamma^t G_t``.

    Args:
        rewards: Shape (T, B, n).
        alive: Shape (T, B, n) bool.
        gamma: Discount.

    Returns:
        ``G`` (T, B, n) (the discounted return from t, truncated at the horizon) and
        ``w = gamma^t G_t`` where alive, else 0, (T, B, n).
    """
    steps = len(rewards)
    G = returns_to_go(rewards.transpose(1, 0, 2), gamma).transpose(1, 0, 2)  # (T, B, n)
    w = np.where(alive, gamma ** np.arange(steps)[:, None, None] * G, 0.0)
    return G, w


def montecarlo_gradients(
    dynamics,
    thetas: np.ndarray,
    rngs: Sequence[np.random.Generator],
    mu: np.ndarray,
    episodes: int,
    horizon: int,
    gamma: float,
) -> np.ndarray:
    """REINFORCE estimates of ``dV_i(mu_i)/dtheta_i`` for tabular softmax logits, one per agent.

    Episodes from :func:`sample_episodes`; then
    ``g_j = 1/B sum_b sum_t gamma^t G_t (e_{a_t} - pi_j(.|s_t))`` in row ``s_t``, with ``G_t`` the
    discounted return from t (truncated at the horizon).

    Args:
        dynamics: A ``MultiTaskDynamics`` of the local agents' tasks (n tasks).
        thetas: Logits, shape (n, S, A).
        rngs: n generators.
        mu: Start distributions, shape (n, S).
        episodes: B >= 1.
        horizon: T >= 1.
        gamma: Discount.

    Returns:
        Gradient estimates, shape (n, S, A).
    """
    n, S, A = thetas.shape
    pi = softmax_logits(thetas)
    states, actions, rewards, alive = sample_episodes(dynamics, pi, rngs, mu, episodes, horizon)
    _, w = discounted_weights(rewards, alive, gamma)
    agents = np.arange(n)
    flat_sa = (agents * S * A + states * A + actions).ravel()
    flat_s = (agents * S + states).ravel()
    g_sa = np.bincount(flat_sa, weights=w.ravel(), minlength=n * S * A).reshape(n, S, A)
    w_s = np.bincount(flat_s, weights=w.ravel(), minlength=n * S).reshape(n, S)
    return (g_sa - w_s[..., None] * pi) / int(episodes)


class Adam:
    """Adam on stacked parameters (n, ...): elementwise, hence n independent optimisers (ascent)."""

    def __init__(self, shape: tuple[int, ...], beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.m, self.v = np.zeros(shape), np.zeros(shape)
        self.t = np.zeros(shape[0], np.int64)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def step(self, g: np.ndarray, lr: float, row: int | None = None) -> np.ndarray:
        """The ascent step for gradients g (n, ...), or with ``row=k`` for agent k's alone (g of
        one row's shape; the other rows are left as they are)."""
        b1, b2 = self.beta1, self.beta2
        k = slice(None) if row is None else row
        self.m[k] = b1 * self.m[k] + (1 - b1) * g
        self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
        self.t[k] += 1
        t = self.t.reshape((-1,) + (1,) * (g.ndim - 1)) if row is None else int(self.t[row])
        return lr * (self.m[k] / (1 - b1**t)) / (np.sqrt(self.v[k] / (1 - b2**t)) + self.eps)

    def state(self, k: int, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}m": self.m[k], f"{prefix}v": self.v[k], f"{prefix}t": np.array(self.t[k])}

    def set_state(self, k: int, st: dict[str, np.ndarray], prefix: str) -> None:
        self.m[k], self.v[k], self.t[k] = st[f"{prefix}m"], st[f"{prefix}v"], int(st[f"{prefix}t"])


class AgentStates:
    """Checkpoint state of a process's agents: ``rngs``, the optional ``adam`` and critic
    (``critic``, ``critic_params``, ``critic_adam``), and what :meth:`_extra_state` adds; every
    agent's file also records the config it was written under (checked on resume)."""

    cfg: Any
    rngs: list
    adam: Any = None
    critic: Any = None

    def _extra_state(self, k: int) -> dict[str, np.ndarray]:
        return {}

    def _set_extra_state(self, k: int, st: dict[str, np.ndarray]) -> None:
        pass

    def states(self) -> list[dict[str, np.ndarray]]:
        """Every local agent's state besides its parameters (generator, optimisers, critic), with
        the config record the run was written under."""
        out = []
        record = np.array(json.dumps(_config_record(self.cfg), sort_keys=True))
        for k, r in enumerate(self.rngs):
            st = {
                "rng": np.array(json.dumps(r.bit_generator.state)),
                "config": record,
                **self._extra_state(k),
            }
            if self.adam is not None:
                st.update(self.adam.state(k, "adam_"))
            if self.critic is not None:
                st["critic"] = self.critic_params[k]
                st.update(self.critic_adam.state(k, "critic_adam_"))
            out.append(st)
        return out

    def set_states(self, states: Sequence[dict[str, np.ndarray]]) -> None:
        for k, (r, st) in enumerate(zip(self.rngs, states)):
            r.bit_generator.state = json.loads(str(st["rng"]))
            self._set_extra_state(k, st)
            if self.adam is not None:
                self.adam.set_state(k, st, "adam_")
            if self.critic is not None:
                self.critic_params[k] = st["critic"]
                self.critic_adam.set_state(k, st, "critic_adam_")


class LocalAgents(AgentStates):
    """The agents a process holds: their tasks, generators, optimisers and local updates.

    Args:
        cfg: The run's config.
        tasks: The tasks of the whole problem (``MultiTaskGridWorldEnv.tasks``).
        taskset: Their exact models (:class:`TaskSet`).
        agents: Indices of the local agents.
        pclass: The policy class (default: :func:`~baselines.consensus.policies.make_policy_class`).
    """

    def __init__(self, cfg: DCPGConfig, tasks, taskset: TaskSet, agents: Sequence[int], pclass=None) -> None:
        from baselines.consensus.policies import make_policy_class
        from mpg_envs.gridworld.dynamics import MultiTaskDynamics

        pclass = make_policy_class(cfg, tasks) if pclass is None else pclass
        self.cfg = cfg
        self.agents = np.asarray(agents, dtype=np.int64)
        self.taskset = taskset
        self.pclass = pclass
        self.dynamics = MultiTaskDynamics([tasks[i] for i in self.agents])
        self.rngs = [agent_generator(cfg.seed, i) for i in self.agents]
        n = len(self.agents)
        if cfg.train_start == "task":
            self.mu = taskset.rho[self.agents]
        else:
            free = np.stack([~(t.terminal | t.walls) for t in (tasks[i] for i in self.agents)]).astype(float)
            self.mu = free / free.sum(axis=1, keepdims=True)
        self.adam = Adam((n, *pclass.shape)) if cfg.optimizer == "adam" else None
        self.critic = None
        if cfg.gradient in ("a2c", "ppo"):
            from baselines.consensus.policies import MLP
            from baselines.policies.neural import parse_hidden

            self.critic = MLP(pclass.features.numpy(), 1, parse_hidden(cfg.hidden, taskset.n_states))
            init = self.critic.initial("normal", np.random.SeedSequence(cfg.seed).generate_state(1)[0])
            self.critic_params = np.repeat(init[None], n, axis=0)
            self.critic_adam = Adam(self.critic_params.shape)

    def initial(self) -> np.ndarray:
        """The parameters every agent starts from (one agent's, shape ``pclass.shape``)."""
        return self.pclass.initial(self.cfg.init, self.cfg.seed)

    # ---------------------------------------------------------------- updates
    def update(self, thetas: np.ndarray, mixed: np.ndarray, alpha: float) -> np.ndarray:
        """One iteration of eq. (9): ``mixed + step(g_i)`` with g_i at ``thetas`` (or ``mixed``)."""
        return mixed + self.step(mixed if self.cfg.gradient_at == "mixed" else thetas, alpha)

    def step(self, at: np.ndarray, alpha: float) -> np.ndarray:
        """The local step from parameters ``at``: ``alpha g_i`` (SGD), an Adam step, or PPO's epochs."""
        if self.cfg.gradient == "ppo":
            return self._ppo(at, alpha)
        return self._step(self.gradients(at), alpha)

    def _step(self, g: np.ndarray, alpha: float) -> np.ndarray:
        return alpha * g if self.adam is None else self.adam.step(g, alpha)

    def gradients(self, thetas: np.ndarray) -> np.ndarray:
        """g_i for the local agents' parameters (n, ...): local gradient plus the regulariser."""
        cfg, pc = self.cfg, self.pclass
        if cfg.gradient == "exact":
            G, _ = self.taskset.gradient(pc.own_logits(thetas, self.agents), self.agents, cfg.lam, self.mu)
            return pc.own_vjp(thetas, self.agents, G)
        if cfg.policy == "tabular":  # closed-form score function: no autograd
            g = montecarlo_gradients(
                self.dynamics, thetas, self.rngs, self.mu, cfg.episodes, cfg.horizon, self.taskset.gamma
            )
            return g + regularizer_gradient(softmax_logits(thetas), cfg.lam) if cfg.lam else g
        batch = self._batch(thetas)
        if self.critic is not None:
            batch["adv"] = batch["G"] - self._critic_fit(batch)
        else:
            batch["adv"] = batch["G"]
        return self._surrogate_grad(thetas, batch, None) + self._reg(thetas)

    def _reg(self, thetas: np.ndarray) -> np.ndarray:
        if not self.cfg.lam:
            return 0.0
        pc = self.pclass
        pi = softmax_logits(pc.own_logits(thetas, self.agents))
        return pc.own_vjp(thetas, self.agents, regularizer_gradient(pi, self.cfg.lam))

    def _batch(self, thetas: np.ndarray) -> dict:
        """Episodes of every agent as torch tensors over its visits (n, M = T' B)."""
        torch, pc = self.pclass.torch, self.pclass
        pi = softmax_logits(pc.own_logits(thetas, self.agents))
        states, actions, rewards, alive = sample_episodes(
            self.dynamics, pi, self.rngs, self.mu, self.cfg.episodes, self.cfg.horizon
        )
        G, _ = discounted_weights(rewards, alive, self.taskset.gamma)
        n = len(self.agents)
        disc = np.broadcast_to(self.taskset.gamma ** np.arange(len(states))[:, None, None], states.shape)
        flat = lambda x: np.ascontiguousarray(np.moveaxis(x, 2, 0).reshape(n, -1))  # noqa: E731
        st = flat(states)
        x = pc.own_inputs(self.agents)  # (n, S, F)
        obs = torch.gather(x, 1, torch.as_tensor(st)[..., None].expand(-1, -1, x.shape[-1]))
        act = torch.as_tensor(flat(actions))
        weight = torch.as_tensor(flat(np.where(alive, disc, 0.0))) / self.cfg.episodes
        out = {
            "obs": obs,
            "act": act,
            "w": weight,
            "G": torch.as_tensor(flat(G)),
            "live": torch.as_tensor(flat(alive)),
        }
        with torch.no_grad():
            out["logp_old"] = self._logp(torch.as_tensor(thetas), out)
        return out

    def _logp(self, theta, batch):
        logits = self.pclass.forward(theta, batch["obs"])
        return self.pclass.torch.log_softmax(logits, dim=-1).gather(2, batch["act"][..., None])[..., 0]

    def _surrogate_grad(self, thetas: np.ndarray, batch: dict, clip: float | None) -> np.ndarray:
        """Gradient of ``sum_visits w (adv * log pi)`` (REINFORCE / A2C) or of PPO's clipped ratio."""
        torch = self.pclass.torch
        th = torch.as_tensor(thetas).clone().requires_grad_(True)
        logp = self._logp(th, batch)
        adv = batch["adv"]
        if clip is None:
            obj = (batch["w"] * adv * logp).sum()
        else:
            ratio = torch.exp(logp - batch["logp_old"])
            surr = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - clip, 1 + clip) * adv)
            obj = (batch["w"] * surr).sum()
        (g,) = torch.autograd.grad(obj, th)
        return g.numpy()

    def _critic_fit(self, batch: dict):
        """One Adam step of every local critic on the squared error to G; returns V(o) before it."""
        torch = self.pclass.torch
        cp = torch.as_tensor(self.critic_params).clone().requires_grad_(True)
        v = self.critic.forward(cp, batch["obs"])[..., 0]
        live = batch["live"].to(v.dtype)
        loss = (live * (v - batch["G"]) ** 2).sum(dim=1) / live.sum(dim=1).clamp(min=1.0)
        (g,) = torch.autograd.grad(loss.sum(), cp)
        self.critic_params = self.critic_params + self.critic_adam.step(-g.numpy(), self.cfg.critic_lr)
        return v.detach()

    def _ppo(self, thetas: np.ndarray, alpha: float) -> np.ndarray:
        """PPO's local step: ``ppo_epochs`` steps on one batch of episodes; returns their sum."""
        batch = self._batch(thetas)
        batch["adv"] = batch["G"] - self._critic_fit(batch)
        delta = np.zeros_like(thetas)
        for e in range(self.cfg.ppo_epochs):
            cur = thetas + delta
            g = self._surrogate_grad(cur, batch, self.cfg.clip) + self._reg(cur)
            delta = delta + self._step(g, alpha)
            if e + 1 < self.cfg.ppo_epochs:
                self._critic_fit(batch)
        return delta

    # ---------------------------------------------------------------- checkpoints
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        """The arrays of one agent's checkpoint and their shapes (``theta`` and :meth:`states`'s)."""
        spec = {"theta": tuple(self.pclass.shape), "rng": ()}
        if self.adam is not None:
            spec.update(adam_m=tuple(self.pclass.shape), adam_v=tuple(self.pclass.shape), adam_t=())
        if self.critic is not None:
            dc = (self.critic_params.shape[1],)
            spec.update(critic=dc, critic_adam_m=dc, critic_adam_v=dc, critic_adam_t=())
        return spec


# ------------------------------------------------------------------------------ backends
class SingleProcess:
    """All N agents in one process: logits stacked (N, S, A), the consensus step one product by W."""

    rank, world_size, is_main = 0, 1, True

    def __init__(self, topology: Topology, communicate: bool = True) -> None:
        self.n_agents = topology.graph.n
        self.agents = np.arange(self.n_agents)
        self.W = topology.weights if communicate else np.eye(self.n_agents)

    def mix(self, thetas: np.ndarray) -> np.ndarray:
        """sum_j W_ij theta_j for every agent: (N, S, A) -> (N, S, A)."""
        return (self.W @ thetas.reshape(self.n_agents, -1)).reshape(thetas.shape)

    def start_mix(self, thetas: np.ndarray) -> Any:
        """Begin a consensus step (a distributed backend starts its exchange here)."""
        return thetas

    def finish_mix(self, pending: Any) -> np.ndarray:
        """End it: the mixed parameters."""
        return self.mix(pending)

    def gather(self, thetas: np.ndarray) -> np.ndarray | None:
        return thetas

    def broadcast(self, obj: Any) -> Any:
        return obj

    def common_iteration(self, available: set[int]) -> int | None:
        return max(available) if available else None

    def barrier(self) -> None:
        pass


# ------------------------------------------------------------------------------ metrics
def metric_fields(n_tasks: int) -> list[str]:
    """The columns of metrics.csv for N tasks."""
    return [
        "iteration",
        "objective",
        "objective_reg",
        "consensus_error",
        "stationarity",
        *[f"objective_agent_{j}" for j in range(n_tasks)],
        *[f"value_task_{i}" for i in range(n_tasks)],
        *[f"success_task_{i}" for i in range(n_tasks)],
        *[f"survived_task_{i}" for i in range(n_tasks)],
        "alpha",
        "wall_time",
    ]


def evaluate(taskset: TaskSet, thetas: np.ndarray, lam: float, horizon: int, pclass=None) -> dict[str, float]:
    """Exact metrics of all agents' parameters (N, ...) (one batched solve per quantity).

    ``objective``: sum_i V_i(rho_i) of the averaged parameters' policy; ``objective_reg``: L^lambda
    there; ``consensus_error``: max_j ||theta_j - mean||; ``stationarity``: max_j ||1/N sum_i
    grad V_i(theta_j)|| (Theorem 1's quantity, w.r.t. the parameters); per agent j, the objective
    of its own policy; per task i, the averaged policy's value, success rate and steps survived.
    ``pclass``: the policy class (default tabular logits (N, S, A)). Every metric is NaN when
    the parameters' logits are not finite (they overflowed: the run diverged).
    """
    from baselines.consensus.policies import Tabular

    pclass = Tabular(taskset.n_states, taskset.n_actions) if pclass is None else pclass
    N = len(thetas)
    tasks = np.arange(N)
    mean = thetas.mean(axis=0)
    mean_logits = pclass.logits(mean[None], tasks)[0]  # (N, S, A): in every task
    logits = pclass.logits(thetas, tasks)  # (N, N, S, A): every agent's policy in every task
    if not (np.isfinite(mean_logits).all() and np.isfinite(logits).all()):
        return dict.fromkeys(metric_fields(N)[1:-2], float("nan"))
    mean_pi = softmax_logits(mean_logits)
    vals = taskset.values_at_start(mean_pi, tasks)
    success, survived = taskset.outcomes(mean_pi, tasks, horizon)
    # the gradients give V_i(rho_i) of each (agent, task) pair as well
    G, own_vals = taskset.gradient(logits.reshape(N * N, *logits.shape[2:]), np.tile(tasks, N))
    grads = pclass.vjp(thetas, tasks, G.reshape(logits.shape)) / N
    station = np.linalg.norm(grads.reshape(N, -1), axis=1).max()
    own = own_vals.reshape(N, N).sum(axis=1)
    obj = float(vals.sum())
    row = {
        "objective": obj,
        "objective_reg": float(obj - lam * relative_entropy(mean_pi).sum()) if lam else obj,
        "consensus_error": float(np.linalg.norm((thetas - mean).reshape(N, -1), axis=1).max()),
        "stationarity": float(station),
    }
    row.update({f"objective_agent_{j}": float(own[j]) for j in range(N)})
    row.update({f"value_task_{i}": float(vals[i]) for i in range(N)})
    row.update({f"success_task_{i}": float(success[i]) for i in range(N)})
    row.update({f"survived_task_{i}": float(survived[i]) for i in range(N)})
    return row


# ------------------------------------------------------------------------------ the run
def _make_env(cfg: DCPGConfig):
    from mpg_envs.gridworld.env import MultiTaskGridWorldEnv

    return MultiTaskGridWorldEnv(layout=cfg.layout, slip=cfg.slip, chain_p=cfg.chain_p, gamma=cfg.gamma)


def _run_name(cfg: DCPGConfig) -> str:
    kind = "dcpg" if cfg.communicate else "sa"
    algo = f"{kind}-mlp-{cfg.gradient}" if cfg.policy == "mlp" else f"{kind}-{cfg.gradient}"
    return run_name("mpg/MultiTaskGridWorld-v0", algo, cfg.seed, cfg.layout)


def _initial(cfg: DCPGConfig, S: int, A: int) -> np.ndarray:
    """The tabular initial logits (S, A) (kept for callers of the tabular case)."""
    from baselines.consensus.policies import Tabular

    return Tabular(S, A).initial(cfg.init, cfg.seed)


def _ckpt_dir(folder: RunFolder) -> Path:
    return folder.path / "checkpoints"


_CKPT_NAME = re.compile(r"agent(\d{4,})_(\d{8,})\.npz")
_RESTART_DCPG = "delete metrics.csv and the checkpoints folder to restart the run from iteration 0"


def _saved_iterations(folder: RunFolder, agent: int) -> set[int]:
    d = _ckpt_dir(folder)
    if not d.exists():
        return set()
    if not d.is_dir():
        raise DamagedRunError(f"{d}: not a folder (the agents' checkpoints live there); {_RESTART_DCPG}")
    out = set()
    for p in d.glob(f"agent{agent:04d}_*.npz"):
        m = _CKPT_NAME.fullmatch(p.name)
        if m is None or int(m.group(1)) != agent:
            raise DamagedRunError(
                f"{p}: not a checkpoint name (agentAAAA_IIIIIIII.npz); remove the file to resume"
            )
        out.add(int(m.group(2)))
    return out


def _save_agents(folder: RunFolder, it: int, agents, thetas, states) -> None:
    d = _ckpt_dir(folder)
    try:
        d.mkdir(exist_ok=True)
    except FileExistsError:
        raise DamagedRunError(
            f"{d}: not a folder (the agents' checkpoints live there); {_RESTART_DCPG}"
        ) from None
    for i, th, st in zip(agents, thetas, states):
        atomic_savez(d / f"agent{int(i):04d}_{it:08d}.npz", theta=th, **st)


def _prune(folder: RunFolder, keep: int, agents) -> None:
    for i in agents:
        for it in _saved_iterations(folder, int(i)):
            if it < keep:
                (_ckpt_dir(folder) / f"agent{int(i):04d}_{it:08d}.npz").unlink(missing_ok=True)


def _config_record(cfg: Any) -> dict[str, Any]:
    """The config fields that decide a run's iterates and metrics, as JSON reads them back (every
    field but ``iters``, which an extension changes, and ``out``, where the folder was made)."""
    return config_record(dataclasses.asdict(cfg), ("iters", "out"))


def _check_record(folder: RunFolder, p: Path, record: Any, cfg: DCPGConfig) -> None:
    """Refuse a checkpoint ``p`` whose config record (a JSON string array, or None for checkpoints
    written before the record existed) differs from ``cfg``."""
    if record is None:
        return
    current = _config_record(cfg)
    try:
        saved = json.loads(str(record))
    except ValueError:
        saved = None
    if not isinstance(saved, dict):
        raise DamagedRunError(
            f"{p}: the checkpoint's config record is not a JSON object; delete it to resume from an "
            "earlier checkpoint (or restart the run)"
        )
    changed = changed_entries(saved, current)
    if changed:
        diffs = "; ".join(
            f"{k} is {current.get(k)!r} but {saved.get(k)!r} in the checkpoints" for k in changed
        )
        raise DamagedRunError(
            f"{folder.config_path}: differs from the config the run's checkpoints were written with "
            f"({diffs}); restore config.json (only --iters may change, to extend the run) or start a new run"
        )


def _check_any_checkpoint(folder: RunFolder, cfg: DCPGConfig) -> None:
    """Before a resume picks its start: the newest readable checkpoint of *any* agent must have been
    written under ``cfg`` (an edit that changes the number of tasks would otherwise leave no common
    iteration, and the run would silently restart from iteration 0 over its own files)."""
    d = _ckpt_dir(folder)
    if not d.is_dir():
        return
    for p in sorted(d.glob("agent*.npz"), key=lambda q: q.name[-12:], reverse=True):
        try:
            with np.load(p, allow_pickle=False) as z:
                record = np.array(z["config"]) if "config" in z.files else None
        except Exception:  # unreadable files are reported by _load_agent, which names what is wrong
            continue
        _check_record(folder, p, record, cfg)
        return


def _load_agent(
    folder: RunFolder, agent: int, it: int, cfg: DCPGConfig, spec: dict[str, tuple[int, ...]]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Agent ``agent``'s checkpoint at ``it``, checked against the run's config and the arrays
    ``spec`` (name -> shape) the agent's state needs.

    Raises:
        DamagedRunError: The file cannot be read, lacks an array, holds one of the wrong shape or
            a broken random state, or was written under another config.json.
    """
    p = _ckpt_dir(folder) / f"agent{agent:04d}_{it:08d}.npz"
    earlier = "delete it to resume from an earlier checkpoint (or restart the run)"
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: np.array(z[k]) for k in z.files}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise DamagedRunError(f"{p}: cannot read the checkpoint ({err}); {earlier}") from None
    missing = [k for k in dict.fromkeys(("theta", *spec)) if k not in arrays]
    if missing:
        arrays_ = "array" if len(missing) == 1 else "arrays"
        raise DamagedRunError(f"{p}: the checkpoint has no {', '.join(missing)} {arrays_}; {earlier}")
    _check_record(folder, p, arrays.pop("config", None), cfg)
    for k, shape in {"theta": spec.pop("theta"), **spec}.items():
        a = arrays[k]
        kind = "U" if k == "rng" else ("i" if k.endswith("_t") else "f")
        if a.shape != tuple(shape) or a.dtype.kind != kind or (kind == "f" and not np.isfinite(a).all()):
            what = "not finite" if a.shape == tuple(shape) and a.dtype.kind == kind else (
                f"shape {a.shape} and dtype {a.dtype}, expected {tuple(shape)} ({kind!r} kind)"
            )  # fmt: skip
            raise DamagedRunError(f"{p}: the checkpoint's {k} array has {what}; {earlier}")
    try:
        np.random.PCG64().state = json.loads(str(arrays["rng"]))
    except (ValueError, TypeError, KeyError) as err:
        raise DamagedRunError(f"{p}: the checkpoint's random state is broken ({err}); {earlier}") from None
    return arrays.pop("theta"), arrays


@dataclass
class _Setup:
    cfg: DCPGConfig
    env: Any
    taskset: TaskSet
    topology: Topology


def check_sizes(
    cfg: DCPGConfig, n_tasks: int, n_states: int, n_actions: int, n_local: int | None = None
) -> None:
    """Refuse, before anything is allocated, a run whose arrays would exceed the memory limit
    (:func:`mpg_envs._validate.check_bytes`) or whose success rates would cost too much.

    Args:
        cfg: The (validated) config.
        n_tasks: N tasks (= agents).
        n_states: S cells of a task.
        n_actions: A.
        n_local: Agents held by this process (default N; 1 per rank under torch.distributed).

    Raises:
        TooLargeError: A size over the limit, naming it and the option that sets it.
        ValueError: A success horizon whose evaluation would take over ``MAX_SUCCESS_FLOPS``.
    """
    N, S, A = int(n_tasks), int(n_states), int(n_actions)
    n = N if n_local is None else int(n_local)
    H = int(cfg.success_horizon)
    flops = N * outcome_flops(S, H)
    if flops > MAX_SUCCESS_FLOPS:
        raise ValueError(
            f"success_horizon={H!r} would take ~{flops:.1e} floating-point operations per evaluation "
            f"({N} tasks of {S} cells), over the limit of {MAX_SUCCESS_FLOPS:.0e}; use a smaller "
            "success_horizon"
        )
    # every evaluation: the N^2 (agent, task) pairs' dense transitions (K, S, A, S) and solves
    V.check_bytes(
        f"the exact evaluation of {N} agents' policies in {N} tasks ({N * N:,} dense (S, A, S) = "
        f"({S:,}, {A}, {S:,}) transition tables)",
        N * N * S * S * (A + 4) * 8,
        advice="use fewer tasks or smaller grids",
    )
    n_evals = min(cfg.iters // cfg.eval_every, cfg.iters) + 100
    V.check_bytes(
        f"the schedule and rows of {n_evals:,} evaluations (iters={cfg.iters!r}, "
        f"eval_every={cfg.eval_every!r})",
        n_evals * (200 + 4 * N * 100),
        advice="use a larger eval_every",
    )
    width = 0  # per-visit floats of a network's forward and backward pass
    if cfg.policy == "mlp":
        from baselines.policies.neural import parse_hidden

        side = 2 * int(cfg.view) + 1
        F = S if cfg.features == "onehot" else 3 * side * side + 2
        window = 0 if cfg.features == "onehot" else S * side * side * 8 * 8
        V.check_bytes(
            f"the network's inputs of shape (N, S, F) = ({N}, {S:,}, {F:,}) (features={cfg.features!r}, "
            f"view={cfg.view!r})",
            N * S * F * 8 + window,
            advice="use a smaller view",
        )
        hidden = parse_hidden(cfg.hidden, S)
        sizes = [F, *hidden, A]
        d = sum(fi * fo + fo for fi, fo in zip(sizes[:-1], sizes[1:]))
        copies = 8 + (6 if cfg.gradient in ("a2c", "ppo") else 0)  # thetas, mixed, Adam, critic, ...
        V.check_bytes(
            f"{N} agents' network parameters of shape (N, d) = ({N}, {d:,}) (hidden={cfg.hidden!r})",
            copies * N * d * 8,
            advice="use smaller hidden widths",
        )
        width = F + 3 * (sum(hidden) + A)
        V.check_bytes(
            f"the network's activations on every cell of every task, {N * N * S:,} rows of "
            f"{sum(hidden) + A:,} units (hidden={cfg.hidden!r})",
            3 * N * N * S * (sum(hidden) + A) * 8,
            advice="use smaller hidden widths",
        )
    if cfg.gradient != "exact":
        T, B = int(cfg.horizon), int(cfg.episodes)
        V.check_bytes(
            f"the sampled episodes of shape (T, B, n) = ({T:,}, {B:,}, {n})",
            T * B * n * (96 + 16 * width),
            advice="use fewer episodes or a shorter horizon",
        )


def prepare(cfg: DCPGConfig, n_local: int | None = None) -> _Setup:
    """Validate ``cfg`` and build what a run needs before it writes anything: the env, its exact
    task models and the communication topology (every size checked first, see :func:`check_sizes`).

    Raises:
        ValueError: A bad option, a size over the memory limit, a bad graph.
    """
    if not isinstance(cfg, DCPGConfig):
        raise V.ArgumentTypeError(f"cfg must be a DCPGConfig, got {V.show(cfg)}")
    cfg = cfg.normalized()
    env = _make_env(cfg)
    N = len(env.tasks)
    check_sizes(cfg, N, env.tasks[0].n_cells, env.tasks[0].n_actions, n_local)
    taskset = TaskSet.from_env(env)
    topology = Topology.make(cfg.graph, N, weights=cfg.weights, seed=cfg.seed, p=cfg.graph_p)
    return _Setup(cfg, env, taskset, topology)


def _check_grid_config(data: Any, source: Path) -> DCPGConfig:
    cfg = load_dcpg_config(data, source).normalized()
    _make_env(cfg)  # the layout
    return cfg


def resume_config(folder: RunFolder, iters: Any, load=_check_grid_config, max_iters: int = MAX_ITERS) -> Any:
    """The config a resume runs: the folder's own (``load(data, path)`` reads and checks it),
    extended to ``iters`` if given (refusing a finished run without ``iters``, a shorter ``iters``
    and a damaged config.json)."""
    data = folder.read_config()
    try:
        cfg = load(data, folder.config_path)
    except DamagedRunError:
        raise
    except ValueError as err:
        raise DamagedRunError(f"{folder.config_path}: {err}; restore it or start a new run") from None
    if iters is not None:
        if not V.is_integer(iters) or not cfg.iters <= int(iters) <= max_iters:
            raise ValueError(
                f"iters must be an integer >= the run's iters ({cfg.iters}) to extend it, got {V.show(iters)}"
            )
        return dataclasses.replace(cfg, iters=int(iters))
    if folder.finished:
        try:
            with np.load(folder.final_path, allow_pickle=False) as z:
                z.files  # noqa: B018 - reading the index checks the file
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise DamagedRunError(
                f"{folder.final_path}: cannot read the final results ({err}); delete final.npz and "
                "resume the run to write it again"
            ) from None
        raise ValueError(
            f"resume: the run in {str(folder.path)!r} is finished (final.npz exists); pass iters to extend it"
        )
    return cfg


def run_dcpg(
    cfg: DCPGConfig | None = None,
    *,
    backend: Any = None,
    resume: str | Path | None = None,
    iters: int | None = None,
    progress: bool = False,
    stop_after: int | None = None,
    plot: bool = False,
) -> DCPGResult:
    """Train with DCPG (or SA-i with ``communicate=False``) and write a run folder.

    The process that writes the run's files (the only one, or rank 0 under torch.distributed)
    holds the folder's lock (:meth:`RunFolder.lock`) while the run goes: a second writer of the
    same folder is refused with :class:`~baselines.runs.RunInUseError`.

    Args:
        cfg: The config (ignored with ``resume``: the folder's own is used).
        backend: ``"single"`` (default) or ``"dist"`` (one ``torch.distributed`` rank per task,
            under ``torchrun``), built from the config's graph; or a backend object
            (:class:`SingleProcess`, :class:`~baselines.consensus.distributed.DistributedBackend`).
        resume: A run folder to continue from its latest complete checkpoint.
        iters: With ``resume``, extend the run to this many iterations (>= its current ``iters``);
            a finished run is resumed only so.
        progress: Show a progress bar (main process only).
        stop_after: Return after this many updates without finishing (tests: a simulated kill).
        plot: Also draw ``metrics.png`` (objective, consensus error, success rates) and
            ``policy.png`` (the averaged policy's most likely path in every task) with matplotlib.

    Returns:
        The :class:`DCPGResult`.

    Raises:
        ValueError: A bad option or size (before any folder is made); the updates diverged (the
            parameters or metrics are not finite: the error names the iteration, and the folder
            keeps the iterations before); a finished run resumed without ``iters``.
        DamagedRunError: A file of the resumed folder is damaged or does not match config.json.
        RunInUseError: Another process is writing the folder.

    Example:
        >>> from baselines.consensus import DCPGConfig, run_dcpg
        >>> res = run_dcpg(DCPGConfig(layout="no_conflict", gradient="exact", iters=200))  # in runs/
        >>> res.metrics[-1]["objective"] > res.metrics[0]["objective"]
        True
    """
    folder = None
    if resume is not None:
        folder = RunFolder(resume)
        cfg = resume_config(folder, iters)
    elif iters is not None:
        raise ValueError("iters extends a resumed run; set cfg.iters for a new run")
    if cfg is None:
        raise ValueError("cfg must be a DCPGConfig (or pass resume=<run folder>), got None")
    n_local = 1 if backend == "dist" else None
    setup = prepare(cfg, n_local)
    cfg, env, taskset, topology = setup.cfg, setup.env, setup.taskset, setup.topology
    N = len(env.tasks)
    backend = make_backend(backend, topology, cfg.communicate, N)
    from baselines.consensus.policies import make_policy_class

    pclass = make_policy_class(cfg, env.tasks)
    local = LocalAgents(cfg, env.tasks, taskset, backend.agents, pclass)
    with blas_scope(taskset.n_states):  # small dense solves: one BLAS thread (see mpg_envs.exact)
        res = train_agents(
            cfg, CONFIG_KIND, _run_name(cfg), backend, local, _GridEvaluation(cfg, taskset, pclass),
            folder=folder, resume=resume, iters=iters, progress=progress, stop_after=stop_after,
        )  # fmt: skip
    if plot and backend.is_main and res.thetas is not None:
        _plot_run(res, env.tasks)
    return res


def make_backend(backend: Any, topology: Topology, communicate: bool, n_tasks: int, what: str = "the layout"):
    """The backend object of ``backend`` (``None``/``"single"``, ``"dist"`` or an object with
    ``n_agents == n_tasks``)."""
    if backend is None or backend == "single":
        return SingleProcess(topology, communicate)
    if backend == "dist":
        from baselines.consensus.distributed import DistributedBackend

        return DistributedBackend(topology, communicate)
    if isinstance(backend, str):
        raise ValueError(f"backend must be 'single', 'dist' or a backend object, got {backend!r}")
    if getattr(backend, "n_agents", None) != n_tasks:
        raise ValueError(
            f"the backend has {getattr(backend, 'n_agents', None)} agents but {what} has {n_tasks} tasks"
        )
    return backend


class _GridEvaluation:
    """Exact metrics of a multi-task GridWorld run (every agent's parameters gathered on the main
    process) and its final policies."""

    def __init__(self, cfg: DCPGConfig, taskset: TaskSet, pclass) -> None:
        self.cfg, self.taskset, self.pclass = cfg, taskset, pclass
        self.fields = metric_fields(taskset.n_tasks)

    def evaluate(self, thetas: np.ndarray, backend: Any, it: int) -> dict[str, float] | None:
        everyone = backend.gather(thetas)
        if not backend.is_main:
            return None
        with np.errstate(over="ignore", invalid="ignore"):  # overflow: refused by the loop
            return evaluate(self.taskset, everyone, self.cfg.lam, self.cfg.success_horizon, self.pclass)

    def final(self, thetas: np.ndarray, backend: Any) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        everyone = backend.gather(thetas)
        if not backend.is_main:
            return None, {}
        pols = softmax_logits(self.pclass.logits(everyone.mean(axis=0)[None], np.arange(len(everyone)))[0])
        return everyone, {"policies": pols}


def train_agents(
    cfg: Any,
    kind: str,
    name: str,
    backend: Any,
    local: Any,
    evaluation: Any,
    *,
    folder: RunFolder | None = None,
    resume: str | Path | None = None,
    iters: int | None = None,
    progress: bool = False,
    stop_after: int | None = None,
) -> DCPGResult:
    """The DCPG loop of any problem: run folder, start or resume, iterations, checkpoints, metrics.

    Args:
        cfg: A validated config with ``iters``, ``eval_every``, ``eval_log``, ``checkpoint_every``,
            ``out``, ``gradient_at``, ``alpha``, ``alpha_decay`` and ``lam`` (a dataclass: its fields
            are config.json).
        kind: config.json's ``kind``.
        name: The run folder's name without its time.
        backend: :class:`SingleProcess` or a distributed backend.
        local: The process's agents (``step``, ``states``, ``set_states``, ``state_spec``,
            ``initial``).
        evaluation: ``fields`` (metrics.csv's columns), ``evaluate(thetas, backend, it)`` (a row on
            the main process, None elsewhere; called on every process) and ``final(thetas,
            backend)`` (every agent's parameters and the arrays final.npz keeps, on the main
            process).
        folder: With ``resume``, the run folder (its config already read).
        resume, iters, progress, stop_after: As :func:`run_dcpg`.
    """
    fields = evaluation.fields
    with contextlib.ExitStack() as held:
        if resume is None:
            if backend.is_main:
                folder = RunFolder.create(cfg.out, name)
                held.enter_context(folder.lock())
                folder.write_config({"kind": kind, **dataclasses.asdict(cfg)})
            folder = RunFolder(backend.broadcast(str(folder.path) if folder else None))
        elif backend.is_main:
            held.enter_context(folder.lock())  # before anything is written
        if resume is not None:  # every rank reads it, so all refuse together
            _check_any_checkpoint(folder, cfg)
            if iters is not None:
                folder.write_config({"kind": kind, **dataclasses.asdict(cfg)})

        # ------------------------------------------------------------ start or resume
        available = set.intersection(*[_saved_iterations(folder, int(i)) for i in backend.agents])
        start = backend.common_iteration(available)
        if start is None:
            start = 0
            thetas = np.repeat(local.initial()[None], len(backend.agents), axis=0)
            rows: list[dict[str, float]] = []
        else:
            if start > cfg.iters:
                raise DamagedRunError(
                    f"{_ckpt_dir(folder)}: holds a checkpoint at iteration {start}, past the run's iters "
                    f"({cfg.iters}) in config.json; restore config.json's iters or extend the run to "
                    f"iters >= {start}"
                )
            loaded = [_load_agent(folder, int(i), start, cfg, local.state_spec()) for i in backend.agents]
            thetas = np.stack([t for t, _ in loaded])
            local.set_states([s for _, s in loaded])
            rows = _read_rows(folder, cfg, fields, start) if backend.is_main else []
        if backend.is_main:
            folder.clean_temporaries()
            for p in _ckpt_dir(folder).glob(f"*{TMP_SUFFIX}") if _ckpt_dir(folder).is_dir() else ():
                p.unlink(missing_ok=True)
            folder.final_path.unlink(missing_ok=True)
            folder.start_metrics(fields, rows)
        return _loop(cfg, backend, folder, local, evaluation, start, thetas, rows, progress, stop_after)


def _read_rows(folder: RunFolder, cfg: DCPGConfig, fields: list[str], start: int) -> list[dict[str, float]]:
    """metrics.csv's rows before ``start``, which must be the evaluations before it."""
    from baselines.evaluation import evaluation_iterations

    try:
        rows = folder.read_metrics(fields, before=start)
    except DamagedRunError as err:
        raise DamagedRunError(str(err).replace(_TRAIN_RESTART, _RESTART_DCPG)) from None
    want = [int(k) for k in evaluation_iterations(cfg.iters, cfg.eval_every, cfg.eval_log) if k < start]
    got = [int(r["iteration"]) for r in rows]
    if got != want:
        raise DamagedRunError(
            f"{folder.metrics_path}: has rows for iterations {V.show(got)}, but the checkpoint at "
            f"iteration {start} follows the evaluations at {V.show(want)}; {_RESTART_DCPG}"
        )
    return rows


def _diverged(it: int, what: str, cfg: DCPGConfig, folder: RunFolder) -> ValueError:
    lam = f" or lam (now {cfg.lam!r})" if cfg.lam else ""
    return ValueError(
        f"iteration {it}: {what} (the updates diverged; lower alpha (now {cfg.alpha!r}){lam}); "
        f"{folder.path} keeps the iterations before"
    )


def _loop(cfg, backend, folder, local, evaluation, start, thetas, rows, progress, stop_after) -> DCPGResult:
    from baselines.evaluation import evaluation_iterations

    fields = evaluation.fields
    eval_at = set(evaluation_iterations(cfg.iters, cfg.eval_every, cfg.eval_log).tolist())
    bar = None
    if progress and backend.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.iters, initial=start, desc=folder.path.name, unit="it")
    t0 = time.perf_counter()
    it = start
    try:
        while True:
            if it > start and it % cfg.checkpoint_every == 0:
                _save_agents(folder, it, backend.agents, thetas, local.states())
                backend.barrier()  # every agent saved `it`: older checkpoints can go
                _prune(folder, it, backend.agents)
            if it in eval_at or it >= cfg.iters:
                metrics = evaluation.evaluate(thetas, backend, it)
                if backend.is_main:
                    row = {"iteration": it, **metrics}
                    # objective_reg is -inf wherever a probability underflows to 0: not a divergence
                    bad = [k for k, v in row.items() if k != "objective_reg" and not np.isfinite(v)]
                    if bad:
                        raise _diverged(it, f"metrics not finite: {', '.join(bad)}", cfg, folder)
                    row.update(alpha=_alpha(cfg, it), wall_time=time.perf_counter() - t0)
                    rows.append(row)
                    folder.append_metrics(fields, row)
                    if bar is not None:
                        bar.set_postfix(
                            objective=f"{row['objective']:.3f}", consensus=f"{row['consensus_error']:.1e}"
                        )
            if it >= cfg.iters:
                break
            if stop_after is not None and it - start >= stop_after:
                return DCPGResult(folder.path, None, rows, None)
            with np.errstate(over="ignore", invalid="ignore"):  # overflow: refused below
                if cfg.gradient_at == "own":  # the exchange runs while the local step is computed
                    pending = backend.start_mix(thetas)
                    delta = local.step(thetas, _alpha(cfg, it))
                    thetas = backend.finish_mix(pending) + delta
                else:
                    mixed = backend.mix(thetas)
                    thetas = mixed + local.step(mixed, _alpha(cfg, it))
            it += 1
            if not np.isfinite(thetas).all():
                raise _diverged(it, "the parameters are not finite", cfg, folder)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    # the state at the start of the last iteration, so that an extension resumes exactly here
    _save_agents(folder, it, backend.agents, thetas, local.states())
    backend.barrier()
    _prune(folder, it, backend.agents)
    everyone, extra = evaluation.final(thetas, backend)
    if backend.is_main:
        folder.save_final(thetas=everyone, iteration=np.array(it), **extra)
    backend.barrier()
    return DCPGResult(folder.path, everyone if backend.is_main else None, rows, extra.get("policies"))


def _plot_run(res: DCPGResult, tasks) -> None:
    """``metrics.png`` and ``policy.png`` in the run folder (skipped without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    from mpg_envs.gridworld.env import draw_tasks

    rows, N = res.metrics, len(res.thetas)
    its = [int(r["iteration"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    own = np.array([[r[f"objective_agent_{j}"] for j in range(N)] for r in rows])
    axes[0].plot(its, [r["objective"] for r in rows], label="agents' average")
    axes[0].fill_between(its, own.min(axis=1), own.max(axis=1), alpha=0.3, label="each agent's own")
    axes[0].set(xlabel="iteration", ylabel="sum_i V_i(rho_i) (exact)")
    axes[0].legend(fontsize=8)
    ce = [
        (i, r["consensus_error"]) for i, r in zip(its, rows) if r["consensus_error"] > 0
    ]  # 0 at a common start
    axes[1].semilogy([i for i, _ in ce], [c for _, c in ce])
    axes[1].set(xlabel="iteration", ylabel="consensus error max_i ||theta_i - mean||")
    for i in range(N):
        axes[2].plot(its, [r[f"success_task_{i}"] for r in rows], label=f"task {i + 1}")
    axes[2].set(xlabel="iteration", ylabel="P(goal within the horizon)", ylim=(-0.02, 1.02))
    axes[2].legend(fontsize=7)
    fig.suptitle(res.run_dir.name, fontsize=9)
    fig.tight_layout()
    fig.savefig(res.run_dir / "metrics.png", dpi=110)
    plt.close(fig)
    # each task with the averaged parameters' policy there (the same table for tabular runs); a run
    # whose parameters overflowed has no policy to draw (describe_end says so)
    if not np.isfinite(res.policies).all():
        return
    frames = [draw_tasks([t], None, p) for t, p in zip(tasks, res.policies)]
    img = np.concatenate(frames, axis=1)
    plt.imsave(res.run_dir / "policy.png", img)
