"""DCPG over any multi-task env: one agent per task, a network on the task's raw observations,
REINFORCE / A2C / PPO local gradients from rollouts, Monte Carlo evaluation (needs torch).

Paper 004 §5.2 trains one navigation policy from a camera in four environments (here
``mpg/IndoorNav-v0``, MiniWorld). The algorithm is the one of :mod:`baselines.consensus.dcpg`
(eq. 9 with Adam, the same loop, backends, checkpoints and resume): agent i keeps its own network
parameters ``theta_i`` (a flat float64 vector of d numbers: :class:`~baselines.policies.nets.FlatNet`),
collects ``episodes`` episodes in its own task per iteration (communication every episode, as the
paper), and sets ``theta_i <- sum_j W_ij theta_j + Adam(g_i)``. ``communicate=False`` is SA-i.

The tasks come from the env: :func:`mpg_envs.task_env_makers` gives one Gymnasium env maker per
agent, and each process builds only its own agents' envs (under ``torch.distributed`` each rank
renders its own world).

Local gradients (every-visit Monte Carlo returns ``G_t``, discount ``gamma``):

* ``reinforce``: ``sum_t gamma^t G_t grad log pi(a_t | o_t)`` averaged over the episodes;
* ``a2c``: the same with ``G_t - V(o_t)``, ``V`` a local critic (same network family, one output,
  never shared) fitted by one Adam step on the squared error per iteration;
* ``ppo``: ``ppo_epochs`` Adam steps on the clipped surrogate (``clip``) of one batch of episodes,
  advantages ``G_t - V(o_t)``;

plus the relative-entropy regulariser of eqs. (6)-(8) on the visited observations: ``-lam``
times the mean over the visits of ``KL(uniform || pi(. | o_t))`` (the tabular case sums it over
every state; an image policy has no state table, so the visits stand for it).

Evaluation (every ``eval_every`` iterations and at the end; common random numbers): each agent's
own policy in its own task, and with communication the agents' averaged parameters in every
task, ``eval_episodes`` episodes each from starts and action draws seeded by (seed, iteration,
task) -- the same for every policy evaluated in a task, so comparisons are paired. Per policy and
task: the mean return, the mean **distance** (``info["distance"]`` at the episode's end: the safe
flight of a navigation env; the number of steps where the env reports no distance) with 95%
t-interval half-widths, and the fraction of episodes that ended by termination (a collision).
The training episodes' mean distance, return and length since the previous evaluation are logged too
(paper 004's Fig. 3 plots the safe flight during training). At the end, every agent's policy and
the average are evaluated in every task (paper 004's Table 1): ``final.npz`` keeps the per-episode
``distance`` and ``return`` arrays of shape (N + 1, N, E) (rows: agent 0 .. N-1, then the average).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baselines.consensus.dcpg import (
    Adam,
    AgentStates,
    DCPGResult,
    agent_generator,
    load_config,
    make_backend,
    resume_config,
    train_agents,
)
from baselines.consensus.graphs import Topology
from baselines.consensus.objective import softmax_logits
from baselines.runs import RunFolder, run_name
from baselines.sampler import returns_to_go
from mpg_envs import _validate as V

__all__ = [
    "EnvDCPGConfig",
    "EnvAgents",
    "EnvEvaluation",
    "run_dcpg_env",
    "rollout",
    "evaluate_policy",
    "env_metric_fields",
    "env_has_exact_model",
    "ENV_GRADIENTS",
    "CONFIG_KIND",
]

ENV_GRADIENTS = ("reinforce", "a2c", "ppo")
CONFIG_KIND = "dcpg-env"
#: The largest ``ppo_epochs``.
MAX_PPO_EPOCHS = 1000
#: Seed offset of the evaluation streams (apart from every agent's training stream).
_EVAL_KEY = 0x5E7A1


@dataclass
class EnvDCPGConfig:
    """Everything that defines a DCPG run over a multi-task env (``dcpg --env ...``)."""

    env: str = field(
        default="mpg/IndoorNav-v0",
        metadata={
            "help": "multi-task env id, one agent per task (mpg/IndoorNav-v0, mpg/MultiTaskGridWorld-v0)"
        },
    )
    env_kwargs: dict = field(
        default_factory=dict,
        metadata={"help": "the env's keyword arguments, e.g. resolution=64 max_cycles=500"},
    )
    policy: str = field(
        default="cnn",
        metadata={"help": "cnn (PEDRA's 5-layer C3F2 on RGB frames) or mlp (on flat observations)"},
    )
    hidden: str = field(
        default="1024",
        metadata={"help": "cnn: the fully connected width (PEDRA 1024); mlp: widths, e.g. 64,64"},
    )
    gradient: str = field(
        default="reinforce", metadata={"help": "local gradient: reinforce, a2c or ppo (paper 004 §5.2)"}
    )
    gamma: float = field(default=0.99, metadata={"help": "discount in (0, 1] (paper 004: 0.99)"})
    alpha: float = field(default=1e-4, metadata={"help": "Adam step size (paper 004: 1e-4)"})
    alpha_decay: float = field(default=0.0, metadata={"help": "alpha_k = alpha / (k + 1)^alpha_decay"})
    critic_lr: float = field(default=1e-4, metadata={"help": "a2c/ppo: the local critic's Adam step size"})
    lam: float = field(default=0.03, metadata={"help": "relative-entropy weight (paper 004: 0.03)"})
    clip: float = field(default=0.2, metadata={"help": "ppo: clipping epsilon (paper 004: 0.2)"})
    ppo_epochs: int = field(default=4, metadata={"help": "ppo: Adam steps per batch of episodes"})
    episodes: int = field(default=1, metadata={"help": "episodes per agent per iteration (paper 004: 1)"})
    graph: str = field(default="ring", metadata={"help": "communication graph (paper 004: ring)"})
    graph_p: float = field(default=0.5, metadata={"help": "edge probability of the random graph"})
    weights: str = field(default="lazy_metropolis", metadata={"help": "mixing weights"})
    communicate: bool = field(
        default=True, metadata={"help": "false: W = I, the single-agent baselines SA-i"}
    )
    gradient_at: str = field(default="own", metadata={"help": "own (eq. 9) or mixed (combine-then-adapt)"})
    iters: int = field(default=4000, metadata={"help": "iterations = episodes per agent (paper 004: 4000)"})
    seed: int = field(default=0, metadata={"help": "seed of every agent's stream (seed, agent)"})
    eval_every: int = field(default=100, metadata={"help": "Monte Carlo evaluation every k iterations"})
    eval_log: bool = field(default=False, metadata={"help": "also evaluate at 1, 2, 3, 5, 7, 10, 15, ..."})
    eval_episodes: int = field(
        default=10, metadata={"help": "episodes per policy and task of an evaluation (>= 2)"}
    )
    checkpoint_every: int = field(default=50, metadata={"help": "checkpoint every k iterations"})
    out: str = field(default="runs", metadata={"help": "directory that receives run folders"})

    def normalized(self) -> EnvDCPGConfig:
        """A checked copy (numbers as Python ints and floats); ``ValueError`` naming a bad field."""
        from baselines.policies.nets import NETWORKS

        v: dict[str, Any] = {}
        if not isinstance(self.env_kwargs, dict) or not all(isinstance(k, str) for k in self.env_kwargs):
            raise V.ArgumentTypeError(
                f"env_kwargs must be a dict of keyword arguments, got {V.show(self.env_kwargs)}"
            )
        v["env_kwargs"] = dict(self.env_kwargs)
        V.one_of("policy", self.policy, NETWORKS)
        V.one_of("gradient", self.gradient, ENV_GRADIENTS)
        V.one_of("gradient_at", self.gradient_at, ("own", "mixed"))
        for name in ("graph", "weights", "hidden", "env"):
            if not isinstance(getattr(self, name), str):
                raise V.ArgumentTypeError(f"{name} must be a str, got {V.show(getattr(self, name))}")
        v["gamma"] = V.discount("gamma", self.gamma, allow_one=True)
        for name in ("alpha", "critic_lr", "clip"):
            v[name] = V.real(name, getattr(self, name), low=0.0, low_open=True)
        v["alpha_decay"] = V.real("alpha_decay", self.alpha_decay, low=0.0)
        v["lam"] = V.real("lam", self.lam, low=0.0)
        v["graph_p"] = V.real("graph_p", self.graph_p, low=0.0, high=1.0, low_open=True)
        v["communicate"] = V.flag("communicate", self.communicate)
        v["eval_log"] = V.flag("eval_log", self.eval_log)
        for name in ("episodes", "eval_every", "checkpoint_every"):
            v[name] = V.positive_int(name, getattr(self, name))
        v["eval_episodes"] = V.integer("eval_episodes", self.eval_episodes, minimum=2, maximum=10**6)
        v["ppo_epochs"] = V.positive_int("ppo_epochs", self.ppo_epochs, maximum=MAX_PPO_EPOCHS)
        v["iters"] = V.integer("iters", self.iters, minimum=1, maximum=10**9)
        v["seed"] = V.integer("seed", self.seed, minimum=0)
        if not isinstance(self.out, (str, Path)):
            raise V.ArgumentTypeError(f"out must be a folder path (str), got {V.show(self.out)}")
        v["out"] = str(self.out)
        return dataclasses.replace(self, **v)

    def hidden_widths(self) -> tuple[int, ...]:
        """The hidden widths (``ValueError`` naming ``hidden`` for 'auto', which sizes a network by
        a state count that observations do not have)."""
        from baselines.policies.neural import parse_hidden

        if self.hidden == "auto":
            raise ValueError(
                "hidden must be comma-separated widths like '64,64' (or '' for none), got 'auto'"
            )
        return parse_hidden(self.hidden, 1)


def load_env_config(data: dict[str, Any], source: str | Path = "config.json") -> EnvDCPGConfig:
    """A config from its JSON form; unknown and missing keys are refused."""
    return load_config(data, source, EnvDCPGConfig, CONFIG_KIND, "DCPG-env")


# ------------------------------------------------------------------------------ rollouts
def _sample(logits: np.ndarray, u: float) -> int:
    """The action of uniform ``u`` under softmax(logits) (float64 inverse CDF)."""
    return int((u >= np.cumsum(softmax_logits(logits)[:-1])).sum())


def rollout(env, policy: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator) -> dict[str, Any]:
    """One episode of ``env`` under ``policy`` (observations -> logits), its start and action
    uniforms drawn from ``rng`` (the reset seed first, then one uniform per step).

    Returns:
        ``obs`` (T, *obs_shape), ``actions`` (T,), ``rewards`` (T,), ``distance`` (the env's
        ``info["distance"]`` at the end, else T), ``terminated`` (bool).
    """
    o, info = env.reset(seed=int(rng.integers(2**31 - 1)))
    obs, acts, rews = [], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        a = _sample(policy(np.asarray(o)[None])[0], float(rng.random()))
        obs.append(np.asarray(o))
        acts.append(a)
        o, r, terminated, truncated, info = env.step(a)
        rews.append(float(r))
    distance = float(info["distance"]) if "distance" in info else float(len(acts))
    return {
        "obs": np.stack(obs),
        "actions": np.asarray(acts, dtype=np.int64),
        "rewards": np.asarray(rews),
        "distance": distance,
        "terminated": bool(terminated),
    }


def evaluate_policy(
    env, policy, seed: int, iteration: int, task: int, episodes: int
) -> tuple[np.ndarray, ...]:
    """``episodes`` episodes of ``policy`` in ``env`` from the evaluation stream of (seed,
    iteration, task): every policy evaluated in a task at an iteration meets the same starts.

    Returns:
        ``distance`` (E,), ``return`` (E,) (undiscounted), ``terminated`` (E,) bool.
    """
    rng = np.random.default_rng(np.random.SeedSequence([_EVAL_KEY, int(seed), int(iteration), int(task)]))
    eps = [rollout(env, policy, rng) for _ in range(int(episodes))]
    return (
        np.array([e["distance"] for e in eps]),
        np.array([e["rewards"].sum() for e in eps]),
        np.array([e["terminated"] for e in eps]),
    )


def _ci(x: np.ndarray) -> float:
    """95% t-interval half-width of the mean of x (n >= 2)."""
    from scipy import stats

    n = len(x)
    return float(stats.t.ppf(0.975, n - 1) * np.std(x, ddof=1) / math.sqrt(n))


# ------------------------------------------------------------------------------ local agents
class EnvAgents(AgentStates):
    """The agents a process holds: their task envs, generators, networks, optimisers and critics.

    Args:
        cfg: The (normalized) config.
        makers: Every task's env maker (N); only the local agents' are called.
        agents: Indices of the local agents.
    """

    def __init__(
        self, cfg: EnvDCPGConfig, makers: Sequence[Callable[[], Any]], agents: Sequence[int]
    ) -> None:
        from baselines.policies.nets import FlatNet, build_network, seeded_module

        self.cfg = cfg
        self.agents = np.asarray(agents, dtype=np.int64)
        self.envs = [makers[i]() for i in self.agents]
        env0 = self.envs[0]
        self.obs_space = env0.observation_space
        self.n_actions = int(env0.action_space.n)
        hidden = cfg.hidden_widths()
        self._check_sizes(cfg, len(self.agents), hidden)
        actor = lambda: build_network(cfg.policy, self.obs_space, self.n_actions, hidden)  # noqa: E731
        self.net = FlatNet(seeded_module(actor, cfg.seed))
        self.theta0 = self.net.get()
        self.rngs = [agent_generator(cfg.seed, i) for i in self.agents]
        n, d = len(self.agents), self.net.size
        self.adam = Adam((n, d))
        self.critic = None
        if cfg.gradient in ("a2c", "ppo"):
            critic = lambda: build_network(cfg.policy, self.obs_space, 1, hidden)  # noqa: E731
            self.critic = FlatNet(seeded_module(critic, cfg.seed + 1))
            self.critic_params = np.repeat(self.critic.get()[None], n, axis=0)
            self.critic_adam = Adam(self.critic_params.shape)
        # training episodes since the last evaluation: distance sum, return sum, steps, count
        self.window = np.zeros((n, 4))

    def _check_sizes(self, cfg: EnvDCPGConfig, n: int, hidden: tuple[int, ...]) -> None:
        """Refuse, before the networks are built, parameters or a batch of episodes that would not
        fit in memory (:func:`mpg_envs._validate.check_bytes`)."""
        from baselines.policies.nets import network_size

        d, acts = network_size(cfg.policy, self.obs_space, self.n_actions, hidden)
        nets = 2 if cfg.gradient in ("a2c", "ppo") else 1
        V.check_bytes(
            f"{n} agents' networks of d = {d:,} parameters (policy={cfg.policy!r}, hidden={cfg.hidden!r})",
            nets * d * (8 * 8 * n + 4 * 4),  # float64 parameters, mixes, Adam moments; float32 module, grads
            advice="use smaller hidden widths or a smaller resolution",
        )
        env = self.envs[0].unwrapped
        steps = getattr(env, "max_episode_steps", None) or getattr(env, "max_steps", None)
        if steps:
            obs_bytes = int(np.prod(self.obs_space.shape or (1,))) * 4
            frames = int(steps) * int(cfg.episodes)
            # a frame's float32 activations, forward and backward (measured peak on 500 frames of C3F2:
            # 204 MB at 64x64, 459 MB at 103x103, about half this estimate)
            V.check_bytes(
                f"a batch of {cfg.episodes:,} episodes of up to {int(steps):,} steps ({frames:,} "
                f"observations of {obs_bytes:,} bytes and {acts:,} activations each through the network)",
                frames * (obs_bytes + 2 * 4 * acts),
                advice="use fewer episodes, a smaller max_cycles or a smaller resolution",
            )

    def initial(self) -> np.ndarray:
        """Every agent's initial parameters (d,)."""
        return self.theta0

    def x(self, obs: np.ndarray):
        from baselines.policies.nets import observation_tensor

        return observation_tensor(self.obs_space, obs, self.cfg.policy)

    def policy(self, theta: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """observations (B, ...) -> logits (B, A) of parameters ``theta`` (d,)."""
        torch = self.net.torch
        flat = torch.as_tensor(theta, dtype=torch.float32)  # once per episode, not per step

        def logits(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return self.net.forward(flat, self.x(obs)).double().numpy()

        return logits

    # ---------------------------------------------------------------- updates
    def update(self, thetas: np.ndarray, mixed: np.ndarray, alpha: float) -> np.ndarray:
        """One iteration of eq. (9): ``mixed + step`` with the step at ``thetas`` (or ``mixed``)."""
        return mixed + self.step(mixed if self.cfg.gradient_at == "mixed" else thetas, alpha)

    def step(self, at: np.ndarray, alpha: float) -> np.ndarray:
        """Every local agent's step from parameters ``at`` (n, d): its Adam step(s), shape (n, d)."""
        return np.stack([self._agent_step(k, at[k], alpha) for k in range(len(self.agents))])

    def _episodes(self, k: int, theta: np.ndarray) -> dict[str, Any]:
        cfg = self.cfg
        eps = [rollout(self.envs[k], self.policy(theta), self.rngs[k]) for _ in range(cfg.episodes)]
        self.window[k] += [
            sum(e["distance"] for e in eps),
            sum(e["rewards"].sum() for e in eps),
            sum(len(e["actions"]) for e in eps),
            len(eps),
        ]
        torch = self.net.torch
        obs = np.concatenate([e["obs"] for e in eps])
        G = np.concatenate([returns_to_go(e["rewards"][None, :, None], cfg.gamma)[0, :, 0] for e in eps])
        disc = np.concatenate([cfg.gamma ** np.arange(len(e["rewards"])) for e in eps])
        return {
            "x": self.x(obs),
            "act": torch.as_tensor(np.concatenate([e["actions"] for e in eps])),
            "G": torch.as_tensor(G, dtype=torch.float32),
            "w": torch.as_tensor(disc / cfg.episodes, dtype=torch.float32),
        }

    def _loss(self, out, batch, adv, logp_old=None):
        """Minus the local objective: surrogate (REINFORCE/A2C, or PPO's clipped ratio) plus the
        regulariser; ``out`` is the network's logits on the batch."""
        torch, cfg = self.net.torch, self.cfg
        logp_all = torch.log_softmax(out, dim=-1)
        logp = logp_all.gather(1, batch["act"][:, None])[:, 0]
        if logp_old is None:
            obj = (batch["w"] * adv * logp).sum()
        else:
            ratio = torch.exp(logp - logp_old)
            obj = (
                batch["w"] * torch.minimum(ratio * adv, torch.clamp(ratio, 1 - cfg.clip, 1 + cfg.clip) * adv)
            ).sum()
        if cfg.lam:
            # -lam * mean over visits of KL(uniform || pi) = lam * mean(mean_a log pi) + const
            obj = obj + cfg.lam * logp_all.mean(dim=-1).mean()
        return -obj

    def _critic_fit(self, k: int, batch) -> Any:
        """One Adam step of agent k's critic on the squared error to G; returns V(o) before it."""
        torch = self.net.torch
        vals = {}

        def loss(f):
            v = f(batch["x"])[:, 0]
            vals["v"] = v.detach()
            return ((v - batch["G"]) ** 2).mean()

        _, g = self.critic.value_and_grad(self.critic_params[k], loss)
        self.critic_params[k] = self.critic_params[k] + self.critic_adam.step(-g, self.cfg.critic_lr, row=k)
        return vals["v"].to(torch.float32)

    def _agent_step(self, k: int, theta: np.ndarray, alpha: float) -> np.ndarray:
        cfg = self.cfg
        batch = self._episodes(k, theta)
        adv = batch["G"] if self.critic is None else batch["G"] - self._critic_fit(k, batch)
        if cfg.gradient != "ppo":
            _, g = self.net.value_and_grad(theta, lambda f: self._loss(f(batch["x"]), batch, adv))
            return self.adam.step(-g, alpha, row=k)
        torch = self.net.torch
        with torch.no_grad():
            logp_old = torch.log_softmax(
                self.net.forward(torch.as_tensor(theta, dtype=torch.float32), batch["x"]), -1
            )
            logp_old = logp_old.gather(1, batch["act"][:, None])[:, 0]
        delta = np.zeros_like(theta)
        for e in range(cfg.ppo_epochs):
            _, g = self.net.value_and_grad(
                theta + delta, lambda f: self._loss(f(batch["x"]), batch, adv, logp_old)
            )
            delta = delta + self.adam.step(-g, alpha, row=k)
            if e + 1 < cfg.ppo_epochs:
                self._critic_fit(k, batch)
        return delta

    # ---------------------------------------------------------------- checkpoints
    def state_spec(self) -> dict[str, tuple[int, ...]]:
        d = (self.net.size,)
        spec = {"theta": d, "rng": (), "adam_m": d, "adam_v": d, "adam_t": (), "window": (4,)}
        if self.critic is not None:
            dc = (self.critic.size,)
            spec.update(critic=dc, critic_adam_m=dc, critic_adam_v=dc, critic_adam_t=())
        return spec

    def _extra_state(self, k: int) -> dict[str, np.ndarray]:
        return {"window": self.window[k]}

    def _set_extra_state(self, k: int, st: dict[str, np.ndarray]) -> None:
        self.window[k] = st["window"]

    def close(self) -> None:
        for e in self.envs:
            e.close()


# ------------------------------------------------------------------------------ evaluation
def env_metric_fields(n_tasks: int, communicate: bool, exact: bool = False) -> list[str]:
    """metrics.csv's columns of an env run with N tasks; ``exact``: the tasks have exact models
    (MultiTaskGridWorld), whose discounted values at the start distribution are added."""
    per = lambda who, n: [f"{m}_{who}_{i}" for i in range(n) for m in (  # noqa: E731
        "distance", "distance_ci", "return", "return_ci", "terminated")]  # fmt: skip
    out = ["iteration", "objective", "consensus_error", *per("agent", n_tasks)]
    if communicate:
        out += per("task", n_tasks)
    out += [f"train_{m}_agent_{i}" for i in range(n_tasks) for m in ("distance", "return", "length")]
    if exact:
        out += ["exact_objective", *(f"exact_value_agent_{i}" for i in range(n_tasks))]
        out += [f"exact_value_task_{i}" for i in range(n_tasks)] if communicate else []
    return [*out, "alpha", "wall_time"]


def env_has_exact_model(env_id: str) -> bool:
    """Whether the tasks of ``env_id`` have exact models (its single-agent task envs ``model()``)."""
    import mpg_envs

    return env_id in mpg_envs.ENV_IDS


class _TaskValue:
    """The exact discounted value at the start distribution of a policy network in one task env
    (an env with ``model()``: the task's single-agent exact model and its observations)."""

    def __init__(self, env: Any) -> None:
        raw = env.unwrapped
        self.model = raw.model()
        dyn = raw.dynamics
        self.obs = dyn.observe(dyn.states(), raw.observation_mode)[:, 0]  # (S, ...) as the env emits

    def __call__(self, logits: Callable[[np.ndarray], np.ndarray]) -> float:
        from mpg_envs import exact

        p = softmax_logits(logits(self.obs))  # (S, A) float64
        return float(exact.evaluate(self.model, [p])[0] @ self.model.mu)


class EnvEvaluation:
    """Monte Carlo metrics of an env run, plus exact task values where the tasks have exact models;
    every process evaluates in its own tasks."""

    def __init__(self, cfg: EnvDCPGConfig, local: EnvAgents, n_tasks: int) -> None:
        self.cfg, self.local, self.N = cfg, local, n_tasks
        self.exact = env_has_exact_model(cfg.env)
        self.fields = env_metric_fields(n_tasks, cfg.communicate, self.exact)
        self.values = [_TaskValue(env) for env in local.envs] if self.exact else []

    def _everyone(self, thetas: np.ndarray, backend: Any) -> np.ndarray:
        """Every agent's parameters (N, d) on every process."""
        return backend.broadcast(backend.gather(thetas))

    def _stats(
        self, who: str, i: int, dist: np.ndarray, ret: np.ndarray, term: np.ndarray
    ) -> dict[str, float]:
        return {
            f"distance_{who}_{i}": float(dist.mean()),
            f"distance_ci_{who}_{i}": _ci(dist),
            f"return_{who}_{i}": float(ret.mean()),
            f"return_ci_{who}_{i}": _ci(ret),
            f"terminated_{who}_{i}": float(term.mean()),
        }

    def evaluate(self, thetas: np.ndarray, backend: Any, it: int) -> dict[str, float] | None:
        cfg, local = self.cfg, self.local
        E = cfg.eval_episodes
        # every agent's parameters: on every process with communication (the average is evaluated
        # in every task), else on the main process only (for the consensus error)
        everyone = self._everyone(thetas, backend) if cfg.communicate else backend.gather(thetas)
        mine = []  # per local agent k (task i): own policy, the average in task i, training window
        for k, i in enumerate(local.agents):
            pols = [thetas[k], everyone.mean(axis=0)] if cfg.communicate else [thetas[k]]
            res = [evaluate_policy(local.envs[k], local.policy(p), cfg.seed, it, int(i), E) for p in pols]
            exact = [self.values[k](local.policy(p)) for p in pols] if self.exact else []
            parts = [np.asarray(a, float) for r in res for a in r]
            mine.append(np.concatenate([*parts, local.window[k], np.asarray(exact, float)]))
        local.window[:] = 0.0
        gathered = backend.gather(np.stack(mine))  # (N, 3 E [+ 3 E] + 4 [+ 1 [+ 1]])
        x = len(pols) if self.exact else 0  # exact values at the end of each row
        if not backend.is_main:
            return None
        end = gathered.shape[1] - x  # the training window: the 4 entries before them
        row: dict[str, float] = {
            "objective": 0.0,
            "consensus_error": float(np.linalg.norm(everyone - everyone.mean(axis=0), axis=1).max()),
        }
        for i in range(self.N):
            own = gathered[i, : 3 * E].reshape(3, E)
            row.update(self._stats("agent", i, own[0], own[1], own[2].astype(bool)))
            if cfg.communicate:
                avg = gathered[i, 3 * E : 6 * E].reshape(3, E)
                row.update(self._stats("task", i, avg[0], avg[1], avg[2].astype(bool)))
            row["objective"] += row[f"return_{'task' if cfg.communicate else 'agent'}_{i}"]
            dist, ret, steps, count = gathered[i, end - 4 : end]
            row[f"train_distance_agent_{i}"] = float(dist / count) if count else 0.0
            row[f"train_return_agent_{i}"] = float(ret / count) if count else 0.0
            row[f"train_length_agent_{i}"] = float(steps / count) if count else 0.0
        if self.exact:
            for i in range(self.N):
                row[f"exact_value_agent_{i}"] = float(gathered[i, -x])
                if cfg.communicate:
                    row[f"exact_value_task_{i}"] = float(gathered[i, -1])
            who = "task" if cfg.communicate else "agent"
            row["exact_objective"] = sum(row[f"exact_value_{who}_{i}"] for i in range(self.N))
        return row

    def final(self, thetas: np.ndarray, backend: Any) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        """Every agent's policy and the average in every task (``distance``/``return``/``terminated``
        of shape (N + 1, N, E)); the parameters (N, d) on the main process."""
        cfg, local = self.cfg, self.local
        everyone = self._everyone(thetas, backend)
        pols = [*everyone, everyone.mean(axis=0)]
        mine = []
        for k, i in enumerate(local.agents):
            res = [
                evaluate_policy(
                    local.envs[k], local.policy(p), cfg.seed, cfg.iters, int(i), cfg.eval_episodes
                )
                for p in pols
            ]
            mine.append(np.stack([np.stack([np.asarray(a, float) for a in r]) for r in res]))  # (N + 1, 3, E)
        gathered = backend.gather(np.stack(mine))  # (N, N + 1, 3, E): task, policy
        if not backend.is_main:
            return None, {}
        table = gathered.transpose(2, 1, 0, 3)  # (3, N + 1, N, E): quantity, policy, task
        return everyone, {"distance": table[0], "return": table[1], "terminated": table[2].astype(bool)}


# ------------------------------------------------------------------------------ the run
def _load_checked(data: Any, source: Path) -> EnvDCPGConfig:
    cfg = load_env_config(data, source).normalized()
    from mpg_envs import task_env_makers

    task_env_makers(cfg.env, **cfg.env_kwargs)
    return cfg


def _run_name(cfg: EnvDCPGConfig) -> str:
    kind = "dcpg" if cfg.communicate else "sa"
    return run_name(cfg.env, f"{kind}-{cfg.policy}-{cfg.gradient}", cfg.seed)


def prepare_env(cfg: EnvDCPGConfig) -> tuple[EnvDCPGConfig, list, Topology]:
    """Check ``cfg`` and build what a run needs before it writes anything: the normalized config,
    the task env makers (no env built) and the communication topology.

    Raises:
        ValueError: A bad option, env argument or graph (named).
    """
    from mpg_envs import task_env_makers

    if not isinstance(cfg, EnvDCPGConfig):
        raise V.ArgumentTypeError(f"cfg must be an EnvDCPGConfig, got {V.show(cfg)}")
    cfg = cfg.normalized()
    cfg.hidden_widths()
    makers = task_env_makers(cfg.env, **cfg.env_kwargs)
    topology = Topology.make(cfg.graph, len(makers), weights=cfg.weights, seed=cfg.seed, p=cfg.graph_p)
    return cfg, makers, topology


def run_dcpg_env(
    cfg: EnvDCPGConfig | None = None,
    *,
    backend: Any = None,
    resume: str | Path | None = None,
    iters: int | None = None,
    progress: bool = False,
    stop_after: int | None = None,
) -> DCPGResult:
    """Train with DCPG (SA-i with ``communicate=False``) over a multi-task env; write a run folder.

    Args:
        cfg: The config (ignored with ``resume``).
        backend: ``"single"`` (default), ``"dist"`` (one ``torch.distributed`` rank per task under
            ``torchrun``: each rank builds and renders only its own task's env) or a backend object.
        resume: A run folder to continue from its latest complete checkpoint.
        iters: With ``resume``, extend the run to this many iterations.
        progress: A progress bar (main process).
        stop_after: Return after this many updates without finishing (tests: a simulated kill).

    Returns:
        The :class:`~baselines.consensus.dcpg.DCPGResult` (``thetas`` (N, d) on the main process).

    Example:
        >>> from baselines.consensus.envtasks import EnvDCPGConfig, run_dcpg_env
        >>> cfg = EnvDCPGConfig(env_kwargs={"resolution": 64, "max_cycles": 100}, iters=20, eval_every=10)
        >>> res = run_dcpg_env(cfg)  # four MiniWorld envs, the C3F2 network, REINFORCE, ring
    """
    folder = None
    if resume is not None:
        folder = RunFolder(resume)
        cfg = resume_config(folder, iters, load=_load_checked, max_iters=10**9)
    elif iters is not None:
        raise ValueError("iters extends a resumed run; set cfg.iters for a new run")
    if cfg is None:
        raise ValueError("cfg must be an EnvDCPGConfig (or pass resume=<run folder>), got None")
    cfg, makers, topology = prepare_env(cfg)
    backend = make_backend(backend, topology, cfg.communicate, len(makers), what=cfg.env)
    local = EnvAgents(cfg, makers, backend.agents)
    try:
        return train_agents(
            cfg, CONFIG_KIND, _run_name(cfg), backend, local, EnvEvaluation(cfg, local, len(makers)),
            folder=folder, resume=resume, iters=iters, progress=progress, stop_after=stop_after,
        )  # fmt: skip
    finally:
        local.close()
